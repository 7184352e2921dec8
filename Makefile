# chatterd for nginx. `make run` starts the whole stack locally; `make test` runs every test.
# The work is done by the scripts in scripts/; this file only names it.
.PHONY: all deps run test unit fuzz bench deb test-deb clean

all:
	scripts/build.sh

deps:
	scripts/deps.sh

run:
	scripts/run.sh

test:
	scripts/test.sh

unit:
	scripts/unit.sh

fuzz:
	scripts/fuzz.sh

bench:
	bench/run.sh

deb:
	scripts/deb.sh

test-deb:
	scripts/test-deb.sh $(DEB)

clean:
	rm -rf build t/servroot* bench/out
