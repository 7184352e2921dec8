# POST /postchatt (API.md): a JSON object {"username", "message"} -> 200 {} and one row;
# 422 "Unprocessable entity" for malformed JSON, a body that is not an object, missing keys,
# non-string values and unpaired surrogate escapes (and no row); 400 "Message too long" past
# varchar(255) (characters, not bytes); 503 when PostgreSQL is unreachable; 500 on another
# database error, logged on one line with its request context; 405 with Allow: POST for other
# methods; the trailing-slash route; chunked bodies and bodies larger than
# client_body_buffer_size (taken as they arrive, never from a temporary file); 413 "Payload
# too large" for a body over 16 KiB (more than a valid chatt can be), announced by its
# Content-Length (answered before any body byte) or delivered by a chunked body.
# UTF-8 (emoji, CJK, quotes, backslashes, control characters) and SQL-looking text are
# round-tripped through getchatts and compared decoded (JSON::PP) and as exact bytes, as
# Python's JSONResponse writes them (ensure_ascii=False, compact, \u00xx in lower-case hex).
#
# Every block empties the table itself in --- init, so the blocks run in any order.
use strict; use warnings;
use FindBin; BEGIN { push @INC, "$FindBin::Bin/lib" }
use Test::Nginx::Socket 'no_plan';
use Chatterd::Db ();
use Chatterd::Suite ();
use JSON::PP ();

Chatterd::Suite::setup(row_length => 4);   # --- json_rows: getchatts answers
our ($UUID, $TIME);   # set by Chatterd::Suite::setup

# --- db_rows eval: {request index => [[username, message], ...]}: what the table holds right
# after that request, read with psql (oldest first), as Perl character strings.
add_response_body_check(sub {
    my ($block, $body, $idx, $rep, $dry_run) = @_;
    return if $dry_run || !defined $block->db_rows;
    my $expected = $block->db_rows->{$idx} // return;
    # Hex, because psql's output separators (\x1e, \x1f) may be in the text.
    my @rows = map { [map { defined $_ ? main::from_hex_utf8($_) : undef } @$_] }
               Chatterd::Db::sql(q{SELECT encode(convert_to(username, 'UTF8'), 'hex'),
                                          encode(convert_to(message, 'UTF8'), 'hex')
                                   FROM chatts ORDER BY time, id});
    is_deeply(\@rows, $expected, $block->name . " - rows in the database (req $idx)");
});

# ---- helpers for the eval sections (called as main::...) ----

sub main::from_hex_utf8 {
    my $text = pack 'H*', $_[0];
    utf8::decode($text) or die "not UTF-8: $_[0]\n";
    return $text;
}

# "POST /postchatt\n<body>" with a body from a Perl structure: raw UTF-8, or (ascii) with
# \uXXXX escapes, surrogate pairs for astral characters.
sub main::post_json {
    my ($data, %opt) = @_;
    my $json = JSON::PP->new->canonical;
    $json = $opt{ascii} ? $json->ascii : $json->utf8;
    return "POST " . ($opt{uri} // '/postchatt') . "\n" . $json->encode($data);
}

# A JSON string literal as Python's json.dumps(ensure_ascii=False) writes it, UTF-8 encoded.
sub main::py_json_string {
    my ($text) = @_;
    my %short = ("\"" => '\\"', "\\" => '\\\\', "\n" => '\\n', "\r" => '\\r', "\t" => '\\t',
                 "\x08" => '\\b', "\x0c" => '\\f');
    $text =~ s{(["\\\x00-\x1f])}{$short{$1} // sprintf('\\u%04x', ord $1)}ge;
    my $json = qq{"$text"};
    utf8::encode($json);    # lax: noncharacters such as U+10FFFF are valid in JSON and SQL text
    return $json;
}

# Regex for the getchatts body holding exactly one row (username, message): exact bytes.
sub main::one_row_like {
    my ($username, $message) = @_;
    my $cell = sub {
        return quotemeta main::py_json_string($_[0]);
    };
    return '\A\[\[' . $cell->($username) . ',' . $cell->($message)
         . ",\"$UUID\",\"$TIME\"\\]\\]\\z";
}

# The (username, message) pairs that TEST 6-9 post and then expect back through getchatts
# (response_body_like, json_rows) and in the table (db_rows): each text written once.
our %Pair = (
    utf8    => ["\x{30b8}\x{30e7}\x{30f3} \x{1F468}\x{200D}\x{1F469}\x{200D}\x{1F467}",
                qq{\x{4f60}\x{597d}\x{ff01} caf\x{e9} e\x{301} "quoted" 'single' back\\slash \\\\ a/b \x{1F600}\x{2764}\x{FE0F}}],
    escaped => ["\x{30b8}\x{30e7}\x{30f3}\x{1F600}", qq{\x{4f60}\x{597d} "q" \\ \x{1F4F7}\x{10FFFF}}],
    control => ["tab\there\x{7f}", "line1\nline2\r\nbell\x07 bs\x08 ff\x0c esc\x1b us\x1f \x{2028}\x{2029}"],
    sql     => [q{alice'); DROP TABLE chatts; --}, q{' OR '1'='1' -- $1 $2 %s %% \\' E'\\x00' $$ ; SELECT pg_sleep(10);}],
);

# The usual pair of requests: post the chatt, then read it back.
sub main::round_trip {
    my ($username, $message, %opt) = @_;
    return [main::post_json({username => $username, message => $message}, %opt),
            'GET /getchatts'];
}

run_tests();

__DATA__

=== TEST 1: a chatt is stored: 200 {} (application/json), then getchatts returns it
--- init
Chatterd::Db::truncate_chatts();
--- request eval
main::round_trip('alice', 'hello world')
--- more_headers
Content-Type: application/json
--- error_code eval
[200, 200]
--- response_headers eval
["Content-Type: application/json\nContent-Length: 2", "Content-Type: application/json"]
--- response_body_like eval
['\A\{\}\z', main::one_row_like('alice', 'hello world')]
--- json_rows eval
{1 => [['alice', 'hello world', 'UUID', 'TIME']]}
--- db_rows eval
{0 => [['alice', 'hello world']]}
--- no_error_log
[error]
[alert]



=== TEST 2: the trailing-slash route; key order and unknown keys do not matter
--- init
Chatterd::Db::truncate_chatts();
--- request eval
["POST /postchatt/\n{\"message\":\"m\",\"extra\":{\"username\":\"nested\",\"list\":[1,2,{}]},\"username\":\"u\",\"n\":-1.5e3,\"t\":true,\"z\":null}",
 "GET /getchatts"]
--- more_headers
Content-Type: application/json
--- error_code eval
[200, 200]
--- response_body_like eval
['\A\{\}\z', main::one_row_like('u', 'm')]
--- json_rows eval
{1 => [['u', 'm', 'UUID', 'TIME']]}



=== TEST 3: whitespace around the JSON and inside it is fine
--- init
Chatterd::Db::truncate_chatts();
--- request eval
["POST /postchatt\n{ \"username\" :\t\"u\" ,\r\n \"message\" : \"m\" }", "GET /getchatts"]
--- error_code eval
[200, 200]
--- json_rows eval
{1 => [['u', 'm', 'UUID', 'TIME']]}



=== TEST 4: duplicate keys: the last one wins, as with Python's json.loads
--- init
Chatterd::Db::truncate_chatts();
--- request eval
["POST /postchatt\n{\"username\":\"first\",\"message\":\"m1\",\"username\":\"second\",\"message\":\"m2\"}",
 "GET /getchatts"]
--- error_code eval
[200, 200]
--- json_rows eval
{1 => [['second', 'm2', 'UUID', 'TIME']]}



=== TEST 5: empty strings are stored as empty strings, not NULL
--- init
Chatterd::Db::truncate_chatts();
--- request eval
main::round_trip('', '')
--- error_code eval
[200, 200]
--- response_body_like eval
['\A\{\}\z', main::one_row_like('', '')]
--- json_rows eval
{1 => [['', '', 'UUID', 'TIME']]}



=== TEST 6: emoji, CJK, accents, quotes, backslashes and slash sent as raw UTF-8
--- init
Chatterd::Db::truncate_chatts();
--- request eval
main::round_trip(@{$::Pair{utf8}})
--- error_code eval
[200, 200]
--- response_body_like eval
['\A\{\}\z', main::one_row_like(@{$::Pair{utf8}})]
--- json_rows eval
{1 => [[@{$::Pair{utf8}}, 'UUID', 'TIME']]}
--- db_rows eval
{0 => [$::Pair{utf8}]}
--- no_error_log
[error]



=== TEST 7: the same text sent with \uXXXX escapes (surrogate pairs for emoji) is stored decoded
--- init
Chatterd::Db::truncate_chatts();
--- request eval
main::round_trip(@{$::Pair{escaped}}, ascii => 1)
--- error_code eval
[200, 200]
--- response_body_like eval
['\A\{\}\z', main::one_row_like(@{$::Pair{escaped}})]
--- json_rows eval
{1 => [[@{$::Pair{escaped}}, 'UUID', 'TIME']]}



=== TEST 8: control characters are stored and escaped on the way out (\b \f \n \r \t short)
--- init
Chatterd::Db::truncate_chatts();
--- request eval
main::round_trip(@{$::Pair{control}})
--- error_code eval
[200, 200]
--- response_body_like eval
['\A\{\}\z', main::one_row_like(@{$::Pair{control}})]
--- json_rows eval
{1 => [[@{$::Pair{control}}, 'UUID', 'TIME']]}
--- db_rows eval
{0 => [$::Pair{control}]}



=== TEST 9: SQL-looking input is stored verbatim (parameterised query); the table survives
--- init
Chatterd::Db::truncate_chatts();
--- request eval
main::round_trip(@{$::Pair{sql}})
--- error_code eval
[200, 200]
--- response_body_like eval
['\A\{\}\z', main::one_row_like(@{$::Pair{sql}})]
--- json_rows eval
{1 => [[@{$::Pair{sql}}, 'UUID', 'TIME']]}
--- db_rows eval
{0 => [$::Pair{sql}]}
--- no_error_log
[error]



=== TEST 10: 255 characters fit, also when each is 4 bytes in UTF-8
--- init
Chatterd::Db::truncate_chatts();
--- request eval
[main::post_json({username => 'u' x 255, message => "\x{1F600}" x 255}), 'GET /getchatts']
--- error_code eval
[200, 200]
--- json_rows eval
{1 => [['u' x 255, "\x{1F600}" x 255, 'UUID', 'TIME']]}



=== TEST 11: a message of 256 characters: 400 "Message too long", nothing stored
--- init
Chatterd::Db::truncate_chatts();
--- request eval
main::post_json({username => 'alice', message => 'm' x 256})
--- error_code: 400
--- response_headers
Content-Type: application/json
--- response_body chomp
"Message too long"
--- db_rows eval
{0 => []}
--- error_log
SQLSTATE 22001



=== TEST 12: a username of 256 characters (multi-byte): 400 "Message too long", nothing stored
--- init
Chatterd::Db::truncate_chatts();
--- request eval
[main::post_json({username => "\x{30b8}" x 256, message => 'hi'}), 'GET /getchatts']
--- error_code eval
[400, 200]
--- response_body eval
['"Message too long"', '[]']



=== TEST 13: malformed JSON: 422 "Unprocessable entity", nothing stored
--- init
Chatterd::Db::truncate_chatts();
--- request eval
["POST /postchatt\n{",
 "POST /postchatt\n{\"username\":\"a\",\"message\":\"b\"",
 "POST /postchatt\n{\"username\":\"a\",\"message\":\"b\",}",
 "POST /postchatt\n{\"username\":\"a\",\"message\":\"b\"} x",
 "POST /postchatt\n{\"username\":\"a\",\"message\":\"b\"}{\"username\":\"a\",\"message\":\"b\"}",
 "POST /postchatt\n{'username':'a','message':'b'}",
 "POST /postchatt\n{username:\"a\",message:\"b\"}",
 "POST /postchatt\n{\"username\":\"a\",/* c */\"message\":\"b\"}",
 "POST /postchatt\n{\"username\":\"a\",\"message\":\"b\\x41\"}",
 "POST /postchatt\n{\"username\":\"a\",\"message\":\"b\nc\"}",
 "POST /postchatt\nusername=a&message=b"]
--- more_headers
Content-Type: application/json
--- error_code eval
[(422) x 11]
--- response_headers eval
[("Content-Type: application/json") x 11]
--- response_body eval
[('"Unprocessable entity"') x 11]
--- db_rows eval
{10 => []}
--- error_log
chatterd: postchatt body rejected: malformed JSON



=== TEST 14: an empty body: 422
--- init
Chatterd::Db::truncate_chatts();
--- request eval
["POST /postchatt", "POST /postchatt/", "GET /getchatts"]
--- error_code eval
[422, 422, 200]
--- response_body eval
['"Unprocessable entity"', '"Unprocessable entity"', '[]']



=== TEST 15: valid JSON that is not an object: 422
--- init
Chatterd::Db::truncate_chatts();
--- request eval
["POST /postchatt\n[\"alice\",\"hello\"]",
 "POST /postchatt\n\"alice\"",
 "POST /postchatt\nnull",
 "POST /postchatt\n42",
 "POST /postchatt\ntrue",
 "POST /postchatt\n[{\"username\":\"a\",\"message\":\"b\"}]"]
--- error_code eval
[(422) x 6]
--- response_body eval
[('"Unprocessable entity"') x 6]
--- db_rows eval
{5 => []}
--- error_log
chatterd: postchatt body rejected: not a JSON object



=== TEST 16: a missing username key (also one present only in a nested object): 422
The missing message key is TEST 30.
--- init
Chatterd::Db::truncate_chatts();
--- request eval
["POST /postchatt\n{}",
 "POST /postchatt\n{\"message\":\"b\"}",
 "POST /postchatt\n{\"Username\":\"a\",\"Message\":\"b\"}",
 "POST /postchatt\n{\"chatt\":{\"username\":\"a\",\"message\":\"b\"}}",
 "POST /postchatt\n{\"username \":\"a\",\"message\":\"b\"}"]
--- error_code eval
[(422) x 5]
--- response_body eval
[('"Unprocessable entity"') x 5]
--- db_rows eval
{4 => []}
--- error_log
missing key "username"



=== TEST 17: a username that is not a string: 422
A message that is not a string is TEST 31.
--- init
Chatterd::Db::truncate_chatts();
--- request eval
["POST /postchatt\n{\"username\":1,\"message\":\"b\"}",
 "POST /postchatt\n{\"username\":null,\"message\":null}",
 "POST /postchatt\n{\"username\":true,\"message\":\"b\"}",
 "POST /postchatt\n{\"username\":{\"name\":\"a\"},\"message\":\"b\"}"]
--- error_code eval
[(422) x 4]
--- response_body eval
[('"Unprocessable entity"') x 4]
--- db_rows eval
{3 => []}
--- error_log
"username" is not a string



=== TEST 18: text PostgreSQL could not store: invalid UTF-8, NUL, a lone low surrogate: 422
--- init
Chatterd::Db::truncate_chatts();
--- request eval
["POST /postchatt\n{\"username\":\"a\xff\",\"message\":\"b\"}",
 "POST /postchatt\n{\"username\":\"a\",\"message\":\"\xc0\xafb\"}",
 "POST /postchatt\n{\"username\":\"a\",\"message\":\"\xed\xa0\x80\"}",
 "POST /postchatt\n{\"username\":\"a\",\"message\":\"\xf4\x90\x80\x80\"}",
 "POST /postchatt\n{\"username\":\"a\",\"message\":\"b\\u0000c\"}",
 "POST /postchatt\n{\"username\":\"\\udc00x\",\"message\":\"b\"}",
 "GET /getchatts"]
--- error_code eval
[(422) x 6, 200]
--- response_body eval
[('"Unprocessable entity"') x 6, '[]']
--- no_error_log
[alert]
[crit]



=== TEST 19: a chunked request body, chunks splitting keys and values
--- init
Chatterd::Db::truncate_chatts();
--- raw_request eval
"POST /postchatt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
. "b\r\n{\"username\"\r\n" . "f\r\n:\"chunky\",\"mess\r\n" . "d\r\nage\":\"bacon\"}\r\n" . "0\r\n\r\n"
--- error_code: 200
--- response_body chomp
{}
--- db_rows eval
{0 => [['chunky', 'bacon']]}
--- no_error_log
[error]



=== TEST 20: a body larger than client_body_buffer_size is taken as it arrives, never from a temporary file
--- init
Chatterd::Db::truncate_chatts();
--- config
client_body_buffer_size 1k;
location ~ ^/postchatt/?$  { chatterd postchatt; }
--- request eval
main::post_json({padding => 'p' x 6000, username => "big\x{1F600}", message => "\x{4e2d}" x 255})
--- error_code: 200
--- response_body chomp
{}
--- db_rows eval
{0 => [["big\x{1F600}", "\x{4e2d}" x 255]]}
--- no_error_log
a client request body is buffered to a temporary file
[error]



=== TEST 21: a body over client_max_body_size: 413 from nginx, nothing stored
--- init
Chatterd::Db::truncate_chatts();
--- config
location ~ ^/getchatts/?$  { chatterd getchatts; }
location ~ ^/postchatt/?$  { chatterd postchatt; client_max_body_size 1k; }
--- request eval
[main::post_json({padding => 'p' x 2000, username => 'a', message => 'b'}), 'GET /getchatts']
--- error_code eval
[413, 200]
--- response_body_like eval
['413', '\A\[\]\z']



=== TEST 22: other methods: 405, Allow: POST, JSON body "Method not allowed"
--- init
Chatterd::Db::truncate_chatts();
--- request eval
["GET /postchatt", "GET /postchatt/", "PUT /postchatt\n{\"username\":\"a\",\"message\":\"b\"}", "DELETE /postchatt", "PATCH /postchatt/\n{}", "GET /getchatts"]
--- error_code eval
[405, 405, 405, 405, 405, 200]
--- response_headers eval
[("Allow: POST\nContent-Type: application/json") x 5, "!Allow"]
--- response_body eval
[('"Method not allowed"') x 5, '[]']



=== TEST 23: HEAD: 405 with Allow: POST and no body
--- request
HEAD /postchatt
--- error_code: 405
--- response_headers
Allow: POST
Content-Type: application/json
Content-Length: 20
--- response_body chomp



=== TEST 24: PostgreSQL unreachable: 503 "Service unavailable", and the log says why
--- http_config
chatterd_pg "$TEST_NGINX_PG_DOWN";
--- config
location ~ ^/postchatt/?$  { chatterd postchatt; }
--- request eval
main::post_json({username => 'alice', message => 'lost'})
--- error_code: 503
--- response_headers
Content-Type: application/json
--- response_body chomp
"Service unavailable"
--- error_log
postgres (host=/nonexistent/chatterd-test port=5432 dbname=chatterdb user=chatter) cannot be reached
--- timeout: 3
--- no_error_log
[alert]



=== TEST 25: another database error (no chatts table): 500 with a JSON string naming what failed
--- http_config
chatterd_pg "$TEST_NGINX_PG_NO_TABLE";
--- config
location ~ ^/postchatt/?$  { chatterd postchatt; }
--- request eval
main::post_json({username => 'alice', message => 'nowhere'})
--- error_code: 500
--- response_headers
Content-Type: application/json
--- response_body chomp
"Database error while storing the chatt"
--- error_log
relation "chatts" does not exist
--- no_error_log
[alert]



=== TEST 26: a lone high-surrogate escape (not followed by a low one): 422, nothing stored
yajl would turn it into "?" and the row would hold text the client never sent.
--- init
Chatterd::Db::truncate_chatts();
--- request eval
["POST /postchatt\n{\"username\":\"a\",\"message\":\"\\ud800\"}",
 "POST /postchatt\n{\"username\":\"a\",\"message\":\"a\\ud83d\"}",
 "POST /postchatt\n{\"username\":\"a\",\"message\":\"\\ud800\\u0041bc\"}",
 "POST /postchatt\n{\"username\":\"\\uDBFF\",\"message\":\"b\"}",
 "POST /postchatt\n{\"username\":\"a\",\"message\":\"\\ud83d\\ud83d\\ude00\"}",
 "POST /postchatt\n{\"username\":\"a\",\"message\":\"\\ud83d\\\\ude00\"}",
 "POST /postchatt\n{\"username\":\"a\",\"message\":\"\\ud83d\\ude00\\ud83d\"}"]
--- error_code eval
[(422) x 7]
--- response_headers eval
[("Content-Type: application/json") x 7]
--- response_body eval
[('"Unprocessable entity"') x 7]
--- db_rows eval
{6 => []}
--- error_log
unpaired surrogate escape
--- no_error_log
[alert]
[crit]



=== TEST 27: a surrogate pair "\ud83d\ude00" (either case) is stored as the emoji U+1F600
--- init
Chatterd::Db::truncate_chatts();
--- request eval
["POST /postchatt\n{\"username\":\"\\ud83d\\ude00\",\"message\":\"smile \\uD83D\\uDE00!\"}", "GET /getchatts"]
--- error_code eval
[200, 200]
--- response_body_like eval
['\A\{\}\z', main::one_row_like("\x{1F600}", "smile \x{1F600}!")]
--- json_rows eval
{1 => [["\x{1F600}", "smile \x{1F600}!", 'UUID', 'TIME']]}
--- db_rows eval
{0 => [["\x{1F600}", "smile \x{1F600}!"]]}
--- no_error_log
[error]



=== TEST 28: an INSERT error is logged on one line, with its request context (message of 256: 400)
libpq's message ends with a newline; the ", client: ..." nginx appends must stay on its line.
--- init
Chatterd::Db::truncate_chatts();
--- request eval
main::post_json({username => 'alice', message => 'm' x 256})
--- error_code: 400
--- response_body chomp
"Message too long"
--- error_log eval
[qr/\[info\] .*chatterd: postchatt: a value is too long for its column \(SQLSTATE 22001\): .*value too long.*; 400, client: 127\.0\.0\.1, server: /]
--- no_error_log eval
[qr/^(?!\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d ).*, client: \d/]



=== TEST 29: an INSERT error whose libpq message has several lines (no chatts table) is logged on one line
PostgreSQL adds "LINE 1: ..." and a caret line to this one.
--- http_config
chatterd_pg "$TEST_NGINX_PG_NO_TABLE";
--- config
location ~ ^/postchatt/?$  { chatterd postchatt; }
--- request eval
main::post_json({username => 'alice', message => 'nowhere'})
--- error_code: 500
--- response_body chomp
"Database error while storing the chatt"
--- error_log eval
[qr/\[error\] .*chatterd: postchatt: the INSERT failed \(SQLSTATE 42P01\): .*relation "chatts" does not exist.*check the chatts table.*, client: 127\.0\.0\.1, server: /]
--- no_error_log eval
[qr/^(?!\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d ).*, client: \d/, qr/^LINE \d+: /]



=== TEST 30: the largest valid chatt, 255 astral characters escaped as surrogate pairs in each value (6 KiB), is stored
--- init
Chatterd::Db::truncate_chatts();
--- request eval
[main::post_json({username => "\x{1F600}" x 255, message => "\x{1F468}" x 255}, ascii => 1), 'GET /getchatts']
--- error_code eval
[200, 200]
--- json_rows eval
{1 => [["\x{1F600}" x 255, "\x{1F468}" x 255, 'UUID', 'TIME']]}



=== TEST 31: a body whose Content-Length is over 16 KiB: 413 "Payload too large" at once, before any body byte is read
Only the head is sent: the answer cannot wait for the 20 MB it announces, and the connection
closes right after it (the runner reads until then).
--- init
Chatterd::Db::truncate_chatts();
--- raw_request eval
"POST /postchatt HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 20000000\r\n\r\n"
--- error_code: 413
--- response_body chomp
"Payload too large"
--- response_headers
Content-Type: application/json
Connection: close
--- error_log eval
[qr/\[info\] .*chatterd: postchatt: the body announces more than 16384 bytes/]
--- no_error_log
[error]
--- timeout: 5



=== TEST 32: 16385 bytes with Content-Length (a valid JSON object padded): 413; 16384 bytes are read
--- init
Chatterd::Db::truncate_chatts();
--- request eval
[map { my $json = '{"username":"a","message":"b","padding":"' . ('p' x ($_ - 43)) . '"}';
       length($json) == $_ or die length($json); "POST /postchatt\n$json" } 16385, 16384]
--- error_code eval
[413, 200]
--- db_rows eval
{0 => [], 1 => [['a', 'b']]}



=== TEST 33: a chunked body that delivers more than 16 KiB: 413 as soon as the bytes cross it, nothing stored
--- init
Chatterd::Db::truncate_chatts();
--- raw_request eval
# CORE::join: under the real Test::Nginx, Test::Base exports a filter named join.
my $json = '{"username":"a","message":"b","padding":"' . ('p' x 40000) . '"}';
"POST /postchatt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
. CORE::join('', map { sprintf("%x\r\n%s\r\n", length $_, $_) } unpack('(a4096)*', $json)) . "0\r\n\r\n"
--- error_code: 413
--- response_body chomp
"Payload too large"
--- db_rows eval
{0 => []}
--- error_log eval
[qr/\[info\] .*chatterd: postchatt: the body delivered more than 16384 bytes/]
--- no_error_log
[error]



=== TEST 34: a missing message key: 422
--- init
Chatterd::Db::truncate_chatts();
--- request eval
["POST /postchatt\n{\"username\":\"a\"}",
 "POST /postchatt\n{\"username\":\"a\",\"Message\":\"b\"}",
 "POST /postchatt\n{\"username\":\"a\",\"chatt\":{\"message\":\"b\"}}"]
--- error_code eval
[(422) x 3]
--- response_body eval
[('"Unprocessable entity"') x 3]
--- db_rows eval
{2 => []}
--- error_log
missing key "message"



=== TEST 35: a message that is not a string: 422
--- init
Chatterd::Db::truncate_chatts();
--- request eval
["POST /postchatt\n{\"username\":\"a\",\"message\":null}",
 "POST /postchatt\n{\"username\":\"a\",\"message\":1.5}",
 "POST /postchatt\n{\"username\":\"a\",\"message\":[\"b\"]}",
 "POST /postchatt\n{\"username\":\"a\",\"message\":123456789012345678901234567890}"]
--- error_code eval
[(422) x 4]
--- response_body eval
[('"Unprocessable entity"') x 4]
--- db_rows eval
{3 => []}
--- error_log
"message" is not a string
