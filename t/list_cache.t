# The node's cached listings (chatterd_list_cache, docs/OPERATIONS.md "List cache"), on a cluster
# of the suite's own (it pauses and restarts it), nginx with 2 workers:
#   (a) validators: every getchatts/getimages answer has a strong ETag and "Cache-Control:
#       no-cache"; If-None-Match with it gives 304 with no body, the same ETag and
#       Cache-Control; the bodies and ETags are those of a location without the cache;
#   (b) an unchanged table costs nothing: after the one query that builds the file, 200s and
#       304s on new connections (both workers) run no statement (the pool's statement counter
#       stays), the file is not rebuilt (rebuild counter), and one file per listing is kept;
#       a file removed behind its back is built again;
#   (c) invalidation: a row inserted, updated and deleted with psql, and a post through another
#       nginx (node B), show in node A's next listings (polled), with a new ETag;
#   (d) read-your-writes across workers while the notifications are held back (the LISTEN
#       backends SIGSTOPped): every post's 200 is followed, on a new connection, by a listing
#       that has it, whichever worker serves it;
#   (e) LISTEN down: with its backends terminated and no new connection allowed (the pool's
#       stay open), a row inserted with psql is in the next listing (the workers query instead
#       of trusting the cache); once LISTEN is back, the cache serves again; after a restart of
#       PostgreSQL the listings are correct and the cache is used again;
#   (f) an answer beyond chatterd_list_cache_max_size is not cached (counted), and stays right.
use strict; use warnings;
use FindBin; BEGIN { push @INC, "$FindBin::Bin/lib" }
use Test::More;
use JSON::PP ();

use Chatterd::Db qw(sql truncate_chatts media_root);
use Chatterd::Http qw(http_request http_get build_request);
use Chatterd::Nginx qw(start_nginx);
use Chatterd::ExampleConf;
use Chatterd::Pg;
use Chatterd::Wait qw(wait_until);

for my $var (qw(TEST_NGINX_PG_DIR)) {
    plan skip_all => "$var is not set (run through make test)" unless $ENV{$var};
}

my $PG   = Chatterd::Pg->new("$ENV{TEST_NGINX_PG_DIR}-listcache");
my $JSON = JSON::PP->new->utf8;
my $ETAG = qr/\A"[A-Za-z0-9_-]{22}"\z/;
my @stopped;    # LISTEN backends this suite SIGSTOPped

$PG->use_for_db;
END {
    local ($?, $@);
    kill 'CONT', @stopped if @stopped;
    eval { admin('ALTER DATABASE chatterdb CONNECTION LIMIT -1') };
    eval { $PG->stop };
}
$PG->start;

sub admin { $PG->admin_value($_[0], 'chatterdb') }

sub node {
    my (%opt) = @_;
    return start_nginx(
        workers     => 2,
        pg          => $PG->conninfo,
        media_root  => media_root(),
        http_config => "chatterd_pg_pool 2;\n" . ($opt{http_config} // ''),
        config      => Chatterd::ExampleConf::endpoint_locations() . <<'CONF');
location /status { chatterd_status; }
location /uncached/ {
    chatterd_list_cache off;
    location /uncached/getchatts { chatterd getchatts; }
    location /uncached/getimages { chatterd getimages; }
}
CONF
}

# One sample of the status page (0 when absent).
sub metric {
    my ($ng, $name, $labels) = @_;
    my $page = http_get($ng->port, '/status')->{body} // '';
    my $want = defined $labels ? "$name\{$labels\}" : $name;
    return $page =~ /^\Q$want\E (\d+)$/m ? $1 : 0;
}

sub listening { metric($_[0], 'chatterd_pg_listening_workers', 'pool="0"') }

# Both workers listen and their pools are open.
sub wait_ready {
    my ($ng) = @_;
    return wait_until(sub { listening($ng) == 2
                            && metric($ng, 'chatterd_pg_connections', 'pool="0",state="idle"') == 4 });
}

sub get {
    my ($ng, $uri, @headers) = @_;
    return http_request($ng->port, build_request(GET => $uri, headers => \@headers));
}

sub post_chatt {
    my ($ng, $username, $message) = @_;
    return http_request($ng->port, build_request(POST => '/postchatt',
        body => $JSON->encode({username => $username, message => $message}),
        headers => ['Content-Type' => 'application/json']));
}

sub messages {
    my ($res) = @_;
    return [] unless ($res->{status} // 0) == 200;
    return [map { $_->[1] } @{ $JSON->decode($res->{body}) }];
}

sub has_message { scalar grep { $_ eq $_[1] } @{ messages($_[0]) } }

sub cache_files {
    my ($ng) = @_;
    opendir(my $dh, $ng->servroot . '/client_body_temp') or return ();
    return sort grep { /\Achatterd-list-/ } readdir $dh;
}

sub listen_backends {
    return split ' ', admin("SELECT string_agg(pid::text, ' ') FROM pg_stat_activity "
                            . "WHERE query = 'LISTEN chatts' AND usename = 'chatter'") // '';
}

truncate_chatts();
sql(q{INSERT INTO chatts (username, message, imageurl) VALUES ('seed', 'first', 'http://x/y.jpeg')});
my $ng = node();
ok(wait_ready($ng), 'both workers listen');

subtest '(a) validators' => sub {
    for my $listing (qw(getchatts getimages)) {
        my $first = get($ng, "/$listing");
        is($first->{status}, 200, "$listing: 200");
        like($first->{headers}{etag} // '', $ETAG, "$listing: a strong ETag");
        is($first->{headers}{'cache-control'}, 'no-cache', "$listing: Cache-Control: no-cache");
        is($first->{headers}{'content-type'}, 'application/json', "$listing: application/json");
        my $again = get($ng, "/$listing");
        is($again->{body}, $first->{body}, "$listing: the cached answer has the same bytes");
        is($again->{headers}{etag}, $first->{headers}{etag}, "$listing: and the same ETag");
        my $uncached = get($ng, "/uncached/$listing");
        is($uncached->{body}, $first->{body}, "$listing: the same bytes as without the cache");
        is($uncached->{headers}{etag}, $first->{headers}{etag}, "$listing: the same ETag too");
        for my $tag ($first->{headers}{etag}, "W/$first->{headers}{etag}") {
            for my $uri ("/$listing", "/uncached/$listing") {
                my $res = get($ng, $uri, 'If-None-Match' => $tag);
                is($res->{status}, 304, "$uri, If-None-Match: $tag: 304");
                is($res->{body}, '', "$uri: 304 without a body");
                is($res->{headers}{etag}, $first->{headers}{etag}, "$uri: 304 with the ETag");
                is($res->{headers}{'cache-control'}, 'no-cache', "$uri: 304 with Cache-Control");
            }
        }
        is(get($ng, "/$listing", 'If-None-Match' => '"other"')->{status}, 200,
           "$listing: another tag: 200");
        my $head = http_request($ng->port, build_request(HEAD => "/$listing"));
        is($head->{headers}{etag}, $first->{headers}{etag}, "$listing: HEAD has the ETag");
        is($head->{headers}{'content-length'}, length $first->{body}, "$listing: HEAD's length");
    }
    isnt(get($ng, '/getchatts')->{headers}{etag}, get($ng, '/getimages')->{headers}{etag},
         'the two listings have their own tags');
};

subtest '(b) an unchanged table: no statement, no rebuild' => sub {
    my $etag = get($ng, '/getimages')->{headers}{etag};
    get($ng, '/getchatts');
    my %before = (queries => metric($ng, 'chatterd_pg_queries_total', 'pool="0"'),
                  rebuilds => metric($ng, 'chatterd_list_cache_rebuilds_total'),
                  hits => metric($ng, 'chatterd_list_cache_hits_total'));
    my %status;
    for (1 .. 20) {
        $status{get($ng, '/getimages')->{status}}++;
        $status{get($ng, '/getchatts')->{status}}++;
        $status{get($ng, '/getimages', 'If-None-Match' => $etag)->{status}}++;
    }
    is_deeply(\%status, {200 => 40, 304 => 20}, '40 answers 200, 20 answers 304');
    is(metric($ng, 'chatterd_pg_queries_total', 'pool="0"'), $before{queries},
       'the 60 listings (new connections, both workers) ran no statement');
    is(metric($ng, 'chatterd_list_cache_rebuilds_total'), $before{rebuilds}, 'and rebuilt no file');
    is(metric($ng, 'chatterd_list_cache_hits_total') - $before{hits}, 60, '60 hits counted');
    my @files = cache_files($ng);
    is(scalar @files, 2, "one file per listing") or diag("@files");
    my $bytes = 0;
    $bytes += -s $ng->servroot . "/client_body_temp/$_" for cache_files($ng);
    is(metric($ng, 'chatterd_list_cache_bytes'), $bytes, "the status page tells their $bytes bytes");

    # A file removed behind the node's back (a cleaner of the temporary directory) is rebuilt.
    my $body = get($ng, '/getimages')->{body};
    unlink map { $ng->servroot . "/client_body_temp/$_" } cache_files($ng);
    my $rebuilds = metric($ng, 'chatterd_list_cache_rebuilds_total');
    is(get($ng, '/getimages')->{body}, $body, 'a removed file: the listing is still right');
    ok(wait_until(sub { get($ng, '/getimages');
                        metric($ng, 'chatterd_list_cache_rebuilds_total') > $rebuilds }),
       'and the file is built again');
};

subtest '(c) invalidation by psql and by another node' => sub {
    my $old = get($ng, '/getchatts');
    sql(q{INSERT INTO chatts (username, message) VALUES ('psql', 'inserted')});
    my $new;
    ok(wait_until(sub { $new = get($ng, '/getchatts'); has_message($new, 'inserted') }),
       'a row inserted with psql is listed');
    isnt($new->{headers}{etag}, $old->{headers}{etag}, 'with a new ETag');
    is(get($ng, '/getchatts', 'If-None-Match' => $old->{headers}{etag})->{status}, 200,
       'the old ETag gets 200');
    sql(q{UPDATE chatts SET message = 'updated' WHERE message = 'inserted'});
    ok(wait_until(sub { has_message(get($ng, '/getimages'), 'updated') }), 'an UPDATE is seen');
    sql(q{DELETE FROM chatts WHERE message = 'updated'});
    ok(wait_until(sub { !has_message(get($ng, '/getimages'), 'updated') }), 'a DELETE is seen');

    my $b = node();
    ok(wait_ready($b), 'node B listens');
    get($ng, '/getchatts');    # node A's file is current
    is(post_chatt($b, 'nodeb', 'through B')->{status}, 200, 'a post through node B');
    ok(wait_until(sub { has_message(get($ng, '/getchatts'), 'through B') }),
       'node A lists it');
    my @files = cache_files($ng);
    is(scalar @files, 2, "node A still keeps one file per listing") or diag("@files");
    $b->stop;
};

subtest '(d) read-your-writes across workers, notifications held back' => sub {
    get($ng, '/getchatts');
    get($ng, '/getimages');
    my @listeners = listen_backends();
    is(scalar @listeners, 2, 'two LISTEN backends');
    @stopped = @listeners;
    kill 'STOP', @stopped;
    my $missing = 0;
    for my $i (1 .. 30) {
        is(post_chatt($ng, 'ryw', "post $i")->{status}, 200, "post #$i: 200") or next;
        my $listing = $i % 2 ? '/getchatts' : '/getimages';
        $missing++ unless has_message(get($ng, $listing), "post $i");
    }
    is($missing, 0, 'every post is in the listing asked for right after its 200');
    kill 'CONT', @stopped;
    @stopped = ();
};

subtest '(e) LISTEN down: the workers query; a restart' => sub {
    ok(wait_ready($ng), 'both workers listen, pools open');
    get($ng, '/getchatts');
    admin('ALTER DATABASE chatterdb CONNECTION LIMIT 0');
    $ng->mark_error_log;
    admin(q{SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = 'LISTEN chatts'});
    ok(wait_until(sub { listening($ng) == 0 }), 'no worker listens');
    ok($ng->wait_for_error_log(qr/\[warn\].*LISTEN connection .* is down/), 'the log says so');
    admin(q{INSERT INTO chatts (username, message) VALUES ('admin', 'while down')});
    my $hits = metric($ng, 'chatterd_list_cache_hits_total');
    for (1 .. 6) {
        ok(has_message(get($ng, '/getchatts'), 'while down'), "listing #$_ has the row");
    }
    is(metric($ng, 'chatterd_list_cache_hits_total'), $hits, 'no hit while LISTEN is down');
    cmp_ok(metric($ng, 'chatterd_list_cache_queries_total', 'reason="listen_down"'), '>=', 6,
           'counted as queries with LISTEN down');
    admin('ALTER DATABASE chatterdb CONNECTION LIMIT -1');
    ok(wait_until(sub { listening($ng) == 2 }), 'LISTEN is back');
    get($ng, '/getchatts');
    ok(wait_until(sub { $hits = metric($ng, 'chatterd_list_cache_hits_total');
                        get($ng, '/getchatts');
                        metric($ng, 'chatterd_list_cache_hits_total') > $hits }),
       'the cache serves again');

    $PG->stop;
    $PG->start;
    sql(q{INSERT INTO chatts (username, message) VALUES ('psql', 'after restart')});
    ok(wait_until(sub { has_message(get($ng, '/getchatts'), 'after restart') }),
       'after a restart, a row inserted at once is listed');
    for (1 .. 6) {
        ok(has_message(get($ng, '/getchatts'), 'after restart'), "listing #$_ after the restart");
    }
    ok(wait_until(sub { listening($ng) == 2 }), 'both workers listen again');
    ok(wait_until(sub { $hits = metric($ng, 'chatterd_list_cache_hits_total');
                        has_message(get($ng, '/getchatts'), 'after restart')
                        && metric($ng, 'chatterd_list_cache_hits_total') > $hits }),
       'and the cache serves again, with the row');
};

subtest '(f) beyond chatterd_list_cache_max_size' => sub {
    $ng->stop;
    my $small = node(http_config => "chatterd_list_cache_max_size 100;\n");
    ok(wait_ready($small), 'listening');
    my $uncached = get($small, '/uncached/getimages');
    cmp_ok(length $uncached->{body}, '>', 100, 'the answer is beyond 100 bytes');
    for (1 .. 3) {
        my $res = get($small, '/getimages');
        is($res->{body}, $uncached->{body}, "listing #$_: right");
        is($res->{headers}{etag}, $uncached->{headers}{etag}, "listing #$_: its ETag");
    }
    is(metric($small, 'chatterd_list_cache_too_big_total'), 3, '3 answers not cached, counted');
    is(metric($small, 'chatterd_list_cache_hits_total'), 0, 'no hit');
    is(scalar(my @none = cache_files($small)), 0, "no file");
    $small->stop;
};

done_testing();
