# POST /postimages, data-driven.  Covers every row of API.md's postimages table that one
# request can show (422 in all its forms, a NUL byte or invalid UTF-8 in username or message
# among them; 415, 503, 405), the forms real clients send (OkHttp, Alamofire, parts in any order, empty
# fields, unknown parts, chunked bodies), media part contents that look like delimiters, NUL
# bytes and trailing CRLFs (stored byte for byte: fetched back over /media/ and compared, with
# the served Content-Type), every media type we sniff, the stored file names (sanitised
# prefix, "ジョン", "../../etc/passwd"), the URL base (Host header, IP literals, absolute
# chatterd_media_url; 400 for a Host that is not plainly a host, which would otherwise be
# stored in URLs every app user loads) and /postimages/ with a slash.
# Sizes and lengths are in postimages_limits.t, real clients (curl, HTTP/2, Expect,
# disconnects) in postimages_clients.t, concurrency in postimages_concurrency.t.
#
# Every block starts with an empty chatts table and media root.  A block whose --- init
# calls ::expect(...) must leave exactly that one row and exactly its files, served back
# unchanged; every other block must leave no row and no file.
use strict; use warnings;
use FindBin; BEGIN { push @INC, "$FindBin::Bin/lib" }
use Test::Nginx::Socket 'no_plan';
use Chatterd::Db qw(media_root);
use Chatterd::Http qw(multipart_body);
use Chatterd::Upload qw(expect filler text_part image_part video_part);

media_root();    # sets $ENV{TEST_NGINX_MEDIA_ROOT}
$ENV{TEST_NGINX_PG_CONNINFO} //= 'host=/var/run/postgresql dbname=chatterdb user=chatter';

#---------------------------------------------------------------------------
# Media bytes with real magic numbers and deterministic filler
#---------------------------------------------------------------------------

# filler($n, $seed): Chatterd::Upload.
sub jpeg { "\xFF\xD8\xFF\xE0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" . filler($_[0], $_[1] // 1) . "\xFF\xD9" }
sub png  { "\x89PNG\r\n\x1A\n\x00\x00\x00\x0DIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x02\x00\x00\x00" . filler($_[0], $_[1] // 2) }
sub gif  { "GIF89a\x10\x00\x10\x00\x80\x00\x00" . filler($_[0], $_[1] // 3) }
sub webp { my $d = "WEBPVP8 " . filler($_[0], $_[1] // 4); "RIFF" . pack('V', length $d) . $d }
sub heic { "\0\0\0\x18ftypheic\0\0\0\0mif1heic" . filler($_[0], $_[1] // 5) }
sub avif { "\0\0\0\x1CftypavifF\0\0\0\0avifmif1miaf" . filler($_[0], $_[1] // 6) }
sub mov  { "\0\0\0\x14ftypqt  \0\0\0\0qt  \0\0\0\x08wide" . filler($_[0], $_[1] // 7) }
sub mp4  { "\0\0\0\x20ftypisom\0\0\x02\0isomiso2avc1mp41" . filler($_[0], $_[1] // 8) }
sub threegp { "\0\0\0\x14ftyp3gp4\0\0\0\0isom" . filler($_[0], $_[1] // 9) }
# EBML header: DocType (0x4282) "webm" / "matroska".
sub webm { "\x1A\x45\xDF\xA3\x9F\x42\x86\x81\x01\x42\xF7\x81\x01\x42\x82\x84webm" . filler($_[0], $_[1] // 10) }
sub mkv  { "\x1A\x45\xDF\xA3\xA3\x42\x86\x81\x01\x42\xF7\x81\x01\x42\x82\x88matroska" . filler($_[0], $_[1] // 11) }
sub m4a  { "\0\0\0\x18ftypM4A \0\0\0\0M4A isom" . filler($_[0], $_[1] // 12) }

#---------------------------------------------------------------------------
# Requests
#---------------------------------------------------------------------------

# A whole HTTP/1.1 request, exactly as sent:
#   parts => [[name => ..., value => ..., filename => ..., type => ...], ...]
#            (Chatterd::Http::multipart_body), or body => raw bytes
#   boundary (default "XyZ"), uri (default /postimages), host (default localhost),
#   content_type (default multipart/form-data with the boundary; undef: none),
#   chunks => [sizes...]: Transfer-Encoding: chunked, chunk sizes cycling through the list
#   headers => [extra header lines]
sub post {
    my (%o) = @_;
    my $boundary = $o{boundary} // 'XyZ';
    my $body = $o{body} // multipart_body($boundary, @{ $o{parts} });
    my $type = exists $o{content_type} ? $o{content_type}
             : "multipart/form-data; boundary=$boundary";
    my @headers = ('Host: ' . ($o{host} // 'localhost'), 'Connection: close');
    push @headers, "Content-Type: $type" if defined $type;
    if ($o{chunks}) {
        push @headers, 'Transfer-Encoding: chunked';
        $body = chunked($body, @{ $o{chunks} });
    }
    else {
        push @headers, 'Content-Length: ' . length $body;
    }
    push @headers, @{ $o{headers} // [] };
    return 'POST ' . ($o{uri} // '/postimages') . " HTTP/1.1\r\n"
         . join('', map { "$_\r\n" } @headers) . "\r\n" . $body;
}

# Transfer-Encoding: chunked, with chunk sizes taken in turn from @sizes.
sub chunked {
    my ($body, @sizes) = @_;
    my ($out, $i) = ('', 0);
    while (length $body) {
        my $chunk = substr $body, 0, $sizes[$i++ % @sizes], '';
        $out .= sprintf("%x\r\n", length $chunk) . $chunk . "\r\n";
    }
    return $out . "0\r\n\r\n";
}

# Part contents for TEST 7 and 8 (boundary XyZ): near misses of the delimiter "\r\n--XyZ".
our $Tricky_image = jpeg(1000, 14)
    . "--XyZ--\r\n"                       # the close delimiter without the CRLF before it
    . "x\r\n--XyY\r\n"                   # "\r\n--" and then not the boundary
    . "\r\n-\r\n--\r\n--X\r\n--Xy\n"       # every shorter prefix of the delimiter
    . "\n--XyZ\r\n"                       # LF only before the boundary
    . "\r--XyZ\r\n"                       # CR only
    . ("\0" x 64) . "\r\n\0--XyZ\0"         # NUL bytes, one inside a would-be delimiter
    . "\r\n--Xy";                          # ends with the start of a delimiter
our $Tricky_video = mov(2000, 15) . "\0\r\n\0--XyZ\r\n\r\n";   # ends with CRLF CRLF
for ($Tricky_image, $Tricky_video, "line 1\r\n--XyY\r\n--Xy") {
    die "a tricky part contains a real delimiter\n" if index("$_\r\n", "\r\n--XyZ") >= 0;
}

#---------------------------------------------------------------------------
# What every block must leave behind
#---------------------------------------------------------------------------

# A block's --- init calls ::expect(username => ..., message => ..., image => [bytes, ext, mime],
# video => [...], prefix => file name prefix (undef: none), base => URL base (default
# http://localhost/media/)); Chatterd::Upload checks the row and files it leaves behind.

our $Config = <<'EOF';
location ~ ^/postimages/?$ {
    chatterd postimages;
    chatterd_media_max_size 10m;
    client_max_body_size 21m;
}
location ~ ^/getimages/?$ { chatterd getimages; }
location /media/ {
    alias $TEST_NGINX_MEDIA_ROOT/;
    types {
        image/jpeg jpeg jpg; image/png png; image/gif gif; image/webp webp;
        image/heic heic; image/avif avif; video/mp4 mp4; video/quicktime mov;
        video/3gpp 3gp; video/webm webm; video/x-matroska mkv;
    }
    default_type application/octet-stream;
}
EOF

Chatterd::Upload::setup(config => $Config);

no_shuffle();
run_tests();

__DATA__

=== TEST 1: text fields only: 200 {} and a row without media
--- init
::expect(username => 'alice', message => 'hello, world')
--- raw_request eval
::post(parts => [::text_part(username => 'alice'), ::text_part(message => 'hello, world')])
--- response_body chomp
{}
--- response_headers
Content-Type: application/json
--- no_error_log
[error]



=== TEST 2: OkHttp: UUID boundary, a Content-Length header in every part
--- init
::expect(username => 'android', message => 'from OkHttp', prefix => 'android',
         image => [::jpeg(50_000), 'jpeg', 'image/jpeg'], video => [::mp4(120_000), 'mp4', 'video/mp4'])
--- raw_request eval
my $b = 'a1f3c1de-3b0e-4d5c-9c4e-5f0b9a8d7e21';
my @parts = (
    [name => 'username', value => 'android', headers => ['Content-Length: 7']],
    [name => 'message', value => 'from OkHttp', headers => ['Content-Length: 11']],
    [name => 'image', filename => 'chattImage', type => 'image/jpeg', value => ::jpeg(50_000),
     headers => ['Content-Length: ' . length ::jpeg(50_000)]],
    [name => 'video', filename => 'chattVideo', type => 'video/mp4', value => ::mp4(120_000),
     headers => ['Content-Length: ' . length ::mp4(120_000)]],
);
::post(boundary => $b, parts => \@parts)
--- response_body chomp
{}
--- no_error_log
[error]



=== TEST 3: Alamofire: alamofire.boundary.<hex>, QuickTime bytes sent as video/mp4 are stored as .mov
--- init
::expect(username => 'ios', message => 'from Alamofire', prefix => 'ios',
         image => [::jpeg(30_000, 21), 'jpeg', 'image/jpeg'], video => [::mov(90_000), 'mov', 'video/quicktime'])
--- raw_request eval
::post(boundary => 'alamofire.boundary.4f9a0c3e7b21d856',
       parts => [::text_part(username => 'ios'), ::text_part(message => 'from Alamofire'),
                 ::image_part(::jpeg(30_000, 21)), ::video_part(::mov(90_000))])
--- response_body chomp
{}
--- no_error_log
[error]



=== TEST 4: parts in any order: files before username and message
--- init
::expect(username => 'bob', message => 'files first', prefix => 'bob',
         image => [::png(4000), 'png', 'image/png'], video => [::webm(5000), 'webm', 'video/webm'])
--- raw_request eval
::post(parts => [::video_part(::webm(5000)), ::image_part(::png(4000)),
                 ::text_part(message => 'files first'), ::text_part(username => 'bob')])
--- response_body chomp
{}
--- no_error_log
[error]



=== TEST 5: empty username and empty message are accepted
--- init
::expect(username => '', message => '', image => [::jpeg(100), 'jpeg', 'image/jpeg'])
--- raw_request eval
::post(parts => [::text_part(username => ''), ::text_part(message => ''), ::image_part(::jpeg(100))])
--- response_body chomp
{}
--- no_error_log
[error]



=== TEST 6: unknown parts, text or file, are ignored
--- init
::expect(username => 'carol', message => 'hi', prefix => 'carol', image => [::gif(700), 'gif', 'image/gif'])
--- raw_request eval
::post(parts => [::text_part(username => 'carol'), ::text_part(extra => 'ignored'),
                 [name => 'avatar', filename => 'a.jpeg', type => 'image/jpeg', value => ::jpeg(900)],
                 ::text_part(message => 'hi'), ::image_part(::gif(700)),
                 [name => 'Image', filename => 'x', value => 'not the image part: names are case-sensitive']])
--- response_body chomp
{}
--- no_error_log
[error]



=== TEST 7: contents that look like delimiters, NUL bytes and a trailing CRLF are kept byte for byte
The boundary without CRLF, a delimiter missing its last byte, "\r\n--" followed by something
else, LF- and CR-only variants, and parts ending in what could begin a delimiter.
--- init
::expect(username => "dave\r\n", message => "line 1\r\n--XyY\r\n--Xy", prefix => 'dave',
         image => [$::Tricky_image, 'jpeg', 'image/jpeg'], video => [$::Tricky_video, 'mov', 'video/quicktime'])
--- raw_request eval
::post(parts => [::text_part(username => "dave\r\n"), ::text_part(message => "line 1\r\n--XyY\r\n--Xy"),
                 ::image_part($::Tricky_image), ::video_part($::Tricky_video)])
--- response_body chomp
{}
--- no_error_log
[error]



=== TEST 8: the same tricky form in a chunked body whose chunks cut the delimiters anywhere
--- init
::expect(username => "dave\r\n", message => "line 1\r\n--XyY\r\n--Xy", prefix => 'dave',
         image => [$::Tricky_image, 'jpeg', 'image/jpeg'], video => [$::Tricky_video, 'mov', 'video/quicktime'])
--- raw_request eval
::post(chunks => [1, 2, 3, 5, 7, 11, 13, 1, 1, 4096],
       parts => [::text_part(username => "dave\r\n"), ::text_part(message => "line 1\r\n--XyY\r\n--Xy"),
                 ::image_part($::Tricky_image), ::video_part($::Tricky_video)])
--- response_body chomp
{}
--- no_error_log
[error]



=== TEST 9: a chunked body in large chunks (video only)
--- init
::expect(username => 'erin', message => 'chunked', prefix => 'erin', video => [::mp4(300_000, 3), 'mp4', 'video/mp4'])
--- raw_request eval
::post(chunks => [65536, 100_000, 1],
       parts => [::text_part(username => 'erin'), ::text_part(message => 'chunked'), ::video_part(::mp4(300_000, 3))])
--- response_body chomp
{}
--- no_error_log
[error]



=== TEST 10: a body of 1-byte chunks
--- init
::expect(username => 'frank', message => 'tiny chunks', prefix => 'frank', image => [::jpeg(300, 5), 'jpeg', 'image/jpeg'])
--- raw_request eval
::post(chunks => [1], parts => [::text_part(username => 'frank'), ::text_part(message => 'tiny chunks'),
                                ::image_part(::jpeg(300, 5))])
--- response_body chomp
{}
--- no_error_log
[error]



=== TEST 11: username "ジョン": accepted, its file name has no prefix
--- init
::expect(username => "\xE3\x82\xB8\xE3\x83\xA7\xE3\x83\xB3",
         message => "\xE3\x81\x93\xE3\x82\x93\xE3\x81\xAB\xE3\x81\xA1\xE3\x81\xAF", prefix => undef,
         image => [::jpeg(2000, 7), 'jpeg', 'image/jpeg'])
--- raw_request eval
::post(parts => [::text_part(username => "\xE3\x82\xB8\xE3\x83\xA7\xE3\x83\xB3"),
                 ::text_part(message => "\xE3\x81\x93\xE3\x82\x93\xE3\x81\xAB\xE3\x81\xA1\xE3\x81\xAF"),
                 ::image_part(::jpeg(2000, 7))])
--- response_body chomp
{}
--- no_error_log
[error]



=== TEST 12: username "../../etc/passwd": stored as sent, file named etcpasswd-<hex> inside the media root
--- init
::expect(username => '../../etc/passwd', message => 'x', prefix => 'etcpasswd', image => [::png(500, 8), 'png', 'image/png'])
--- raw_request eval
::post(parts => [::text_part(username => '../../etc/passwd'), ::text_part(message => 'x'), ::image_part(::png(500, 8))])
--- response_body chomp
{}
--- no_error_log
[error]



=== TEST 13: usernames with spaces, dots and dashes: spaces become "_", leading dots and dashes go
--- init
::expect(username => '.-.hidden user name!', message => 'x', prefix => 'hidden_user_name',
         image => [::jpeg(64, 9), 'jpeg', 'image/jpeg'])
--- raw_request eval
::post(parts => [::text_part(username => '.-.hidden user name!'), ::text_part(message => 'x'), ::image_part(::jpeg(64, 9))])
--- response_body chomp
{}
--- no_error_log
[error]



=== TEST 14: the route with a trailing slash, /postimages/
--- init
::expect(username => 'gina', message => 'slash', prefix => 'gina', image => [::jpeg(1000, 10), 'jpeg', 'image/jpeg'])
--- raw_request eval
::post(uri => '/postimages/', parts => [::text_part(username => 'gina'), ::text_part(message => 'slash'),
                                        ::image_part(::jpeg(1000, 10))])
--- response_body chomp
{}
--- no_error_log
[error]



=== TEST 15: the URL is built from the Host header
--- init
::expect(username => 'hank', message => 'host', prefix => 'hank', base => 'http://chatter.example:8080/media/',
         image => [::jpeg(1000, 11), 'jpeg', 'image/jpeg'])
--- raw_request eval
::post(host => 'chatter.example:8080', parts => [::text_part(username => 'hank'), ::text_part(message => 'host'),
                                                 ::image_part(::jpeg(1000, 11))])
--- response_body chomp
{}
--- no_error_log
[error]



=== TEST 16: an absolute chatterd_media_url (behind a TLS proxy) is the URL base
--- config eval
$::Config =~ s/chatterd postimages;/chatterd postimages; chatterd_media_url https:\/\/chatter.example.org\/pub\/media;/r
--- init
::expect(username => 'ida', message => 'proxy', prefix => 'ida', base => 'https://chatter.example.org/pub/media/',
         video => [::mov(2000, 12), 'mov', 'video/quicktime'])
--- raw_request eval
::post(parts => [::text_part(username => 'ida'), ::text_part(message => 'proxy'), ::video_part(::mov(2000, 12))])
--- response_body chomp
{}
--- no_error_log
[error]



=== TEST 17: every image type we sniff has its extension: webp
--- init
::expect(username => 'i', message => 'webp', prefix => 'i', image => [::webp(3000), 'webp', 'image/webp'],
         video => [::threegp(3000), '3gp', 'video/3gpp'])
--- raw_request eval
::post(parts => [::text_part(username => 'i'), ::text_part(message => 'webp'),
                 ::image_part(::webp(3000)), ::video_part(::threegp(3000))])
--- response_body chomp
{}
--- no_error_log
[error]



=== TEST 18: heic image, mkv video
--- init
::expect(username => 'j', message => 'heic', prefix => 'j', image => [::heic(3000), 'heic', 'image/heic'],
         video => [::mkv(3000), 'mkv', 'video/x-matroska'])
--- raw_request eval
::post(parts => [::text_part(username => 'j'), ::text_part(message => 'heic'),
                 ::image_part(::heic(3000)), ::video_part(::mkv(3000))])
--- response_body chomp
{}
--- no_error_log
[error]



=== TEST 19: avif image
--- init
::expect(username => 'k', message => 'avif', prefix => 'k', image => [::avif(3000), 'avif', 'image/avif'])
--- raw_request eval
::post(parts => [::text_part(username => 'k'), ::text_part(message => 'avif'), ::image_part(::avif(3000))])
--- response_body chomp
{}
--- no_error_log
[error]



=== TEST 20: a quoted boundary and a differently-cased media type
--- init
::expect(username => 'lee', message => 'quoted', prefix => 'lee', image => [::jpeg(800, 13), 'jpeg', 'image/jpeg'])
--- raw_request eval
::post(boundary => 'b:o=u(n) d,x', content_type => 'Multipart/Form-Data; charset=utf-8; boundary="b:o=u(n) d,x"',
       parts => [::text_part(username => 'lee'), ::text_part(message => 'quoted'), ::image_part(::jpeg(800, 13))])
--- response_body chomp
{}
--- no_error_log
[error]



=== TEST 21: RFC 2046 framing: a preamble, padding after boundaries, an epilogue; filename*= names a file too
--- init
::expect(username => 'rfc', message => '2046', prefix => 'rfc', image => [::jpeg(900, 16), 'jpeg', 'image/jpeg'])
--- raw_request eval
::post(body => "This is the preamble.\r\n--XyZ \t \r\n"
             . "Content-Disposition: form-data; name=\"username\"\r\n\r\nrfc\r\n--XyZ\t\r\n"
             . "content-disposition: form-data; name=message\r\n\r\n2046\r\n--XyZ\r\n"
             . "Content-Disposition: form-data; name=\"image\"; filename*=UTF-8''%E3%82%B8.jpg\r\n\r\n"
             . ::jpeg(900, 16) . "\r\n--XyZ--  \r\nThis is the epilogue: --XyZ\r\n")
--- response_body chomp
{}
--- no_error_log
[error]



=== TEST 22: HTTP/1.0 without a Host header: the URL takes the server name
--- init
::expect(username => 'old', message => 'http/1.0', prefix => 'old', image => [::jpeg(900, 17), 'jpeg', 'image/jpeg'])
--- raw_request eval
::post(parts => [::text_part(username => 'old'), ::text_part(message => 'http/1.0'), ::image_part(::jpeg(900, 17))])
    =~ s/ HTTP\/1\.1\r\nHost: localhost\r\n/ HTTP\/1.0\r\n/r
--- response_body chomp
{}
--- no_error_log
[error]



=== TEST 23: 422: not multipart (a JSON body)
--- raw_request eval
::post(content_type => 'application/json', body => '{"username":"a","message":"b"}')
--- error_code: 422
--- response_body chomp
"Unprocessable entity"
--- response_headers
Content-Type: application/json
--- error_log
chatterd: postimages: body is not multipart/form-data with a boundary



=== TEST 24: 422: multipart/form-data without a boundary
--- raw_request eval
::post(content_type => 'multipart/form-data', parts => [::text_part(username => 'a'), ::text_part(message => 'b')])
--- error_code: 422
--- response_body chomp
"Unprocessable entity"
--- error_log
chatterd: postimages: body is not multipart/form-data with a boundary



=== TEST 25: 422: no Content-Type at all
--- raw_request eval
::post(content_type => undef, parts => [::text_part(username => 'a'), ::text_part(message => 'b')])
--- error_code: 422
--- response_body chomp
"Unprocessable entity"
--- error_log
chatterd: postimages: body is not multipart/form-data with a boundary



=== TEST 26: 422: the body never has the boundary line
--- raw_request eval
::post(body => "username=a&message=b")
--- error_code: 422
--- response_body chomp
"Unprocessable entity"
--- error_log
chatterd: postimages: multipart body has no boundary line



=== TEST 27: 422: the body ends before its close delimiter, in the middle of an image
--- raw_request eval
::post(body => substr(::multipart_body('XyZ', ::text_part(username => 'a'), ::text_part(message => 'b'),
                                        ::image_part(::jpeg(20_000))), 0, 15_000))
--- error_code: 422
--- response_body chomp
"Unprocessable entity"
--- error_log
chatterd: postimages: multipart body ended before its close boundary



=== TEST 28: 422: bytes after a boundary
--- raw_request eval
::post(body => "--XyZ junk\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\na\r\n--XyZ--\r\n")
--- error_code: 422
--- response_body chomp
"Unprocessable entity"
--- error_log
chatterd: postimages: unexpected bytes after a multipart boundary



=== TEST 29: 422: a part without Content-Disposition, after an image part
--- raw_request eval
::post(body => ::multipart_body('XyZ', ::text_part(username => 'a'), ::image_part(::jpeg(5000)))
               =~ s/--XyZ--\r\n\z/--XyZ\r\nContent-Type: text\/plain\r\n\r\nb\r\n--XyZ--\r\n/r)
--- error_code: 422
--- response_body chomp
"Unprocessable entity"
--- error_log
chatterd: postimages: multipart part without Content-Disposition



=== TEST 30: 422: a part header line without a colon
--- raw_request eval
::post(body => "--XyZ\r\nContent-Disposition form-data; name=\"username\"\r\n\r\na\r\n--XyZ--\r\n")
--- error_code: 422
--- response_body chomp
"Unprocessable entity"
--- error_log
chatterd: postimages: multipart part header line without colon



=== TEST 31: 422: missing username
--- raw_request eval
::post(parts => [::text_part(message => 'b'), ::image_part(::jpeg(3000))])
--- error_code: 422
--- response_body chomp
"Unprocessable entity"
--- error_log
chatterd: postimages: form has no "username" part



=== TEST 32: 422: missing message
--- raw_request eval
::post(parts => [::text_part(username => 'a'), ::video_part(::mp4(3000))])
--- error_code: 422
--- response_body chomp
"Unprocessable entity"
--- error_log
chatterd: postimages: form has no "message" part



=== TEST 33: 422: the image sent as a text part (no filename)
--- raw_request eval
::post(parts => [::text_part(username => 'a'), ::text_part(message => 'b'), [name => 'image', value => ::jpeg(3000)]])
--- error_code: 422
--- response_body chomp
"Unprocessable entity"
--- error_log
chatterd: postimages: form part "image" is not a file



=== TEST 34: 422: the video sent as a text part, after a good image
--- raw_request eval
::post(parts => [::text_part(username => 'a'), ::text_part(message => 'b'), ::image_part(::jpeg(3000)),
                 [name => 'video', type => 'video/mp4', value => ::mp4(3000)]])
--- error_code: 422
--- response_body chomp
"Unprocessable entity"
--- error_log
chatterd: postimages: form part "video" is not a file



=== TEST 35: 422: username sent twice
--- raw_request eval
::post(parts => [::text_part(username => 'a'), ::text_part(message => 'b'), ::text_part(username => 'c')])
--- error_code: 422
--- response_body chomp
"Unprocessable entity"
--- error_log
chatterd: postimages: form part "username" sent twice



=== TEST 36: 422: image sent twice
--- raw_request eval
::post(parts => [::text_part(username => 'a'), ::text_part(message => 'b'),
                 ::image_part(::jpeg(3000)), ::image_part(::jpeg(3000, 2))])
--- error_code: 422
--- response_body chomp
"Unprocessable entity"
--- error_log
chatterd: postimages: form part "image" sent twice



=== TEST 37: 415: text bytes in the image part
--- raw_request eval
::post(parts => [::text_part(username => 'a'), ::text_part(message => 'b'),
                 ::image_part("<html><body>not an image</body></html>\n" x 10)])
--- error_code: 415
--- response_body chomp
"Unsupported media type"
--- response_headers
Content-Type: application/json
--- error_log
chatterd: postimages: media part "image" is not a supported image



=== TEST 38: 415: an empty image part
--- raw_request eval
::post(parts => [::text_part(username => 'a'), ::text_part(message => 'b'), ::image_part('')])
--- error_code: 415
--- response_body chomp
"Unsupported media type"
--- error_log
chatterd: postimages: media part "image" is not a supported image (0 bytes)



=== TEST 39: 415: JPEG bytes in the video part
--- raw_request eval
::post(parts => [::text_part(username => 'a'), ::text_part(message => 'b'), ::video_part(::jpeg(5000))])
--- error_code: 415
--- response_body chomp
"Unsupported media type"
--- error_log
chatterd: postimages: media part "video" is not a supported video



=== TEST 40: 415: MP4 video bytes in the image part
--- raw_request eval
::post(parts => [::text_part(username => 'a'), ::text_part(message => 'b'), ::image_part(::mp4(5000))])
--- error_code: 415
--- response_body chomp
"Unsupported media type"
--- error_log
chatterd: postimages: media part "image" is not a supported image



=== TEST 41: 415: audio-only MP4 (M4A) in the video part, after a good image
--- raw_request eval
::post(parts => [::text_part(username => 'a'), ::text_part(message => 'b'), ::image_part(::jpeg(5000)),
                 ::video_part(::m4a(5000))])
--- error_code: 415
--- response_body chomp
"Unsupported media type"
--- error_log
chatterd: postimages: media part "video" is not a supported video



=== TEST 42: 415: a 10-byte image part that starts like nothing we know
--- raw_request eval
::post(parts => [::image_part("\xFF\xD8\x00ABCDEFG"), ::text_part(username => 'a'), ::text_part(message => 'b')])
--- error_code: 415
--- response_body chomp
"Unsupported media type"
--- error_log
chatterd: postimages: media part "image" is not a supported image (10 bytes)



=== TEST 43: 503: the database is unreachable; the received file does not stay
--- http_config
chatterd_pg "host=127.0.0.1 port=1 dbname=x user=y";
chatterd_media_root $TEST_NGINX_MEDIA_ROOT;
--- raw_request eval
::post(parts => [::text_part(username => 'a'), ::text_part(message => 'b'), ::image_part(::jpeg(5000))])
--- error_code: 503
--- response_body chomp
"Service unavailable"
--- response_headers
Content-Type: application/json
--- error_log
chatterd: postgres (host=127.0.0.1 port=1 dbname=x user=y) cannot be reached



=== TEST 44: 422: a message that is not UTF-8 (Latin-1 "café"), as postchatt answers it; no file stays
--- raw_request eval
::post(parts => [::text_part(username => 'a'), ::text_part(message => "caf\xE9"), ::image_part(::jpeg(5000))])
--- error_code: 422
--- response_body chomp
"Unprocessable entity"
--- response_headers
Content-Type: application/json
--- error_log eval
[qr/\[info\] .*chatterd: postimages: form part "message" is not UTF-8 \(byte 3\)/]
--- no_error_log
SQLSTATE



=== TEST 45: 405: GET /postimages, with Allow: POST
--- request
GET /postimages
--- error_code: 405
--- response_body chomp
"Method not allowed"
--- response_headers
Allow: POST
--- no_error_log
[error]



=== TEST 46: 405: GET /postimages/ too
--- request
GET /postimages/
--- error_code: 405
--- response_headers
Allow: POST
--- no_error_log
[error]



=== TEST 47: 405: HEAD /postimages
--- request
HEAD /postimages
--- error_code: 405
--- response_headers
Allow: POST
--- no_error_log
[error]



=== TEST 48: 422: a NUL byte in username (libpq would cut the text there); the received image does not stay
--- raw_request eval
::post(parts => [::text_part(username => "ali\0ce"), ::text_part(message => 'b'), ::image_part(::jpeg(5000, 18))])
--- error_code: 422
--- response_body chomp
"Unprocessable entity"
--- response_headers
Content-Type: application/json
--- error_log
chatterd: postimages: form part "username" contains a NUL byte



=== TEST 49: 422: a NUL byte at the end of message, chunked body with a video
--- raw_request eval
::post(chunks => [4096], parts => [::text_part(username => 'a'), ::video_part(::mp4(20_000, 19)),
                                   ::text_part(message => "hello\0")])
--- error_code: 422
--- response_body chomp
"Unprocessable entity"
--- error_log
chatterd: postimages: form part "message" contains a NUL byte



=== TEST 50: 422: a message that is a single NUL byte, text fields only
--- raw_request eval
::post(parts => [::text_part(username => 'a'), ::text_part(message => "\0")])
--- error_code: 422
--- response_body chomp
"Unprocessable entity"
--- error_log
chatterd: postimages: form part "message" contains a NUL byte



=== TEST 51: 422: a username of invalid UTF-8 bytes ("bad\xFF\xFE") with an image and a video: no file, no row
--- raw_request eval
::post(parts => [::text_part(username => "bad\xFF\xFE"), ::text_part(message => 'b'),
                 ::image_part(::jpeg(5000, 20)), ::video_part(::mp4(5000, 21))])
--- error_code: 422
--- response_body chomp
"Unprocessable entity"
--- error_log eval
[qr/\[info\] .*chatterd: postimages: form part "username" is not UTF-8 \(byte 3\)/]
--- no_error_log
SQLSTATE



=== TEST 52: 422: UTF-8 PostgreSQL refuses (an overlong NUL, an encoded surrogate), text fields only
--- raw_request eval
::post(parts => [::text_part(username => "a\xC0\x80"), ::text_part(message => "\xED\xA0\x80")])
--- error_code: 422
--- error_log
form part "username" is not UTF-8 (byte 1)



=== TEST 53: the URL host may be an IPv4 address or an IPv6 literal, with a port
--- init
::expect(username => 'v6', message => 'literal', prefix => 'v6', base => 'http://[::1]:8080/media/',
         image => [::jpeg(1000, 22), 'jpeg', 'image/jpeg'])
--- raw_request eval
::post(host => '[::1]:8080', parts => [::text_part(username => 'v6'), ::text_part(message => 'literal'),
                                       ::image_part(::jpeg(1000, 22))])
--- response_body chomp
{}
--- no_error_log
[error]



=== TEST 54: 400: a Host with userinfo ("chatter.example@evil.example") would point every app at evil.example
--- raw_request eval
::post(host => 'chatter.example@evil.example', parts => [::text_part(username => 'a'), ::text_part(message => 'b'),
                                                         ::image_part(::jpeg(5000, 23))])
--- error_code: 400
--- response_body chomp
"Invalid Host header"
--- response_headers
Content-Type: application/json
--- error_log eval
[qr/\[info\] .*chatterd: postimages: Host "chatter\.example\@evil\.example" is not a host media URLs can be built from/]
--- no_error_log
[error]



=== TEST 55: 400: a Host of markup ('"><script>'), nothing stored
--- raw_request eval
::post(host => '"><script>', parts => [::text_part(username => 'a'), ::text_part(message => 'b'),
                                       ::image_part(::jpeg(5000, 24))])
--- error_code: 400
--- response_body chomp
"Invalid Host header"
--- error_log
is not a host media URLs can be built from



=== TEST 56a: 400: a Host that is not plainly a host: a backslash
--- raw_request eval
::post(host => 'evil.example\\x', parts => [::text_part(username => 'a'), ::text_part(message => 'b'), ::image_part(::jpeg(500, 25))])
--- error_code: 400
--- response_body chomp
"Invalid Host header"



=== TEST 56b: 400: a Host that is not plainly a host: a quote
--- raw_request eval
::post(host => "it's.example", parts => [::text_part(username => 'a'), ::text_part(message => 'b'), ::image_part(::jpeg(500, 25))])
--- error_code: 400
--- response_body chomp
"Invalid Host header"



=== TEST 56c: 400: a Host that is not plainly a host: a port that is not digits
--- raw_request eval
::post(host => 'chatter.example:80x', parts => [::text_part(username => 'a'), ::text_part(message => 'b'), ::image_part(::jpeg(500, 25))])
--- error_code: 400
--- response_body chomp
"Invalid Host header"



=== TEST 56d: 400: a Host that is not plainly a host: a bracket left open
--- raw_request eval
::post(host => '[::1', parts => [::text_part(username => 'a'), ::text_part(message => 'b'), ::image_part(::jpeg(500, 25))])
--- error_code: 400
--- response_body chomp
"Invalid Host header"



=== TEST 56e: 400: a Host that is not plainly a host: a port over 65535
--- raw_request eval
::post(host => 'chatter.example:99999', parts => [::text_part(username => 'a'), ::text_part(message => 'b'), ::image_part(::jpeg(500, 25))])
--- error_code: 400
--- response_body chomp
"Invalid Host header"



=== TEST 57: an absolute chatterd_media_url does not depend on the Host, which is not checked then
--- config eval
$::Config =~ s/chatterd postimages;/chatterd postimages; chatterd_media_url https:\/\/chatter.example.org\/media\/;/r
--- init
::expect(username => 'abs', message => 'any host', prefix => 'abs', base => 'https://chatter.example.org/media/',
         image => [::jpeg(1000, 26), 'jpeg', 'image/jpeg'])
--- raw_request eval
::post(host => 'chatter.example@evil.example', parts => [::text_part(username => 'abs'), ::text_part(message => 'any host'),
                                                         ::image_part(::jpeg(1000, 26))])
--- response_body chomp
{}
--- no_error_log
[error]
