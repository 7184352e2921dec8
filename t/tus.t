# Resumable uploads (tus 1.0.0, `chatterd uploads`) with raw requests (and curl --http2): the
# protocol and every error it defines, the state on disk (<media root>/.uploads/<id> and
# <id>.info), a resume after a connection broken mid-PATCH (HTTP/1.1 and HTTP/2), two PATCHes at
# once (one node, and two nodes sharing the media root), expiry (answered 410, removed by worker
# 0, counted), the ids' format, partial uploads never served by a /media/ location (here one
# without nginx.conf.example's rule against dot paths) nor touched by the media sweep.
use strict; use warnings;
use FindBin; BEGIN { push @INC, "$FindBin::Bin/lib" }
use Test::More;
use Digest::SHA qw(sha1_base64 sha256_hex);
use File::Path ();
use File::Temp ();
use IO::Socket::INET;

use Chatterd::Db qw(media_root);
use Chatterd::Http qw(http_request build_request);
use Chatterd::Nginx;
use Chatterd::NginxProcess ();
use Chatterd::Upload qw(media filler);
use Chatterd::Wait qw(wait_until);
use Chatterd::Workers qw(open_in);

my $MEDIA = media_root();
my $UPLOADS = "$MEDIA/.uploads";
File::Path::remove_tree($UPLOADS);
use constant MAX => 1024 * 1024;

sub start {
    my (%opt) = @_;
    return Chatterd::Nginx->start(
        master      => 1,
        workers     => 2,
        log_level   => 'info',
        main_config => $> == 0 ? "user root root;\n" : undef,
        http_config => "chatterd_media_root $MEDIA;\nchatterd_media_max_size " . MAX . ";\n"
                     . "client_max_body_size 2m;\n" . ($opt{http} // ''),
        config      => ($opt{server} // '')
                     . "location /files/ { chatterd uploads; }\n"
                     . "location /media/ { alias $MEDIA/; }\n"
                     . "location = /status { chatterd_status; }\n");
}

my $ng = start();

# One request; Tus-Resumable: 1.0.0 unless headers say otherwise (undef: none).
sub tus {
    my ($method, $path, %opt) = @_;
    my @headers = @{ $opt{headers} // [] };
    my %given = map { lc($_) => 1 } @headers[grep { !($_ % 2) } 0 .. $#headers];
    unshift @headers, 'Tus-Resumable' => '1.0.0' unless exists $given{'tus-resumable'};
    my @pairs;
    for (my $i = 0; $i < @headers; $i += 2) {
        push @pairs, $headers[$i], $headers[$i + 1] if defined $headers[$i + 1];
    }
    return http_request($opt{port} // $ng->port,
                        build_request($method, $path, headers => \@pairs, body => $opt{body}));
}

sub create {
    my ($length, @headers) = @_;
    my $res = tus(POST => '/files/', headers => ['Upload-Length' => $length, @headers]);
    is($res->{status}, 201, "POST Upload-Length $length: 201") or diag($res->{raw});
    my ($id) = ($res->{headers}{location} // '') =~ m{\A/files/([0-9a-f]{32})\z};
    ok($id, "Location is the location's path and a 32-hex-digit id")
        or diag($res->{headers}{location});
    return $id // 'x' x 32;
}

sub patch {
    my ($id, $offset, $bytes, @headers) = @_;
    return tus(PATCH => "/files/$id", body => $bytes,
               headers => ['Content-Type' => 'application/offset+octet-stream',
                           'Upload-Offset' => $offset, @headers]);
}

sub offset_of {
    my ($id) = @_;
    my $res = tus(HEAD => "/files/$id");
    return $res->{status} == 200 ? $res->{headers}{'upload-offset'} : "status $res->{status}";
}

sub slurp { open(my $fh, '<:raw', $_[0]) or return undef; local $/; return scalar <$fh> }

sub counter {
    my ($event) = @_;
    my $page = http_request($ng->port, build_request(GET => '/status'))->{body} // '';
    return $page =~ /^chatterd_uploads_total\{event="$event"\} (\d+)$/m ? $1 : -1;
}

sub upload_bytes {
    my $page = http_request($ng->port, build_request(GET => '/status'))->{body} // '';
    return $page =~ /^chatterd_upload_bytes_total\{endpoint="uploads"\} (\d+)$/m ? $1 : -1;
}

# ---- discovery and version ---------------------------------------------------------------

{
    my $res = tus(OPTIONS => '/files/', headers => ['Tus-Resumable' => undef]);
    is($res->{status}, 204, 'OPTIONS: 204 (without Tus-Resumable)');
    is($res->{headers}{'tus-version'}, '1.0.0', 'Tus-Version');
    is($res->{headers}{'tus-resumable'}, '1.0.0', 'Tus-Resumable');
    is($res->{headers}{'tus-max-size'}, MAX, 'Tus-Max-Size is chatterd_media_max_size');
    is_deeply([sort split /,/, $res->{headers}{'tus-extension'} // ''],
              [sort qw(creation creation-with-upload termination expiration checksum)],
              'Tus-Extension');
    like($res->{headers}{'tus-checksum-algorithm'} // '', qr/(^|,)sha1(,|$)/,
         'Tus-Checksum-Algorithm has sha1');
}
for my $version (undef, '0.2.2', '1.0') {
    my $res = tus(POST => '/files/', headers => ['Tus-Resumable' => $version,
                                                  'Upload-Length' => 100]);
    is($res->{status}, 412, 'Tus-Resumable ' . ($version // 'missing') . ': 412');
    is($res->{headers}{'tus-version'}, '1.0.0', '... with Tus-Version');
    is($res->{headers}{'tus-resumable'}, '1.0.0', '... and Tus-Resumable');
}
ok(!-e $UPLOADS || !glob("$UPLOADS/*"), 'no upload created by the refused requests');

# ---- creation -------------------------------------------------------------------------------

for my $case (['no Upload-Length', [], 400],
              ['Upload-Length not a number', ['Upload-Length' => '12x'], 400],
              ['negative Upload-Length', ['Upload-Length' => '-1'], 400],
              ['Upload-Defer-Length', ['Upload-Defer-Length' => 1], 400],
              ['Upload-Length over Tus-Max-Size', ['Upload-Length' => MAX + 1], 413],
              ['malformed Upload-Metadata', ['Upload-Length' => 10, 'Upload-Metadata' => 'a b!'], 400],
              ['repeated metadata key', ['Upload-Length' => 10, 'Upload-Metadata' => 'a Zg==,a Zg=='], 400],
              ['body not offset+octet-stream', ['Upload-Length' => 10, 'Content-Type' => 'text/plain'], 415,
               'abcdefghij']) {
    my ($label, $headers, $status, $body) = @$case;
    my $res = tus(POST => '/files/', headers => $headers, body => $body);
    is($res->{status}, $status, "POST with $label: $status") or diag($res->{raw});
    is($res->{headers}{'tus-resumable'}, '1.0.0', '... with Tus-Resumable');
}
ok(!-e $UPLOADS || !glob("$UPLOADS/*"), 'no upload created by the refused creations');

my $JPEG = media('jpeg', 200_000, 7);
{
    my $started = counter('started');
    my $id = create(length $JPEG, 'Upload-Metadata' => 'filename Y2hhdHQuanBn,filetype aW1hZ2UvanBlZw==');
    my $other = create(10);
    isnt($id, $other, 'two uploads, two ids');
    is((stat $UPLOADS)[2] & 07777, 0700, '.uploads is mode 0700');
    is(-s "$UPLOADS/$id", 0, 'the data file is empty');
    like(slurp("$UPLOADS/$id.info") // '', qr/^length 200000$/m, 'the info file holds Upload-Length');
    is(counter('started'), $started + 2, 'the status page counts the uploads started');

    my $res = tus(HEAD => "/files/$id");
    is($res->{status}, 200, 'HEAD: 200');
    is($res->{headers}{'upload-offset'}, 0, 'Upload-Offset 0');
    is($res->{headers}{'upload-length'}, length $JPEG, 'Upload-Length');
    is($res->{headers}{'upload-metadata'}, 'filename Y2hhdHQuanBn,filetype aW1hZ2UvanBlZw==',
       'Upload-Metadata as created');
    is($res->{headers}{'cache-control'}, 'no-store', 'Cache-Control: no-store');
    like($res->{headers}{'upload-expires'} // '', qr/^\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT$/,
         'Upload-Expires is an HTTP date');
    is($res->{headers}{'tus-resumable'}, '1.0.0', 'Tus-Resumable');

    # ---- PATCH errors -----------------------------------------------------------------------
    $res = tus(PATCH => "/files/$id", body => 'x' x 10,
               headers => ['Content-Type' => 'application/octet-stream', 'Upload-Offset' => 0]);
    is($res->{status}, 415, 'PATCH with another Content-Type: 415');
    $res = tus(PATCH => "/files/$id", body => 'x' x 10,
               headers => ['Content-Type' => 'application/offset+octet-stream']);
    is($res->{status}, 400, 'PATCH without Upload-Offset: 400');
    $res = patch($id, 5, substr($JPEG, 0, 10));
    is($res->{status}, 409, 'PATCH at the wrong offset: 409');
    is($res->{headers}{'tus-resumable'}, '1.0.0', '... with Tus-Resumable');
    $res = patch($id, 0, substr($JPEG, 0, 1000), 'Upload-Checksum' => 'sha1 AAAA');
    is($res->{status}, 400, 'PATCH with a malformed Upload-Checksum: 400');
    $res = patch($id, 0, substr($JPEG, 0, 1000), 'Upload-Checksum' => 'crc32 AAAAAA==');
    is($res->{status}, 400, 'PATCH with an unsupported checksum algorithm: 400');
    $res = patch($other, 0, 'x' x 11);
    is($res->{status}, 413, 'PATCH beyond Upload-Length: 413');
    is(offset_of($id), 0, 'none of them moved the offset');
    is(-s "$UPLOADS/$id", 0, '... nor wrote a byte');

    # ---- PATCHes, checksums ------------------------------------------------------------------
    my $bytes = upload_bytes();
    $res = patch($id, 0, substr($JPEG, 0, 50_000));
    is($res->{status}, 204, 'PATCH: 204') or diag($res->{raw});
    is($res->{headers}{'upload-offset'}, 50_000, '... with the new Upload-Offset');
    like($res->{headers}{'upload-expires'} // '', qr/GMT$/, '... and Upload-Expires');
    is(offset_of($id), 50_000, 'HEAD says so');
    is(upload_bytes(), $bytes + 50_000, 'the status page counts the bytes received');

    my $chunk = substr($JPEG, 50_000, 50_000);
    $res = patch($id, 50_000, $chunk, 'Upload-Checksum' => 'sha1 ' . sha1_base64('other') . '=');
    is($res->{status}, 460, 'PATCH whose sha1 does not match: 460');
    is(offset_of($id), 50_000, '... its bytes are dropped');
    is(-s "$UPLOADS/$id", 50_000, '... from the data file too');
    $res = patch($id, 50_000, $chunk, 'Upload-Checksum' => 'sha1 ' . sha1_base64($chunk) . '=');
    is($res->{status}, 204, 'PATCH whose sha1 matches: 204');
    my $completed = counter('completed');
    $res = patch($id, 100_000, substr($JPEG, 100_000),
                 'Upload-Checksum' => 'sha256 ' . Digest::SHA::sha256_base64(substr($JPEG, 100_000)) . '=');
    is($res->{status}, 204, 'last PATCH, with sha256: 204');
    is($res->{headers}{'upload-offset'}, length $JPEG, 'the upload is complete');
    is(counter('completed'), $completed + 1, 'the status page counts it completed');
    is(sha256_hex(slurp("$UPLOADS/$id") // ''), sha256_hex($JPEG), 'the data file holds the bytes sent');
    is(patch($id, length $JPEG, 'x')->{status}, 413, 'a byte more: 413');

    # ---- never served by /media/ -------------------------------------------------------------
    for my $path ("/media/.uploads/$id", "/media/%2euploads/$id", "/media//.uploads/$id.info",
                  "/media/x/../.uploads/$id") {
        my $got = http_request($ng->port, build_request(GET => $path));
        is($got->{status}, 404, "GET $path: 404") or diag($got->{raw});
    }

    # ---- termination -------------------------------------------------------------------------
    my $terminated = counter('terminated');
    $res = tus(DELETE => "/files/$id");
    is($res->{status}, 204, 'DELETE: 204');
    is($res->{headers}{'tus-resumable'}, '1.0.0', '... with Tus-Resumable');
    ok(!-e "$UPLOADS/$id" && !-e "$UPLOADS/$id.info", '... both files are gone');
    is(counter('terminated'), $terminated + 1, '... counted');
    for my $method (qw(HEAD PATCH DELETE)) {
        $res = $method eq 'PATCH' ? patch($id, 0, 'x') : tus($method => "/files/$id");
        is($res->{status}, 404, "$method of a deleted upload: 404");
    }
    tus(DELETE => "/files/$other");
}

# ---- unknown ids, the id format ---------------------------------------------------------------

for my $path ('/files/' . ('0' x 32), '/files/' . ('A' x 32), '/files/abc', '/files/../files/x',
              '/files/' . ('0' x 31)) {
    is(tus(HEAD => $path)->{status}, 404, "HEAD $path: 404");
}
{
    my %seen;
    for (1 .. 20) {
        my $res = tus(POST => '/files/', headers => ['Upload-Length' => 10]);
        my ($id) = ($res->{headers}{location} // '') =~ m{/([0-9a-f]{32})\z};
        $seen{$id // ''}++;
        tus(DELETE => "/files/$id") if $id;
    }
    is(scalar(grep { length == 32 } keys %seen), 20, '20 uploads, 20 distinct 128-bit ids');
}

# ---- creation with upload, sniffing --------------------------------------------------------

{
    my $mp4 = media('mp4', 30_000, 3);
    my $res = tus(POST => '/files/', body => substr($mp4, 0, 10_000),
                  headers => ['Upload-Length' => length $mp4,
                              'Content-Type' => 'application/offset+octet-stream']);
    is($res->{status}, 201, 'creation-with-upload: 201');
    is($res->{headers}{'upload-offset'}, 10_000, '... with Upload-Offset');
    my ($id) = ($res->{headers}{location} // '') =~ m{/([0-9a-f]{32})\z};
    is(offset_of($id), 10_000, 'HEAD says so');
    is(patch($id, 10_000, substr($mp4, 10_000))->{status}, 204, 'the rest');
    is(sha256_hex(slurp("$UPLOADS/$id") // ''), sha256_hex($mp4), 'the data file holds the video');
    tus(DELETE => "/files/$id");

    my $text = filler(5_000, 9);
    $id = create(length $text);
    $res = patch($id, 0, $text);
    is($res->{status}, 415, 'first bytes that are no image or video: 415');
    ok(!-e "$UPLOADS/$id" && !-e "$UPLOADS/$id.info", '... and the upload is removed');
    is(offset_of($id), 'status 404', '... HEAD: 404');

    # The first bytes judged across PATCHes.
    $id = create(length $JPEG);
    is(patch($id, 0, substr($JPEG, 0, 10))->{status}, 204, '10 bytes: not judged yet');
    is(patch($id, 10, substr($JPEG, 10, 1000))->{status}, 204, 'the rest of a JPEG head: accepted');
    tus(DELETE => "/files/$id");
    $id = create(2000);
    is(patch($id, 0, substr($JPEG, 0, 10))->{status}, 204, '10 bytes of JPEG magic');
    is(patch($id, 10, 'x' x 1000)->{status}, 204, 'then not a JPEG head: still a JPEG by its magic');
    tus(DELETE => "/files/$id");
    $id = create(2000);
    is(patch($id, 0, 'GIF')->{status}, 204, '3 bytes');
    is(patch($id, 3, 'x' x 100)->{status}, 415, 'the head completed as no media: 415');
    is(offset_of($id), 'status 404', '... the upload is removed');
}

# ---- a connection broken mid-PATCH, then resumed --------------------------------------------

# Sends a PATCH's head and the first $sent bytes of $body (announcing all of it); returns the
# open socket.
sub partial_patch {
    my ($id, $offset, $body, $sent) = @_;
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $ng->port)
        or die "connect: $!";
    binmode $sock;
    print $sock "PATCH /files/$id HTTP/1.1\r\nHost: localhost\r\nTus-Resumable: 1.0.0\r\n"
              . "Content-Type: application/offset+octet-stream\r\nUpload-Offset: $offset\r\n"
              . "Content-Length: " . length($body) . "\r\n\r\n" . substr($body, 0, $sent);
    $sock->flush;
    return $sock;
}

{
    my $video = media('mp4', 600_000, 11);
    my $id = create(length $video);
    my $sock = partial_patch($id, 0, $video, 250_000);
    ok(wait_until(sub { offset_of($id) == 250_000 }), 'while the PATCH is open, HEAD shows its bytes');
    close $sock;
    ok(wait_until(sub { $ng->error_log_text =~ /upload $id: the body broke off at offset 250000; the bytes received are kept/ }),
       'the broken PATCH is logged, its bytes kept');
    is(offset_of($id), 250_000, 'after the break, HEAD says every byte sent arrived');
    my $res = patch($id, 250_000, substr($video, 250_000));
    is($res->{status}, 204, 'the resumed PATCH: 204');
    is($res->{headers}{'upload-offset'}, length $video, 'the upload is complete');
    is(sha256_hex(slurp("$UPLOADS/$id") // ''), sha256_hex($video),
       'sha256 of the data file is that of the source');
    tus(DELETE => "/files/$id");

    tus(DELETE => "/files/$id");
}
{
    my $video = media('mp4', 300_000, 12);
    my $id = create(length $video);
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $ng->port) or die $!;
    binmode $sock;
    print $sock "PATCH /files/$id HTTP/1.1\r\nHost: localhost\r\nTus-Resumable: 1.0.0\r\n"
              . "Content-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\n"
              . 'Upload-Checksum: sha1 ' . sha1_base64($video) . "=\r\n"
              . "Content-Length: 300000\r\n\r\n" . substr($video, 0, 120_000);
    $sock->flush;
    ok(wait_until(sub { offset_of($id) == 120_000 }), 'a PATCH with a checksum, in progress');
    close $sock;  # with a checksum, the bytes of a broken PATCH cannot be verified
    ok(wait_until(sub { offset_of($id) == 0 }), 'broken off, its unverifiable bytes are dropped');
    tus(DELETE => "/files/$id");
}

# ---- two PATCHes at once ---------------------------------------------------------------------

{
    my $video = media('mp4', 400_000, 13);
    my $id = create(length $video);
    my $first = partial_patch($id, 0, $video, 100_000);
    ok(wait_until(sub { offset_of($id) == 100_000 }), 'the first PATCH holds the upload');
    my $res = patch($id, 0, substr($video, 0, 200_000));
    is($res->{status}, 423, 'a second PATCH meanwhile: 423 Locked');
    like($res->{raw}, qr{^HTTP/1.1 423 Locked}, '... with its reason phrase');
    $res = patch($id, 100_000, substr($video, 100_000, 1000));
    is($res->{status}, 423, 'even at the current offset: 423');
    is(tus(DELETE => "/files/$id")->{status}, 423, 'a DELETE meanwhile: 423');
    print $first substr($video, 100_000);
    $first->flush;
    my $answer = '';
    local $SIG{ALRM} = sub { die "no answer to the first PATCH within 60 s\n" };
    alarm 60;
    while (sysread($first, my $buf, 4096)) { $answer .= $buf; last if $answer =~ /\r\n\r\n/ }
    alarm 0;
    like($answer, qr{^HTTP/1.1 204}, 'the first PATCH completes: 204');
    close $first;
    is(sha256_hex(slurp("$UPLOADS/$id") // ''), sha256_hex($video), 'the data is intact');
    is(tus(DELETE => "/files/$id")->{status}, 204, 'then DELETE: 204');
}

# ---- bodies beyond Upload-Length, creations that fail ---------------------------------------

{
    my $id = create(2000);
    is(patch($id, 0, substr($JPEG, 0, 500))->{status}, 204, '500 bytes');
    my $chunked = sprintf("%x\r\n%s\r\n", 1000, substr($JPEG, 500, 1000))
                . sprintf("%x\r\n%s\r\n", 1000, substr($JPEG, 1500, 1000)) . "0\r\n\r\n";
    my $res = tus(PATCH => "/files/$id", body => $chunked,
                  headers => ['Content-Type' => 'application/offset+octet-stream',
                              'Upload-Offset' => 500, 'Transfer-Encoding' => 'chunked']);
    is($res->{status}, 413, 'a chunked PATCH crossing Upload-Length: 413');
    is(offset_of($id), 500, '... and none of its bytes are kept');
    tus(DELETE => "/files/$id");

    my @before = glob("$UPLOADS/*");
    $res = tus(POST => '/files/', body => filler(1000, 4),
               headers => ['Upload-Length' => 5000,
                           'Content-Type' => 'application/offset+octet-stream']);
    is($res->{status}, 415, 'creation-with-upload of no media: 415');
    is(scalar(() = glob("$UPLOADS/*")), scalar(@before), '... and no upload is left');

    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $ng->port) or die $!;
    binmode $sock;
    print $sock "POST /files/ HTTP/1.1\r\nHost: localhost\r\nTus-Resumable: 1.0.0\r\n"
              . "Upload-Length: 200000\r\nContent-Type: application/offset+octet-stream\r\n"
              . "Content-Length: 200000\r\n\r\n" . substr($JPEG, 0, 50_000);
    $sock->flush;
    ok(wait_until(sub { grep { -s $_ == 50_000 } glob("$UPLOADS/*") }),
       'a creation-with-upload in progress');
    close $sock;
    ok(wait_until(sub { scalar(() = glob("$UPLOADS/*")) == @before }),
       'broken off, the upload whose URL its client never learnt is removed');
}

# ---- expired uploads -------------------------------------------------------------------------

{
    my $expired = counter('expired');
    my @ids = map { create(length $JPEG) } 1 .. 3;
    is(patch($_, 0, substr($JPEG, 0, 100))->{status}, 204, 'an upload begun') for @ids;
    my $past = time - 2 * 86400;
    utime $past, $past, "$UPLOADS/$_" for @ids;    # last written two days ago
    my $res = tus(HEAD => "/files/$ids[0]");
    is($res->{status}, 410, 'HEAD of an upload untouched for chatterd_upload_expiry: 410');
    ok(-e "$UPLOADS/$ids[0]", '... which leaves it to the expiry');
    is(patch($ids[1], 100, substr($JPEG, 100, 100))->{status}, 410, 'PATCH of it: 410');
    ok(!-e "$UPLOADS/$ids[1]" && !-e "$UPLOADS/$ids[1].info", '... which removes it');
    is(tus(DELETE => "/files/$ids[2]")->{status}, 410, 'DELETE of it: 410');
    ok(!-e "$UPLOADS/$ids[2]", '... removed');
    is(counter('expired'), $expired + 2, 'both counted as expired');
    is(tus(HEAD => "/files/$ids[1]")->{status}, 404, 'then HEAD: 404');
    unlink "$UPLOADS/$ids[0]", "$UPLOADS/$ids[0].info";
}

# ---- two nodes sharing the media root ----------------------------------------------------------

{
    my $other = start();
    my $video = media('mp4', 300_000, 21);
    my $id = create(length $video);
    is(patch($id, 0, substr($video, 0, 100_000), )->{status}, 204, 'node A: the first PATCH');
    my $res = tus(HEAD => "/files/$id", port => $other->port);
    is($res->{headers}{'upload-offset'}, 100_000, 'node B: HEAD sees its offset');
    my $sock = partial_patch($id, 100_000, substr($video, 100_000), 50_000);
    ok(wait_until(sub { offset_of($id) == 150_000 }), 'node A: a PATCH in progress');
    $res = tus(PATCH => "/files/$id", port => $other->port, body => substr($video, 150_000),
               headers => ['Content-Type' => 'application/offset+octet-stream',
                           'Upload-Offset' => 150_000]);
    is($res->{status}, 423, 'node B: a PATCH meanwhile: 423');
    close $sock;
    ok(wait_until(sub { !open_in($ng, $UPLOADS) }), 'node A lets go of the upload');
    $res = tus(PATCH => "/files/$id", port => $other->port, body => substr($video, 150_000),
               headers => ['Content-Type' => 'application/offset+octet-stream',
                           'Upload-Offset' => 150_000]);
    is($res->{status}, 204, 'node B: then the rest');
    is(sha256_hex(slurp("$UPLOADS/$id") // ''), sha256_hex($video), 'the bytes of both nodes, intact');
    is(tus(DELETE => "/files/$id", port => $other->port)->{status}, 204, 'node B: DELETE');
    is(tus(HEAD => "/files/$id")->{status}, 404, 'node A: gone');
    $other->stop;
}

ok(wait_until(sub { !open_in($ng, $UPLOADS) }), 'no worker holds a file of .uploads open');
$ng->stop;

# ---- expiry ------------------------------------------------------------------------------------

{
    $ng = start(http => "chatterd_upload_expiry 2s;\n");
    my $expired = counter('expired');
    # Nothing more is sent to it: the expiry may come at any moment (answers to an expired
    # upload are checked above, on files aged by hand).
    my $id = create(length $JPEG);
    ok(wait_until(sub { !-e "$UPLOADS/$id" && !-e "$UPLOADS/$id.info" }, 30),
       'abandoned for chatterd_upload_expiry, it is removed');
    like(offset_of($id), qr/^status (404|410)$/, 'HEAD: gone');
    ok(wait_until(sub { counter('expired') > $expired }), 'the status page counts it');
    $ng->stop;
}

# ---- HTTP/2 (curl --http2 over TLS), a client killed mid-PATCH ----------------------------

SKIP: {
    my $certs = File::Temp::tempdir(CLEANUP => 1);
    skip 'openssl cannot make a certificate', 8
        if system("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost"
                  . " -keyout $certs/k -out $certs/c >/dev/null 2>&1") != 0;
    my $tls = Chatterd::NginxProcess::free_port();
    $ng = start(server => "listen 127.0.0.1:$tls ssl http2;\nssl_certificate $certs/c;\n"
                        . "ssl_certificate_key $certs/k;\n");
    my $video = media('mp4', 1_000_000, 31);
    open(my $fh, '>:raw', "$certs/video") or die $!;
    print {$fh} $video;
    close $fh;
    my $id = create(length $video);
    my @curl = ('curl', '-sS', '--http2', '-k', '-o', '/dev/null', '-w', '%{http_version} %{http_code}',
                '-X', 'PATCH', '-H', 'Tus-Resumable: 1.0.0', '-H', 'Upload-Offset: 0',
                '-H', 'Content-Type: application/offset+octet-stream');
    my $pid = open(my $curl, '-|', @curl, '--limit-rate', '100k', '-T', "$certs/video",
                   "https://127.0.0.1:$tls/files/$id") or die "curl: $!";
    ok(wait_until(sub { offset_of($id) =~ /^\d+$/ && offset_of($id) > 0 }), 'HTTP/2: a slow PATCH in progress');
    kill 'KILL', $pid;
    close $curl;
    ok(wait_until(sub { !open_in($ng, $UPLOADS) }), 'the client killed, the worker lets go of the upload');
    my $kept = offset_of($id);
    ok($kept > 0 && $kept < length $video, "HEAD: $kept bytes kept");
    is(-s "$UPLOADS/$id", $kept, '... all of them on disk');
    open($fh, '>:raw', "$certs/rest") or die $!;
    print {$fh} substr($video, $kept);
    close $fh;
    $curl[13] = "Upload-Offset: $kept";
    open($curl, '-|', @curl, '-T', "$certs/rest", "https://127.0.0.1:$tls/files/$id") or die $!;
    my $out = do { local $/; <$curl> };
    close $curl;
    is($out, '2 204', 'HTTP/2: the resumed PATCH, 204');
    is(sha256_hex(slurp("$UPLOADS/$id") // ''), sha256_hex($video), 'sha256 of the data file is that of the source');
    tus(DELETE => "/files/$id");
    $ng->stop;
}

# ---- the media sweep leaves uploads alone ------------------------------------------------------

SKIP: {
    skip 'TEST_NGINX_PG_CONNINFO is not set (run through make test)', 6
        unless $ENV{TEST_NGINX_PG_CONNINFO} && $ENV{TEST_NGINX_PSQL};
    Chatterd::Db::truncate_chatts();
    $ng = Chatterd::Nginx::start_nginx(
        workers     => 1,
        media_root  => $MEDIA,
        http_config => "chatterd_pg_timeout 1s;\nchatterd_media_sweep 2s;\n",
        config      => "location /files/ { chatterd uploads; }\n"
                     . "location ~ ^/postimages/?\$ { chatterd postimages; }\n"
                     . "location = /status { chatterd_status; }\n");
    my $id = create(length $JPEG);
    is(patch($id, 0, substr($JPEG, 0, 1000))->{status}, 204, 'an upload begun');
    my $orphan = 'nobody-' . ('0123456789abcdef' x 2) . '.jpeg';
    open(my $fh, '>', "$MEDIA/$orphan") or die $!;
    close $fh;
    my $past = time - 3600;
    utime $past, $past, "$MEDIA/$orphan", "$UPLOADS/$id", "$UPLOADS/$id.info", $UPLOADS;
    ok(wait_until(sub { !-e "$MEDIA/$orphan" }), 'a sweep round moves an unnamed media file away');
    ok(-d $UPLOADS, '... but leaves .uploads');
    is(offset_of($id), 1000, '... and the upload in it');
    $ng->stop;
    unlink "$MEDIA.quarantine/$orphan";
    File::Path::remove_tree($UPLOADS);
}

File::Path::remove_tree($UPLOADS);
done_testing();
