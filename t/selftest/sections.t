# Self-test of the fallback Test::Nginx::Socket runner (t/lib): every
# supported section, against stock nginx features only (no chatterd).
use strict; use warnings;
use FindBin; BEGIN { push @INC, "$FindBin::Bin/../lib" }
# Skipped when another Test::Nginx::Socket than t/lib's would be loaded.
BEGIN { require "$FindBin::Bin/fallback_only.pl" }
# Stock nginx only: never load the modules a suite run (scripts/test.sh) asks for.
BEGIN { delete $ENV{TEST_NGINX_LOAD_MODULES} }
use Test::Nginx::Socket 'no_plan';

# Used through $TEST_NGINX_GREETING in a config section.
$ENV{TEST_NGINX_GREETING} = 'hi-from-env';

# For "--- http_config eval: $::http_config".
our $http_config = 'map $uri $mapped { default mapped-ok; }';

# Blocks without a config section get a default one.
add_block_preprocessor(sub {
    my ($block) = @_;
    $block->set_value(config => qq{location = /t { return 200 "default config\\n"; }})
        unless defined $block->config;
});

# Record the calls of the response body hook; check main_config placement.
our @body_checks;
add_response_body_check(sub {
    my ($block, $body, $req_idx, $repeated_req_idx, $dry_run) = @_;
    push @body_checks, [$block->name, $req_idx, $repeated_req_idx, $body];
    return unless $block->name =~ /main_config/;
    open my $fh, '<', "$ENV{TEST_NGINX_SERVER_ROOT}/conf/nginx.conf" or die $!;
    my $conf = do { local $/; <$fh> };
    like($conf, qr/^worker_rlimit_nofile 1000;\n.*^events \{/ms,
         $block->name . ' - main_config is in the main context');
});

our $init_runs = 0;
our $init_saw_nginx;

no_shuffle();
run_tests();

# After run_tests: hooks and exported settings.
is($init_runs, 1, 'init section ran');
ok((grep { $_->[0] =~ /^TEST 1:/ && $_->[1] == 0 && $_->[2] == 0 && $_->[3] eq 'hello' }
    @body_checks), 'response body check got (block, body, req_idx, repeated_req_idx)');
ok((grep { $_->[0] =~ /request eval with several/ && $_->[1] == 1 } @body_checks),
   'response body check sees the request index');
my $root = $ENV{TEST_NGINX_SERVER_ROOT};
like($root, qr{^/.*servroot}, 'TEST_NGINX_SERVER_ROOT exported, absolute');
like(server_port(), qr/^\d+$/, 'server_port()');
ok($init_saw_nginx, 'init ran once nginx was running');
ok(-e "$root/conf/nginx.conf", 'server root left for inspection');
ok(!-e "$root/logs/nginx.pid", 'nginx stopped at the end');

__DATA__

=== TEST 1: response_body with the chomp filter, error_code
--- config
location = /t { return 200 "hello"; }
--- request
GET /t
--- error_code: 200
--- response_body chomp
hello



=== TEST 2: one-liner sections, multi-line exact body
--- config
location = /t { return 201 "one\ntwo\n"; }
--- request: GET /t
--- error_code: 201
--- response_body
one
two



=== TEST 3: response_body_like / response_body_unlike
--- config
location = /t { return 200 "hello\nworld\n"; }
--- request
GET /t
--- response_body_like: ^world$
--- response_body_unlike: ^hello world



=== TEST 4: response_headers and response_headers_like
--- config
location = /t {
    add_header X-Test "abc";
    add_header X-Num 42;
    return 200 "ok";
}
--- request
GET /t
--- response_headers
X-Test: abc
Content-Type: text/plain
Content-Length: 2
!X-Missing
X-Missing:
--- response_headers_like
X-Num: \d+
Server: nginx(/[\d.]+)?



=== TEST 5: more_headers reach nginx, custom Host is kept
--- config
location = /t { return 200 "$http_x_foo|$http_x_bar|$host|$http_connection"; }
--- request
GET /t
--- more_headers
X-Foo: foo-value
X-Bar: bar value
Host: example.test
--- response_body chomp
foo-value|bar value|example.test|close



=== TEST 6: request line with explicit HTTP/1.0 and a query string
--- config
location = /t { return 200 "$server_protocol $request_method $request_uri $arg_a"; }
--- request
GET /t?a=1 HTTP/1.0
--- response_body chomp
HTTP/1.0 GET /t?a=1 1



=== TEST 7: request eval with several requests, per-request expectations
--- config
location /up/ {
    root html;
    dav_methods PUT;
    create_full_put_path on;
}
--- request eval
["PUT /up/a.txt\n  hello body \n\n", "GET /up/a.txt"]
--- error_code eval
[201, 200]
--- response_body eval
["", "hello body"]



=== TEST 8: body in the request section, trimmed, Content-Length computed
--- config
location /up/ {
    root html;
    dav_methods PUT;
    create_full_put_path on;
}
location = /len { return 200 "$http_content_length"; }
--- request eval
["PUT /up/b.txt

  line one
line two

", "GET /up/b.txt", "POST /len\nabc  \n"]
--- error_code eval
[201, 200, 200]
--- response_body eval
["", "line one\nline two", "3"]



=== TEST 9: Content-Length in more_headers: the body is sent untrimmed
--- config
location /up/ {
    root html;
    dav_methods PUT;
    create_full_put_path on;
}
--- request eval
["PUT /up/c.txt\n  x  ", "GET /up/c.txt"]
--- more_headers eval
["Content-Length: 5", ""]
--- error_code eval
[201, 200]
--- response_body eval
["", "  x  "]



=== TEST 10: raw_request eval sends exact bytes
--- config
location = /t { return 200 "$request_method $http_x_raw"; }
--- raw_request eval
"GET /t HTTP/1.1\r\nHost: localhost\r\nX-Raw: yes\r\nConnection: close\r\n\r\n"
--- response_body chomp
GET yes



=== TEST 13: user_files served by the default "location /" (nested dirs)
--- user_files
>>> index.html
<p>index</p>
>>> sub/dir/file.txt
deep file
--- request
GET /sub/dir/file.txt
--- response_body
deep file



=== TEST 14: user_files: index.html through "location /"
--- user_files
>>> index.html
<p>index</p>
--- request
GET /
--- response_headers
Content-Type: text/html
--- response_body
<p>index</p>



=== TEST 15: chunked responses are decoded (SSI drops Content-Length)
--- config
location /ssi/ {
    root html;
    ssi on;
}
--- user_files
>>> ssi/page.html
chunked <!--# set var="v" value="ok" --><!--# echo var="v" -->
--- request
GET /ssi/page.html
--- response_headers
Transfer-Encoding: chunked
!Content-Length
--- response_body
chunked ok



=== TEST 16: error_log / no_error_log lines (substrings); the first request's lines include startup
--- request
GET /nope.html
--- error_code: 404
--- error_log
open()
No such file or directory
using the "epoll" event method
--- no_error_log
[alert]



=== TEST 16b: the error log is checked after each request, with the lines since the last check
--- request eval
["GET /nope.html", "GET /nope.html"]
--- error_code eval
[404, 404]
--- error_log
open()



=== TEST 17: error_log / no_error_log with eval (qr// and strings)
--- request
GET /nope.html
--- error_code: 404
--- error_log eval
[qr/\[error\] \d+#\d+: \*\d+ open\(\) "[^"]+\/nope\.html" failed/,
 "(2: No such file or directory)"]
--- no_error_log eval
[qr/\[emerg\]/, "[crit]"]



=== TEST 18: $TEST_NGINX_* expansion and "http_config eval: $::var"
--- http_config eval: $::http_config
--- config
location = /t { return 200 "$TEST_NGINX_GREETING $mapped"; }
--- request
GET /t
--- response_body chomp
hi-from-env mapped-ok



=== TEST 19: main_config goes to the main context
--- main_config
worker_rlimit_nofile 1000;
--- request
GET /t
--- response_body
default config



=== TEST 20: init runs after nginx started, before the request
--- init
$::init_runs++;
$::init_saw_nginx = -s "$ENV{TEST_NGINX_SERVER_ROOT}/logs/nginx.pid";
--- config
location = /t { return 200 "after init"; }
--- request
GET /t
--- response_body chomp
after init



=== TEST 23: timeout in seconds, a request that completes in time
--- config
location = /t { return 200 "in time"; }
--- request
GET /t
--- timeout: 2s
--- response_body chomp
in time



=== TEST 24: HEAD response without body
--- config
location = /t { return 200 "some body"; }
--- request
HEAD /t
--- response_headers
Content-Length: 9
--- response_body eval
""



=== TEST 25: return 405 with nginx's error page
--- config
location = /t { return 405; }
--- request
POST /t
abc
--- error_code: 405
--- response_body_like: 405 Not Allowed



=== TEST 26: early 413 while a large body is still being sent
--- config
location = /t {
    client_max_body_size 1k;
    return 200 "not reached";
}
--- request eval
"POST /t\n" . ("x" x 2_000_000)
--- error_code: 413
--- response_body_like: 413 Request Entity Too Large



=== TEST 27: large response body (user_files eval, response_body eval)
--- user_files eval
">>> big.txt\n" . ("0123456789" x 100_000) . "\n"
--- request
GET /big.txt
--- response_headers
Content-Length: 1000001
--- response_body eval
("0123456789" x 100_000) . "\n"



=== TEST 29: no request at all: nginx starts, nothing is checked
--- config
location = /t { return 200; }



=== TEST 30: SKIP (Test::Base) skips a block
--- SKIP
--- request
GET /t
--- error_code: 599
