# nginx -s reload and nginx -s quit while uploads and queries are in flight (scenario test;
# two workers):
#   in flight when the signal comes: four uploads half-sent, getimages and postchatt waiting
#   for a paused database (SIGSTOP; resumed after the signal), and one upload that has
#   stalled for good.
#   - reload: new workers start at once; every request in flight completes on its old worker
#     (200), the stalled upload is cut by client_body_timeout (2 s), then the old workers exit
#     (none on a signal); the new workers serve;
#   - quit: the same requests complete, then nginx exits.
# Both: no alert, no file without its row, no row without its files.
use strict; use warnings;
use FindBin; BEGIN { push @INC, "$FindBin::Bin/lib" }
use Test::More;
use IO::Select;
use IO::Socket::INET;
use Time::HiRes ();

use Chatterd::Nginx qw(start_nginx);
use Chatterd::NginxProcess ();
use Chatterd::Http qw(http_get build_request multipart_body parse_http_response);
use Chatterd::Db qw(sql sql_value truncate_chatts media_root media_files check_media_consistency
                    pause_pg resume_pg);
use Chatterd::Upload qw(media image_part);
use Chatterd::Wait qw(wait_until);

plan skip_all => 'TEST_NGINX_PSQL is not set (run through make test)' unless $ENV{TEST_NGINX_PSQL};
plan skip_all => 'TEST_NGINX_PG_DIR is not set (run through make test)' unless $ENV{TEST_NGINX_PG_DIR};


my $Root = media_root();

# No getchatts: a 404 for it tells the new workers' answers apart.
my %Nginx = (
    workers     => 2,
    media_root  => $Root,
    http_config => "chatterd_pg_timeout 5s;\nclient_body_timeout 2s;\n",
    config      => <<CONF,
location ~ ^/getimages/?\$  { chatterd getimages; }
location ~ ^/postchatt/?\$  { chatterd postchatt; }
location ~ ^/postimages/?\$ { chatterd postimages; client_max_body_size 21m; }
CONF
);

sub connect_raw {
    my ($port) = @_;
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp') or die "connect: $!";
    binmode $sock;
    return $sock;
}
sub send_bytes {
    my ($sock, $bytes) = @_;
    local $SIG{PIPE} = 'IGNORE';
    my $off = 0;
    while ($off < length $bytes) { my $n = syswrite($sock, $bytes, 262144, $off) // return 0; $off += $n }
    return 1;
}
sub read_status {
    my ($sock, $seconds) = @_;
    my ($buf, $sel) = ('', IO::Select->new($sock));
    my $deadline = Time::HiRes::time() + $seconds;
    while (Time::HiRes::time() < $deadline) {
        my $res = parse_http_response($buf);
        return $res->{status} if defined $res->{status} && !$res->{incomplete};
        next unless $sel->can_read(0.1);
        sysread($sock, $buf, 65536, length $buf) or last;
    }
    my $res = parse_http_response($buf);
    return $res->{status} // 'none';
}
sub signal_nginx {
    my ($ng, $signal) = @_;
    my @cmd = ($ENV{TEST_NGINX_BINARY} // 'nginx', '-p', $ng->servroot . '/', '-c', 'conf/nginx.conf', '-s', $signal);
    system("@cmd 2>/dev/null") == 0 or die "nginx -s $signal failed\n";
}
sub alive { Chatterd::NginxProcess::process_alive($_[0]) }

# Sends the in-flight set; returns the requests, each {sock, rest, kind}.
sub in_flight {
    my ($port) = @_;
    my @requests;
    for my $i (1 .. 4) {
        my $body = multipart_body('XyZ', [name => 'username', value => 'inflight'], [name => 'message', value => "upload $i"],
                                  image_part(media(jpeg => 400_000, $i)));
        my $raw = "POST /postimages HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
                . "Content-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: " . length($body) . "\r\n\r\n$body";
        my $sock = connect_raw($port);
        send_bytes($sock, substr($raw, 0, 200_000));
        push @requests, { sock => $sock, rest => substr($raw, 200_000), kind => 'upload' };
    }
    pause_pg();
    for my $i (1 .. 3) {
        for my $raw (build_request(GET => '/getimages'),
                     build_request(POST => '/postchatt', body => qq{{"username":"inflight","message":"chatt $i"}},
                                   headers => ['Content-Type' => 'application/json'])) {
            my $sock = connect_raw($port);
            send_bytes($sock, $raw);
            push @requests, { sock => $sock, rest => '', kind => $raw =~ /^GET/ ? 'getimages' : 'postchatt' };
        }
    }
    my $stalled = connect_raw($port);
    my $body = multipart_body('XyZ', [name => 'username', value => 'stalled'], [name => 'message', value => 'x'],
                              image_part(media(jpeg => 400_000, 9)));
    send_bytes($stalled, "POST /postimages HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
              . "Content-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: " . length($body) . "\r\n\r\n"
              . substr($body, 0, 100_000));
    push @requests, { sock => $stalled, rest => undef, kind => 'stalled' };
    Time::HiRes::sleep(0.5);
    return @requests;
}

sub finish_in_flight {
    my (@requests) = @_;
    resume_pg();
    send_bytes($_->{sock}, $_->{rest}) for grep { defined $_->{rest} && length $_->{rest} } @requests;
    my %got;
    for my $r (@requests) {
        push @{ $got{$r->{kind}} }, read_status($r->{sock}, 10);
        close $r->{sock};
    }
    return \%got;
}

subtest 'nginx -s reload with uploads and queries in flight' => sub {
    truncate_chatts();
    my $ng = start_nginx(%Nginx);
    is(http_get($ng->port, '/getimages')->{status}, 200, 'warm-up');
    my @old = $ng->worker_pids;
    $ng->mark_error_log;
    my @requests = in_flight($ng->port);
    signal_nginx($ng, 'reload');
    my $reloaded = Time::HiRes::time();
    my %old = map { $_ => 1 } @old;
    my @new;
    wait_until(sub {
        @new = grep { !$old{$_} && (do { open my $f, '<', "/proc/$_/cmdline"; <$f> // '' }) !~ /shutting down/ }
                    $ng->worker_pids;
        @new == 2;
    });
    is(scalar @new, 2, 'two new workers');
    is(http_get($ng->port, '/getchatts')->{status}, 404, 'the new workers answer (no getchatts location: 404)');
    my $got = finish_in_flight(@requests);
    is("@{$got->{upload}}", '200 200 200 200', 'the half-sent uploads complete on the old workers: 200');
    is("@{$got->{getimages}}", '200 200 200', 'the waiting getimages: 200');
    is("@{$got->{postchatt}}", '200 200 200', 'the waiting postchatts: 200');
    my $gone_at = wait_until(sub { !grep { alive($_) } @old }, 10) && Time::HiRes::time();
    ok($gone_at, 'the old workers exited' . ($gone_at ? sprintf(' %.1f s after the reload', $gone_at - $reloaded) : ''));
    like($got->{stalled}[0], qr/\A(?:408|none)\z/, "the stalled upload was cut ($got->{stalled}[0])");
    is(sql_value(q{SELECT count(*) FROM chatts WHERE username = 'inflight'}), 7, 'seven rows');
    is(sql_value(q{SELECT count(*) FROM chatts WHERE username = 'stalled'}), 0, 'none for the stalled upload');
    is(http_get($ng->port, '/getimages')->{status}, 200, 'the new workers serve');
    my @bad = grep { /exited on signal|\[alert\]|\[crit\]|\[emerg\]/ } $ng->error_log_since_mark;
    ok(!@bad, 'no worker exited on a signal, no alert') or diag(join "\n", @bad);
    check_media_consistency('reload');
    $ng->stop;
};

subtest 'nginx -s quit with uploads and queries in flight' => sub {
    truncate_chatts();
    my $ng = start_nginx(%Nginx);
    is(http_get($ng->port, '/getimages')->{status}, 200, 'warm-up');
    my $master = $ng->pid;
    my @workers = $ng->worker_pids;
    $ng->mark_error_log;
    my @requests = in_flight($ng->port);
    signal_nginx($ng, 'quit');
    ok(wait_until(sub { !IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $ng->port) }),
       'no new connection is accepted');
    my $got = finish_in_flight(@requests);
    is("@{$got->{upload}}", '200 200 200 200', 'the half-sent uploads complete: 200');
    is("@{$got->{getimages}}", '200 200 200', 'the waiting getimages: 200');
    is("@{$got->{postchatt}}", '200 200 200', 'the waiting postchatts: 200');
    ok(wait_until(sub { !grep { alive($_) } $master, @workers }, 10), 'nginx exited');
    is(sql_value(q{SELECT count(*) FROM chatts WHERE username = 'inflight'}), 7, 'seven rows');
    my @bad = grep { /exited on signal|\[alert\]|\[crit\]|\[emerg\]/ } $ng->error_log_since_mark;
    ok(!@bad, 'no worker exited on a signal, no alert') or diag(join "\n", @bad);
    check_media_consistency('quit');
};

truncate_chatts();
done_testing();
