# Pages of new rows (docs/API.md, "Pages of new rows"): GET /getimages?after=<cursor>&limit=N
# and the same for /getchatts (scenario test, Test::More, one nginx with 2 workers):
#   (a) compat: without after= or limit= in the query string (or without one), the full listing's
#       bytes and headers are as before (no cursor headers); a page's body is the full
#       listing's JSON for the rows it gives;
#   (b) first page (limit alone), next pages through Link, the last one short, then an empty
#       one that still has its cursor; HEAD; after alone takes 100 rows;
#   (c) limit bounds and every 400 with its reason, in the body and in the log at info;
#   (d) transactions that commit out of order (two psql sessions: T1 inserts, T2 inserts and
#       commits, a page sees T2 only; T1 commits, the next page sees T1's row once);
#   (e) rows of one transaction with one timestamp spread over page boundaries, with rows
#       committed between the pages;
#   (f) posts in parallel (postchatt) while a client pages with a small limit: at the end the
#       pages gave every row of the table, each once;
#   (g) a database without the chatts table: 500 with the cause logged; a page beyond
#       chatterd_answer_memory_max: 503, told at info.
use strict; use warnings;
use FindBin; BEGIN { push @INC, "$FindBin::Bin/lib" }
use Test::More;
use JSON::PP ();
use POSIX ();

use Chatterd::Db qw(sql sql_value truncate_chatts media_root);
use Chatterd::Http qw(http_request build_request);
use Chatterd::Nginx qw(start_nginx);
use Chatterd::Wait qw(wait_until);

for my $var (qw(TEST_NGINX_PG_CONNINFO TEST_NGINX_PSQL)) {
    plan skip_all => "$var is not set (run through make test)" unless $ENV{$var};
}
my $JSON = JSON::PP->new->utf8;
my $ng = start_nginx(workers => 2, media_root => media_root());

sub get {
    my ($target, %opt) = @_;
    return http_request($ng->port, build_request($opt{method} // 'GET', $target));
}

# One page: its status, rows (decoded), cursor and Link; a failed check is told once.
sub page {
    my ($target, %opt) = @_;
    my $res = get($target, %opt);
    my $rows = ($res->{status} // 0) == 200 && ($opt{method} // 'GET') eq 'GET'
             ? eval { $JSON->decode($res->{body}) } : undef;
    return {status => $res->{status}, rows => $rows, body => $res->{body},
            cursor => $res->{headers}{'chatter-cursor'}, link => $res->{headers}{link},
            type => $res->{headers}{'content-type'}};
}

# Follows the pages from $cursor until a page has fewer rows than $limit: the rows of all of
# them, in order, and the last cursor. Bounded: $max pages at most.
sub pages_from {
    my ($endpoint, $cursor, $limit, $max) = @_;
    my @rows;
    for (1 .. $max // 1000) {
        my $p = page("/$endpoint?after=$cursor&limit=$limit");
        is($p->{status}, 200, "$endpoint page after '$cursor': 200") or return (\@rows, $cursor);
        push @rows, @{$p->{rows}};
        $cursor = $p->{cursor};
        return (\@rows, $cursor) if @{$p->{rows}} < $limit;
    }
    fail("$endpoint: the pages did not end within $max");
    return (\@rows, $cursor);
}

sub ids { map { $_->[2] } @{$_[0]} }

# No id twice, and exactly the ids of @expected.
sub same_ids_once {
    my ($rows, $expected, $name) = @_;
    my %count;
    $count{$_}++ for ids($rows);
    my @twice = grep { $count{$_} > 1 } sort keys %count;
    ok(!@twice, "$name: no row given twice") or diag("twice: @twice");
    is_deeply([sort keys %count], [sort @$expected], "$name: every row given");
}

my $CURSOR = qr/\A[A-Za-z0-9_-]{2,4096}\z/;

# ---- (a) compat ----------------------------------------------------------------------------

truncate_chatts();
sql(q{INSERT INTO chatts (username, message, id, time) VALUES
  ('bob',   'second', '00000000-0000-4000-8000-000000000002', '2025-01-29 19:03:13'),
  ('alice', 'first',  '00000000-0000-4000-8000-000000000001', '2025-01-29 19:03:12.12')});
my $FULL_IMAGES = '[["alice","first","00000000-0000-4000-8000-000000000001","2025-01-29T19:03:12.120000",null,null],'
                . '["bob","second","00000000-0000-4000-8000-000000000002","2025-01-29T19:03:13",null,null]]';
my $FULL_CHATTS = '[["alice","first","00000000-0000-4000-8000-000000000001","2025-01-29T19:03:12.120000"],'
                . '["bob","second","00000000-0000-4000-8000-000000000002","2025-01-29T19:03:13"]]';
# A query string without after= or limit= is ignored, as the reference ignores it (the suites
# label requests so: "?after", "?warm").
for my $case (["/getimages", $FULL_IMAGES], ["/getimages?", $FULL_IMAGES], ["/getimages/", $FULL_IMAGES],
              ["/getimages?_=1700000000", $FULL_IMAGES], ["/getchatts", $FULL_CHATTS],
              ["/getchatts?", $FULL_CHATTS], ["/getchatts?since=0&x=%00", $FULL_CHATTS],
              ["/getchatts?after", $FULL_CHATTS], ["/getimages?warm&limit", $FULL_IMAGES]) {
    my ($target, $want) = @$case;
    my $res = get($target);
    is($res->{status}, 200, "$target: 200");
    is($res->{body}, $want, "$target: the full listing, byte for byte");
    ok(!exists $res->{headers}{'chatter-cursor'} && !exists $res->{headers}{link},
       "$target: no cursor headers");
}
{
    # The page's rows are written as the full listing writes them (one transaction: id order).
    my $p = page('/getimages?limit=10');
    is($p->{body}, $FULL_IMAGES, 'a page of every row: the bytes of the full listing');
    is($p->{type}, 'application/json', 'a page is application/json');
    $p = page('/getchatts?limit=10');
    is($p->{body}, $FULL_CHATTS, 'getchatts: a page of every row: the bytes of the full listing');
}

# ---- (b) first page, next pages, HEAD, the default limit -----------------------------------

truncate_chatts();
sql(q{INSERT INTO chatts (username, message) SELECT 'user' || i, 'message ' || i FROM generate_series(1, 5) AS i});
my @all = map { $_->[0] } sql('SELECT id FROM chatts');
{
    my $first = page('/getimages?limit=2');
    is($first->{status}, 200, 'limit alone: 200');
    is(scalar @{$first->{rows}}, 2, 'limit alone: the first 2 rows');
    is(scalar @{$first->{rows}[0]}, 6, 'getimages rows have 6 elements');
    like($first->{cursor}, $CURSOR, 'Chatter-Cursor: base64url');
    is($first->{link}, "</getimages?after=$first->{cursor}&limit=2>; rel=\"next\"", 'Link: the next page');
    my @given = @{$first->{rows}};
    my ($target) = $first->{link} =~ /\A<([^>]+)>/;
    my $sizes = '';
    for (1 .. 10) {
        my $p = page($target);
        is($p->{status}, 200, "$target: 200");
        $sizes .= scalar(@{$p->{rows}}) . ' ';
        push @given, @{$p->{rows}};
        like($p->{cursor}, $CURSOR, 'every page has a cursor, an empty one too');
        ($target) = $p->{link} =~ /\A<([^>]+)>/;
        last unless @{$p->{rows}};
    }
    is($sizes, '2 1 0 ', 'the next pages: 2 rows, 1, then none');
    same_ids_once(\@given, \@all, 'five rows by pages of 2');

    my $empty = page($target);
    is_deeply($empty->{rows}, [], 'nothing new: an empty array');
    is($empty->{body}, '[]', 'nothing new: the body is []');

    # A page is revalidated as the full listings are: a strong ETag of its bytes, no-cache.
    my $res = get($target);
    like($res->{headers}{etag} // '', qr/\A"[A-Za-z0-9_-]{22}"\z/, 'a page has a strong ETag');
    is($res->{headers}{'cache-control'}, 'no-cache', 'a page has Cache-Control: no-cache');
    my $again = http_request($ng->port, build_request('GET', $target,
        headers => ['If-None-Match' => $res->{headers}{etag} // '"none"']));
    is($again->{status}, 304, 'If-None-Match with the page\'s ETag: 304');
    is($again->{body}, '', '304: no body');

    my $head = page('/getchatts?limit=2', method => 'HEAD');
    is($head->{status}, 200, 'HEAD of a page: 200');
    is($head->{body}, '', 'HEAD of a page: no body');
    like($head->{cursor}, $CURSOR, 'HEAD of a page: its cursor');

    my $chatts = page('/getchatts/?after=&limit=5');
    is(scalar @{$chatts->{rows}[0]}, 4, 'getchatts rows have 4 elements');
    same_ids_once($chatts->{rows}, \@all, 'getchatts/: after= is the first page');
    like($chatts->{link}, qr{\A</getchatts/\?after=}, 'Link keeps the path asked for');
}
{
    sql(q{INSERT INTO chatts (username, message) SELECT 'more' || i, 'm' FROM generate_series(1, 150) AS i});
    my $p = page('/getchatts?after=');
    is(scalar @{$p->{rows}}, 100, 'after alone: 100 rows');
    like($p->{link}, qr/&limit=100>/, 'after alone: Link says limit=100');
    is(scalar @{page('/getchatts?limit=1000')->{rows}}, 155, 'limit=1000: every row of 155');
    is(scalar @{page('/getchatts?limit=1')->{rows}}, 1, 'limit=1: one row');
}

# ---- (c) every 400 with its reason ---------------------------------------------------------

{
    my $good = page('/getchatts?limit=1')->{cursor};
    (my $bad_char = $good) =~ s/\A./!/;
    my @cases = (
        ['limit=0',              'limit must be a whole number from 1 to 1000'],
        ['limit=1001',           'limit must be a whole number from 1 to 1000'],
        ['limit=ten',            'limit must be a whole number from 1 to 1000'],
        ['limit=',               'limit must be a whole number from 1 to 1000'],
        ['limit=-5',             'limit must be a whole number from 1 to 1000'],
        ['limit=5&limit=5',      'limit is given twice'],
        ["after=$good&after=$good", 'after is given twice'],
        ['limit=5&wait=30',      'an unknown parameter (pages take after and limit)'],
        ['limit=5&after',        'a parameter without a value (after= is the first page)'],
        ['limit=%zz',            'a malformed %-escape in the query'],
        ["after=$bad_char",      'after: the cursor is not unpadded base64url'],
        ["after=${good}=",       'after: the cursor is not unpadded base64url'],
        ['after=' . ('A' x 4097), 'after: the cursor is too long'],
        ['after=BwAA',           'after: not a cursor of this server'],
        ['after=AQUEAQQ',        'after: the cursor is damaged'],
        ['after=' . substr($good, 0, -2), undef],
    );
    for my $case (@cases) {
        my ($query, $reason) = @$case;
        for my $endpoint (qw(getchatts getimages)) {
            $ng->mark_error_log;
            my $res = get("/$endpoint?$query");
            is($res->{status}, 400, "$endpoint?$query: 400");
            is($res->{headers}{'content-type'}, 'application/json', "$endpoint?$query: JSON");
            my $body = eval { JSON::PP->new->allow_nonref->decode($res->{body} // '') } // '';
            if (defined $reason) {
                is($body, $reason, "$endpoint?$query: the reason");
            } else {
                like($body, qr/\Aafter: /, "$endpoint?$query: a reason about after");
            }
            ok(!exists $res->{headers}{'chatter-cursor'}, "$endpoint?$query: no cursor");
            my $line = quotemeta($body);
            ok(wait_until(sub { $ng->error_log_since_mark =~ /\[info\] .*chatterd: $endpoint: page parameters refused: $line; 400/ }, 5),
               "$endpoint?$query: logged at info");
        }
    }
    unlike($ng->error_log_text, qr/\[(error|alert|crit|emerg)\]/, 'no 400 is logged as an error');
}

# ---- (d) transactions that commit out of order -----------------------------------------------

# psql in the background with its input open: statements are sent one at a time.
sub open_session {
    my ($name) = @_;
    local $ENV{PGAPPNAME} = $name;
    my $pid = open(my $in, '|-', split(' ', $ENV{TEST_NGINX_PSQL}), '-X', '-q', '-v', 'ON_ERROR_STOP=1')
        or die "psql: $!";
    $in->autoflush(1);
    return {name => $name, in => $in, pid => $pid};
}
sub session_idle_in_transaction {
    my ($s) = @_;
    return wait_until(sub {
        sql_value("SELECT count(*) FROM pg_stat_activity WHERE application_name = '$s->{name}' "
                  . "AND state = 'idle in transaction' AND backend_xid IS NOT NULL") == 1
    });
}
sub close_session {
    my ($s) = @_;
    close $s->{in};
    return $? == 0;
}

{
    truncate_chatts();
    my $c0 = page('/getimages?limit=10')->{cursor};
    my $t1 = open_session('list_pages_t1');
    print {$t1->{in}} "BEGIN;\nINSERT INTO chatts (username, message) VALUES ('t1', 'began first');\n";
    ok(session_idle_in_transaction($t1), 'T1 inserted and holds its transaction open');
    sql(q{INSERT INTO chatts (username, message) VALUES ('t2', 'committed first')});

    my $p1 = page("/getimages?after=$c0&limit=10");
    is_deeply([map { $_->[0] } @{$p1->{rows}}], ['t2'], 'while T1 is open: the page has T2 only');
    my $c1 = $p1->{cursor};
    is_deeply([map { $_->[0] } @{page("/getimages?after=$c1&limit=10")->{rows}}], [],
              'while T1 is open: nothing after that');

    print {$t1->{in}} "COMMIT;\n";
    ok(close_session($t1), 'T1 committed');
    is(sql_value(q{SELECT (SELECT time FROM chatts WHERE username = 't1') < (SELECT time FROM chatts WHERE username = 't2')}),
       't', "T1's row has the earlier time: it committed out of order");
    my $p2 = page("/getimages?after=$c1&limit=10");
    is_deeply([map { $_->[0] } @{$p2->{rows}}], ['t1'], 'after T1 commits: the next page has T1, once');
    is_deeply(page("/getimages?after=$p2->{cursor}&limit=10")->{rows}, [], 'then nothing');
    # A page that stopped at its limit while T1 was open pins its snapshot: T1 still comes once.
    my $t3 = open_session('list_pages_t3');
    print {$t3->{in}} "BEGIN;\nINSERT INTO chatts (username, message) VALUES ('t3', 'open');\n";
    ok(session_idle_in_transaction($t3), 'T3 inserted and holds its transaction open');
    sql(q{INSERT INTO chatts (username, message) SELECT 'u' || i, 'm' FROM generate_series(1, 3) AS i});
    my $q1 = page("/getimages?after=$p2->{cursor}&limit=2");
    is(scalar @{$q1->{rows}}, 2, 'a full page while T3 is open');
    print {$t3->{in}} "COMMIT;\n";
    ok(close_session($t3), 'T3 committed');
    my ($rest) = pages_from('getimages', $q1->{cursor}, 2, 10);
    is_deeply([sort map { $_->[0] } @{$q1->{rows}}, @$rest], [qw(t3 u1 u2 u3)],
              'the rest of the pinned page, then T3: each row once');
}

# ---- (e) one transaction, one timestamp, across page boundaries ------------------------------

{
    truncate_chatts();
    my $c0 = page('/getchatts?limit=3')->{cursor};
    sql(q{INSERT INTO chatts (username, message, time)
          SELECT 'same' || i, 'm', '2025-01-01 00:00:00' FROM generate_series(1, 7) AS i});
    my $p1 = page("/getchatts?after=$c0&limit=3");
    is(scalar @{$p1->{rows}}, 3, 'equal timestamps: the first page of 3');
    # Rows committed between the pages come after the rest of the first transaction's.
    sql(q{INSERT INTO chatts (username, message, time)
          SELECT 'later' || i, 'm', '2025-01-01 00:00:00' FROM generate_series(1, 2) AS i});
    my ($rest) = pages_from('getchatts', $p1->{cursor}, 3, 10);
    my @given = (@{$p1->{rows}}, @$rest);
    same_ids_once(\@given, [map { $_->[0] } sql('SELECT id FROM chatts')], 'equal timestamps');
    is_deeply([map { $_->[0] =~ /\A(same|later)/ } @given], [('same') x 7, ('later') x 2],
              "the first transaction's rows, then the later ones");
}

# ---- (f) posts in parallel while a client pages ------------------------------------------------

{
    truncate_chatts();
    my ($posters, $posts) = (4, 30);
    my @kids;
    for my $k (1 .. $posters) {
        my $pid = fork // die "fork: $!";
        if (!$pid) {
            my $failed = 0;
            for my $i (1 .. $posts) {
                my $res = http_request($ng->port, build_request(POST => '/postchatt',
                    headers => ['Content-Type' => 'application/json'],
                    body => $JSON->encode({username => "p$k", message => "post $i"})));
                $failed++ unless ($res->{status} // 0) == 200;
            }
            POSIX::_exit($failed ? 1 : 0);
        }
        push @kids, $pid;
    }
    my ($cursor, @given, $pages, %exit) = ('');
    my $running = @kids;
    while ($running && $pages++ < 5000) {
        my $p = page("/getchatts?after=$cursor&limit=3");
        if (($p->{status} // 0) != 200) {
            fail("a page while posting: $p->{status}");
            last;
        }
        push @given, @{$p->{rows}};
        $cursor = $p->{cursor};
        for my $pid (grep { !exists $exit{$_} } @kids) {
            $exit{$pid} = $? if waitpid($pid, POSIX::WNOHANG()) == $pid;
        }
        $running = grep { !exists $exit{$_} } @kids;
    }
    for my $pid (grep { !exists $exit{$_} } @kids) {
        waitpid($pid, 0);
        $exit{$pid} = $?;
    }
    my $failed = grep { $_ != 0 } values %exit;
    is($failed, 0, "$posters posters of $posts chatts each: every post 200");
    my ($rest) = pages_from('getchatts', $cursor, 3, 1000);
    push @given, @$rest;
    my @table = map { $_->[0] } sql('SELECT id FROM chatts');
    is(scalar @table, $posters * $posts, 'every post is in the table');
    same_ids_once(\@given, \@table, "pages of 3 while posting ($pages pages during the posts)");
}

# ---- (g) a database without the chatts table; the answers' memory bound ------------------------

{
    my $no_table = start_nginx(workers => 1, media_root => media_root(), pg => "$ENV{TEST_NGINX_PG_CONNINFO} dbname=postgres");
    my $res = http_request($no_table->port, build_request(GET => '/getimages?limit=5'));
    is($res->{status}, 500, 'no chatts table: 500');
    is($res->{body}, '"Database error while reading chatts"', 'no chatts table: what failed');
    like($no_table->error_log_text, qr/\[error\] .*chatterd: getimages: the page's query failed: .*relation "chatts" does not exist/,
         'no chatts table: the cause logged');
    $no_table->stop;

    my $bounded = start_nginx(workers => 1, media_root => media_root(),
                              http_config => "chatterd_answer_memory_max 64k;\n");
    sql(q{INSERT INTO chatts (username, message) SELECT 'big' || i, repeat('m', 250) FROM generate_series(1, 400) AS i});
    $bounded->mark_error_log;
    $res = http_request($bounded->port, build_request(GET => '/getchatts?limit=1000'));
    is($res->{status}, 503, 'a page beyond chatterd_answer_memory_max: 503');
    like($bounded->error_log_since_mark, qr/\[info\] .*chatterd: getchatts: the answers of this worker would hold more than chatterd_answer_memory_max; 503/,
         'a page beyond the bound: told at info');
    is(http_request($bounded->port, build_request(GET => '/getchatts?limit=10'))->{status}, 200,
       'a page within the bound: 200');
    $bounded->stop;
}

unlike($ng->error_log_text, qr/\[(error|alert|crit|emerg)\]/, 'no error logged');
$ng->stop;
truncate_chatts();
done_testing();
