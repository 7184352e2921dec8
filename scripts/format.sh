#!/bin/bash
# The one code style, .clang-format, over the C++ of src/, fuzz/ and t/unit/.
#   format.sh          rewrites the files in place (make format)
#   format.sh check    names the files whose layout differs and fails (make test runs it)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
mapfile -t files < <(find src fuzz t/unit -name '*.h' -o -name '*.cpp' | sort)
if [ "${1:-}" != check ]; then
    clang-format -i "${files[@]}"
    exit 0
fi
differ=()
for f in "${files[@]}"; do
    clang-format "$f" | cmp -s - "$f" || differ+=("$f")
done
[ ${#differ[@]} -eq 0 ] && exit 0
echo "format.sh: not in the project's style (make format rewrites them): ${differ[*]}" >&2
exit 1
