# chatterd_status: the metrics page, summed over two workers through the shared zone.
#   (a) requests of every endpoint (200, 405, 422, a 503 from a database that is down, uploads
#       with media): every counter moves by exactly those requests, the gauges settle, the
#       page follows the text format strictly and promtool accepts it;
#   (b) posts and reads that wait behind a table lock: the queue shows them, and the batch
#       histogram accounts for every request;
#   (c) the media sweep's removals;
#   (e) reads refused by chatterd_answer_memory_max while they share one COPY: every one 503,
#       counted, told at info only, no worker dies;
#   (f) posts that find the queue full: 503, counted, told at info only;
#   (g) a worker without a descriptor for a new connection: 503, counted, its own line, and the
#       database is not taken for down;
#   (d) a real Prometheus scrapes the page every second and sees the test's own requests.
use strict; use warnings;
use FindBin; BEGIN { push @INC, "$FindBin::Bin/lib" }
use Test::More;
use File::Temp ();
use IO::Select;
use IO::Socket::INET;
use JSON::PP ();
use POSIX ();
use Time::HiRes ();

use Chatterd::Db qw(sql sql_value truncate_chatts media_root);
use Chatterd::Http qw(http_request http_get build_request multipart_body);
use Chatterd::Nginx;
use Chatterd::NginxProcess;
use Chatterd::Upload qw(media image_part);
use Chatterd::ExampleConf;
use Chatterd::Wait qw(wait_until);

for my $var (qw(TEST_NGINX_PG_CONNINFO TEST_NGINX_PSQL)) {
    plan skip_all => "$var is not set (run through make test)" unless $ENV{$var};
}

my $MEDIA      = media_root();
my $DOWN_MEDIA = "$MEDIA-down";
mkdir $DOWN_MEDIA unless -d $DOWN_MEDIA;
my $DEAD_PORT  = Chatterd::NginxProcess::free_port();   # nobody listens there
my $POOL_SIZE  = 2;

sub program {
    my ($name) = @_;
    return (grep { -x } map { "$_/$name" } split /:/, $ENV{PATH} // '')[0];
}

sub start_nginx {
    my (%opt) = @_;
    return Chatterd::Nginx::start_nginx(
        workers     => $opt{workers} // 2,
        media_root  => $MEDIA,
        main_config => ($> == 0 ? "user root root;
" : '') . ($opt{main_config} // ''),
        http_config => "chatterd_pg_pool $POOL_SIZE;
" . ($opt{http_config} // ''),
        config      => Chatterd::ExampleConf::endpoint_locations() . <<CONF,
location /down/ {
    chatterd_pg "host=127.0.0.1 port=$DEAD_PORT dbname=chatterdb user=chatter password=secretword";
    chatterd_media_root $DOWN_MEDIA;
    chatterd_media_sweep off;
    location /down/postchatt  { chatterd postchatt; }
    location /down/postimages { chatterd postimages; }
}
location /status { chatterd_status; }
CONF
    );
}

# ---- the page, read strictly ----------------------------------------------------------------

my $NAME  = qr/[a-zA-Z_:][a-zA-Z0-9_:]*/;
my $LABEL = qr/[a-zA-Z_][a-zA-Z0-9_]*/;
my $VALUE = qr/[-+]?(?:\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|Inf|NaN)/;

sub sample_key {
    my ($name, %labels) = @_;
    return $name . '{' . join(',', map { "$_=$labels{$_}" } sort keys %labels) . '}';
}

# Parses the text exposition format 0.0.4; returns (\%samples, \@problems).
sub parse_page {
    my ($text) = @_;
    my (%type, %help, %samples, @problems, %done, $current);
    my $family_of = sub {
        my ($name) = @_;
        return $name if $type{$name};
        (my $base = $name) =~ s/_(?:bucket|sum|count)\z//;
        return $base if ($type{$base} // '') =~ /\A(?:histogram|summary)\z/;
        return undef;
    };
    push @problems, 'the page does not end with a newline' unless $text =~ /\n\z/;
    for my $line (split /\n/, $text) {
        if ($line =~ /\A# HELP ($NAME) (.*)\z/) {
            push @problems, "two HELP lines for $1" if $help{$1}++;
        } elsif ($line =~ /\A# TYPE ($NAME) (counter|gauge|histogram|summary|untyped)\z/) {
            push @problems, "two TYPE lines for $1" if $type{$1};
            push @problems, "TYPE of $1 after its samples" if $done{$1};
            $type{$1} = $2;
        } elsif ($line =~ /\A#/) {
            push @problems, "a comment that is neither HELP nor TYPE: $line";
        } elsif ($line =~ /\A($NAME)(?:\{(.*)\})? ($VALUE)\z/) {
            my ($name, $labels, $value) = ($1, $2 // '', $3);
            my %labels;
            while (length $labels) {
                $labels =~ s/\A($LABEL)="((?:[^"\\\n]|\\[\\"n])*)"(?:,|\z)// or do {
                    push @problems, "malformed labels: $line";
                    last;
                };
                push @problems, "label $1 twice: $line" if exists $labels{$1};
                $labels{$1} = $2 =~ s/\\(.)/$1 eq 'n' ? "\n" : $1/ger;
            }
            my $family = $family_of->($name);
            if (!defined $family) {
                push @problems, "a sample without a TYPE: $line";
                next;
            }
            push @problems, "not a chatterd metric: $name" unless $name =~ /\Achatterd_/;
            push @problems, "a counter not ending in _total: $name"
                if $type{$family} eq 'counter' && $name !~ /_total\z/;
            if (($current // '') ne $family) {
                push @problems, "the samples of $family are not together" if $done{$family};
                $done{$current} = 1 if defined $current;
                $current = $family;
            }
            my $key = sample_key($name, %labels);
            push @problems, "a sample twice: $key" if exists $samples{$key};
            $samples{$key} = $value;
        } else {
            push @problems, "not a line of the format: $line";
        }
    }
    return (\%samples, \@problems);
}

sub page {
    my ($ng) = @_;
    my $res = http_get($ng->port, '/status');
    die "GET /status: " . ($res->{status} // $res->{error}) . "\n" unless ($res->{status} // 0) == 200;
    my ($samples, $problems) = parse_page($res->{body});
    return { samples => $samples, problems => $problems, text => $res->{body}, res => $res };
}

sub value {
    my ($page, $name, %labels) = @_;
    return $page->{samples}{sample_key($name, %labels)} // 0;
}

sub moved {
    my ($before, $after, $name, %labels) = @_;
    return value($after, $name, %labels) - value($before, $name, %labels);
}

# ---- requests ----------------------------------------------------------------------------------

my $JPEG = media('jpeg', 20000, 5);

sub upload_body {
    my (@parts) = @_;
    return multipart_body('statusBoundary', [name => 'username', value => 'stat'],
                          [name => 'message', value => 'counted'], @parts);
}

sub post {
    my ($port, $uri, $body, $type) = @_;
    return http_request($port, build_request(POST => $uri, body => $body,
                                             headers => ['Content-Type' => $type]));
}

sub post_json { post($_[0], $_[1], $_[2], 'application/json') }
sub post_form { post($_[0], $_[1], $_[2], 'multipart/form-data; boundary=statusBoundary') }

subtest '(a) every endpoint, summed over both workers' => sub {
    truncate_chatts();
    my $started = time;
    # Every read queries, so that the statements are counted exactly: the list cache would answer
    # most of them (its counters are t/list_cache.t's).
    my $ng = start_nginx(http_config => "chatterd_list_cache off;\n");
    ok(wait_until(sub { my $p = page($ng);
                        value($p, 'chatterd_workers') == 2
                        && value($p, 'chatterd_pg_connections', pool => 0, state => 'idle') == 2 * $POOL_SIZE
                        && value($p, 'chatterd_pg_up', pool => 1,
                                 target => "host=127.0.0.1 port=$DEAD_PORT dbname=chatterdb user=chatter") == 0 }),
       'both workers publish: every connection of pool 0 idle, pool 1 down');
    my $before = page($ng);
    is($before->{res}{headers}{'content-type'}, 'text/plain; version=0.0.4; charset=utf-8',
       'Content-Type of the text format');

    my (%status, $json_bytes, $form_bytes);
    my $expect = sub {
        my ($endpoint, $res, $want) = @_;
        $status{"$endpoint $want"}++;
        is($res->{status}, $want, "$endpoint: $want") or diag($res->{raw});
    };
    for (1 .. 6) {
        $expect->(getchatts => http_get($ng->port, '/getchatts'), 200);
        $expect->(getimages => http_get($ng->port, '/getimages'), 200);
    }
    for my $i (1 .. 4) {
        my $body = qq({"username":"stat","message":"json $i"});
        $json_bytes += length $body;
        $expect->(postchatt => post_json($ng->port, '/postchatt', $body), 200);
    }
    my $bad = '{"username":"stat"}';
    $json_bytes += length $bad;
    $expect->(postchatt => post_json($ng->port, '/postchatt', $bad), 422);
    $expect->(postchatt => http_get($ng->port, '/postchatt'), 405);
    for my $media (1, 1, 1, 0) {
        my $body = upload_body($media ? image_part($JPEG) : ());
        $form_bytes += length $body;
        $expect->(postimages => post_form($ng->port, '/postimages', $body), 200);
    }
    my $down = qq({"username":"stat","message":"down"});
    $json_bytes += length $down;
    $expect->(postchatt => post_json($ng->port, '/down/postchatt', $down), 503);
    for (1 .. 2) {
        my $body = upload_body(image_part($JPEG));
        $form_bytes += length $body;
        $expect->(postimages => post_form($ng->port, '/down/postimages', $body), 503);
    }

    # The log phase runs after the answer: wait for the last one to be counted.
    my $total = 0;
    $total += $_ for values %status;
    my $after;
    ok(wait_until(sub {
        $after = page($ng);
        my $n = 0;
        $n += moved($before, $after, 'chatterd_requests_total', endpoint => $_->[0], status => $_->[1])
            for map { [split / /] } keys %status;
        $n == $total }), "$total requests counted");
    for my $key (sort keys %status) {
        my ($endpoint, $code) = split / /, $key;
        is(moved($before, $after, 'chatterd_requests_total', endpoint => $endpoint, status => $code),
           $status{$key}, "requests_total{endpoint=$endpoint,status=$code} moved by $status{$key}");
    }
    my @others = grep { /\Achatterd_requests_total\{/ && ($after->{samples}{$_} // 0) != ($before->{samples}{$_} // 0)
                        && !$status{join ' ', /endpoint=(\w+),status=(\d+)/} } keys %{$after->{samples}};
    ok(!@others, 'no other request counter moved') or diag("@others");

    is(moved($before, $after, 'chatterd_upload_bytes_total', endpoint => 'postchatt'), $json_bytes,
       "postchatt upload bytes: $json_bytes");
    is(moved($before, $after, 'chatterd_upload_bytes_total', endpoint => 'postimages'), $form_bytes,
       "postimages upload bytes: $form_bytes");
    is(moved($before, $after, 'chatterd_media_files_kept_total'), 3, 'media files kept: 3');
    is(moved($before, $after, 'chatterd_media_files_removed_total', by => 'request'), 2,
       'media files removed by their request: 2 (the database was down)');
    is(moved($before, $after, 'chatterd_media_files_removed_total', by => 'sweep'), 0, 'none by the sweep');

    is(moved($before, $after, 'chatterd_pg_queries_total', pool => 0), 20,
       'pool 0: 20 statements (6 + 6 reads, 4 + 4 posts; one at a time, none batched)');
    is(moved($before, $after, 'chatterd_pg_queries_total', pool => 1), 0, 'pool 1: none');
    is(moved($before, $after, 'chatterd_pg_errors_total', pool => 1, error => 'refused'), 3,
       'pool 1: 3 requests refused while it is down');
    for my $error (qw(connect_failed connection_lost timeout refused queue_full)) {
        is(moved($before, $after, 'chatterd_pg_errors_total', pool => 0, error => $error), 0,
           "pool 0: no $error");
    }
    cmp_ok(value($after, 'chatterd_pg_errors_total', pool => 1, error => 'connect_failed'), '>=', 2,
           'pool 1: its connects failed (at least one per worker)');
    cmp_ok(value($after, 'chatterd_pg_connects_total', pool => 0), '>=', 2 * $POOL_SIZE,
           'pool 0: connects started');

    my $target0 = $ENV{TEST_NGINX_PG_CONNINFO} =~ s/ ?password=\S+//r;
    my $target1 = "host=127.0.0.1 port=$DEAD_PORT dbname=chatterdb user=chatter";
    is(value($after, 'chatterd_pg_up', pool => 0, target => $target0), 1, 'pool 0 is up');
    is(value($after, 'chatterd_pg_down_since_seconds', pool => 0, target => $target0), 0,
       'pool 0: down since 0');
    my $since = value($after, 'chatterd_pg_down_since_seconds', pool => 1, target => $target1);
    ok($since >= $started - 1 && $since <= time + 1, "pool 1: down since its start ($since)");
    unlike($after->{text}, qr/secretword/, 'no password on the page');

    ok(wait_until(sub { my $p = page($ng);
                        value($p, 'chatterd_pg_connections', pool => 0, state => 'idle') == 2 * $POOL_SIZE
                        && value($p, 'chatterd_pg_connections', pool => 0, state => 'busy') == 0
                        && value($p, 'chatterd_pg_queue_length', pool => 0) == 0
                        && value($p, 'chatterd_answer_bytes') == 0 }),
       'gauges settle: every connection idle, nothing queued, no answer memory held');

    is_deeply($after->{problems}, [], 'the page follows the text format strictly');
    SKIP: {
        my $promtool = program('promtool');
        skip 'promtool is not installed (scripts/deps.sh installs prometheus)', 1 unless $promtool;
        my $file = File::Temp->new;
        print {$file} $after->{text};
        close $file;
        my $out = `$promtool check metrics < $file 2>&1`;
        is($?, 0, 'promtool check metrics accepts the page') or diag($out);
    }
    my $head = http_request($ng->port, build_request(HEAD => '/status'));
    is($head->{status}, 200, 'HEAD /status: 200');
    my $post = http_request($ng->port, build_request(POST => '/status', body => 'x'));
    is($post->{status}, 405, 'POST /status: 405');
    $ng->stop;
};

# ---- waiting requests -------------------------------------------------------------------------

sub lock_table {
    open(my $psql, '|-', split(' ', $ENV{TEST_NGINX_PSQL}), '-q', '-v', 'ON_ERROR_STOP=1')
        or die "psql: $!";
    $psql->autoflush(1);
    print $psql "BEGIN;\nLOCK TABLE chatts IN ACCESS EXCLUSIVE MODE;\n";
    wait_until(sub { sql_value(q{SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
                                 WHERE c.relname = 'chatts' AND l.mode = 'AccessExclusiveLock'
                                 AND l.granted}) == 1 })
        or die "the table lock was not taken\n";
    return $psql;
}

sub send_all {
    my ($port, @requests) = @_;
    return map {
        my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp')
            or die "connect: $!";
        print {$sock} $_;
        { sock => $sock, in => '' }
    } @requests;
}

sub statuses {
    my (@clients) = @_;
    my %open = map { ($_->{sock} => $_) } @clients;
    my $deadline = Time::HiRes::time() + 20;
    while (%open && Time::HiRes::time() < $deadline) {
        for my $sock (IO::Select->new(map { $_->{sock} } values %open)->can_read(0.5)) {
            my $n = sysread($sock, $open{$sock}{in}, 65536, length $open{$sock}{in});
            delete $open{$sock} unless $n;
        }
    }
    return map { $_->{in} =~ m{\AHTTP/1\.1 (\d+)} ? $1 : 'none' } @clients;
}

subtest '(b) waiting requests: the queue, and batches of them' => sub {
    truncate_chatts();
    my $ng = start_nginx();
    ok(wait_until(sub { value(page($ng), 'chatterd_pg_connections', pool => 0, state => 'idle')
                        == 2 * $POOL_SIZE }), 'every connection idle');
    my $n = 12;
    for my $case ([combined => map { build_request(POST => '/postchatt',
                                         body => qq({"username":"wait","message":"$_"}),
                                         headers => ['Content-Type' => 'application/json']) } 1 .. $n],
                  [shared => map { build_request(GET => '/getimages') } 1 .. $n]) {
        my ($kind, @requests) = @$case;
        my $before = page($ng);
        my $psql = lock_table();
        my @clients = send_all($ng->port, @requests);
        my $during;
        ok(wait_until(sub { $during = page($ng);
                            value($during, 'chatterd_pg_connections', pool => 0, state => 'busy')
                            + value($during, 'chatterd_pg_queue_length', pool => 0) == $n }),
           "$kind: the $n requests are running or waiting behind the lock")
            or diag($during->{text});
        cmp_ok(value($during, 'chatterd_pg_queue_length', pool => 0), '>', 0, "$kind: some wait in the queue");
        print $psql "COMMIT;\n";
        close $psql;
        is_deeply([statuses(@clients)], [(200) x $n], "$kind: every request 200");
        my $after;
        wait_until(sub { $after = page($ng);
                         moved($before, $after, 'chatterd_pg_batch_requests_sum', pool => 0, kind => $kind)
                         + moved($before, $after, 'chatterd_pg_queries_total', pool => 0)
                         - moved($before, $after, 'chatterd_pg_batch_requests_count', pool => 0, kind => $kind)
                         == $n });
        my $batches = moved($before, $after, 'chatterd_pg_batch_requests_count', pool => 0, kind => $kind);
        my $batched = moved($before, $after, 'chatterd_pg_batch_requests_sum', pool => 0, kind => $kind);
        my $statements = moved($before, $after, 'chatterd_pg_queries_total', pool => 0);
        cmp_ok($batches, '>=', 1, "$kind: $batches batched statements, carrying $batched requests");
        is($batched + $statements - $batches, $n, "$kind: every request is in one statement "
           . "($statements statements)");
        is(moved($before, $after, 'chatterd_pg_batch_requests_bucket', pool => 0, kind => $kind, le => '+Inf'),
           $batches, "$kind: the +Inf bucket holds every batch");
        is(value($after, 'chatterd_pg_queue_length', pool => 0), 0, "$kind: the queue is empty again");
    }
    $ng->stop;
};

subtest '(c) the media sweep' => sub {
    truncate_chatts();
    my $orphan = "$MEDIA/lost-" . ('0123456789abcdef' x 2) . '.jpeg';
    open(my $fh, '>', $orphan) or die "$orphan: $!";
    print {$fh} 'x';
    close $fh;
    my $ng = start_nginx(http_config => "chatterd_pg_timeout 1s;\nchatterd_media_sweep 2s;\n");
    ok(wait_until(sub { !-e $orphan }, 20), 'the orphan goes once older than 2 s');
    ok(wait_until(sub { value(page($ng), 'chatterd_media_files_removed_total', by => 'sweep') == 1 }),
       'media_files_removed_total{by="sweep"} is 1');
    $ng->stop;
};

# The log since the mark: no line at error or above, no worker that died, the same workers.
sub quiet_log {
    my ($ng, $label, $workers) = @_;
    my @loud = grep { /\[(?:error|crit|alert|emerg)\]|exited on signal/ } $ng->error_log_since_mark;
    ok(!@loud, "$label: no line at error or above, no worker exited on a signal")
        or diag(join "\n", @loud[0 .. ($#loud < 9 ? $#loud : 9)]);
    is_deeply([sort $ng->worker_pids], $workers, "$label: the same workers");
}

# Sends @requests while the table is locked, waits until each of them runs or waits in pool 0
# or, when $refused is given, is one of the $refused->($page) refused at once; then lifts the
# lock. The answers' statuses.
sub behind_lock {
    my ($ng, $refused, @requests) = @_;
    my $n = @requests;
    my $psql = lock_table();
    my @clients = send_all($ng->port, @requests);
    my $during;
    ok(wait_until(sub { $during = page($ng);
                        value($during, 'chatterd_pg_connections', pool => 0, state => 'busy')
                        + value($during, 'chatterd_pg_queue_length', pool => 0)
                        + ($refused ? $refused->($during) : 0) == $n }),
       "$n requests are running, waiting behind the lock or refused") or diag($during->{text});
    print $psql "COMMIT;\n";
    close $psql;
    return statuses(@clients);
}

# nginx with $http_config once every connection is idle: it, its workers, the page then; the
# error log is marked.
sub settled_nginx {
    my ($http_config) = @_;
    my $ng = start_nginx(http_config => $http_config);
    ok(wait_until(sub { value(page($ng), 'chatterd_pg_connections', pool => 0, state => 'idle')
                        == 2 * $POOL_SIZE }), 'every connection idle');
    my @workers = sort $ng->worker_pids;
    my $before = page($ng);
    $ng->mark_error_log;
    return ($ng, \@workers, $before);
}

# The first reads of each worker wait on the lock; the others queue and then share one COPY,
# whose reader's answer would cross the bound (one answer block is larger than 32k).
subtest '(e) the answers\' memory bound: a refused reader of a shared COPY' => sub {
    truncate_chatts();
    sql(q{INSERT INTO chatts (username, message) SELECT 'user ' || i, repeat('m', 100)
          FROM generate_series(1, 2000) AS i});
    my ($ng, $workers, $before) = settled_nginx("chatterd_answer_memory_max 32k;\n");
    my $n = 16;
    my @statuses = behind_lock($ng, undef, (build_request(GET => '/getimages')) x $n);
    is_deeply(\@statuses, [(503) x $n], "every read 503") or diag("@statuses");
    my $after;
    ok(wait_until(sub { $after = page($ng);
                        moved($before, $after, 'chatterd_requests_total', endpoint => 'getimages',
                              status => 503) == $n }), "$n answers counted");
    is(moved($before, $after, 'chatterd_answers_over_memory_bound_total'), $n,
       "answers_over_memory_bound_total moved by $n");
    cmp_ok(moved($before, $after, 'chatterd_pg_batch_requests_count', pool => 0, kind => 'shared'),
           '>=', 1, 'some reads shared a COPY');
    my $told = grep { /\[info\].*answers of this worker would hold more than chatterd_answer_memory_max; 503/ }
               $ng->error_log_since_mark;
    is($told, $n, "one info line per request ($told)");
    quiet_log($ng, 'refused reads', $workers);
    is(http_get($ng->port, '/getchatts')->{status}, 503, 'a read alone: 503 too');
    is_deeply($after->{problems}, [], 'the page follows the text format strictly');
    $ng->stop;
};

subtest '(f) a full queue' => sub {
    truncate_chatts();
    my ($ng, $workers, $before) = settled_nginx("chatterd_pg_queue 0;\n");
    # Per worker: two posts wait on the lock, one per connection (with chatterd_pg_queue 0
    # nothing waits in the queue while a connection is idle); the others find it full.
    my $n = 12;
    my @requests = map { build_request(POST => '/postchatt', body => qq({"username":"q","message":"$_"}),
                                       headers => ['Content-Type' => 'application/json']) } 1 .. $n;
    my $full = 0;
    my @statuses = behind_lock($ng, sub {
        $full = moved($before, $_[0], 'chatterd_pg_errors_total', pool => 0, error => 'queue_full') },
        @requests);
    is(scalar(grep { $_ == 503 } @statuses), $full, "the $full refused got 503");
    is(scalar(grep { $_ == 200 } @statuses), $n - $full, 'the others 200');
    cmp_ok($full, '>=', 1, 'the queue was full for some');
    my $told = grep { /\[info\].*postgres request queue is full \(chatterd_pg_queue 0\); 503/ }
               $ng->error_log_since_mark;
    is($told, $full, "one info line per refused post ($told)");
    quiet_log($ng, 'full queue', $workers);
    $ng->stop;
};

subtest '(g) no descriptor left for a new connection' => sub {
    truncate_chatts();
    my $limit = 64;
    # The read must reach the pool: a listing answered from the list cache needs no connection,
    # and the cache's LISTEN connection, reconnecting after the terminate below, would race the
    # read for the last descriptor.
    my $ng = start_nginx(workers => 1, main_config => "worker_rlimit_nofile $limit;\n",
                         http_config => "chatterd_list_cache off;\n");
    my $target = $ENV{TEST_NGINX_PG_CONNINFO} =~ s/ ?password=\S+//r;
    ok(wait_until(sub { value(page($ng), 'chatterd_pg_connections', pool => 0, state => 'idle')
                        == $POOL_SIZE }), 'every connection idle');
    my ($worker) = $ng->worker_pids;
    # The pool's connections end: the next read needs a new one.
    sql(q{SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'chatterd'});
    ok(wait_until(sub { my $p = page($ng);
                        value($p, 'chatterd_pg_connections', pool => 0, state => $_) == 0
                            or return 0 for qw(idle busy connecting);
                        1 }), 'the pool has no connection left');
    my $before = page($ng);
    $ng->mark_error_log;
    # Idle clients take every descriptor number below the limit but one, which the read takes
    # (a descriptor inherited above the limit does not count: a new one is the lowest free).
    my $below_limit = sub {
        opendir(my $dh, "/proc/$worker/fd") or return $limit;
        return scalar grep { /^\d+$/ && $_ < $limit } readdir $dh;
    };
    my @idle;
    while ($below_limit->() < $limit - 1) {
        my $fds = $below_limit->();
        push @idle, IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $ng->port,
                                          Proto => 'tcp') // last;
        wait_until(sub { $below_limit->() > $fds }, 5) or last;
    }
    is($below_limit->(), $limit - 1, scalar(@idle) . " idle clients hold every descriptor but one");
    is(http_get($ng->port, '/getimages')->{status}, 503, 'a read that needs a new connection: 503');
    close $_ for @idle;
    my $after = page($ng);
    cmp_ok(moved($before, $after, 'chatterd_pg_errors_total', pool => 0, error => 'no_descriptor'),
           '>=', 1, 'counted as errors_total{error="no_descriptor"}');
    is(moved($before, $after, 'chatterd_pg_errors_total', pool => 0, error => 'connect_failed'), 0,
       'not as a failed connect');
    is(value($after, 'chatterd_pg_up', pool => 0, target => $target), 1, 'the database is up');
    my $log = $ng->error_log_since_mark;
    like($log, qr/\[error\].*this worker has no socket for a new connection: .*could not create socket: Too many open files/,
         'its own line');
    like($log, qr/\[info\].*no socket for a connection in this worker; 503/, 'the read is told at info');
    unlike($log, qr/cannot be reached|exited on signal/, 'the database is not taken for down');
    is(http_get($ng->port, '/getimages')->{status}, 200, 'descriptors back: 200');
    is(value(page($ng), 'chatterd_pg_up', pool => 0, target => $target), 1, 'still up');
    $ng->stop;
};

# ---- Prometheus --------------------------------------------------------------------------------

subtest '(d) a Prometheus server scrapes the page' => sub {
    my $prometheus = program('prometheus');
    plan skip_all => 'prometheus is not installed (scripts/deps.sh installs it)' unless $prometheus;
    truncate_chatts();
    my $ng = start_nginx();
    my $dir = File::Temp->newdir('chatterd-prometheus-XXXXXX', TMPDIR => 1);
    my $port = Chatterd::NginxProcess::free_port();
    open(my $conf, '>', "$dir/prometheus.yml") or die $!;
    print {$conf} <<YAML;
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: chatterd
    metrics_path: /status
    static_configs:
      - targets: ['127.0.0.1:@{[$ng->port]}']
YAML
    close $conf;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open(STDOUT, '>', "$dir/prometheus.log");
        open(STDERR, '>&', \*STDOUT);
        exec($prometheus, "--config.file=$dir/prometheus.yml", "--web.listen-address=127.0.0.1:$port",
             "--storage.tsdb.path=$dir/data") or POSIX::_exit(127);
    }
    my $json = JSON::PP->new;
    my $api = sub {
        my ($path) = @_;
        my $res = http_get($port, $path, timeout => 5);
        return ($res->{status} // 0) == 200 ? eval { $json->decode($res->{body}) } : undef;
    };
    my $query = sub {
        my $answer = $api->('/api/v1/query?query=' . $_[0] =~ s/([^A-Za-z0-9_])/sprintf('%%%02X', ord $1)/ger);
        my $result = $answer && $answer->{data}{result};
        return $result && @$result ? $result->[0]{value}[1] : undef;
    };
    my $health = '';
    ok(wait_until(sub { my $t = $api->('/api/v1/targets');
                        $health = $t ? $t->{data}{activeTargets}[0]{health} // '' : '';
                        $health eq 'up' }, 60), "the target is up ($health)")
        or diag(`tail -20 $dir/prometheus.log`);
    my $metric = 'sum(chatterd_requests_total{endpoint="getchatts",status="200"})';
    for my $round (1, 2) {
        is(http_get($ng->port, '/getchatts')->{status}, 200, "getchatts ($round)") for 1 .. 3;
        my $seen;
        ok(wait_until(sub { $seen = $query->($metric); ($seen // -1) == 3 * $round }, 30),
           "Prometheus sees @{[3 * $round]} getchatts answered 200 (" . ($seen // 'nothing') . ')');
    }
    is($query->('chatterd_pg_up{pool="0"}'), 1, 'and chatterd_pg_up 1');
    kill 'TERM', $pid;
    my $gone = wait_until(sub { waitpid($pid, POSIX::WNOHANG()) == $pid }, 20);
    unless ($gone) {
        kill 'KILL', $pid;
        waitpid($pid, 0);
    }
    ok($gone, 'Prometheus stopped');
    $ng->stop;
};

done_testing();
