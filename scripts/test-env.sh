# shellcheck shell=bash disable=SC2154
# Sourced by scripts/test.sh and scripts/test-asan.sh: the environment of the Test::Nginx suites,
# and which Test::Nginx::Socket they load.
#   test_env MODULE SCRATCH   with here, pg_dir and TEST_PG_PORT set: exports TEST_NGINX_* for the
#                             module MODULE and the cluster pg_dir on TEST_PG_PORT.
# Started by root, the test instances with master_process on run their workers as nobody, who
# cannot enter a clone in a folder only root can enter: their server roots (t/servroot_*) then go
# to /tmp/chatterd/<clone>-root-SCRATCH (scripts/pg.sh scratch), removed by make clean-pg.
test_env() {
    if [ -z "${TEST_NGINX_SERVROOT:-}" ] && [ "$(id -u)" = 0 ] \
            && ! runuser -u nobody -- test -x "$here/t" 2>/dev/null; then
        TEST_NGINX_SERVROOT="$("$here/scripts/pg.sh" scratch "$2")/servroot"
        export TEST_NGINX_SERVROOT
        echo "server roots: ${TEST_NGINX_SERVROOT}_* (nobody cannot enter $here/t)"
    fi
    export TEST_NGINX_LOAD_MODULES="$1"
    TEST_NGINX_PG_CONNINFO="$("$here/scripts/pg.sh" conninfo "$pg_dir" "$TEST_PG_PORT")"
    export TEST_NGINX_PG_CONNINFO
    export TEST_NGINX_PG_DIR="$pg_dir"
    export TEST_NGINX_PG_PORT="$TEST_PG_PORT"
    export TEST_NGINX_PSQL="$here/scripts/pg.sh psql $pg_dir $TEST_PG_PORT"
}

# check_test_nginx: prints which Test::Nginx::Socket the suites will load (an installed one, or
# one on PERL5LIB, wins over t/lib's), and stops with the Debian packages to install when
# openresty's Test::Nginx is the one and a module it loads is missing.
check_test_nginx() {
    local socket missing=() module package
    socket="$(perl -e 'push @INC, "t/lib";
        for (@INC) { if (-f "$_/Test/Nginx/Socket.pm") { print "$_/Test/Nginx/Socket.pm"; last } }')"
    if [ "$socket" != "t/lib/Test/Nginx/Socket.pm" ]; then
        # What openresty's Test::Nginx::Socket and Test::Nginx::Util load beyond Perl's core.
        for module in Test::Base:libtest-base-perl Test::LongString:libtest-longstring-perl \
                List::MoreUtils:liblist-moreutils-perl HTTP::Response:libhttp-message-perl \
                URI:liburi-perl Text::Diff:libtext-diff-perl; do
            package="${module##*:}"
            perl -e "require ${module%:*}" 2>/dev/null || missing+=("$package")
        done
        if [ ${#missing[@]} -gt 0 ]; then
            echo "make test: $socket needs these Debian packages: ${missing[*]}" \
                 "(make deps installs them)" >&2
            return 1
        fi
    fi
    perl -e 'push @INC, "t/lib"; require Test::Nginx::Socket;
             print "Test::Nginx::Socket: $INC{q{Test/Nginx/Socket.pm}}\n"'
}
