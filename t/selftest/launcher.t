# Self-test of the scenario-test helpers Chatterd::Nginx (programmatic
# launcher) and Chatterd::Http (raw HTTP client, multipart builder), with
# stock nginx features only.
use strict; use warnings;
use FindBin; BEGIN { push @INC, "$FindBin::Bin/../lib" }
# Stock nginx only: never load the modules a suite run (scripts/test.sh) asks for.
BEGIN { delete $ENV{TEST_NGINX_LOAD_MODULES} }
use Test::More;
use IO::Socket::INET;
use POSIX ();
use Time::HiRes ();

use Chatterd::Http qw(http_request http_get multipart_body build_request
                      parse_http_response decode_chunked);
use Chatterd::Nginx;
use Chatterd::NginxProcess;
use Chatterd::Ports qw(free_port);
use Chatterd::Wait qw(wait_until);

#---------------------------------------------------------------------------
# Pure helpers (no nginx)
#---------------------------------------------------------------------------

subtest 'multipart_body builds CRLF-delimited parts' => sub {
    my $jpeg = "\xff\xd8\xff\xe0binary\r\n\x00end";
    my $body = multipart_body('XyZ',
        [name => 'username', value => 'alice'],
        [name => 'image', filename => 'chattImage', type => 'image/jpeg',
         value => $jpeg, headers => ['X-Extra: 1', 'X-Other: two']],
        [value => ''],
    );
    is($body,
        "--XyZ\r\n"
      . qq{Content-Disposition: form-data; name="username"\r\n}
      . "\r\n"
      . "alice\r\n"
      . "--XyZ\r\n"
      . qq{Content-Disposition: form-data; name="image"; filename="chattImage"\r\n}
      . "Content-Type: image/jpeg\r\n"
      . "X-Extra: 1\r\n"
      . "X-Other: two\r\n"
      . "\r\n"
      . "$jpeg\r\n"
      . "--XyZ\r\n"
      . qq{Content-Disposition: form-data; name=""\r\n}
      . "\r\n"
      . "\r\n"
      . "--XyZ--\r\n",
       'exact bytes');
};

subtest 'parse_http_response and decode_chunked' => sub {
    my $r = parse_http_response("HTTP/1.1 100 Continue\r\n\r\n"
        . "HTTP/1.1 200 OK\r\nX-A: 1\r\nx-a: 2\r\nTransfer-Encoding: chunked\r\n\r\n"
        . "5\r\nhello\r\n1;ext=1\r\n!\r\n0\r\nTrailer: x\r\n\r\n");
    is($r->{status}, 200, 'interim 100 skipped');
    is($r->{headers}{'x-a'}, '1, 2', 'repeated headers joined');
    is($r->{body}, 'hello!', 'chunked body decoded');
    ok(!$r->{incomplete}, 'complete');

    my ($body, $complete) = decode_chunked("5\r\nhel");
    ok(!$complete, 'truncated chunked body detected');

    $r = parse_http_response("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort");
    ok($r->{incomplete}, 'short Content-Length body detected');
    $r = parse_http_response("HTTP/1.1 200 OK\r\nContent-Le");
    is($r->{status}, 200, 'status from a truncated head');
    ok($r->{incomplete}, 'truncated head detected');
};

subtest 'build_request' => sub {
    is(build_request(POST => '/x', body => 'abc', headers => [ 'X-A' => 1 ]),
       "POST /x HTTP/1.1\r\nX-A: 1\r\nHost: localhost\r\nConnection: close\r\n"
       . "Content-Length: 3\r\n\r\nabc", 'POST with body');
    is(build_request(GET => '/', headers => [Connection => 'keep-alive', Host => 'h']),
       "GET / HTTP/1.1\r\nConnection: keep-alive\r\nHost: h\r\n\r\n", 'given headers kept');
};

subtest 'wait_until returns the true value, or false once the time is up' => sub {
    my $polls = 0;
    is(wait_until(sub { ++$polls >= 3 && "polled $polls" }), 'polled 3',
       'the value, at the third poll');
    my $start = Time::HiRes::time();
    ok(!wait_until(sub { 0 }, 0.3), 'false after the time');
    cmp_ok(Time::HiRes::time() - $start, '>=', 0.3, 'not before the time');
};

subtest 'free_port hands out distinct ports, bindable, outside the client port range' => sub {
    my @ports = map { free_port() } 1 .. 50;
    my %seen = map { $_ => 1 } @ports;
    is(scalar keys %seen, 50, '50 distinct ports');
    open my $range, '<', '/proc/sys/net/ipv4/ip_local_port_range' or die "port range: $!";
    my ($low, $high) = split ' ', <$range>;
    ok(!grep({ $_ >= $low && $_ <= $high } @ports), "none in the client port range $low-$high");
    ok(!grep({ !IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $_, Listen => 1) }
             @ports), 'each can be bound');
    # Another process is not handed the ports this one holds (drawn at random without the locks,
    # 2000 of them would all miss our 50 about once in a million runs).
    open my $child, '-|', $^X, "-I$FindBin::Bin/../lib", '-MChatterd::Ports=free_port',
        '-e', 'print join(" ", map { free_port() } 1 .. 2000)' or die "perl: $!";
    my @theirs = split ' ', do { local $/; <$child> };
    close $child;
    is(scalar @theirs, 2000, 'another process got 2000 ports');
    ok(!grep({ $seen{$_} } @theirs), 'none of them ours');
};

#---------------------------------------------------------------------------
# Chatterd::Nginx
#---------------------------------------------------------------------------

# A TCP server that never answers, for the timeout check.
my $silent = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                   Listen => 5, ReuseAddr => 1) or die $!;
$ENV{TEST_NGINX_SELFTEST_SILENT} = $silent->sockport;

my $ng = Chatterd::Nginx->start(
    http_config => 'map $uri $m { default mapped; }',
    config      => <<'EOF',
location = /t { add_header X-T yes; return 200 "hello $m"; }
location = /missing { root html; }
location /up/ { root html; dav_methods PUT; create_full_put_path on; }
location /ssi/ { root html; ssi on; }
location = /slow { proxy_pass http://127.0.0.1:$TEST_NGINX_SELFTEST_SILENT; }
EOF
    user_files => { 'ssi/c.html' => "chunk <!--# echo var=\"uri\" -->\n" },
    workers => 1, master => 0,
    # Debian's nginx is built --with-debug: at debug level a request keeps
    # logging after its client has its answer, which no mark can wait for.
    log_level => 'info',
);

like($ng->port, qr/^\d+$/, 'port');
ok(-d $ng->servroot && -f $ng->servroot . '/conf/nginx.conf', 'servroot laid out');
like($ng->servroot, qr/servroot_launcher$/, 'servroot named after the script');

my $res = http_get($ng->port, '/t');
is($res->{status}, 200, 'http_get status');
is($res->{body}, 'hello mapped', 'http_get body (http_config used)');
is($res->{headers}{'x-t'}, 'yes', 'lower-case header names');
like($res->{raw}, qr/^HTTP\/1\.1 200 OK\r\n/, 'raw bytes');

$res = http_request($ng->port, "GET /t HTTP/1.0\r\n\r\n", timeout => 5);
is($res->{status}, 200, 'http_request with raw bytes');

$res = http_get($ng->port, '/ssi/c.html');
ok($res->{chunked}, 'chunked response') and is($res->{body}, "chunk /ssi/c.html\n", 'dechunked');

# Request bodies: PUT a multipart body, GET it back byte for byte.
my $multipart = multipart_body('b0undary',
    [name => 'a', value => 'x'],
    [name => 'image', filename => 'chattImage', type => 'image/jpeg',
     value => join('', map { chr } 0 .. 255) x 100]);
$res = http_request($ng->port, build_request(PUT => '/up/m.bin', body => $multipart));
is($res->{status}, 201, 'PUT created');
$res = http_get($ng->port, '/up/m.bin');
ok($res->{body} eq $multipart, 'body sent and returned exactly') or diag(length $res->{body});

# Timeouts between I/O events.
my $t0 = Time::HiRes::time();
$res = http_get($ng->port, '/slow', timeout => 0.3);
ok($res->{timed_out}, 'timed out');
ok(Time::HiRes::time() - $t0 < 3, 'within the timeout');
ok(!defined $res->{status}, 'no status');

# Error log: whole text, marks. nginx notices the client of /slow leave on
# its own time: wait for that line, the last one of that request, first.
ok($ng->error_log_text =~ /using the "epoll" event method/, 'error_log_text has the startup');
ok($ng->wait_for_error_log('prematurely closed connection'), 'the client of /slow left');
$ng->mark_error_log;
is($ng->error_log_since_mark, '', 'nothing since the mark');
http_get($ng->port, '/missing');
like(scalar $ng->error_log_since_mark, qr/\[error\].*open\(\) ".*missing" failed/,
     'error_log_since_mark has the new error');
unlike(scalar $ng->error_log_since_mark, qr/event method/, 'but not the startup');
http_get($ng->port, '/missing');
my @lines = $ng->error_log_since_mark;
is(scalar(grep { /open\(\) ".*missing" failed/ } @lines), 2,
   'error_log_since_mark in list context: one line per error');
ok($ng->wait_for_error_log(qr/open\(\) .* failed/, timeout => 2), 'wait_for_error_log finds');
ok(!$ng->wait_for_error_log('never logged', timeout => 0.2), 'wait_for_error_log times out');

# Processes.
my @workers = $ng->worker_pids;
is(scalar @workers, 1, 'master off: one process');
is($workers[0], $ng->pid, 'it is the pid file process');
ok(kill(0, $workers[0]), 'alive');

# Forked children (concurrent clients) do not stop nginx when they exit.
my $child = fork // die "fork: $!";
if ($child == 0) {
    http_get($ng->port, '/t');
    exit 0;    # runs destructors of the child's copy of $ng
}
waitpid $child, 0;
is(http_get($ng->port, '/t')->{status}, 200, 'still running after a child exited');

ok($ng->stop, 'stop');
ok(!kill(0, $workers[0]) || !Chatterd::NginxProcess::process_alive($workers[0]), 'process gone');
my $refused = http_get($ng->port, '/t', timeout => 1);
like($refused->{error} // '', qr/connect/, 'port closed after stop');

#---------------------------------------------------------------------------
# master on, several workers; DESTROY stops nginx
#---------------------------------------------------------------------------

{
    my $m = Chatterd::Nginx->start(
        config => 'location = /t { return 200 "$pid"; }',
        user_files => [[ 'f.txt', "file\n" ]],
        master => 1, workers => 2);
    my @w = $m->worker_pids;
    is(scalar @w, 2, 'two workers');
    isnt($w[0], $m->pid, 'workers are not the master');
    like($ng->servroot, qr/launcher$/, 'first instance servroot');
    like($m->servroot, qr/launcher_2$/, 'second instance gets its own servroot');
    my %served = map { http_get($m->port, '/t')->{body} => 1 } 1 .. 4;
    ok((grep { my $p = $_; grep { $_ == $p } @w } keys %served), 'served by a worker');
    my $uid = (stat "/proc/$w[0]")[4];
    diag("worker uid $uid") if $ENV{TEST_VERBOSE};
    is(http_get($m->port, '/f.txt')->{body}, "file\n", 'worker reads user_files');
    our @gone = ($m->pid, @w);
}
ok(!(grep { Chatterd::NginxProcess::process_alive($_) } our @gone),
   'DESTROY stopped master and workers');

#---------------------------------------------------------------------------
# Failures and module loading
#---------------------------------------------------------------------------

my $err = do { local $@; eval { Chatterd::Nginx->start(config => 'no_such_directive on;'); 1 }; $@ };
like($err, qr/nginx failed to start.*unknown directive "no_such_directive"/s,
     'start() dies with nginx stderr');

$err = do { local $@; eval {
    Chatterd::Nginx->start(config => 'location = /t { return 200 "$TEST_NGINX_SURELY_UNSET"; }'); 1 }; $@ };
like($err, qr/undefined environment variable \$TEST_NGINX_SURELY_UNSET used in config/,
     'undefined $TEST_NGINX_* is an error');

SKIP: {
    my $so = '/usr/lib/nginx/modules/ngx_stream_module.so';
    skip "$so not installed", 2 unless -e $so;
    local $ENV{TEST_NGINX_LOAD_MODULES} = $so;
    my $stream_port = Chatterd::NginxProcess::free_port();
    my $s = Chatterd::Nginx->start(main_config => <<"EOF");
stream {
    server {
        listen 127.0.0.1:$stream_port;
        return "stream-ok";
    }
}
EOF
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $stream_port)
        or die "connect: $!";
    my $got = do { local $/; <$sock> };
    is($got, 'stream-ok', 'TEST_NGINX_LOAD_MODULES loads a dynamic module');
    like(do { open my $fh, '<', $s->servroot . '/conf/nginx.conf'; local $/; <$fh> },
         qr/\Aload_module|^load_module \Q$so\E;$/m, 'load_module line in nginx.conf');
}

done_testing;
