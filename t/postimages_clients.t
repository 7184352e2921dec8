# POST /postimages with real clients and real sockets (scenario test):
#   - curl -F over HTTP/1.1, and with a 2 MiB file (curl sends "Expect: 100-continue" and
#     waits for nginx's "100 Continue");
#   - curl --http2 over TLS (listen ... ssl http2, a self-signed certificate generated with
#     openssl in the setup): image + video, the URL takes https and the :authority, an
#     exactly 10 MiB image is stored and 10485761 bytes get 413;
#   - getimages read back over HTTP/2: a many-row answer (several 64 KiB answer blocks,
#     which the worker keeps and reuses), four fetches at once, twice: the same bytes as over
#     HTTP/1.1 every time;
#   - a raw socket that sends "Expect: 100-continue", waits for "100 Continue", then sends
#     the body;
#   - a media part crossing 10 MiB is answered 413 while the client still has megabytes to
#     send (the limit is checked as bytes arrive);
#   - clients that disconnect half-way (FIN or RST, Content-Length or chunked): no row, no
#     file, and the worker holds no file of the media root afterwards; likewise a
#     client that stalls until client_body_timeout (Content-Length, chunked, or no body byte
#     at all), which the error log reports at info level;
#   - keep-alive: forms one after the other on one connection (as OkHttp and URLSession
#     reuse connections); a form refused half-way (415, 413, 422) is answered with
#     "Connection: close" while the client is still sending, and never lets its body be read
#     as requests;
#   - 40 slow uploads at once, each with its image received and its video half-way: the
#     worker holds their sockets and files and one descriptor of the media root, not one
#     more per media part;
#   - the media root vanishing under a running server, before or after its first upload:
#     500 with a JSON string, no row; a new directory at that path is used at once.
# Every scenario starts with an empty chatts table and media root and ends with
# check_media_consistency().
use strict; use warnings;
use FindBin; BEGIN { push @INC, "$FindBin::Bin/lib" }
use Test::More;
use Chatterd::Nginx qw(start_nginx);
use Chatterd::NginxProcess ();
use Chatterd::Wait qw(wait_until);
use Chatterd::Workers qw(pid_fds open_in);
use Chatterd::Http qw(http_request multipart_body parse_http_response);
use Chatterd::Db qw(sql sql_value truncate_chatts media_root check_media_consistency);
use Chatterd::Upload qw(media image_part video_part same_bytes check_stored check_nothing_stored);
use File::Spec;
use File::Temp qw(tempdir);
use IO::Select;
use IO::Socket::INET;
use Socket qw(SOL_SOCKET SO_LINGER);
use Time::HiRes ();

plan skip_all => 'TEST_NGINX_PSQL is not set (run through make test)' unless $ENV{TEST_NGINX_PSQL};
$ENV{TEST_NGINX_PG_CONNINFO} //= 'host=/var/run/postgresql dbname=chatterdb user=chatter';

use constant MiB => 1024 * 1024;
my $Root = media_root();

# media('jpeg', $size, $seed): exactly $size bytes of jpeg, mp4 or mov (Chatterd::Upload).

#---------------------------------------------------------------------------
# The server: plain HTTP on the launcher's port, HTTP/2 over TLS on a second one
#---------------------------------------------------------------------------

my $servroot = Chatterd::NginxProcess::absolute_path(
    ($ENV{TEST_NGINX_SERVROOT} || 't/servroot') . '_postimages_clients');
my $certs = tempdir(CLEANUP => 1);
system("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost"
       . " -keyout $certs/server.key -out $certs/server.crt >$certs/openssl.log 2>&1") == 0
    or die "openssl could not make a self-signed certificate:\n" . slurp("$certs/openssl.log");
$ENV{TEST_NGINX_TLS_PORT} = Chatterd::NginxProcess::free_port();
$ENV{TEST_NGINX_TLS_DIR}  = "$servroot/html";

my $Config = <<'EOF';
listen 127.0.0.1:$TEST_NGINX_TLS_PORT ssl http2;
ssl_certificate     $TEST_NGINX_TLS_DIR/server.crt;
ssl_certificate_key $TEST_NGINX_TLS_DIR/server.key;

location ~ ^/postimages/?$ {
    chatterd postimages;
    chatterd_media_max_size 10m;
    client_max_body_size 21m;
}
location ~ ^/getimages/?$ {
    chatterd getimages;
}
location = /slow/postimages {
    chatterd postimages;
    client_body_timeout 1s;
}
location /media/ {
    alias $TEST_NGINX_MEDIA_ROOT/;
    types { image/jpeg jpeg; video/mp4 mp4; video/quicktime mov; }
    default_type application/octet-stream;
}
EOF

my $ng = start_nginx(
    servroot      => $servroot,
    root_location => 0,    # html/ holds the private key
    media_root    => $Root,
    config        => $Config,
    user_files    => { 'server.crt' => slurp("$certs/server.crt"), 'server.key' => slurp("$certs/server.key") },
);
my $port = $ng->port;
my $tls  = $ENV{TEST_NGINX_TLS_PORT};
my $work = tempdir(CLEANUP => 1);    # files curl uploads, bodies it downloads

#---------------------------------------------------------------------------
# Helpers
#---------------------------------------------------------------------------

sub slurp {
    my ($path) = @_;
    open my $fh, '<:raw', $path or die "$path: $!";
    local $/;
    return scalar <$fh>;
}

sub spew {
    my ($path, $bytes) = @_;
    open my $fh, '>:raw', $path or die "$path: $!";
    print {$fh} $bytes;
    close $fh or die "$path: $!";
    return $path;
}

# Starts curl with its response body going to the file $out; curl_result waits for it and
# returns (exit status, "<http_code> <http_version>", response body).
sub start_curl {
    my ($out, @args) = @_;
    unlink $out;
    open my $fh, '-|', 'curl', '-sS', '--max-time', '60', '-o', $out,
         '-w', '%{http_code} %{http_version}', @args
        or die "curl: $!";
    return [$fh, $out];
}

sub curl_result {
    my ($fh, $out) = @{ $_[0] };
    my $written = do { local $/; <$fh> } // '';
    close $fh;
    return ($? >> 8, $written, -e $out ? slurp($out) : undef);
}

# Runs curl to the end: (exit status, "<http_code> <http_version>", response body).
sub curl { return curl_result(start_curl("$work/curl.out", @_)) }

# The one stored row must hold the posted fields, and its URLs name files in the media
# root, served over /media/ byte for byte with the right type (Chatterd::Upload::check_stored):
#   check_row($label, username => ..., message => ..., base => 'http://...',
#             image => [bytes, ext, mime], video => [...], prefix => ...)
# check_nothing_stored($label): no row, no file in the media root (Chatterd::Upload).
sub check_row {
    my ($label, %e) = @_;
    check_stored($label, \%e, port => $port, timeout => 30);
}

sub sql_count { return sql_value('SELECT count(*) FROM chatts') }

# Descriptors the nginx worker has open on the media root or on files in it (Chatterd::Workers).
sub media_fds { open_in($ng, $Root) }

# The files (not the directory) the worker has open in the media root: an upload in progress.
sub upload_files_open { return grep { $_ ne $Root } media_fds() }

# No upload in progress, and the directory itself held once at most (each worker keeps one
# descriptor of it, opened at its first upload).
sub media_root_settled {
    my @fds = media_fds();
    return !grep({ $_ ne $Root } @fds) && grep({ $_ eq $Root } @fds) <= 1;
}

# The descriptors the worker holds, all kinds.
sub worker_fd_count { pid_fds(($ng->worker_pids)[0]) // 0 }

# A raw connection for scenarios that need to stop half-way.
sub connect_raw {
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp')
        or die "connect: $!";
    binmode $sock;
    return $sock;
}

# Sends all of $bytes (blocking, but never longer than $seconds); false when the peer
# stopped reading or closed.
sub send_all {
    my ($sock, $bytes, $seconds) = @_;
    local $SIG{PIPE} = 'IGNORE';
    my $deadline = Time::HiRes::time() + ($seconds // 30);
    my $sel = IO::Select->new($sock);
    my $off = 0;
    while ($off < length $bytes) {
        return 0 if Time::HiRes::time() > $deadline;
        next unless $sel->can_write(0.5);
        my $n = syswrite $sock, $bytes, 256 * 1024, $off;
        return 0 unless defined $n;
        $off += $n;
    }
    return 1;
}

# Reads until $buf holds a complete response (1xx skipped unless $interim) or $seconds
# pass; returns the parsed response (Chatterd::Http::parse_http_response) or undef.
sub read_response {
    my ($sock, $seconds, %opt) = @_;
    my $deadline = Time::HiRes::time() + $seconds;
    my $sel = IO::Select->new($sock);
    my $buf = '';
    while (Time::HiRes::time() < $deadline) {
        if ($opt{interim} && $buf =~ /\AHTTP\/1\.1 1\d\d [^\r\n]*\r\n(?:[^\r\n]+\r\n)*\r\n/) {
            return parse_interim($buf);
        }
        my $res = parse_http_response($buf);
        return $res if defined $res->{status} && !$res->{incomplete};
        next unless $sel->can_read(0.1);
        my $n = sysread $sock, $buf, 65536, length $buf;
        last unless $n;    # EOF or error: what came is what there is
    }
    my $res = parse_http_response($buf);
    return defined $res->{status} ? $res : undef;
}

sub parse_interim {
    my ($buf) = @_;
    my ($status) = $buf =~ /\AHTTP\/1\.1 (\d{3})/;
    return { status => $status, raw => $buf };
}

sub post_head {
    my ($length, @extra) = @_;
    return "POST /postimages HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
         . "Content-Type: multipart/form-data; boundary=XyZ\r\n"
         . (defined $length ? "Content-Length: $length\r\n" : "Transfer-Encoding: chunked\r\n")
         . join('', map { "$_\r\n" } @extra) . "\r\n";
}

sub form {
    my ($username, $message, @media) = @_;
    return multipart_body('XyZ', [name => 'username', value => $username],
                          [name => 'message', value => $message], @media);
}

#---------------------------------------------------------------------------
# curl
#---------------------------------------------------------------------------

subtest 'curl -F over HTTP/1.1' => sub {
    truncate_chatts();
    my $image = media(jpeg => 40_000, 31);
    my $video = media(mp4 => 60_000, 32);
    my ($rc, $w, $body) = curl("http://127.0.0.1:$port/postimages",
        '-F', 'username=curl user', '-F', 'message=sent by curl -F',
        '-F', 'image=@' . spew("$work/i.jpeg", $image) . ';filename=chattImage;type=image/jpeg',
        '-F', 'video=@' . spew("$work/v.mp4", $video) . ';filename=chattVideo;type=video/mp4');
    is($rc, 0, 'curl succeeded');
    is($w, '200 1.1', '200 over HTTP/1.1');
    is($body, '{}', 'body {}');
    check_row('curl -F', username => 'curl user', message => 'sent by curl -F', prefix => 'curl_user',
              base => "http://127.0.0.1:$port/media/",
              image => [$image, 'jpeg', 'image/jpeg'], video => [$video, 'mp4', 'video/mp4']);
    check_media_consistency('curl -F');
};

subtest 'curl -F with a 2 MiB file: Expect: 100-continue' => sub {
    truncate_chatts();
    my $video = media(mov => 2 * MiB, 33);
    my $trace = "$work/trace.txt";
    my ($rc, $w, $body) = curl("http://127.0.0.1:$port/postimages/", '--trace-ascii', $trace,
        '-F', 'username=expect', '-F', 'message=100-continue',
        '-F', 'video=@' . spew("$work/v.mov", $video) . ';filename=chattVideo;type=video/mp4');
    is($rc, 0, 'curl succeeded');
    is($w, '200 1.1', 'status 200 over HTTP/1.1');
    is($body, '{}', 'body {}');
    my $t = slurp($trace);
    like($t, qr/Expect: 100-continue/, 'curl sent Expect: 100-continue by itself');
    like($t, qr/HTTP\/1\.1 100 Continue/, 'nginx answered 100 Continue');
    check_row('Expect', username => 'expect', message => '100-continue', prefix => 'expect',
              base => "http://127.0.0.1:$port/media/", video => [$video, 'mov', 'video/quicktime']);
    check_media_consistency('Expect');
};

subtest 'curl --http2 over TLS' => sub {
    truncate_chatts();
    my $image = media(jpeg => 300_000, 34);
    my $video = media(mov => 700_000, 35);
    my ($rc, $w, $body) = curl('--http2', '-k', "https://127.0.0.1:$tls/postimages",
        '-F', 'username=h2', '-F', 'message=over HTTP/2',
        '-F', 'video=@' . spew("$work/v2.mov", $video) . ';filename=chattVideo;type=video/mp4',
        '-F', 'image=@' . spew("$work/i2.jpeg", $image) . ';filename=chattImage;type=image/jpeg');
    is($rc, 0, 'curl succeeded');
    is($w, '200 2', '200 over HTTP/2');
    is($body, '{}', 'body {}');
    check_row('HTTP/2', username => 'h2', message => 'over HTTP/2', prefix => 'h2',
              base => "https://127.0.0.1:$tls/media/",
              image => [$image, 'jpeg', 'image/jpeg'], video => [$video, 'mov', 'video/quicktime']);
    # And back over HTTP/2, as the apps load it.
    my ($videourl) = map { $_->[0] } sql('SELECT videourl FROM chatts');
    my $headers = "$work/h2.headers";
    ($rc, $w, $body) = curl('--http2', '-k', '-D', $headers, $videourl // 'https://127.0.0.1:1/none');
    is($w, '200 2', 'video fetched over HTTP/2');
    like(slurp($headers), qr/^content-type: video\/quicktime\r$/mi, 'served as video/quicktime');
    same_bytes($body, $video, 'video fetched over HTTP/2 byte for byte');
    check_media_consistency('HTTP/2');
};

subtest 'getimages over HTTP/2: many rows, four fetches at once, twice, the bytes of HTTP/1.1' => sub {
    truncate_chatts();
    sql(q{INSERT INTO chatts (username, message, time, imageurl)
          SELECT 'reader' || i, repeat('m', 200) || i, timestamp '2025-01-01' + i * interval '1 second',
                 'https://127.0.0.1/media/reader' || i || '.jpeg'
          FROM generate_series(1, 3000) AS i});
    my ($rc, $w, $h1) = curl("http://127.0.0.1:$port/getimages");
    is($w, '200 1.1', 'getimages over HTTP/1.1');
    cmp_ok(length($h1 // ''), '>', 10 * 64 * 1024, 'the answer spans more than ten 64 KiB blocks');
    for my $round (1, 2) {
        # Four curl processes at once, read after all have started.
        my @fetches = map {
            start_curl("$work/h2-$round-$_.json", '--http2', '-k', "https://127.0.0.1:$tls/getimages");
        } 1 .. 4;
        for my $fetch (@fetches) {
            my ($rc, $w, $body) = curl_result($fetch);
            is($w, '200 2', "round $round: 200 over HTTP/2");
            same_bytes($body // '', $h1, "round $round: the bytes of the HTTP/1.1 answer");
        }
    }
    truncate_chatts();
};

subtest 'curl --http2: exactly 10 MiB stored, 10485761 bytes refused with 413' => sub {
    truncate_chatts();
    my $image = media(jpeg => 10 * MiB, 36);
    my ($rc, $w, $body) = curl('--http2', '-k', "https://127.0.0.1:$tls/postimages",
        '-F', 'username=big', '-F', 'message=10 MiB over h2',
        '-F', 'image=@' . spew("$work/big.jpeg", $image) . ';filename=chattImage;type=image/jpeg');
    is($w, '200 2', '10 MiB: 200 over HTTP/2');
    check_row('h2 10 MiB', username => 'big', message => '10 MiB over h2', prefix => 'big',
              base => "https://127.0.0.1:$tls/media/", image => [$image, 'jpeg', 'image/jpeg']);
    check_media_consistency('h2 10 MiB');

    truncate_chatts();
    $ng->mark_error_log;
    ($rc, $w, $body) = curl('--http2', '-k', "https://127.0.0.1:$tls/postimages",
        '-F', 'username=big', '-F', 'message=one byte more',
        '-F', 'image=@' . spew("$work/big1.jpeg", media(jpeg => 10 * MiB + 1, 37)) . ';filename=chattImage;type=image/jpeg');
    is($w, '413 2', '10485761 bytes: 413 over HTTP/2');
    is($body, '"Payload too large"', 'body "Payload too large"');
    ok($ng->wait_for_error_log('media part "image" exceeds chatterd_media_max_size 10485760'), 'logged');
    check_nothing_stored('h2 10485761');
    check_media_consistency('h2 10485761');
};

#---------------------------------------------------------------------------
# Raw sockets
#---------------------------------------------------------------------------

subtest 'Expect: 100-continue: the client waits for 100 Continue before sending the body' => sub {
    truncate_chatts();
    my $image = media(jpeg => 500_000, 38);
    my $body = form('patient', 'waited', image_part($image));
    my $sock = connect_raw();
    ok(send_all($sock, post_head(length $body, 'Expect: 100-continue')), 'head sent');
    my $interim = read_response($sock, 5, interim => 1);
    is($interim && $interim->{status}, 100, '100 Continue before any body byte was sent');
    ok(send_all($sock, $body), 'body sent after 100 Continue');
    my $res = read_response($sock, 10);
    is($res && $res->{status}, 200, 'status 200');
    is($res && $res->{body}, '{}', 'body {}');
    close $sock;
    check_row('Expect raw', username => 'patient', message => 'waited', prefix => 'patient',
              base => 'http://localhost/media/', image => [$image, 'jpeg', 'image/jpeg']);
    check_media_consistency('Expect raw');
};

subtest 'a media part crossing 10 MiB is answered 413 before the client has sent the whole body' => sub {
    truncate_chatts();
    $ng->mark_error_log;
    my $body = form('eager', 'too big', image_part(media(jpeg => 15 * MiB, 39)));
    my $sent = 10 * MiB + 256 * 1024;    # well past the limit, ~5 MiB short of the end
    my $sock = connect_raw();
    ok(send_all($sock, post_head(length $body) . substr($body, 0, $sent)), 'head and the first 10.25 MiB sent');
    my $res = read_response($sock, 10);
    is($res && $res->{status}, 413, '413 while ' . (length($body) - $sent) . ' bytes are still unsent');
    is($res && $res->{body}, '"Payload too large"', 'body "Payload too large"');
    close $sock;
    ok($ng->wait_for_error_log('media part "image" exceeds chatterd_media_max_size 10485760'), 'logged');
    ok(wait_until(\&media_root_settled, 5), 'the worker holds no file of the media root, only the directory')
        or diag(join "\n", media_fds());
    check_nothing_stored('early 413');
    check_media_consistency('early 413');
};

# Sends the head and the first $cut bytes of $body, waits until the upload is on disk
# (the worker holds an O_TMPFILE file in the media root), then disconnects (FIN, or RST
# with $reset) and checks that nothing stays.
sub disconnect_half_way {
    my ($label, %o) = @_;
    subtest $label => sub {
        truncate_chatts();
        $ng->mark_error_log;
        my $pid_before = join ',', $ng->worker_pids;
        my $sock = connect_raw();
        ok(send_all($sock, $o{head} . substr($o{body}, 0, $o{cut})), "head and $o{cut} body bytes sent");
        ok(wait_until(sub { upload_files_open() }, 5),
           'the upload is being received into a file in the media root');
        if ($o{reset}) {
            setsockopt($sock, SOL_SOCKET, SO_LINGER, pack('ii', 1, 0)) or die "SO_LINGER: $!";
        }
        close $sock;
        ok($ng->wait_for_error_log($o{log}, timeout => 10), "nginx noticed: $o{log}");
        ok(wait_until(\&media_root_settled, 5), 'the worker holds no file of the media root, only the directory')
            or diag(join "\n", media_fds());
        check_nothing_stored($label);
        is(join(',', $ng->worker_pids), $pid_before, 'the worker is still the same process');
        unlike(scalar $ng->error_log_since_mark, qr/\[(?:alert|crit|emerg)\]/, 'no alert in the error log');
        check_media_consistency($label);
    };
}

{
    my $body = form('quitter', 'gone', image_part(media(jpeg => 2 * MiB, 40)));
    disconnect_half_way('client closes half-way through the image (Content-Length)',
        head => post_head(length $body), body => $body, cut => 700_000,
        log => 'client prematurely closed connection');
    disconnect_half_way('client resets half-way through the image (Content-Length)',
        head => post_head(length $body), body => $body, cut => 700_000, reset => 1,
        log => qr/Connection reset by peer|client prematurely closed connection/);
}
{
    # A chunked body: a complete image part, then half of a video part.
    my $form = form('quitter', 'gone', image_part(media(jpeg => 100_000, 41)), video_part(media(mp4 => 2 * MiB, 42)));
    my $chunked = '';
    for (my $at = 0; $at < length $form; $at += 50_000) {
        my $chunk = substr $form, $at, 50_000;
        $chunked .= sprintf("%x\r\n", length $chunk) . $chunk . "\r\n";
    }
    disconnect_half_way('client closes half-way through the video (chunked)',
        head => post_head(undef), body => "${chunked}0\r\n\r\n", cut => 1_000_000,
        log => 'client prematurely closed connection');
}

# Sends the head and the first $o{cut} bytes of $o{body} to /slow/postimages (client_body_timeout
# 1s), then nothing: nginx must close the connection, log why, and leave nothing behind.
sub stall_half_way {
    my ($label, %o) = @_;
    subtest $label => sub {
        truncate_chatts();
        $ng->mark_error_log;
        my $access_408 = sub {
            my $log = slurp("$servroot/logs/access.log");
            return scalar(() = $log =~ m{"POST /slow/postimages HTTP/1\.1" 408 }g);
        };
        my $timeouts_before = $access_408->();
        my $sock = connect_raw();
        ok(send_all($sock, ($o{head} =~ s{/postimages}{/slow/postimages}r) . substr($o{body}, 0, $o{cut})),
           "head and $o{cut} body bytes sent, then nothing");
        if ($o{cut}) {
            ok(wait_until(sub { upload_files_open() }, 5), 'the upload is being received');
        }
        my $closed = wait_until(sub {
            IO::Select->new($sock)->can_read(0) or return 0;
            return !sysread($sock, my $buf, 65536);
        }, 10);
        ok($closed, 'nginx closed the connection after client_body_timeout 1s');
        ok(wait_until(sub { $access_408->() > $timeouts_before }, 5), 'the access log says 408');
        like($ng->wait_for_error_log('no body data within client_body_timeout', timeout => 5) // '',
             qr/\[info\] .*chatterd: postimages: no body data within client_body_timeout/,
             'the error log says why, at info level');
        ok(wait_until(\&media_root_settled, 5), 'the worker holds no file of the media root, only the directory')
            or diag(join "\n", media_fds());
        check_nothing_stored($label);
        unlike(scalar $ng->error_log_since_mark, qr/\[(?:alert|crit|emerg)\]/, 'no alert in the error log');
        close $sock;
        check_media_consistency($label);
    };
}

{
    my $body = form('slow', 'stalls', image_part(media(jpeg => 1 * MiB, 46)));
    stall_half_way('a client that stalls half-way: client_body_timeout ends it, nothing stays',
        head => post_head(length $body), body => $body, cut => 400_000);
    my $chunked = join('', map { sprintf("%x\r\n%s\r\n", length $_, $_) } unpack('(a65536)*', $body)) . "0\r\n\r\n";
    stall_half_way('a chunked body that stalls in the middle of a chunk',
        head => post_head(undef), body => $chunked, cut => 300_000);
    stall_half_way('a client that sends the head and no body byte',
        head => post_head(length $body), body => $body, cut => 0);
}

subtest '40 slow uploads at once: a file each, one descriptor of the media root for all' => sub {
    use constant SLOW => 40;
    truncate_chatts();
    $ng->mark_error_log;
    # The worker's first upload opens its descriptor of the media root (if no earlier one did).
    my $warm = form('warm', 'up', image_part(media(jpeg => 3000, 48)));
    is(http_request($port, post_head(length $warm) . $warm)->{status}, 200, 'a first upload: 200');
    my $base = worker_fd_count();
    my @conns = map {
        my $body = form('slow', "upload $_", image_part(media(jpeg => 20_000, 100 + $_)),
                        video_part(media(mp4 => 400_000, 200 + $_)));
        my $cut = index($body, 'name="video"') + 200_000;    # the image whole, the video half-way
        { sock => connect_raw(), out => post_head(length $body) . $body, cut => $cut + length post_head(length $body) };
    } 1 .. SLOW;
    for my $c (@conns) {
        ok(send_all($c->{sock}, substr($c->{out}, 0, $c->{cut}), 10), 'head, image and half the video sent') or last;
    }
    ok(wait_until(sub { upload_files_open() == 2 * SLOW }, 10), 'the worker holds an image and a video file for each')
        or diag(scalar upload_files_open());
    my $held = worker_fd_count() - $base;
    my $root_fds = grep { $_ eq $Root } media_fds();
    is($root_fds, 1, 'and one descriptor of the media root');
    # Each upload: its socket, its image and its video file. One more per media part (the
    # directory opened again for each) would be 5 per upload.
    cmp_ok($held, '<=', 3 * SLOW + 2, "the worker holds $held more descriptors for " . SLOW . ' uploads: 3 each');
    for my $c (@conns) {
        ok(send_all($c->{sock}, substr($c->{out}, $c->{cut}), 10), 'the rest sent') or last;
    }
    my @statuses = map { my $res = read_response($_->{sock}, 30); close $_->{sock}; $res ? $res->{status} : 'none' } @conns;
    is("@statuses", join(' ', (200) x SLOW), 'every upload answered 200');
    is(sql_count(), SLOW + 1, 'one row each');
    ok(wait_until(sub { worker_fd_count() <= $base }, 5), 'the descriptors are back where they were')
        or diag(worker_fd_count() . " held, $base before");
    ok(media_root_settled(), 'no media file held');
    unlike(scalar $ng->error_log_since_mark, qr/\[(?:error|alert|crit|emerg)\]/, 'nothing went wrong in the error log');
    check_media_consistency('slow uploads');
};

#---------------------------------------------------------------------------
# Several requests on one connection (OkHttp and URLSession reuse connections)
#---------------------------------------------------------------------------

# The responses in a byte stream, in order, by their Content-Length.
sub responses {
    my ($raw) = @_;
    my @responses;
    while ($raw =~ s/\AHTTP\/1\.1 (\d{3})[^\r\n]*\r\n((?:[^\r\n]+\r\n)*)\r\n//) {
        my ($status, $headers) = ($1, $2);
        my ($length) = $headers =~ /^Content-Length:\s*(\d+)\r$/mi;
        push @responses, { status => $status, body => substr($raw, 0, $length // 0, '') };
    }
    return @responses;
}

subtest 'keep-alive: two forms on one connection, a form refused after its whole body, another form' => sub {
    truncate_chatts();
    my $image = media(jpeg => 200_000, 44);
    my $first = form('reuse', 'first', image_part($image));
    my $second = form('reuse', 'second');
    my $refused = multipart_body('XyZ', [name => 'username', value => 'no message']);    # 422 at its end
    my $last = form('reuse', 'last');
    my $keep_alive = sub { (post_head(length $_[0]) =~ s/Connection: close\r\n//r) . $_[0] };
    my $res = http_request($port, join '', map({ $keep_alive->($_) } $first, $second, $refused, $last),
        "GET /media/nothing-here HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    is(join(' ', map { $_->{status} } responses($res->{raw})), '200 200 422 200 404', 'five answers, in order');
    is_deeply([map { $_->[0] } sql('SELECT message FROM chatts ORDER BY time')], [qw(first second last)],
              'three rows, in order');
    check_media_consistency('keep-alive');
};

subtest 'a form refused before its body ended is answered with Connection: close' => sub {
    truncate_chatts();
    $ng->mark_error_log;
    my $big_form = form('s', 't', image_part(media(jpeg => 15 * MiB, 47)));
    my $text_form = form('s', 't', image_part("<html>not an image</html>\n" x 80_000));    # ~2 MiB
    my $malformed = "--XyZ junk\r\n" . ('x' x (1 * MiB)) . "\r\n--XyZ--\r\n";
    my $chunked_text = join('', map { sprintf("%x\r\n%s\r\n", length $_, $_) } unpack('(a8192)*', $text_form))
                     . "0\r\n\r\n";
    # [label, status, answer body, head (keep-alive: no Connection header), body, bytes sent]
    for my $case (['415 (text in the image part)', 415, '"Unsupported media type"',
                   post_head(length $text_form), $text_form, 256 * 1024],
                  ['415, chunked', 415, '"Unsupported media type"',
                   post_head(undef), $chunked_text, 256 * 1024],
                  ['413 (image over chatterd_media_max_size)', 413, '"Payload too large"',
                   post_head(length $big_form), $big_form, 10 * MiB + 256 * 1024],
                  ['422 (malformed form, 1 MiB after the error)', 422, '"Unprocessable entity"',
                   post_head(length $malformed), $malformed, 64 * 1024]) {
        my ($label, $status, $answer, $head, $body, $sent) = @$case;
        $head =~ s/Connection: close\r\n// or die "post_head changed\n";
        my $sock = connect_raw();
        ok(send_all($sock, $head . substr($body, 0, $sent)),
           "$label: head and $sent of " . length($body) . ' body bytes sent');
        my $res = read_response($sock, 10);
        is($res && $res->{status}, $status, "$label: $status while the client is still sending");
        is($res && $res->{body}, $answer, "$label: body $answer");
        is($res && lc($res->{headers}{connection} // ''), 'close',
           "$label: Connection: close (the connection will not be reused)")
            or diag($res ? $res->{head} : 'no answer');
        close $sock;
    }
    ok(wait_until(\&media_root_settled, 5), 'the worker holds no file of the media root, only the directory')
        or diag(join "\n", media_fds());
    check_nothing_stored('refused early');
    check_media_consistency('refused early');
};

subtest 'a form refused half-way: what follows in its body is never taken for a request' => sub {
    truncate_chatts();
    $ng->mark_error_log;
    my $smuggled = "GET /postimages HTTP/1.1\r\nHost: localhost\r\n\r\n" x 20_000;    # ~900 KB
    for my $case (['415, Content-Length', 'not an image ' . $smuggled, 0],
                  ['413, Content-Length', media(jpeg => 10 * MiB + 1, 45) . $smuggled, 0],
                  ['415, chunked', 'not an image ' . $smuggled, 1]) {
        my ($label, $content, $chunked) = @$case;
        my $body = form('s', 't', image_part($content));
        if ($chunked) {
            $body = join('', map { sprintf("%x\r\n%s\r\n", length $_, $_) } unpack('(a8192)*', $body)) . "0\r\n\r\n";
        }
        my $head = post_head($chunked ? undef : length $body) =~ s/Connection: close\r\n//r;
        my $res = http_request($port, $head . $body . $smuggled, timeout => 15);
        my @statuses = map { $_->{status} } responses($res->{raw});
        is("@statuses", $label =~ /^(\d+)/ && $1, "$label: one answer only");
    }
    is(scalar(grep { /method GET not allowed/ } $ng->error_log_since_mark), 0, 'no smuggled GET reached chatterd');
    check_nothing_stored('smuggling');
    check_media_consistency('smuggling');
};

#---------------------------------------------------------------------------
# Any other failure
#---------------------------------------------------------------------------

subtest 'the media root disappears under a running server: 500, then it works again, also once it was used' => sub {
    my $root = tempdir(CLEANUP => 1);
    my $other = Chatterd::Nginx->start(
        servroot    => "${servroot}_gone",
        http_config => qq{chatterd_pg "\$TEST_NGINX_PG_CONNINFO";\n},
        config      => qq{location = /postimages { chatterd postimages; chatterd_media_root $root; }\n});
    truncate_chatts();
    my $body = form('x', 'y', image_part(media(jpeg => 5000, 43)));
    my $request = post_head(length $body) . $body;

    rmdir $root or die "rmdir $root: $!";
    $other->mark_error_log;
    my $res = http_request($other->port, $request);
    is($res->{status}, 500, 'status 500');
    like($res->{body}, qr/\A"[^"]+"\z/, 'the body is a JSON string: ' . ($res->{body} // ''));
    is($res->{headers}{'content-type'}, 'application/json', 'Content-Type: application/json');
    ok($other->wait_for_error_log(qr/\[error\].*chatterd: .*\Q$root\E/), 'the failure is logged with the path');
    is(sql_count(), 0, 'no row');

    mkdir $root or die "mkdir $root: $!";
    $res = http_request($other->port, $request);
    is($res->{status}, 200, 'the directory is back: 200');
    is(sql_count(), 1, 'one row');
    opendir my $dh, $root or die;
    is(scalar(grep { /\A[xX]-[0-9a-f]{32}\.jpeg\z/ } readdir $dh), 1, 'one file, named x-<hex>.jpeg');

    # Now that the worker holds the directory open, it is replaced by a new one.
    truncate_chatts();
    unlink glob("$root/*");
    rmdir $root or die "rmdir $root: $!";
    mkdir $root or die "mkdir $root: $!";
    $res = http_request($other->port, $request);
    is($res->{status}, 200, 'a new directory at that path after the first upload: 200');
    opendir $dh, $root or die;
    is(scalar(grep { /\A[xX]-[0-9a-f]{32}\.jpeg\z/ } readdir $dh), 1, 'its file is in the new directory');
    $other->stop;
    truncate_chatts();
};

$ng->stop;
done_testing();
