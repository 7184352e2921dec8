// libFuzzer target for the streaming metadata filter (core/media_scrub).
// Input: bytes 0-1 pick where the file is cut in two (and byte 2, a second cut); the rest is the
// file. Properties besides ASan/UBSan:
//   - the output is never longer than the file, and removed() counts exactly what is missing;
//   - the output does not depend on where the file is cut;
//   - the output is the same container: filtering it again changes nothing;
//   - a file the filter does not recognise, and files whose metadata is overwritten in place
//     (WebP, ISO-BMFF), keep their size.
#include "core/media_scrub.h"

#include "check.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace {

using chatterd::MediaScrubber;
using chatterd_fuzz::check;

struct Result {
    std::string out;
    std::uint64_t removed;
};

Result scrub(std::string_view file, std::vector<std::size_t> cuts) {
    Result result;
    MediaScrubber scrubber([&](std::string_view bytes) {
        result.out.append(bytes);
        return true;
    });
    std::size_t from = 0;
    for (std::size_t cut : cuts) {
        cut = std::max(from, std::min(cut, file.size()));
        // Each piece is a heap block of its exact size: a read past it is an ASan report.
        std::string piece(file.substr(from, cut - from));
        check(scrubber.feed(piece), "feed failed with a writer that never fails");
        from = cut;
    }
    std::string rest(file.substr(from));
    check(scrubber.feed(rest), "feed failed with a writer that never fails");
    check(scrubber.finish(), "finish failed with a writer that never fails");
    check(scrubber.consumed() == file.size(), "consumed() is not the input's size");
    result.removed = scrubber.removed();
    return result;
}

bool has_at(std::string_view text, std::size_t pos, std::string_view bytes) {
    return pos <= text.size() && text.substr(pos, bytes.size()) == bytes;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 3) return 0;
    std::size_t first_cut = (data[0] << 8 | data[1]) % (size - 2);
    std::size_t second_cut = first_cut + data[2];
    std::string_view file(reinterpret_cast<const char*>(data) + 3, size - 3);

    Result whole = scrub(file, {});
    check(whole.out.size() <= file.size(), "the output is longer than the input");
    check(whole.removed == file.size() - whole.out.size(), "removed() is not what is missing");
    check(scrub(file, {first_cut, second_cut}).out == whole.out,
          "the output depends on where the input is cut");
    check(scrub(whole.out, {first_cut}).out == whole.out, "filtering the output changes it");

    bool jpeg = has_at(file, 0, "\xFF\xD8\xFF");
    bool png = has_at(file, 0, "\x89PNG\r\n\x1A\n");
    bool gif = has_at(file, 0, "GIF87a") || has_at(file, 0, "GIF89a");
    bool webp = has_at(file, 0, "RIFF") && has_at(file, 8, "WEBP");
    if (!jpeg && !png && !gif) check(whole.out.size() == file.size(), "a file changed its size");
    if (!jpeg && !png && !gif && !webp && !has_at(file, 4, "ftyp"))
        check(whole.out == file, "a file the filter does not know was changed");
    return 0;
}
