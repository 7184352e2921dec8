# POST /postimages, data-driven: sizes and lengths.
#   - chatterd_media_max_size 10m: a media part of exactly 10485760 bytes is stored whole,
#     10485761 is refused with 413 "Payload too large" (image or video), also with a small
#     configured limit; unknown parts are not media and only count against the whole body;
#   - client_max_body_size 21m: a bigger body gets nginx's own 413, with Content-Length and
#     with a chunked body (counted on the bytes received);
#   - varchar(255): 255 characters (ASCII or not, up to 1020 bytes) are stored, 256 in
#     username or message give 400 "Message too long" before the database is asked, and leave
#     no file; the file name prefix of a 255-character username is capped; a text part over
#     1020 bytes (more than 255 characters can be) is refused while it arrives.
# The 413 arriving before the client has sent the whole body is in postimages_clients.t.
#
# Every block starts with an empty chatts table and media root.  A block whose --- init
# calls ::expect(...) must leave exactly that one row and exactly its files, served back
# unchanged; every other block must leave no row and no file.
use strict; use warnings;
use FindBin; BEGIN { push @INC, "$FindBin::Bin/lib" }
use Test::Nginx::Socket 'no_plan';
use Chatterd::Db qw(media_root);
use Chatterd::Http qw(multipart_body);
use Chatterd::Upload qw(expect media text_part image_part video_part);

media_root();    # sets $ENV{TEST_NGINX_MEDIA_ROOT}
$ENV{TEST_NGINX_PG_CONNINFO} //= 'host=/var/run/postgresql dbname=chatterdb user=chatter';

use constant MiB => 1024 * 1024;

# media('jpeg', $size, $seed): exactly $size bytes of jpeg, mp4 or mov (Chatterd::Upload).

#---------------------------------------------------------------------------
# Requests
#---------------------------------------------------------------------------

# A whole HTTP/1.1 POST /postimages with a multipart body (boundary XyZ), Content-Length
# or, with chunks => $size, Transfer-Encoding: chunked in chunks of $size bytes.
sub post {
    my (%o) = @_;
    my $body = multipart_body('XyZ', @{ $o{parts} });
    my @headers = ('Host: localhost', 'Connection: close',
                   'Content-Type: multipart/form-data; boundary=XyZ');
    if (my $size = $o{chunks}) {
        push @headers, 'Transfer-Encoding: chunked';
        my $chunked = '';
        for (my $at = 0; $at < length $body; $at += $size) {
            my $chunk = substr $body, $at, $size;
            $chunked .= sprintf("%x\r\n", length $chunk) . $chunk . "\r\n";
        }
        $body = "${chunked}0\r\n\r\n";
    }
    else {
        push @headers, 'Content-Length: ' . length $body;
    }
    return "POST /postimages HTTP/1.1\r\n" . join('', map { "$_\r\n" } @headers) . "\r\n" . $body;
}

# Texts of exact lengths: 255/256 characters; "ジ" is one character, three UTF-8 bytes.
our $Chars255 = substr('abcdefghijklmnopqrstuvwxyz0123456789' x 8, 0, 255);
our $Chars256 = $Chars255 . 'Z';
our $Ji = "\xE3\x82\xB8";
our $Emoji = "\xF0\x9F\x98\x80";    # one character, four UTF-8 bytes

#---------------------------------------------------------------------------
# What every block must leave behind
#---------------------------------------------------------------------------

# A block's --- init calls ::expect(username => ..., message => ..., image => [bytes, ext, mime],
# video => [...], prefix => file name prefix (undef: none)); Chatterd::Upload checks the row
# and files it leaves behind (URL base http://localhost/media/).

our $Config = <<'EOF';
location ~ ^/postimages/?$ {
    chatterd postimages;
    chatterd_media_max_size 10m;
    client_max_body_size 21m;
}
location /media/ {
    alias $TEST_NGINX_MEDIA_ROOT/;
    types { image/jpeg jpeg; video/mp4 mp4; video/quicktime mov; }
    default_type application/octet-stream;
}
EOF

Chatterd::Upload::setup(config => $Config, block_timeout => '30s', get_timeout => 30);

no_shuffle();
run_tests();

__DATA__

=== TEST 1: an image of exactly 10 MiB (10485760 bytes) is stored whole
--- init
::expect(username => 'max', message => 'ten MiB', prefix => 'max', image => [::media(jpeg => 10 * ::MiB), 'jpeg', 'image/jpeg'])
--- raw_request eval
::post(parts => [::text_part(username => 'max'), ::text_part(message => 'ten MiB'), ::image_part(::media(jpeg => 10 * ::MiB))])
--- response_body chomp
{}
--- no_error_log
[error]



=== TEST 2: an image and a video of exactly 10 MiB each, in one 20 MiB body under client_max_body_size 21m
--- init
::expect(username => 'max', message => 'twice', prefix => 'max', image => [::media(jpeg => 10 * ::MiB), 'jpeg', 'image/jpeg'],
         video => [::media(mov => 10 * ::MiB), 'mov', 'video/quicktime'])
--- raw_request eval
::post(parts => [::image_part(::media(jpeg => 10 * ::MiB)), ::video_part(::media(mov => 10 * ::MiB)),
                 ::text_part(username => 'max'), ::text_part(message => 'twice')])
--- response_body chomp
{}
--- no_error_log
[error]



=== TEST 3: an image of 10485761 bytes: 413 "Payload too large"
--- raw_request eval
::post(parts => [::text_part(username => 'max'), ::text_part(message => 'one too many'),
                 ::image_part(::media(jpeg => 10 * ::MiB + 1))])
--- error_code: 413
--- response_body chomp
"Payload too large"
--- response_headers
Content-Type: application/json
--- error_log
chatterd: postimages: media part "image" exceeds chatterd_media_max_size 10485760



=== TEST 4: a video of 10485761 bytes after a good image: 413, and the image does not stay either
--- raw_request eval
::post(parts => [::text_part(username => 'max'), ::text_part(message => 'video too big'),
                 ::image_part(::media(jpeg => 5000)), ::video_part(::media(mp4 => 10 * ::MiB + 1))])
--- error_code: 413
--- response_body chomp
"Payload too large"
--- error_log
chatterd: postimages: media part "video" exceeds chatterd_media_max_size 10485760



=== TEST 5: a video of 10485761 bytes in a chunked body: 413 from chatterd
--- raw_request eval
::post(chunks => 100_000, parts => [::text_part(username => 'max'), ::text_part(message => 'chunked'),
                                    ::video_part(::media(mp4 => 10 * ::MiB + 1))])
--- error_code: 413
--- response_body chomp
"Payload too large"
--- error_log
chatterd: postimages: media part "video" exceeds chatterd_media_max_size 10485760



=== TEST 6: chatterd_media_max_size 1k: 1024 bytes are accepted
--- config eval
$::Config =~ s/chatterd_media_max_size 10m/chatterd_media_max_size 1k/r
--- init
::expect(username => 'small', message => '1024', prefix => 'small', video => [::media(mp4 => 1024), 'mp4', 'video/mp4'])
--- raw_request eval
::post(parts => [::text_part(username => 'small'), ::text_part(message => '1024'), ::video_part(::media(mp4 => 1024))])
--- response_body chomp
{}
--- no_error_log
[error]



=== TEST 7: chatterd_media_max_size 1k: 1025 bytes are refused
--- config eval
$::Config =~ s/chatterd_media_max_size 10m/chatterd_media_max_size 1k/r
--- raw_request eval
::post(parts => [::text_part(username => 'small'), ::text_part(message => '1025'), ::video_part(::media(mp4 => 1025))])
--- error_code: 413
--- response_body chomp
"Payload too large"
--- error_log
chatterd: postimages: media part "video" exceeds chatterd_media_max_size 1024



=== TEST 8: an unknown file part of 11 MiB is not media: ignored, the form is stored
--- init
::expect(username => 'u', message => 'big unknown part', prefix => 'u', image => [::media(jpeg => 3000), 'jpeg', 'image/jpeg'])
--- raw_request eval
::post(parts => [::text_part(username => 'u'), ::text_part(message => 'big unknown part'),
                 [name => 'attachment', filename => 'big.bin', value => ::media(mov => 11 * ::MiB)],
                 ::image_part(::media(jpeg => 3000))])
--- response_body chomp
{}
--- no_error_log
[error]



=== TEST 9: a whole body over client_max_body_size (21m), with Content-Length: nginx's 413
--- raw_request eval
::post(parts => [::text_part(username => 'u'), ::text_part(message => 'too big'),
                 ::image_part(::media(jpeg => 10 * ::MiB)), ::video_part(::media(mp4 => 10 * ::MiB)),
                 [name => 'attachment', filename => 'big.bin', value => ::media(mov => 2 * ::MiB)]])
--- error_code: 413
--- response_body_like: 413 Request Entity Too Large
--- error_log
client intended to send too large body



=== TEST 10: a whole body over client_max_body_size (21m), chunked: nginx's 413 on the bytes received
--- raw_request eval
::post(chunks => 65536, parts => [::text_part(username => 'u'), ::text_part(message => 'too big'),
                                  ::image_part(::media(jpeg => 10 * ::MiB)), ::video_part(::media(mp4 => 10 * ::MiB)),
                                  [name => 'attachment', filename => 'big.bin', value => ::media(mov => 2 * ::MiB)]])
--- error_code: 413
--- response_body_like: 413 Request Entity Too Large
--- error_log
client intended to send too large chunked body



=== TEST 11: a 256-character message with an image: 400 "Message too long", no file stays
--- raw_request eval
::post(parts => [::text_part(username => 'u'), ::text_part(message => $::Chars256), ::image_part(::media(jpeg => 5000))])
--- error_code: 400
--- response_body chomp
"Message too long"
--- response_headers
Content-Type: application/json
--- error_log
is longer than 255 characters
--- no_error_log
SQLSTATE



=== TEST 12: a 256-character username with an image and a video: 400, no file stays
--- raw_request eval
::post(parts => [::text_part(username => $::Chars256), ::text_part(message => 'm'),
                 ::image_part(::media(jpeg => 5000)), ::video_part(::media(mov => 5000))])
--- error_code: 400
--- response_body chomp
"Message too long"
--- error_log
is longer than 255 characters
--- no_error_log
SQLSTATE



=== TEST 13: a 255-character username with an image: stored; the file name prefix is its first 64 characters
--- init
::expect(username => $::Chars255, message => 'm', prefix => substr($::Chars255, 0, 64), image => [::media(jpeg => 5000), 'jpeg', 'image/jpeg'])
--- raw_request eval
::post(parts => [::text_part(username => $::Chars255), ::text_part(message => 'm'), ::image_part(::media(jpeg => 5000))])
--- response_body chomp
{}
--- no_error_log
[error]



=== TEST 14: 255 three-byte characters (765 bytes) in username and message are stored
--- init
::expect(username => $::Ji x 255, message => $::Ji x 255, prefix => undef, image => [::media(jpeg => 5000), 'jpeg', 'image/jpeg'])
--- raw_request eval
::post(parts => [::text_part(username => $::Ji x 255), ::text_part(message => $::Ji x 255), ::image_part(::media(jpeg => 5000))])
--- response_body chomp
{}
--- no_error_log
[error]



=== TEST 15: 256 three-byte characters in the message: 400
--- raw_request eval
::post(parts => [::text_part(username => 'u'), ::text_part(message => $::Ji x 256), ::image_part(::media(jpeg => 5000))])
--- error_code: 400
--- response_body chomp
"Message too long"
--- error_log
is longer than 255 characters
--- no_error_log
SQLSTATE



=== TEST 16: a message part over 1020 bytes is refused as it arrives, before the image
--- raw_request eval
::post(parts => [::text_part(username => 'u'), ::text_part(message => 'm' x (64 * 1024 + 1)), ::image_part(::media(jpeg => 5000))])
--- error_code: 400
--- response_body chomp
"Message too long"
--- error_log
chatterd: postimages: form part "message" is longer than 1020 bytes



=== TEST 17: a username part over 1020 bytes, after the image: 400, the image does not stay
--- raw_request eval
::post(parts => [::image_part(::media(jpeg => 5000)), ::text_part(username => 'u' x (200 * 1024)), ::text_part(message => 'm')])
--- error_code: 400
--- response_body chomp
"Message too long"
--- error_log
chatterd: postimages: form part "username" is longer than 1020 bytes



=== TEST 18: 255 four-byte characters (1020 bytes, the byte bound) in username and message are stored
--- init
::expect(username => $::Emoji x 255, message => $::Emoji x 255, prefix => undef, image => [::media(jpeg => 5000), 'jpeg', 'image/jpeg'])
--- raw_request eval
::post(parts => [::text_part(username => $::Emoji x 255), ::text_part(message => $::Emoji x 255), ::image_part(::media(jpeg => 5000))])
--- response_body chomp
{}
--- no_error_log
[error]



=== TEST 19: 1021 bytes of message (255 emoji and one more byte): refused while it arrives, before the video
--- raw_request eval
::post(parts => [::text_part(username => 'u'), ::text_part(message => $::Emoji x 255 . 'x'), ::video_part(::media(mp4 => 5000))])
--- error_code: 400
--- response_body chomp
"Message too long"
--- error_log
chatterd: postimages: form part "message" is longer than 1020 bytes



=== TEST 20: a 256-character message, text fields only: 400 before the database, no row
--- raw_request eval
::post(parts => [::text_part(username => 'u'), ::text_part(message => $::Chars256)])
--- error_code: 400
--- response_body chomp
"Message too long"
--- error_log eval
[qr/\[info\] .*chatterd: postimages: form part "message" is longer than 255 characters/]
--- no_error_log
SQLSTATE
