# GET /getimages (API.md): as getchatts with 6 elements per row, [username, message, id, time,
# imageurl, videourl], oldest first; imageurl/videourl are JSON null when no media was posted
# (postchatt rows, rows from before the migration) and the stored URL strings otherwise; HEAD;
# the trailing-slash route; 405 with Allow; 503 when PostgreSQL is unreachable; 500 on a query
# error. The 10,000-row answer is in t/pg_resilience.t.
#
# Every block seeds the table itself in --- init, so the blocks run in any order.
use strict; use warnings;
use FindBin; BEGIN { push @INC, "$FindBin::Bin/lib" }
use Test::Nginx::Socket 'no_plan';
use Chatterd::Db ();
use Chatterd::Suite ();
use JSON::PP ();

our ($UUID, $TIME);   # set by Chatterd::Suite::setup
Chatterd::Suite::setup(row_length => 6);

run_tests();

__DATA__

=== TEST 1: empty table: an empty JSON array
--- init
Chatterd::Db::truncate_chatts();
--- request
GET /getimages
--- response_headers
Content-Type: application/json
Content-Length: 2
--- response_body chomp
[]
--- no_error_log
[error]
[alert]



=== TEST 2: rows without media: 6 elements, null URLs, oldest first, exact bytes
--- init
Chatterd::Db::truncate_chatts();
Chatterd::Db::sql(q{INSERT INTO chatts (username, message, id, time) VALUES
  ('bob',   'second', '00000000-0000-4000-8000-000000000002', '2025-01-29 19:03:13'),
  ('alice', 'first',  '00000000-0000-4000-8000-000000000001', '2025-01-29 19:03:12.12')});
--- request
GET /getimages
--- response_headers
Content-Type: application/json
--- response_body chomp
[["alice","first","00000000-0000-4000-8000-000000000001","2025-01-29T19:03:12.120000",null,null],["bob","second","00000000-0000-4000-8000-000000000002","2025-01-29T19:03:13",null,null]]
--- no_error_log
[error]



=== TEST 3: stored URLs come back verbatim; either may be null
--- init
Chatterd::Db::truncate_chatts();
Chatterd::Db::sql(q{INSERT INTO chatts (username, message, id, time, imageurl, videourl) VALUES
  ('both',  'iv', '00000000-0000-4000-8000-000000000001', '2025-01-01 00:00:01',
   'https://chatter.example.org/media/alice-Zx3_9q.jpeg', 'https://chatter.example.org/media/alice-Ab_-12.mp4'),
  ('image', 'i',  '00000000-0000-4000-8000-000000000002', '2025-01-01 00:00:02.000002',
   'http://127.0.0.1:8080/media/x.png', NULL),
  ('video', 'v',  '00000000-0000-4000-8000-000000000003', '2025-01-01 00:00:03',
   NULL, 'https://h/media/y.mov'),
  ('empty', '',   '00000000-0000-4000-8000-000000000004', '2025-01-01 00:00:04', '', '')});
--- request
GET /getimages/
--- response_body chomp
[["both","iv","00000000-0000-4000-8000-000000000001","2025-01-01T00:00:01","https://chatter.example.org/media/alice-Zx3_9q.jpeg","https://chatter.example.org/media/alice-Ab_-12.mp4"],["image","i","00000000-0000-4000-8000-000000000002","2025-01-01T00:00:02.000002","http://127.0.0.1:8080/media/x.png",null],["video","v","00000000-0000-4000-8000-000000000003","2025-01-01T00:00:03",null,"https://h/media/y.mov"],["empty","","00000000-0000-4000-8000-000000000004","2025-01-01T00:00:04","",""]]



=== TEST 4: a chatt posted with postchatt has null URLs in getimages and 4 elements in getchatts
--- init
Chatterd::Db::truncate_chatts();
--- request eval
["POST /postchatt\n{\"username\":\"alice\",\"message\":\"text only\"}", "GET /getimages", "GET /getchatts"]
--- more_headers
Content-Type: application/json
--- error_code eval
[200, 200, 200]
--- response_body_like eval
['\A\{\}\z',
 qr/\A\[\["alice","text only","$main::UUID","$main::TIME",null,null\]\]\z/,
 qr/\A\[\["alice","text only","$main::UUID","$main::TIME"\]\]\z/]
--- json_rows eval
{1 => [['alice', 'text only', 'UUID', 'TIME', undef, undef]]}
--- no_error_log
[error]



=== TEST 5: NULL username, message and time are null too; UTF-8 as is
--- init
Chatterd::Db::truncate_chatts();
Chatterd::Db::sql(qq{INSERT INTO chatts (username, message, id, time, imageurl) VALUES
  (NULL, NULL, '00000000-0000-4000-8000-000000000002', NULL, NULL),
  (E'\\u30b8\\u30e7\\u30f3', E'caf\\u00e9 \\U0001F4F7 "q" \\\\', '00000000-0000-4000-8000-000000000001', '2025-01-01 00:00:00', 'https://h/media/a.jpeg')});
--- request
GET /getimages
--- response_body eval
qq{[["\xe3\x82\xb8\xe3\x83\xa7\xe3\x83\xb3","caf\xc3\xa9 \xf0\x9f\x93\xb7 \\"q\\" \\\\","00000000-0000-4000-8000-000000000001","2025-01-01T00:00:00","https://h/media/a.jpeg",null],[null,null,"00000000-0000-4000-8000-000000000002",null,null,null]]}
--- json_rows eval
{0 => [["\x{30b8}\x{30e7}\x{30f3}", "caf\x{e9} \x{1F4F7} \"q\" \\", 'UUID', 'TIME', 'https://h/media/a.jpeg', undef],
       [undef, undef, 'UUID', undef, undef, undef]]}



=== TEST 6: HEAD: the headers of GET, no body
--- init
Chatterd::Db::truncate_chatts();
Chatterd::Db::sql(q{INSERT INTO chatts (username, message, id, time) VALUES
  ('alice', 'hi', '00000000-0000-4000-8000-000000000001', '2025-01-29 19:03:12.5')});
--- request eval
["HEAD /getimages", "HEAD /getimages/"]
--- response_headers eval
["Content-Type: application/json\nContent-Length: 94", "Content-Type: application/json\nContent-Length: 94"]
--- response_body eval
["", ""]
--- no_error_log
[error]



=== TEST 7: other methods: 405, Allow: GET, HEAD, JSON body, on both routes
--- request eval
["POST /getimages\n{}", "PUT /getimages/\nx", "DELETE /getimages", "OPTIONS /getimages/"]
--- more_headers
Content-Type: application/json
--- error_code eval
[405, 405, 405, 405]
--- response_headers eval
["Allow: GET, HEAD\nContent-Type: application/json", "Allow: GET, HEAD", "Allow: GET, HEAD", "Allow: GET, HEAD"]
--- response_body eval
['"Method not allowed"', '"Method not allowed"', '"Method not allowed"', '"Method not allowed"']



=== TEST 8: PostgreSQL unreachable: 503 "Service unavailable", and the log says why
--- http_config
chatterd_pg "$TEST_NGINX_PG_DOWN";
--- config
location ~ ^/getimages/?$  { chatterd getimages; }
--- request
GET /getimages/
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



=== TEST 9: a query error (no chatts table): 500 with a JSON string naming what failed
--- http_config
chatterd_pg "$TEST_NGINX_PG_NO_TABLE";
--- config
location ~ ^/getimages/?$  { chatterd getimages; }
--- request
GET /getimages
--- error_code: 500
--- response_headers
Content-Type: application/json
--- response_body chomp
"Database error while reading chatts"
--- error_log
relation "chatts" does not exist
--- no_error_log
[alert]



=== TEST 10: many rows with URLs (several output buffers): all of them, in order
--- init
Chatterd::Db::truncate_chatts();
Chatterd::Db::sql(q{INSERT INTO chatts (username, message, time, imageurl, videourl)
  SELECT 'user' || i, 'message ' || i, timestamp '2025-01-01' + i * interval '1 millisecond',
         CASE WHEN i % 2 = 0 THEN 'https://h/media/i' || i || '.jpeg' END,
         CASE WHEN i % 3 = 0 THEN 'https://h/media/v' || i || '.mp4' END
  FROM generate_series(1, 3000) AS i});
--- request
GET /getimages
--- json_rows eval
{0 => [map { ["user$_", "message $_", 'UUID', 'TIME',
              $_ % 2 == 0 ? "https://h/media/i$_.jpeg" : undef,
              $_ % 3 == 0 ? "https://h/media/v$_.mp4" : undef] } 1 .. 3000]}
--- no_error_log
[error]



=== TEST 11: chatterd_answer_memory_max: an answer that would cross the worker's bound gets 503
--- http_config
chatterd_pg "$TEST_NGINX_PG_CONNINFO";
chatterd_answer_memory_max 256k;
--- init
Chatterd::Db::truncate_chatts();
Chatterd::Db::sql(q{INSERT INTO chatts (username, message, imageurl) SELECT 'user ' || i, repeat('m', 200), 'http://localhost/media/' || i || '.jpeg' FROM generate_series(1, 2000) AS i});
--- request
GET /getimages
--- error_code: 503
--- response_body chomp
"Service unavailable"
--- error_log eval
[qr/\[info\] .*chatterd: getimages: the answers of this worker would hold more than chatterd_answer_memory_max; 503/]
--- no_error_log
[error]
[alert]



=== TEST 12: chatterd_answer_memory_max: an answer within the bound is served
--- http_config
chatterd_pg "$TEST_NGINX_PG_CONNINFO";
chatterd_answer_memory_max 256k;
--- init
Chatterd::Db::truncate_chatts();
Chatterd::Db::sql(q{INSERT INTO chatts (username, message) SELECT 'user ' || i, 'message' FROM generate_series(1, 200) AS i});
--- request
GET /getimages
--- error_code: 200
--- no_error_log
[error]
