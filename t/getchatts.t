# GET /getchatts (API.md): 200 with a JSON array of 4-element arrays [username, message, id,
# time], oldest first; time in Python's isoformat (T, six fraction digits or none); SQL NULL as
# null; strings escaped as Python's JSONResponse escapes them; HEAD; the trailing-slash route;
# 405 with Allow for other methods; 503 when PostgreSQL is unreachable; 500 on a query error,
# logged on one line with its request context.
#
# Every block seeds the table itself in --- init, so the blocks run in any order. Rows carry
# explicit ids and times where the exact body is compared.
use strict; use warnings;
use FindBin; BEGIN { push @INC, "$FindBin::Bin/lib" }
use Test::Nginx::Socket 'no_plan';
use Chatterd::Db ();
use Chatterd::Suite ();
use JSON::PP ();

our ($UUID, $TIME);   # set by Chatterd::Suite::setup
Chatterd::Suite::setup(row_length => 4);

run_tests();

__DATA__

=== TEST 1: empty table: an empty JSON array
--- init
Chatterd::Db::truncate_chatts();
--- request
GET /getchatts
--- response_headers
Content-Type: application/json
Content-Length: 2
--- response_body chomp
[]
--- no_error_log
[error]
[alert]



=== TEST 2: rows oldest first whatever the insertion order, 4 elements each, exact bytes
--- init
Chatterd::Db::truncate_chatts();
Chatterd::Db::sql(q{INSERT INTO chatts (username, message, id, time) VALUES
  ('carol', 'third',  '00000000-0000-4000-8000-000000000003', '2025-01-29 19:03:14.5'),
  ('alice', 'first',  '00000000-0000-4000-8000-000000000001', '2025-01-29 19:03:12.123456'),
  ('bob',   'second', '00000000-0000-4000-8000-000000000002', '2025-01-29 19:03:13')});
--- request
GET /getchatts
--- response_headers
Content-Type: application/json
--- response_body chomp
[["alice","first","00000000-0000-4000-8000-000000000001","2025-01-29T19:03:12.123456"],["bob","second","00000000-0000-4000-8000-000000000002","2025-01-29T19:03:13"],["carol","third","00000000-0000-4000-8000-000000000003","2025-01-29T19:03:14.500000"]]
--- no_error_log
[error]



=== TEST 3: time: 'T', six fraction digits when microseconds are non-zero, none when zero
--- init
Chatterd::Db::truncate_chatts();
Chatterd::Db::sql(q{INSERT INTO chatts (username, message, id, time) VALUES
  ('a', '.12',     '00000000-0000-4000-8000-00000000000a', '2025-01-29 19:03:12.12'),
  ('b', 'zero',    '00000000-0000-4000-8000-00000000000b', '2025-01-29 19:03:12'),
  ('c', '.000001', '00000000-0000-4000-8000-00000000000c', '2025-01-29 19:03:12.000001'),
  ('d', '.999999', '00000000-0000-4000-8000-00000000000d', '2025-01-29 23:59:59.999999'),
  ('e', 'midnight','00000000-0000-4000-8000-00000000000e', '2025-01-30 00:00:00'),
  ('f', 'year 999','00000000-0000-4000-8000-00000000000f', '0999-03-04 05:06:07.1'),
  ('g', '.000000', '00000000-0000-4000-8000-000000000010', '2026-12-31 23:59:59.000000')});
--- request
GET /getchatts
--- response_body chomp
[["f","year 999","00000000-0000-4000-8000-00000000000f","0999-03-04T05:06:07.100000"],["b","zero","00000000-0000-4000-8000-00000000000b","2025-01-29T19:03:12"],["c",".000001","00000000-0000-4000-8000-00000000000c","2025-01-29T19:03:12.000001"],["a",".12","00000000-0000-4000-8000-00000000000a","2025-01-29T19:03:12.120000"],["d",".999999","00000000-0000-4000-8000-00000000000d","2025-01-29T23:59:59.999999"],["e","midnight","00000000-0000-4000-8000-00000000000e","2025-01-30T00:00:00"],["g",".000000","00000000-0000-4000-8000-000000000010","2026-12-31T23:59:59"]]
--- no_error_log
[error]



=== TEST 4: the column default gives a current time in the API form
--- init
Chatterd::Db::truncate_chatts();
Chatterd::Db::sql(q{INSERT INTO chatts (username, message) VALUES ('now', 'default time')});
--- request
GET /getchatts
--- response_body_like eval
qr/\A\[\["now","default time","$main::UUID","$main::TIME"\]\]\z/
--- json_rows eval
{0 => [['now', 'default time', 'UUID', 'TIME']]}



=== TEST 5: SQL NULL is JSON null (NULL times sort last)
--- init
Chatterd::Db::truncate_chatts();
Chatterd::Db::sql(q{INSERT INTO chatts (username, message, id, time) VALUES
  (NULL, NULL, '00000000-0000-4000-8000-000000000002', NULL),
  (NULL, 'no user', '00000000-0000-4000-8000-000000000001', '2025-01-01 00:00:00')});
--- request
GET /getchatts
--- response_body chomp
[[null,"no user","00000000-0000-4000-8000-000000000001","2025-01-01T00:00:00"],[null,null,"00000000-0000-4000-8000-000000000002",null]]



=== TEST 6: UTF-8 and escaping, as Python's json.dumps(ensure_ascii=False) writes them
Quotes, backslashes, slash, \b \f \n \r \t, emoji, CJK, combining marks, U+2028 and DEL are
identical in yajl and Python, so the bytes are compared exactly.
--- init
Chatterd::Db::truncate_chatts();
Chatterd::Db::sql(qq{INSERT INTO chatts (username, message, id, time) VALUES
  (E'\\u30b8\\u30e7\\u30f3 "J\\\\o/hn"', E'a\\bb\\fc\\nd\\re\\tf \\U0001F600\\u4f60\\u597d e\\u0301 \\u2028 \\x7f end', '00000000-0000-4000-8000-000000000001', '2025-01-01 00:00:00')});
--- request
GET /getchatts
--- response_body eval
"[[\"\xe3\x82\xb8\xe3\x83\xa7\xe3\x83\xb3 \\\"J\\\\o/hn\\\"\",\"a\\bb\\fc\\nd\\re\\tf \xf0\x9f\x98\x80\xe4\xbd\xa0\xe5\xa5\xbd e\xcc\x81 \xe2\x80\xa8 \x7f end\",\"00000000-0000-4000-8000-000000000001\",\"2025-01-01T00:00:00\"]]"
--- json_rows eval
{0 => [["\x{30b8}\x{30e7}\x{30f3} \"J\\o/hn\"", "a\bb\fc\nd\re\tf \x{1F600}\x{4f60}\x{597d} e\x{301} \x{2028} \x{7f} end", 'UUID', 'TIME']]}



=== TEST 7: other control characters are \u escapes with lower-case hex, as Python writes them
--- init
Chatterd::Db::truncate_chatts();
Chatterd::Db::sql(qq{INSERT INTO chatts (username, message, id, time) VALUES
  (E'\\x01\\x1f', E'x\\x0by\\x1bz', '00000000-0000-4000-8000-000000000001', '2025-01-01 00:00:00')});
--- request
GET /getchatts
--- response_body_like eval
qr/\A\[\["\\u0001\\u001f","x\\u000by\\u001bz","00000000-0000-4000-8000-000000000001","2025-01-01T00:00:00"\]\]\z/
--- json_rows eval
{0 => [["\x01\x1f", "x\x0by\x1bz", 'UUID', 'TIME']]}



=== TEST 8: the trailing-slash route answers the same
--- init
Chatterd::Db::truncate_chatts();
Chatterd::Db::sql(q{INSERT INTO chatts (username, message, id, time) VALUES
  ('alice', 'hi', '00000000-0000-4000-8000-000000000001', '2025-01-29 19:03:12.5')});
--- request
GET /getchatts/
--- response_headers
Content-Type: application/json
--- response_body chomp
[["alice","hi","00000000-0000-4000-8000-000000000001","2025-01-29T19:03:12.500000"]]



=== TEST 9: a query string is ignored
--- init
Chatterd::Db::truncate_chatts();
Chatterd::Db::sql(q{INSERT INTO chatts (username, message, id, time) VALUES
  ('alice', 'hi', '00000000-0000-4000-8000-000000000001', '2025-01-29 19:03:12.5')});
--- request
GET /getchatts?since=0&x=%00
--- response_body chomp
[["alice","hi","00000000-0000-4000-8000-000000000001","2025-01-29T19:03:12.500000"]]



=== TEST 10: a GET with a body: the body is discarded, the answer is the same
--- init
Chatterd::Db::truncate_chatts();
--- request eval
["GET /getchatts\n{\"username\":\"ignored\",\"message\":\"ignored\"}", "GET /getchatts"]
--- error_code eval
[200, 200]
--- response_body eval
['[]', '[]']



=== TEST 11: HEAD: the headers of GET, no body
--- init
Chatterd::Db::truncate_chatts();
Chatterd::Db::sql(q{INSERT INTO chatts (username, message, id, time) VALUES
  ('alice', 'hi', '00000000-0000-4000-8000-000000000001', '2025-01-29 19:03:12.5')});
--- request
HEAD /getchatts
--- response_headers
Content-Type: application/json
Content-Length: 84
--- response_body chomp
--- no_error_log
[error]



=== TEST 12: HEAD on the trailing-slash route
--- init
Chatterd::Db::truncate_chatts();
--- request
HEAD /getchatts/
--- response_headers
Content-Type: application/json
Content-Length: 2
--- response_body chomp



=== TEST 13: POST is not allowed: 405, Allow, JSON body; no row is read or written
--- init
Chatterd::Db::truncate_chatts();
--- request
POST /getchatts
{"username":"alice","message":"hi"}
--- more_headers
Content-Type: application/json
--- error_code: 405
--- response_headers
Allow: GET, HEAD
Content-Type: application/json
--- response_body chomp
"Method not allowed"
--- no_error_log
[error]



=== TEST 14: PUT, DELETE, OPTIONS and PATCH on both routes are not allowed either
--- request eval
["PUT /getchatts\nx", "DELETE /getchatts", "OPTIONS /getchatts/", "PATCH /getchatts/\n{}"]
--- error_code eval
[405, 405, 405, 405]
--- response_headers eval
["Allow: GET, HEAD", "Allow: GET, HEAD", "Allow: GET, HEAD", "Allow: GET, HEAD"]
--- response_body eval
['"Method not allowed"', '"Method not allowed"', '"Method not allowed"', '"Method not allowed"']



=== TEST 15: PostgreSQL unreachable: 503 "Service unavailable", and the log says why
--- http_config
chatterd_pg "$TEST_NGINX_PG_DOWN";
--- config
location ~ ^/getchatts/?$  { chatterd getchatts; }
--- request
GET /getchatts
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
[crit]



=== TEST 16: a query error (no chatts table): 500 with a JSON string naming what failed
--- http_config
chatterd_pg "$TEST_NGINX_PG_NO_TABLE";
--- config
location ~ ^/getchatts/?$  { chatterd getchatts; }
--- request
GET /getchatts
--- error_code: 500
--- response_headers
Content-Type: application/json
--- response_body chomp
"Database error while reading chatts"
--- error_log
relation "chatts" does not exist
--- no_error_log
[alert]



=== TEST 17: many rows (several output buffers): all of them, in order
--- init
Chatterd::Db::truncate_chatts();
Chatterd::Db::sql(q{INSERT INTO chatts (username, message, time)
  SELECT 'user' || i, repeat('m', 200) || i, timestamp '2025-01-01' + i * interval '1 second'
  FROM generate_series(1, 2000) AS i});
--- request
GET /getchatts
--- json_rows eval
{0 => [map { ["user$_", ('m' x 200) . $_, 'UUID', 'TIME'] } 1 .. 2000]}
--- no_error_log
[error]



=== TEST 18: a SELECT error is logged on one line, with its request context (no chatts table: 500)
libpq's message for this error has several lines ("LINE 1: ..." and a caret line) and ends with
a newline; the ", client: ..." nginx appends must stay on the "COPY of chatts failed" line.
--- http_config
chatterd_pg "$TEST_NGINX_PG_NO_TABLE";
--- config
location ~ ^/getchatts/?$  { chatterd getchatts; }
--- request
GET /getchatts
--- error_code: 500
--- response_body chomp
"Database error while reading chatts"
--- error_log eval
[qr/\[error\] .*chatterd: getchatts: the COPY of chatts failed: .*relation "chatts" does not exist.*check the chatts table.*, client: 127\.0\.0\.1, server: /]
--- no_error_log eval
[qr/^(?!\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d ).*, client: \d/, qr/^LINE \d+: /]



=== TEST 19: times isoformat() cannot write are sent as PostgreSQL writes them; before 2000 too
The rows come from PostgreSQL as binary COPY (microseconds since 2000-01-01), converted by
chatterd: these are the edges of that conversion.
--- init
Chatterd::Db::truncate_chatts();
Chatterd::Db::sql(q{INSERT INTO chatts (username, message, id, time) VALUES
  ('a', 'infinity',   '00000000-0000-4000-8000-00000000000a', 'infinity'),
  ('b', '-infinity',  '00000000-0000-4000-8000-00000000000b', '-infinity'),
  ('c', 'BC',         '00000000-0000-4000-8000-00000000000c', '0044-03-15 12:00:00.5 BC'),
  ('d', 'year 10000', '00000000-0000-4000-8000-00000000000d', '10000-01-01 00:00:00'),
  ('e', 'epoch',      '00000000-0000-4000-8000-00000000000e', '1970-01-01 00:00:00'),
  ('f', 'just before','00000000-0000-4000-8000-00000000000f', '1999-12-31 23:59:59.999999'),
  ('g', 'year 1',     'ffffffff-ffff-4fff-bfff-ffffffffffff', '0001-01-01 00:00:00')});
--- request
GET /getchatts
--- response_body chomp
[["b","-infinity","00000000-0000-4000-8000-00000000000b","-infinity"],["c","BC","00000000-0000-4000-8000-00000000000c","0044-03-15 12:00:00.5 BC"],["g","year 1","ffffffff-ffff-4fff-bfff-ffffffffffff","0001-01-01T00:00:00"],["e","epoch","00000000-0000-4000-8000-00000000000e","1970-01-01T00:00:00"],["f","just before","00000000-0000-4000-8000-00000000000f","1999-12-31T23:59:59.999999"],["d","year 10000","00000000-0000-4000-8000-00000000000d","10000-01-01 00:00:00"],["a","infinity","00000000-0000-4000-8000-00000000000a","infinity"]]
--- no_error_log
[error]
