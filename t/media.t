# GET /media/<file> (API.md) with the "location /media/" block of nginx.conf.example, taken
# from that file as shipped (scripts/nginx-conf.pl --block; only its alias changes): nginx's
# static module serves the media directory with a Content-Type from the extension
# (application/octet-stream otherwise, never text/html), byte ranges (206, 416),
# "Cache-Control: public, max-age=31536000, immutable" and "X-Content-Type-Options: nosniff" on
# every answer, no directory listing (403) and no dot-files (404).
#
# The files live in a private directory (not the media root the upload suites check).
use strict; use warnings;
use FindBin; BEGIN { push @INC, "$FindBin::Bin/lib" }
use Test::Nginx::Socket 'no_plan';
use Chatterd::ExampleConf ();
use File::Path ();
use File::Spec ();
use File::Temp ();

# The media directory of this suite, readable by unprivileged workers.
my $media = File::Temp::tempdir('chatterd-media-XXXXXX', TMPDIR => 1, CLEANUP => 1);
chmod 0755, $media;

our %FILE = (
    'photo.jpeg'   => "\xff\xd8\xff\xe0\x00\x10JFIF\x00" . join('', map { chr($_ % 256) } 0 .. 4095) . "\xff\xd9",
    'clip.mp4'     => "\x00\x00\x00\x18ftypmp42" . join('', map { chr(($_ * 7) % 256) } 0 .. 9999),
    'clip.mov'     => "\x00\x00\x00\x14ftypqt  " . 'q' x 100,
    'a.jpg'        => 'jpg', 'a.png' => 'png', 'a.gif' => 'gif', 'a.webp' => 'webp',
    'a.heic'       => 'heic', 'a.avif' => 'avif', 'a.3gp' => '3gp', 'a.webm' => 'webm',
    'a.mkv'        => 'mkv',
    'page.html'    => "<script>alert(1)</script>",
    'image.svg'    => "<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>",
    'noextension'  => 'plain bytes',
    '.hidden'      => 'secret dot-file',
    '.tmp-upload'  => 'partial upload',
    'sub/inner.jpeg' => 'inner',
    'sub/.inner-hidden' => 'secret in sub',
    '.dotdir/x.jpeg' => 'secret in a dot-directory',
);
for my $name (sort keys %FILE) {
    my $path = File::Spec->catfile($media, $name);
    my (undef, $dir) = File::Spec->splitpath($path);
    File::Path::make_path($dir, { mode => 0755 });
    chmod 0755, $dir;
    open my $fh, '>:raw', $path or die "$path: $!";
    print {$fh} $FILE{$name};
    close $fh or die "$path: $!";
    chmod 0644, $path;
}

# The "location /media/ { ... }" block of nginx.conf.example, pointed at $media.
my $location = Chatterd::ExampleConf::generate('--set', 'alias', "$media/", '--block', 'location /media/');

add_block_preprocessor(sub {
    my ($block) = @_;
    $block->set_value('config', $location) unless defined $block->config;
});

our $CACHE = 'public, max-age=31536000, immutable';
our $JPEG_LEN = length $FILE{'photo.jpeg'};
our $MP4_LEN = length $FILE{'clip.mp4'};

run_tests();

__DATA__

=== TEST 1: a stored image: 200, image/jpeg, exact bytes, long cache, nosniff, ranges offered
--- request
GET /media/photo.jpeg
--- response_headers eval
"Content-Type: image/jpeg
Content-Length: $main::JPEG_LEN
Cache-Control: $main::CACHE
X-Content-Type-Options: nosniff
Accept-Ranges: bytes"
--- response_body eval
$main::FILE{'photo.jpeg'}
--- no_error_log
[error]



=== TEST 2: HEAD: the same headers, no body
--- request
HEAD /media/clip.mp4
--- response_headers eval
"Content-Type: video/mp4
Content-Length: $main::MP4_LEN
Cache-Control: $main::CACHE
X-Content-Type-Options: nosniff"
--- response_body chomp



=== TEST 3: a byte range: 206 with Content-Range and exactly those bytes
--- request
GET /media/clip.mp4
--- more_headers
Range: bytes=100-1099
--- error_code: 206
--- response_headers eval
"Content-Type: video/mp4
Content-Range: bytes 100-1099/$main::MP4_LEN
Content-Length: 1000
Cache-Control: $main::CACHE
X-Content-Type-Options: nosniff"
--- response_body eval
substr($main::FILE{'clip.mp4'}, 100, 1000)



=== TEST 4: open-ended and suffix ranges, as video players seek
--- request eval
["GET /media/clip.mp4", "GET /media/clip.mp4"]
--- more_headers eval
["Range: bytes=9000-", "Range: bytes=-24"]
--- error_code eval
[206, 206]
--- response_headers eval
["Content-Range: bytes 9000-" . ($main::MP4_LEN - 1) . "/$main::MP4_LEN",
 "Content-Range: bytes " . ($main::MP4_LEN - 24) . "-" . ($main::MP4_LEN - 1) . "/$main::MP4_LEN"]
--- response_body eval
[substr($main::FILE{'clip.mp4'}, 9000), substr($main::FILE{'clip.mp4'}, -24)]



=== TEST 5: a range past the end: 416 with the length, still nosniff
(nginx adds the "always" headers twice to this answer: harmless duplicates.)
--- request
GET /media/clip.mp4
--- more_headers eval
"Range: bytes=$main::MP4_LEN-"
--- error_code: 416
--- response_headers eval
"Content-Range: bytes */$main::MP4_LEN"
--- response_headers_like
X-Content-Type-Options: nosniff(?:, nosniff)?



=== TEST 6: several ranges: multipart/byteranges
--- request
GET /media/photo.jpeg
--- more_headers
Range: bytes=0-1,10-11
--- error_code: 206
--- response_headers_like
Content-Type: multipart/byteranges; boundary=\d+
--- response_body_like eval
my ($a, $b) = map { quotemeta } (substr($main::FILE{'photo.jpeg'}, 0, 2), substr($main::FILE{'photo.jpeg'}, 10, 2));
qr{Content-Type: image/jpeg\r\nContent-Range: bytes 0-1/$main::JPEG_LEN\r\n\r\n$a\r\n.*Content-Range: bytes 10-11/$main::JPEG_LEN\r\n\r\n$b\r\n}s



=== TEST 7: Content-Type by extension for every media type chatterd stores
--- request eval
[map { "GET /media/$_" } qw(a.jpg a.png a.gif a.webp a.heic a.avif clip.mov a.3gp a.webm a.mkv)]
--- response_headers eval
[map { "Content-Type: $_\nX-Content-Type-Options: nosniff\nCache-Control: $main::CACHE" }
 qw(image/jpeg image/png image/gif image/webp image/heic image/avif video/quicktime video/3gpp video/webm video/x-matroska)]
--- response_body eval
[@main::FILE{qw(a.jpg a.png a.gif a.webp a.heic a.avif clip.mov a.3gp a.webm a.mkv)}]



=== TEST 8: anything else is application/octet-stream (never text/html or SVG), with nosniff
--- request eval
["GET /media/page.html", "GET /media/image.svg", "GET /media/noextension"]
--- response_headers eval
[("Content-Type: application/octet-stream\nX-Content-Type-Options: nosniff") x 3]
--- response_body eval
[@main::FILE{qw(page.html image.svg noextension)}]



=== TEST 9: a file in a subdirectory is served like the others
--- request
GET /media/sub/inner.jpeg
--- response_headers
Content-Type: image/jpeg
X-Content-Type-Options: nosniff
--- response_body chomp
inner



=== TEST 10: no directory listing: 403, no file name in the body
--- request eval
["GET /media/", "GET /media/sub/"]
--- error_code eval
[403, 403]
--- response_headers eval
[("X-Content-Type-Options: nosniff\nCache-Control: $main::CACHE") x 2]
--- response_body_unlike eval
['photo|clip|inner|hidden', 'photo|clip|inner|hidden']



=== TEST 11: dot-files and dot-directories are never served: 404
--- request eval
["GET /media/.hidden", "GET /media/.tmp-upload", "GET /media/sub/.inner-hidden", "GET /media/.dotdir/x.jpeg", "HEAD /media/.hidden"]
--- error_code eval
[404, 404, 404, 404, 404]
--- response_body_unlike eval
[('secret|partial') x 5]



=== TEST 12: a missing file: 404, still nosniff
--- request
GET /media/missing.jpeg
--- error_code: 404
--- response_headers eval
"X-Content-Type-Options: nosniff
Cache-Control: $main::CACHE"



=== TEST 13: no way out of the media directory
--- request eval
["GET /media/../conf/nginx.conf", "GET /media/%2e%2e/%2e%2e/conf/nginx.conf", "GET /media/sub/../../photo.jpeg"]
--- error_code eval
[404, 400, 404]
--- response_body_unlike eval
[('chatterd|worker_processes') x 3]
