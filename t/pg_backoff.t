# Probes of a database that is down, with chatterd_pg_backoff_max at its default. One worker,
# one pool, over TCP, on a cluster of this suite's own (Chatterd::Pg): the cluster
# stops, and for 10 s a read is sent and the status page read every 100 ms; then it starts again.
# Asserted from chatterd_pg_connects_total: during the outage the pool starts at most about two
# connects a second (2 per second, and 2 more), requests do not add connects of their own, and it
# never goes long without one (no gap over 2.5 s: a database that returns is found within about
# a second, not after the tens of seconds a doubling delay reaches); after the start, reads
# succeed again (within 15 s; the time is reported); no worker died, the log is short.
use strict; use warnings;
use FindBin; BEGIN { push @INC, "$FindBin::Bin/lib" }
use Test::More;
use Time::HiRes ();

use Chatterd::Http qw(http_get);
use Chatterd::Nginx;
use Chatterd::Pg;
use Chatterd::Wait qw(wait_until);

for my $var (qw(TEST_NGINX_PG_DIR)) {
    plan skip_all => "$var is not set (run through make test)" unless $ENV{$var};
}

my $PG      = Chatterd::Pg->new("$ENV{TEST_NGINX_PG_DIR}-backoff");
my $PORT    = $PG->port;
my $OUTAGE  = 10;     # seconds observed while the database is down
my $MAX_GAP = 2.5;    # seconds without a connect, at most

END { local ($?, $@); $PG->stop if $PG }

# The one pool's sample of $name on the status page (the first, whatever its labels).
sub metric {
    my ($ng, $name) = @_;
    my $page = http_get($ng->port, '/status')->{body} // '';
    return $page =~ /^\Q$name\E(?:\{[^}]*\})? (\d+)$/m ? $1 : undef;
}

$PG->start;
my $ng = Chatterd::Nginx->start(
    workers     => 1,
    master      => 1,
    log_level   => 'info',
    http_config => qq{chatterd_pg "host=127.0.0.1 port=$PORT dbname=chatterdb user=chatter }
                 . qq{password=chattchatt";\nchatterd_pg_pool 2;\nchatterd_pg_timeout 2s;\n}
                 # The pool's probes alone: the list cache's LISTEN connection reconnects on a
                 # backoff of its own, and its connects count with the pool's.
                 . qq{chatterd_list_cache off;\n},
    config      => "location = /getchatts { chatterd getchatts; }\n"
                 . "location = /status { chatterd_status; }\n",
);
my @workers = $ng->worker_pids;
ok(wait_until(sub { http_get($ng->port, '/getchatts')->{status} == 200 }, 15), 'reads: 200');

$PG->stop;
ok(wait_until(sub { http_get($ng->port, '/getchatts')->{status} == 503
                    && (metric($ng, 'chatterd_pg_up') // 1) == 0 }, 15),
   'the database is down: reads 503, the pool backs off');

my $start = Time::HiRes::time();
my $first = metric($ng, 'chatterd_pg_connects_total');
my ($last, $last_at, $gap, $reads) = ($first, $start, 0, 0);
while ((my $now = Time::HiRes::time()) < $start + $OUTAGE) {
    $reads++ if (http_get($ng->port, '/getchatts')->{status} // 0) == 503;
    my $connects = metric($ng, 'chatterd_pg_connects_total');
    $now = Time::HiRes::time();
    if ($connects != $last) {
        $gap = $now - $last_at if $now - $last_at > $gap;
        ($last, $last_at) = ($connects, $now);
    }
    Time::HiRes::sleep(0.1);
}
my $elapsed = Time::HiRes::time() - $start;
$gap = $elapsed + $start - $last_at if $elapsed + $start - $last_at > $gap;
my $connects = $last - $first;
cmp_ok($reads, '>=', $OUTAGE, "reads during the outage were answered 503 ($reads)");
cmp_ok($connects, '<=', 2 * $elapsed + 2,
       sprintf('%d connects in %.1f s of outage: about 2 a second at most', $connects, $elapsed));
cmp_ok($gap, '<=', $MAX_GAP, sprintf('never more than %.1f s without a connect (longest %.2f s)',
                                     $MAX_GAP, $gap));

$PG->start;
my $restarted = Time::HiRes::time();
ok(wait_until(sub { (http_get($ng->port, '/getchatts')->{status} // 0) == 200 }, 15),
   'reads succeed again after the start');
diag(sprintf('first 200 %.2f s after pg.sh start returned; %d connects in %.1f s of outage, '
             . 'longest gap %.2f s', Time::HiRes::time() - $restarted, $connects, $elapsed, $gap));
is(metric($ng, 'chatterd_pg_up'), 1, 'the pool is up');
is_deeply([$ng->worker_pids], \@workers, 'the same worker');
my @loud = grep { /\[(?:error|crit|alert|emerg)\]/ } split /\n/, $ng->error_log_text;
ok(!grep({ /exited on signal|\[alert\]|\[crit\]|\[emerg\]/ } @loud), 'no worker died, no alert');
cmp_ok(scalar @loud, '<=', 6, 'a short error log (' . scalar(@loud) . ' lines)')
    or diag(join "\n", @loud);
$ng->stop;

done_testing();
