# Self-test of the fallback Test::Nginx::Socket runner: global settings
# (no_root_location, master_on, workers, log_level, env_to_nginx,
# repeat_each, "plan tests => N", default block shuffling).
use strict; use warnings;
use FindBin; BEGIN { push @INC, "$FindBin::Bin/../lib" }
# Stock nginx only: never load the modules a suite run (scripts/test.sh) asks for.
BEGIN { delete $ENV{TEST_NGINX_LOAD_MODULES} }
use Test::Nginx::Socket;

repeat_each(2);
no_root_location();
master_on();
workers(2);
log_level('info');
env_to_nginx('CHATTERD_SELFTEST_ENV=abc');

# 3 tests per request (status, body, one log pattern), 6 checks at the end.
plan tests => repeat_each() * 3 * blocks() + 6;

# No no_shuffle(): blocks run in random order, which must not matter.
run_tests();

# The server root keeps the configuration of the last block.
open my $fh, '<', "$ServRoot/conf/nginx.conf" or die "no nginx.conf: $!";
my $conf = do { local $/; <$fh> };
like($conf, qr/^master_process on;$/m, 'master_on()');
like($conf, qr/^worker_processes 2;$/m, 'workers(2)');
like($conf, qr/^env CHATTERD_SELFTEST_ENV=abc;$/m, 'env_to_nginx()');
like($conf, qr/^daemon on;$/m, 'daemon on');
unlike($conf, qr/^\s*location \/ \{\s*root html;/m, 'no_root_location()');
ok(!-e "$ServRoot/logs/nginx.pid", 'nginx (master and workers) stopped');

__DATA__

=== TEST 1: own "location /" (would clash without no_root_location)
--- config
location / { return 200 "own root location\n"; }
--- request
GET /anything
--- response_body
own root location
--- no_error_log
[debug]



=== TEST 2: workers of an nginx started as root read user_files
--- config
location / { return 404; }
location /files/ { root html; }
--- user_files
>>> files/readable.txt
readable by the worker user
--- request
GET /files/readable.txt
--- response_body
readable by the worker user
--- no_error_log
[crit]



=== TEST 3: per-block log_level section overrides log_level()
--- log_level: debug
--- config
location / { return 200 "debug on\n"; }
--- request
GET /
--- response_body
debug on
--- error_log
[debug]
