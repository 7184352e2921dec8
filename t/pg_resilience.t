# The PostgreSQL pool under trouble (docs/ARCHITECTURE.md, "The pool"), as scenarios on a real nginx
# and the test PostgreSQL:
#   (a) database unreachable (closed port): 503 at once, the error log names the failure;
#   (b) database paused (SIGSTOP) mid-query: nginx's event loop stays free (a static file is
#       served at once) and the query ends in 503 after chatterd_pg_timeout;
#   (b') database paused before the pool connected: same, through the connect deadline;
#   (c) database restarted: the first request afterwards succeeds, without reloading nginx;
#   (d) more concurrent requests than pool slots: all answered, all correct;
#   (e) chatterd_pg_queue bound: the excess gets 503 at once, the queued ones complete;
#   (f) clients that leave while their query runs or waits: no crash, the connection goes back
#       to the pool (same backend), the next requests succeed;
#   (g) a 10,000-row getimages: every row, 6 elements, oldest first;
#   (h) a query error (table renamed): 500, and the connection stays in the pool;
#   (i) a query stuck behind a lock: 503 after chatterd_pg_timeout, and a postchatt that timed
#       out stores nothing even when its INSERT runs once the lock is gone (API.md: a failed
#       request leaves no row);
#   (j) keep-alive: pipelined requests on one connection, and a request that arrives on the
#       connection while the previous one waits for the (paused) database: all answered, in order;
#   (k) chatterd_pg_queue 0: a request an idle connection can take is served (the bound is on
#       waiting, not on running); with every connection busy, the next one gets 503 at once.
# PostgreSQL is always resumed (SIGCONT) and the table name restored, also when a test dies.
use strict; use warnings;
use FindBin; BEGIN { push @INC, "$FindBin::Bin/lib" }
use Test::More;
use IO::Select;
use IO::Socket::INET;
use JSON::PP ();
use Time::HiRes ();

use Chatterd::Db qw(sql sql_value truncate_chatts pause_pg resume_pg);
use Chatterd::Http qw(http_request http_get build_request parse_http_response);
use Chatterd::Nginx;
use Chatterd::NginxProcess ();
use Chatterd::Wait qw(wait_until);

for my $var (qw(TEST_NGINX_PG_CONNINFO TEST_NGINX_PG_DIR TEST_NGINX_PG_PORT TEST_NGINX_PSQL)) {
    plan skip_all => "$var is not set (run through make test)" unless $ENV{$var};
}
my $binary = Chatterd::NginxProcess::binary_from_env();
plan skip_all => "$binary is not built --with-debug (the tests follow its debug log)"
    unless `$binary -V 2>&1` =~ /--with-debug/;

my $CONNINFO = $ENV{TEST_NGINX_PG_CONNINFO};
my $PG_SH    = "$FindBin::Bin/../scripts/pg.sh";
my $UUID     = qr/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/;
my $TIME     = qr/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.(?!000000)\d{6})?/;

# ---- guards: PostgreSQL resumed, table name restored, whatever happens -------------------

my $renamed;
my $lock_holder;    # psql holding an ACCESS EXCLUSIVE lock on chatts
sub release_lock {
    return unless $lock_holder;
    print {$lock_holder} "ROLLBACK;\n";
    close $lock_holder;
    $lock_holder = undef;
}
sub restore_table {
    return unless $renamed;
    $renamed = 0;
    sql('ALTER TABLE IF EXISTS chatts_renamed_by_pg_resilience RENAME TO chatts');
}
END {
    local ($?, $@);
    resume_pg();
    eval { release_lock() };
    eval { restore_table() };
}

# ---- clients ------------------------------------------------------------------------------

# Sends a request on a new connection without waiting for the answer.
sub send_request {
    my ($port, $raw) = @_;
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp')
        or die "connect to $port: $!";
    binmode $sock;
    my $off = 0;
    while ($off < length $raw) {
        my $n = syswrite $sock, $raw, length($raw) - $off, $off;
        die "write: $!" unless defined $n;
        $off += $n;
    }
    $sock->blocking(0);
    return { sock => $sock, raw => '', sent => Time::HiRes::time(), done => 0 };
}

# Reads the answers of several sent requests until each connection is closed by nginx or
# $timeout seconds pass; each gets {res} (parsed) and {elapsed} (seconds since it was sent).
sub collect {
    my ($timeout, @clients) = @_;
    my $deadline = Time::HiRes::time() + $timeout;
    my %by_fd = map { fileno($_->{sock}) => $_ } grep { !$_->{done} } @clients;
    my $select = IO::Select->new(map { $_->{sock} } values %by_fd);
    while ($select->count) {
        my $left = $deadline - Time::HiRes::time();
        last if $left <= 0;
        for my $sock ($select->can_read($left)) {
            my $client = $by_fd{ fileno $sock };
            my $n = sysread $sock, my $buf, 65536;
            next if !defined $n && ($!{EAGAIN} || $!{EINTR});
            if ($n) { $client->{raw} .= $buf; next }
            $client->{done} = 1;
            $client->{elapsed} = Time::HiRes::time() - $client->{sent};
            $select->remove($sock);
            close $sock;
        }
    }
    for my $client (@clients) {
        $client->{res} = parse_http_response($client->{raw});
        $client->{elapsed} //= Time::HiRes::time() - $client->{sent};
    }
    return @clients;
}

sub timed_get {
    my ($port, $uri, %opt) = @_;
    my $t0 = Time::HiRes::time();
    my $res = http_request($port, build_request(GET => $uri), timeout => $opt{timeout} // 10);
    $res->{elapsed} = Time::HiRes::time() - $t0;
    return $res;
}

sub post_chatt_request {
    my ($username, $message, $uri) = @_;
    my $body = JSON::PP->new->utf8->canonical->encode({username => $username, message => $message});
    return build_request(POST => $uri // '/postchatt', body => $body,
                         headers => ['Content-Type' => 'application/json']);
}

# Waits until nginx's content handler has returned for the request with this URI (it then
# runs or waits on the pool); dies after 5 s.
sub wait_handled {
    my ($ng, $uri) = @_;
    my $line = $ng->wait_for_error_log(qr/http finalize request: -4, "\Q$uri\E"/, timeout => 5);
    die "nginx did not handle $uri within 5 s\n" unless $line;
}

# Waits (5 s at most) until $count error-log lines since the mark match; returns how many do.
sub wait_lines {
    my ($ng, $pattern, $count) = @_;
    my $n;
    wait_until(sub { ($n = grep { $_ =~ $pattern } $ng->error_log_since_mark) >= $count }, 5);
    return $n;
}

sub worst_log_lines {
    my ($text) = @_;
    return grep { /\[(?:alert|crit|emerg)\]|signal|segfault/ } split /\n/, $text;
}

sub start_nginx {
    my (%opt) = @_;
    my $pg = $opt{conninfo} // $CONNINFO;
    my $extra = $opt{http} // '';
    # The listings are this suite's way into the pool: each must query (t/list_cache.t is the
    # cache's suite).
    return Chatterd::Nginx->start(
        workers     => 1,
        http_config => qq{chatterd_pg "$pg";\nchatterd_list_cache off;\n$extra},
        config      => <<'CONF',
location ~ ^/getchatts/?$  { chatterd getchatts; }
location ~ ^/postchatt/?$  { chatterd postchatt; }
location ~ ^/getimages/?$  { chatterd getimages; }
CONF
        user_files  => { 'static.txt' => "static file\n" },
    );
}

# ---- (a) ----------------------------------------------------------------------------------

subtest '(a) database unreachable: 503 at once, the log names the failure' => sub {
    my $closed = Chatterd::NginxProcess::free_port();
    my $ng = start_nginx(conninfo => "host=127.0.0.1 port=$closed dbname=chatterdb user=chatter",
                         http => 'chatterd_pg_timeout 5s;');
    for my $try (1, 2) {
        my $res = timed_get($ng->port, "/getchatts?try=$try");
        is($res->{status}, 503, "getchatts $try: 503");
        is($res->{body}, '"Service unavailable"', "getchatts $try: body");
        cmp_ok($res->{elapsed}, '<', 1, "getchatts $try: answered at once, not at the timeout");
    }
    my $t0 = Time::HiRes::time();
    my $res = http_request($ng->port, post_chatt_request('alice', 'lost'));
    is($res->{status}, 503, 'postchatt: 503');
    is($res->{body}, '"Service unavailable"', 'postchatt: body');
    cmp_ok(Time::HiRes::time() - $t0, '<', 1, 'postchatt: answered at once');
    like($ng->error_log_text,
         qr/\[error\][^\n]*postgres \(host=127\.0\.0\.1 port=$closed dbname=chatterdb user=chatter\) cannot be reached: [^\n]*Connection refused/,
         'error log: which server, and why');
    is_deeply([worst_log_lines($ng->error_log_text)], [], 'no alert or crash');
    $ng->stop;
};

# ---- (b) ----------------------------------------------------------------------------------

subtest '(b) database paused mid-query: the event loop stays free, 503 after the timeout' => sub {
    truncate_chatts();
    my $ng = start_nginx(http => 'chatterd_pg_timeout 5s;');
    is(timed_get($ng->port, '/getchatts?warm')->{status}, 200, 'warm-up: 200');
    $ng->mark_error_log;

    pause_pg();
    my $slow = send_request($ng->port, build_request(GET => '/getchatts?paused=1'));
    my $slow_post = send_request($ng->port, post_chatt_request('bob', 'paused', '/postchatt?paused=2'));
    wait_handled($ng, '/getchatts?paused=1');

    my $static = timed_get($ng->port, '/static.txt', timeout => 5);
    is($static->{status}, 200, 'static file while PostgreSQL is paused: 200');
    is($static->{body}, "static file\n", 'static file: body');
    cmp_ok($static->{elapsed}, '<', 1, 'static file: answered at once (the loop is free)');

    collect(15, $slow, $slow_post);
    for my $client ([$slow, 'getchatts'], [$slow_post, 'postchatt']) {
        my ($c, $what) = @$client;
        is($c->{res}{status}, 503, "$what during the pause: 503");
        is($c->{res}{body}, '"Service unavailable"', "$what: body");
        cmp_ok($c->{elapsed}, '>=', 4.5, "$what: after chatterd_pg_timeout 5s...");
        cmp_ok($c->{elapsed}, '<', 8, "$what: ...not much later");
    }
    like(scalar $ng->error_log_since_mark,
         qr/postgres \([^)]*\) did not answer within chatterd_pg_timeout 5000 ms/,
         'error log: the timeout');
    resume_pg();

    # (The timed-out INSERT may still run once PostgreSQL resumes: it was sent before the
    # deadline. Whether it did is not checked here.)
    my $after = timed_get($ng->port, '/getchatts?after');
    is($after->{status}, 200, 'after SIGCONT: getchatts 200');
    is_deeply([worst_log_lines($ng->error_log_text)], [], 'no alert or crash');
    $ng->stop;
};

subtest '(b\') database paused before the pool connected: connect deadline, 503' => sub {
    pause_pg();
    my $ng = start_nginx(http => 'chatterd_pg_timeout 1s;');
    my $slow = send_request($ng->port, build_request(GET => '/getchatts?connecting'));
    wait_handled($ng, '/getchatts?connecting');
    my $static = timed_get($ng->port, '/static.txt', timeout => 5);
    is($static->{status}, 200, 'static file: 200');
    cmp_ok($static->{elapsed}, '<', 1, 'static file: answered at once');
    collect(10, $slow);
    is($slow->{res}{status}, 503, 'getchatts: 503');
    is($slow->{res}{body}, '"Service unavailable"', 'getchatts: body');
    cmp_ok($slow->{elapsed}, '<', 3, 'getchatts: within about chatterd_pg_timeout 1s');
    like($ng->error_log_text, qr/cannot be reached: no answer to a connect within 1000 ms/,
         'error log: connect timeout');
    # The pool backs off and probes: the next probe after SIGCONT finds the database.
    resume_pg();
    ok($ng->wait_for_error_log(qr/postgres \([^)]*\) is reachable again after/),
       'error log: reachable again');
    my $after = timed_get($ng->port, '/getchatts?resumed');
    is($after->{status}, 200, 'after SIGCONT: 200');
    is_deeply([worst_log_lines($ng->error_log_text)], [], 'no alert or crash');
    $ng->stop;
};

# ---- (c) ----------------------------------------------------------------------------------

sub pg_sh {
    my (@args) = @_;
    my $out = `"$PG_SH" @args 2>&1`;
    is($?, 0, "pg.sh @args") or diag($out);
}

subtest '(c) database restarted: the next request succeeds without reloading nginx' => sub {
    truncate_chatts();
    my ($dir, $port) = @ENV{qw(TEST_NGINX_PG_DIR TEST_NGINX_PG_PORT)};
    my $ng = start_nginx(http => 'chatterd_pg_pool 4; chatterd_pg_timeout 5s;');
    my $pid = $ng->pid;
    is(timed_get($ng->port, '/getchatts?before')->{status}, 200, 'before the restart: 200');

    # 1: stop, start, and the very first request is served.
    $ng->mark_error_log;
    pg_sh('stop', $dir);
    pg_sh('start', $dir, $port);
    my $first = timed_get($ng->port, '/getchatts?first');
    is($first->{status}, 200, 'first request after the restart: 200') or diag($first->{raw});
    is($first->{body}, '[]', 'first request after the restart: body');
    like(scalar $ng->error_log_since_mark, qr/postgres \([^)]*\) idle connection failed/,
         'the pool noticed its connections were closed');

    # 2: a request while the database is down is answered 503 at once; the first one after it
    # comes back (a post) is served.
    pg_sh('stop', $dir);
    my $down = timed_get($ng->port, '/getchatts?down');
    is($down->{status}, 503, 'while down: 503');
    cmp_ok($down->{elapsed}, '<', 1, 'while down: answered at once');
    $ng->mark_error_log;
    pg_sh('start', $dir, $port);
    ok($ng->wait_for_error_log(qr/is reachable again after/, timeout => 15),
       'the pool\'s probe finds the database back');
    my $post = http_request($ng->port, post_chatt_request('after', 'restart'));
    is($post->{status}, 200, 'first request after the second restart (postchatt): 200')
        or diag($post->{raw});
    is($post->{body}, '{}', 'postchatt: {}');
    my $get = timed_get($ng->port, '/getchatts?again');
    like($get->{body}, qr/\A\[\["after","restart","$UUID","$TIME"\]\]\z/, 'the post is stored');

    is($ng->pid, $pid, 'same nginx process: no reload, no restart');
    is_deeply([worst_log_lines($ng->error_log_text)], [], 'no alert or crash');
    $ng->stop;
};

# ---- (d) ----------------------------------------------------------------------------------

subtest '(d) 30 concurrent requests on a pool of 2: all answered, all correct' => sub {
    truncate_chatts();
    sql(q{INSERT INTO chatts (username, message, id, time)
          VALUES ('seed', 'row', '00000000-0000-4000-8000-000000000001', '2000-01-01 00:00:00')});
    my $ng = start_nginx(http => 'chatterd_pg_pool 2; chatterd_pg_timeout 10s;');
    my @clients;
    for my $i (1 .. 15) {
        push @clients, send_request($ng->port, post_chatt_request("user$i", "message $i"));
        push @clients, send_request($ng->port, build_request(GET => "/getchatts?i=$i"));
    }
    collect(20, @clients);
    my @posts = @clients[grep { $_ % 2 == 0 } 0 .. $#clients];
    my @gets  = @clients[grep { $_ % 2 == 1 } 0 .. $#clients];
    is(scalar(grep { ($_->{res}{status} // 0) == 200 && $_->{res}{body} eq '{}' } @posts), 15,
       'every postchatt: 200 {}');
    my $good_gets = 0;
    for my $get (@gets) {
        my $rows = eval { JSON::PP->new->utf8->decode($get->{res}{body} // '') };
        next unless ($get->{res}{status} // 0) == 200 && ref $rows eq 'ARRAY' && @$rows >= 1;
        next if grep { ref $_ ne 'ARRAY' || @$_ != 4 } @$rows;
        next unless $rows->[0][0] eq 'seed';    # oldest first
        my %names = map { $_->[0] => 1 } @$rows;
        next if grep { !/^(?:seed|user\d+)\z/ } keys %names;
        $good_gets++;
    }
    is($good_gets, 15, 'every getchatts: 200, rows of 4, oldest first, only real rows');
    is_deeply([sort map { $_->[0] } sql(q{SELECT username FROM chatts WHERE username <> 'seed'})],
              [sort map { "user$_" } 1 .. 15], 'the database holds exactly the 15 posts');
    unlike($ng->error_log_text, qr/queue is full|timed out/, 'nobody was refused or timed out');
    is_deeply([worst_log_lines($ng->error_log_text)], [], 'no alert or crash');
    $ng->stop;
};

# ---- (e) ----------------------------------------------------------------------------------

subtest '(e) chatterd_pg_queue: the excess gets 503 at once, the queued ones complete' => sub {
    truncate_chatts();
    my $ng = start_nginx(http => 'chatterd_pg_pool 1; chatterd_pg_queue 1; chatterd_pg_timeout 10s;');
    is(timed_get($ng->port, '/getchatts?warm')->{status}, 200, 'warm-up: 200');

    pause_pg();
    my $running = send_request($ng->port, build_request(GET => '/getchatts?running'));
    wait_handled($ng, '/getchatts?running');
    my $queued = send_request($ng->port, build_request(GET => '/getchatts?queued'));
    wait_handled($ng, '/getchatts?queued');
    for my $n (1 .. 3) {
        my $res = timed_get($ng->port, "/getchatts?excess=$n", timeout => 5);
        is($res->{status}, 503, "excess request $n: 503");
        is($res->{body}, '"Service unavailable"', "excess request $n: body");
        cmp_ok($res->{elapsed}, '<', 1, "excess request $n: at once");
    }
    my $post = http_request($ng->port, post_chatt_request('excess', 'post'), timeout => 5);
    is($post->{status}, 503, 'excess postchatt: 503');
    like($ng->error_log_text, qr/postgres request queue is full \(chatterd_pg_queue 1\)/,
         'error log: the queue bound');
    resume_pg();

    collect(10, $running, $queued);
    is($running->{res}{status}, 200, 'the running request completes: 200');
    is($queued->{res}{status}, 200, 'the queued request completes: 200');
    is($queued->{res}{body}, '[]', 'queued request: body');
    is(timed_get($ng->port, '/getchatts?after')->{status}, 200, 'and the next one: 200');
    is(sql_value('SELECT count(*) FROM chatts'), 0, 'the refused post stored nothing');
    is_deeply([worst_log_lines($ng->error_log_text)], [], 'no alert or crash');
    $ng->stop;
};

# ---- (f) ----------------------------------------------------------------------------------

subtest '(f) clients leaving mid-query: no crash, the connection goes back to the pool' => sub {
    truncate_chatts();
    my $app = "chatterd_resilience_$$";
    my $ng = start_nginx(conninfo => "$CONNINFO application_name=$app",
                         http => 'chatterd_pg_pool 1; chatterd_pg_timeout 10s;');
    my $worker = $ng->pid;
    is(timed_get($ng->port, '/getchatts?warm')->{status}, 200, 'warm-up: 200');
    my @backends = map { $_->[0] }
        sql("SELECT pid FROM pg_stat_activity WHERE application_name = '$app'");
    is(scalar @backends, 1, 'one backend for the pool of 1');

    pause_pg();
    my $running = send_request($ng->port, build_request(GET => '/getchatts?leaving'));
    wait_handled($ng, '/getchatts?leaving');
    my $queued = send_request($ng->port, build_request(GET => '/getimages?leaving-queued'));
    wait_handled($ng, '/getimages?leaving-queued');
    my $posting = send_request($ng->port, post_chatt_request('gone', 'away', '/postchatt?leaving'));
    wait_handled($ng, '/postchatt?leaving');
    $ng->mark_error_log;
    close $_->{sock} for $running, $queued, $posting;
    is(wait_lines($ng, qr/client prematurely closed connection/, 3), 3,
       'nginx noticed the three clients leave');
    resume_pg();

    for my $n (1 .. 3) {
        my $res = timed_get($ng->port, "/getchatts?next=$n");
        is($res->{status}, 200, "next request $n: 200");
        cmp_ok($res->{elapsed}, '<', 2, "next request $n: served at once, not after a timeout");
    }
    is(sql_value('SELECT count(*) FROM chatts'), 0,
       'the post whose client left while it waited for a connection was never run');
    is($ng->pid, $worker, 'the worker is the same process');
    ok($ng->is_running, 'nginx is running');
    is_deeply([map { $_->[0] } sql("SELECT pid FROM pg_stat_activity WHERE application_name = '$app'")],
              \@backends, 'the same PostgreSQL backend serves the pool (connection reused, not replaced)');
    unlike($ng->error_log_text, qr/timed out|connection state check/, 'no timeout, no dropped connection');
    is_deeply([worst_log_lines($ng->error_log_text)], [], 'no alert or crash');
    $ng->stop;
};

# ---- (g) ----------------------------------------------------------------------------------

subtest '(g) 10,000-row getimages: every row, 6 elements, oldest first' => sub {
    truncate_chatts();
    # Inserted newest first, so that the order must come from ORDER BY time.
    sql(q{INSERT INTO chatts (username, message, time, imageurl, videourl)
          SELECT 'user' || i, 'message ' || i || ' ' || repeat('x', i % 50),
                 timestamp '2025-01-01' + i * interval '1.5 millisecond',
                 CASE WHEN i % 2 = 0 THEN 'https://h/media/i' || i || '.jpeg' END,
                 CASE WHEN i % 3 = 0 THEN 'https://h/media/v' || i || '.mp4' END
          FROM generate_series(10000, 1, -1) AS i});
    my $ng = start_nginx();
    my $res = timed_get($ng->port, '/getimages', timeout => 20);
    is($res->{status}, 200, 'getimages: 200');
    is($res->{headers}{'content-length'}, length $res->{body}, 'Content-Length is the body length');
    my $rows = eval { JSON::PP->new->utf8->decode($res->{body}) } // [];
    is(scalar @$rows, 10000, '10,000 rows');
    my @bad;
    my $prev = '';
    for my $i (1 .. @$rows) {
        my $row = $rows->[$i - 1];
        my $ok = ref $row eq 'ARRAY' && @$row == 6
            && $row->[0] eq "user$i" && $row->[1] eq "message $i " . ('x' x ($i % 50))
            && $row->[2] =~ /\A$UUID\z/ && $row->[3] =~ /\A$TIME\z/ && $row->[3] gt $prev
            && ($row->[4] // 'NULL') eq ($i % 2 == 0 ? "https://h/media/i$i.jpeg" : 'NULL')
            && ($row->[5] // 'NULL') eq ($i % 3 == 0 ? "https://h/media/v$i.mp4" : 'NULL');
        push @bad, $i unless $ok;
        $prev = ref $row eq 'ARRAY' ? $row->[3] // '' : '';
    }
    is(scalar @bad, 0, 'every row right (6 elements, values, NULLs) and in time order')
        or diag("first bad row $bad[0]: " . JSON::PP->new->encode($rows->[$bad[0] - 1]));
    is_deeply([worst_log_lines($ng->error_log_text)], [], 'no alert or crash');
    $ng->stop;
    truncate_chatts();
};

# ---- (h) ----------------------------------------------------------------------------------

subtest '(h) a query error (table renamed): 500, and the connection stays in the pool' => sub {
    truncate_chatts();
    my $app = "chatterd_renamed_$$";
    my $ng = start_nginx(conninfo => "$CONNINFO application_name=$app", http => 'chatterd_pg_pool 1;');
    is(timed_get($ng->port, '/getchatts?warm')->{status}, 200, 'warm-up: 200');
    my @backends = map { $_->[0] }
        sql("SELECT pid FROM pg_stat_activity WHERE application_name = '$app'");

    $renamed = 1;
    sql('ALTER TABLE chatts RENAME TO chatts_renamed_by_pg_resilience');
    my $get = timed_get($ng->port, '/getchatts?renamed');
    my $images = timed_get($ng->port, '/getimages?renamed');
    my $post = http_request($ng->port, post_chatt_request('alice', 'nowhere'));
    restore_table();

    is($get->{status}, 500, 'getchatts: 500');
    is($get->{body}, '"Database error while reading chatts"', 'getchatts: body');
    is($images->{status}, 500, 'getimages: 500');
    is($post->{status}, 500, 'postchatt: 500');
    is($post->{body}, '"Database error while storing the chatt"', 'postchatt: body');
    like($ng->error_log_text, qr/relation "chatts" does not exist/, 'error log: the cause');

    my $after = http_request($ng->port, post_chatt_request('alice', 'back'));
    is($after->{status}, 200, 'table back: postchatt 200');
    is(timed_get($ng->port, '/getchatts?back')->{status}, 200, 'table back: getchatts 200');
    is_deeply([map { $_->[0] } sql("SELECT pid FROM pg_stat_activity WHERE application_name = '$app'")],
              \@backends, 'the same PostgreSQL backend throughout (a query error keeps the connection)');
    is_deeply([worst_log_lines($ng->error_log_text)], [], 'no alert or crash');
    $ng->stop;
};

# ---- (i) ----------------------------------------------------------------------------------

subtest '(i) stuck behind a lock: 503 after the timeout, and the late INSERT stores nothing' => sub {
    truncate_chatts();
    my $app = "chatterd_locked_$$";
    my $ng = start_nginx(conninfo => "$CONNINFO application_name=$app",
                         http => 'chatterd_pg_timeout 1s;');
    is(http_request($ng->port, post_chatt_request('before', 'lock'))->{status}, 200, 'warm-up post: 200');

    open($lock_holder, '|-', split(' ', $ENV{TEST_NGINX_PSQL}), '-o', '/dev/null')
        or die "psql: $!";
    select((select($lock_holder), $| = 1)[0]);
    print {$lock_holder} "BEGIN;\nLOCK TABLE chatts IN ACCESS EXCLUSIVE MODE;\n";
    wait_until(sub {
        sql_value(q{SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
                    WHERE c.relname = 'chatts' AND l.mode = 'AccessExclusiveLock' AND l.granted}) == 1
    }, 10) or die "lock taken: not within 10 s\n";

    my $post = send_request($ng->port, post_chatt_request('late', 'insert'));
    my $get = send_request($ng->port, build_request(GET => '/getchatts?locked'));
    collect(10, $post, $get);
    for my $client ([$post, 'postchatt'], [$get, 'getchatts']) {
        my ($c, $what) = @$client;
        is($c->{res}{status}, 503, "$what behind the lock: 503");
        is($c->{res}{body}, '"Service unavailable"', "$what: body");
        cmp_ok($c->{elapsed}, '>=', 0.9, "$what: after chatterd_pg_timeout 1s...");
        cmp_ok($c->{elapsed}, '<', 4, "$what: ...not much later");
    }

    # Let the abandoned INSERT run (its backend still waits for the lock), and wait until
    # no statement of ours is left in PostgreSQL.
    release_lock();
    wait_until(sub {
        sql_value(qq{SELECT count(*) FROM pg_stat_activity
                     WHERE application_name = '$app' AND state = 'active'}) == 0
    }, 10) or die "abandoned statements finished: not within 10 s\n";
    is_deeply([map { $_->[0] } sql('SELECT username FROM chatts ORDER BY time')], ['before'],
              'the post answered 503 left no row');
    is(http_request($ng->port, post_chatt_request('after', 'lock'))->{status}, 200,
       'after the lock: postchatt 200');
    is_deeply([worst_log_lines($ng->error_log_text)], [], 'no alert or crash');
    $ng->stop;
};

# ---- (j) ----------------------------------------------------------------------------------

# Splits the bytes received on one connection into responses; @methods are the requests'
# methods, in order (a HEAD answer has a Content-Length but no body).
sub responses_of {
    my ($raw, @methods) = @_;
    my @responses;
    while (length $raw) {
        my $res = parse_http_response($raw);
        last unless defined $res->{status} && defined $res->{head};
        my $method = shift(@methods) // 'GET';
        my $len = $method eq 'HEAD' ? 0 : $res->{headers}{'content-length'} // 0;
        push @responses, { status => $res->{status}, body => substr($raw, length $res->{head}, $len) };
        substr($raw, 0, length($res->{head}) + $len) = '';
    }
    return @responses;
}

subtest '(j) keep-alive and pipelining while queries run' => sub {
    truncate_chatts();
    my $ng = start_nginx(http => 'chatterd_pg_pool 1; chatterd_pg_timeout 10s;');
    my $body = '{"username":"pipe","message":"lined"}';
    my $pipelined = "GET /getchatts HTTP/1.1\r\nHost: localhost\r\n\r\n"
        . "POST /postchatt HTTP/1.1\r\nHost: localhost\r\nContent-Length: " . length($body) . "\r\n\r\n$body"
        . "HEAD /getimages HTTP/1.1\r\nHost: localhost\r\n\r\n"
        . "GET /getchatts/ HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    my ($c) = collect(10, send_request($ng->port, $pipelined));
    my @got = responses_of($c->{raw}, qw(GET POST HEAD GET));
    is_deeply([map { $_->{status} } @got], [200, 200, 200, 200], 'four pipelined answers: 200');
    is($got[0]{body}, '[]', 'first: the table before the post');
    is($got[1]{body}, '{}', 'second: the post');
    is($got[2]{body}, '', 'third: HEAD, no body');
    like($got[3]{body} // '', qr/\A\[\["pipe","lined","$UUID","$TIME"\]\]\z/, 'fourth: the posted row');

    pause_pg();
    my $conn = send_request($ng->port, "GET /getchatts?first HTTP/1.1\r\nHost: localhost\r\n\r\n");
    wait_handled($ng, '/getchatts?first');
    my $sock = $conn->{sock};
    $sock->blocking(1);
    print {$sock} "GET /getimages?second HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    $sock->flush;
    $sock->blocking(0);
    resume_pg();
    collect(10, $conn);
    @got = responses_of($conn->{raw});
    is_deeply([map { $_->{status} } @got], [200, 200], 'a request sent while the previous one waited: both 200');
    like($got[0]{body} // '', qr/\A\[\["pipe","lined","$UUID","$TIME"\]\]\z/, 'first: getchatts');
    like($got[1]{body} // '', qr/\A\[\["pipe","lined","$UUID","$TIME",null,null\]\]\z/, 'second: getimages');
    is_deeply([worst_log_lines($ng->error_log_text)], [], 'no alert or crash');
    $ng->stop;
};

# ---- (k) ----------------------------------------------------------------------------------

subtest '(k) chatterd_pg_queue 0: idle connections serve, a busy pool refuses at once' => sub {
    truncate_chatts();
    my $ng = start_nginx(http => 'chatterd_pg_pool 2; chatterd_pg_queue 0; chatterd_pg_timeout 10s;');
    # The pool connects when the worker starts: wait until both connections are idle.
    is(wait_lines($ng, qr/chatterd: postgres connected, fd/, 2), 2, 'both pool connections are up');
    $ng->mark_error_log;
    for my $n (1 .. 3) {
        my $res = timed_get($ng->port, "/getchatts?idle=$n");
        is($res->{status}, 200, "getchatts $n with an idle connection: 200") or diag($res->{raw});
        is($res->{body}, '[]', "getchatts $n: body");
    }
    my $post = http_request($ng->port, post_chatt_request('queue', 'zero'));
    is($post->{status}, 200, 'postchatt with an idle connection: 200') or diag($post->{raw});
    is($post->{body}, '{}', 'postchatt: {}');
    like(timed_get($ng->port, '/getimages?idle')->{body} // '',
         qr/\A\[\["queue","zero","$UUID","$TIME",null,null\]\]\z/, 'getimages: 200 with the posted row');
    unlike(scalar $ng->error_log_since_mark, qr/queue is full/, 'nobody was refused');

    # Both connections busy (PostgreSQL paused mid-query): nothing may wait.
    pause_pg();
    my @running = map { send_request($ng->port, build_request(GET => "/getchatts?running=$_")) } 1, 2;
    wait_handled($ng, "/getchatts?running=$_") for 1, 2;
    my $res = timed_get($ng->port, '/getchatts?excess', timeout => 5);
    is($res->{status}, 503, 'a third request with both connections busy: 503');
    is($res->{body}, '"Service unavailable"', 'excess request: body');
    cmp_ok($res->{elapsed}, '<', 1, 'excess request: at once, not at chatterd_pg_timeout');
    my $excess_post = http_request($ng->port, post_chatt_request('excess', 'refused'), timeout => 5);
    is($excess_post->{status}, 503, 'excess postchatt: 503');
    like(scalar $ng->error_log_since_mark, qr/postgres request queue is full \(chatterd_pg_queue 0\)/,
         'error log: the queue bound');
    resume_pg();

    collect(10, @running);
    is_deeply([map { $_->{res}{status} } @running], [200, 200], 'the two running requests complete: 200');
    is(timed_get($ng->port, '/getchatts?after')->{status}, 200, 'and the next one: 200');
    is_deeply([map { $_->[0] } sql('SELECT username FROM chatts')], ['queue'],
              'the refused post stored nothing');
    is_deeply([worst_log_lines($ng->error_log_text)], [], 'no alert or crash');
    $ng->stop;
};

done_testing();
