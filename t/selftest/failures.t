# Self-test of the fallback Test::Nginx::Socket runner: wrong expectations
# must FAIL.  Each case writes a small data-driven .t file into a temporary
# directory, runs it with perl in a subprocess (own port and server root)
# and inspects its TAP output and exit status.
use strict; use warnings;
use FindBin; BEGIN { push @INC, "$FindBin::Bin/../lib" }
# Skipped when another Test::Nginx::Socket than t/lib's would be loaded.
BEGIN { require "$FindBin::Bin/fallback_only.pl" }
# Stock nginx only: never load the modules a suite run (scripts/test.sh) asks for.
BEGIN { delete $ENV{TEST_NGINX_LOAD_MODULES} }
use Test::More;
use Cwd ();
use File::Temp ();
use IO::Socket::INET;

use Chatterd::NginxProcess;

my $lib = Cwd::abs_path("$FindBin::Bin/../lib");
my $tmp = File::Temp->newdir('chatterd-selftest-XXXXXX', TMPDIR => 1);

# run_inner($name, $data_section, %env) -> (exit status, output)
sub run_inner {
    my ($name, $script_body, %env) = @_;
    my $file = "$tmp/$name.t";
    open my $fh, '>', $file or die "$file: $!";
    print {$fh} "use strict; use warnings;\n",
                "BEGIN { push \@INC, '$lib' }\n",
                $script_body;
    close $fh;
    local $ENV{TEST_NGINX_SERVROOT} = "$tmp/servroot-$name";
    local @ENV{qw(TEST_NGINX_PORT TEST_NGINX_SERVER_PORT)};    # the runner hands one out
    local @ENV{ keys %env } = values %env;
    my $output = `$^X $file 2>&1`;
    return ($? >> 8, $output);
}

# Leave no nginx behind from a case.
sub stop_servroot {
    my ($name) = @_;
    Chatterd::NginxProcess->new(servroot => "$tmp/servroot-$name")->stop;
}

#---------------------------------------------------------------------------
subtest 'wrong expectations fail, right ones pass' => sub {
    my ($status, $out) = run_inner('wrong', <<'EOF');
use Test::Nginx::Socket 'no_plan';
use IO::Socket::INET;
# For TEST 8: a server that accepts and never answers (set before the blocks' configs are made).
our $silent = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
    Listen => 5, ReuseAddr => 1) or die $!;
$ENV{TEST_NGINX_SILENT_PORT} = $silent->sockport;
no_shuffle();
run_tests();
__DATA__

=== TEST 1: right
--- config
location = /t { add_header X-A a; return 200 "hello"; }
--- request
GET /t
--- response_body chomp
hello

=== TEST 2: wrong body
--- config
location = /t { return 200 "hello"; }
--- request
GET /t
--- response_body chomp
goodbye

=== TEST 3: wrong code
--- config
location = /t { return 404; }
--- request
GET /t
--- error_code: 200

=== TEST 4: no error_code means 200
--- config
location = /t { return 500; }
--- request
GET /t

=== TEST 5: wrong headers
--- config
location = /t { add_header X-A a; add_header X-B b; return 200 "x"; }
--- request
GET /t
--- response_headers
X-A: not-a
!X-B
--- response_headers_like
X-A: b+

=== TEST 6: wrong like / unlike
--- config
location = /t { return 200 "hello"; }
--- request
GET /t
--- response_body_like: ^bye
--- response_body_unlike: ell

=== TEST 7: wrong error_log / no_error_log
--- request
GET /nope.html
--- error_code: 404
--- error_log
this text is never logged
--- no_error_log
[error]

=== TEST 8: client timeout
--- config
location = /t { proxy_pass http://127.0.0.1:$TEST_NGINX_SILENT_PORT; }
--- request
GET /t
--- timeout: 200ms

=== TEST 9: nginx does not start
--- config
no_such_directive on;
--- request
GET /t

=== TEST 10: right again after a failed start
--- config
location = /t { return 200 "back"; }
--- request
GET /t
--- response_body chomp
back

=== TEST 11: error_log is checked after each request, on its lines only
--- config
location = /t { return 200 "x"; }
--- request eval
["GET /nope.html", "GET /t"]
--- error_code eval
[404, 200]
--- error_log
open()

=== TEST 12: the first request's lines include nginx's startup
--- config
location = /t { return 200 "x"; }
--- request eval
["GET /t", "GET /t"]
--- no_error_log
using the "epoll" event method

=== TEST 13: a request in packets is refused, not sent whole
--- raw_request eval
["GET /t HT", "TP/1.0\r\n\r\n"]
EOF
    stop_servroot('wrong');
    isnt($status, 0, 'non-zero exit status');
    my @expect_fail = (
        'TEST 2: wrong body - response_body - response is expected',
        'TEST 3: wrong code - status code ok',
        'TEST 4: no error_code means 200 - status code ok',
        'TEST 5: wrong headers - header X-A ok',
        'TEST 5: wrong headers - header X-B not present',
        'TEST 5: wrong headers - header X-A like ok',
        'TEST 6: wrong like / unlike - response_body_like - response is expected',
        'TEST 6: wrong like / unlike - response_body_unlike - response is expected',
        'TEST 7: wrong error_log / no_error_log - pattern "this text is never logged" matches a line in error.log',
        'TEST 7: wrong error_log / no_error_log - pattern "[error]" does not match a line in error.log',
        'TEST 8: client timeout - client socket timed out',
        'TEST 9: nginx does not start - nginx started',
        'TEST 11: error_log is checked after each request, on its lines only - pattern "open()" matches a line in error.log (req 1)',
        'TEST 12: the first request\'s lines include nginx\'s startup - pattern "using the \\"epoll\\" event method" does not match a line in error.log (req 0)',
        'TEST 13: a request in packets is refused, not sent whole - request is valid',
    );
    for my $name (@expect_fail) {
        like($out, qr/^not ok \d+ - \Q$name\E$/m, "fails: $name");
    }
    my @expect_pass = (
        'TEST 1: right - status code ok',
        'TEST 1: right - response_body - response is expected',
        'TEST 7: wrong error_log / no_error_log - status code ok',
        'TEST 10: right again after a failed start - response_body - response is expected',
        'TEST 11: error_log is checked after each request, on its lines only - pattern "open()" matches a line in error.log (req 0)',
        'TEST 12: the first request\'s lines include nginx\'s startup - pattern "using the \\"epoll\\" event method" does not match a line in error.log (req 1)',
    );
    for my $name (@expect_pass) {
        like($out, qr/^ok \d+ - \Q$name\E$/m, "passes: $name");
    }
    my $failed = () = $out =~ /^not ok /mg;
    is($failed, scalar @expect_fail, 'no other failure') or diag($out);
    like($out, qr/^#\s+expected: "goodbye"$/m, 'diagnostics show the expected body');
    like($out, qr/^#\s+\S+ \S+ \[error\] .*open\(\) ".*nope\.html" failed/m,
         'diagnostics of a missing error_log pattern show the logged errors');
    like($out, qr/unknown directive "no_such_directive"/, "nginx's stderr in the diagnostics");
};

#---------------------------------------------------------------------------
subtest 'undefined $TEST_NGINX_* bails out' => sub {
    my ($status, $out) = run_inner('bail', <<'EOF');
use Test::Nginx::Socket 'no_plan';
run_tests();
__DATA__

=== TEST 1: undefined variable
--- config
location = /t { return 200 "$TEST_NGINX_SURELY_UNDEFINED"; }
--- request
GET /t
EOF
    stop_servroot('bail');
    isnt($status, 0, 'non-zero exit status');
    like($out, qr/^Bail out!.*undefined environment variable \$TEST_NGINX_SURELY_UNDEFINED used in config/m,
         'Bail out! names the variable');
};

#---------------------------------------------------------------------------
subtest 'an eval section that dies is reported' => sub {
    my ($status, $out) = run_inner('evaldie', <<'EOF');
use Test::Nginx::Socket 'no_plan';
run_tests();
__DATA__

=== TEST 1: broken eval
--- request eval
die "broken on purpose\n"
EOF
    stop_servroot('evaldie');
    isnt($status, 0, 'non-zero exit status');
    like($out, qr/eval filter failed in block 'TEST 1: broken eval': broken on purpose/,
         'error names the block');
};

#---------------------------------------------------------------------------
subtest 'plan tests => N is honoured' => sub {
    my ($status, $out) = run_inner('plan', <<'EOF');
use Test::Nginx::Socket;
plan tests => 3 * blocks();
run_tests();
__DATA__

=== TEST 1: only two tests run, three planned
--- config
location = /t { return 200 "x"; }
--- request
GET /t
--- response_body chomp
x
EOF
    stop_servroot('plan');
    like($out, qr/^1\.\.3$/m, 'plan printed first');
    like($out, qr/planned 3 tests but ran 2/, 'count mismatch reported');
    isnt($status, 0, 'non-zero exit status');
};

#---------------------------------------------------------------------------
subtest 'TEST_NGINX_BINARY and TEST_NGINX_LOAD_MODULES errors' => sub {
    my $script = <<'EOF';
use Test::Nginx::Socket 'no_plan';
run_tests();
__DATA__

=== TEST 1: start
--- config
location = /t { return 200 "x"; }
--- request
GET /t
EOF
    my ($status, $out) = run_inner('nobinary', $script,
        TEST_NGINX_BINARY => '/nonexistent/nginx');
    isnt($status, 0, 'missing binary fails');
    like($out, qr/^not ok 1 - TEST 1: start - nginx started$/m, 'as a failed start');
    like($out, qr{cannot execute /nonexistent/nginx}, 'with the reason');

    ($status, $out) = run_inner('nomodule', $script,
        TEST_NGINX_LOAD_MODULES => '/nonexistent/mod.so');
    isnt($status, 0, 'missing module fails');
    like($out, qr{load_module|/nonexistent/mod\.so}, 'nginx says why');
    stop_servroot($_) for qw(nobinary nomodule);
};

#---------------------------------------------------------------------------
subtest 'TEST_NGINX_NO_CLEAN leaves nginx running; the next run stops it' => sub {
    my $script = <<'EOF';
use Test::Nginx::Socket 'no_plan';
run_tests();
__DATA__

=== TEST 1: run
--- config
location = /t { return 200 "x"; }
--- request
GET /t
--- response_body chomp
x
EOF
    my $port = Chatterd::NginxProcess::free_port();
    my ($status, $out) = run_inner('noclean', $script,
        TEST_NGINX_NO_CLEAN => 1, TEST_NGINX_PORT => $port);
    is($status, 0, 'passes') or diag($out);
    my $ng = Chatterd::NginxProcess->new(servroot => "$tmp/servroot-noclean", port => $port);
    my $pid = $ng->pid;
    ok($pid && Chatterd::NginxProcess::process_alive($pid), 'nginx still running');

    ($status, $out) = run_inner('noclean', $script, TEST_NGINX_PORT => $port);
    is($status, 0, 'a second run on the same port and servroot passes') or diag($out);
    ok(!Chatterd::NginxProcess::process_alive($pid), 'the leftover nginx was stopped');
    ok(!$ng->is_running, 'and the second one too');
    $ng->stop;
};

done_testing;
