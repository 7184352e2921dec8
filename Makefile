# chatterd for nginx. `make run` starts the whole stack locally; `make test` runs the unit tests
# and every suite; `make ci` adds the sanitizers, the Debian package and a fresh clone (.ci/run).
# The work is done by the scripts in scripts/; this file only names it.
.PHONY: all deps run test ci test-asan test-fresh-clone unit format fuzz bench soak deb test-deb clean clean-pg

all:
	scripts/build.sh

deps:
	scripts/deps.sh

run:
	scripts/run.sh

test:
	scripts/test.sh

ci:
	scripts/ci.sh

test-asan:
	scripts/test-asan.sh

test-fresh-clone:
	scripts/test-fresh-clone.sh

unit:
	scripts/unit.sh

format:
	scripts/format.sh

fuzz:
	scripts/fuzz.sh

bench:
	bench/run.sh

# On demand, about SOAK_SECONDS (default 600): docs/DEVELOPING.md, Soak.
soak:
	scripts/soak.sh

deb:
	scripts/deb.sh

test-deb:
	scripts/test-deb.sh $(DEB)

# Stops and removes this clone's PostgreSQL clusters (under /tmp/chatterd, see scripts/pg.sh).
clean-pg:
	scripts/pg.sh clean

clean: clean-pg
	rm -rf build t/servroot* bench/out
