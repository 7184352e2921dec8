# Self-test of the fallback Test::Nginx::Socket runner: the generated configuration's defaults
# (those of the real runner), "plan tests => N", default block shuffling.
use strict; use warnings;
use FindBin; BEGIN { push @INC, "$FindBin::Bin/../lib" }
# Skipped when another Test::Nginx::Socket than t/lib's would be loaded.
BEGIN { require "$FindBin::Bin/fallback_only.pl" }
# Stock nginx only: never load the modules a suite run (scripts/test.sh) asks for.
BEGIN { delete $ENV{TEST_NGINX_LOAD_MODULES} }
use Test::Nginx::Socket;

# 2 tests per block (status, body), 6 checks at the end.
plan tests => 2 * blocks() + 6;

# No no_shuffle(): blocks run in random order, which must not matter.
run_tests();

# The server root keeps the configuration of the last block.
my $root = $ENV{TEST_NGINX_SERVER_ROOT};
open my $fh, '<', "$root/conf/nginx.conf" or die "no nginx.conf: $!";
my $conf = do { local $/; <$fh> };
like($conf, qr/^master_process off;$/m, 'master_process off');
like($conf, qr/^daemon on;$/m, 'daemon on');
like($conf, qr/^\s*worker_connections 64;$/m, '64 worker connections, as the real runner');
if ($> == 0) {
    like($conf, qr/^user root;$/m, 'user root when run as root, as the real runner');
}
else {
    unlike($conf, qr/^user /m, 'no user directive when not root');
}
like($conf, qr/^\s*location \/ \{\s*root html;/m, 'a root location');
ok(!-e "$root/logs/nginx.pid", 'nginx stopped');

__DATA__

=== TEST 1: first
--- config
location = /t { return 200 "one\n"; }
--- request
GET /t
--- response_body
one



=== TEST 2: second
--- config
location = /t { return 200 "two\n"; }
--- request
GET /t
--- response_body
two



=== TEST 3: third (the root location: no such file)
--- request
GET /nothing.txt
--- error_code: 404
--- response_body_like: 404 Not Found
