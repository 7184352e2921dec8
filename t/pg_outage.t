# Database outages under load. For each way to reach PostgreSQL (TCP, unix socket) and each
# fault, two workers serve a mixed load of every endpoint (getimages, getchatts, postchatt,
# postimages with and without media) from concurrent clients while the fault happens and is
# repaired:
#   killed      kill -9 of the postmaster, then a restart (crash recovery)
#   paused      SIGSTOP of every server process, then SIGCONT
#   restarted   a fast shutdown, then a start
#   refusing    new connections refused (the database's connection limit reached), the
#               open ones terminated, then the limit lifted
# Each asserts: no worker exited on a signal; every request was answered, 200 or 503, the 503s
# within chatterd_pg_timeout, no client timed out; the error log grew by a bounded number of
# lines; once the pools say the database is back, requests succeed; every row's files exist
# and every file has its row, but for the files of posts whose outcome was unknown (logged);
# the workers' descriptors are back where they started.
# The suite uses a cluster of its own (killing the shared one would disturb other suites).
# OUTAGE_CLIENTS (default 200) sets the number of concurrent clients.
use strict; use warnings;
use FindBin; BEGIN { push @INC, "$FindBin::Bin/lib" }
use Test::More;
use Time::HiRes ();

use Chatterd::Db qw(sql truncate_chatts pause_pg resume_pg check_media_consistency);
use Chatterd::Http qw(http_request http_get);
use Chatterd::MixedLoad qw(load_nginx new_load run_load worker_fds wait_fds_back percentile);
use Chatterd::Pg;
use Chatterd::Wait qw(wait_until);

for my $var (qw(TEST_NGINX_PG_DIR)) {
    plan skip_all => "$var is not set (run through make test)" unless $ENV{$var};
}

my $PG      = Chatterd::Pg->new("$ENV{TEST_NGINX_PG_DIR}-outage");
my $CLIENTS = $ENV{OUTAGE_CLIENTS} // 200;
my $TIMEOUT = 2;           # chatterd_pg_timeout, seconds

$PG->use_for_db;

# As the superuser, whom a database's connection limit does not stop.
sub admin_sql { $PG->admin_value($_[0], 'chatterdb') }

END {
    local ($?, $@);
    resume_pg();
    eval { admin_sql('ALTER DATABASE chatterdb CONNECTION LIMIT -1') };
    eval { $PG->stop };
}

$PG->start;
my %conninfo = (tcp => $PG->tcp_conninfo, unix => $PG->conninfo);

# ---- faults -------------------------------------------------------------------------------

my @killed;
my %faults = (
    killed => {
        # The load goes on while the orphaned backends notice and leave: their connections
        # break while requests wait, the moment the pool used to recurse in.
        break => sub {
            my $master = $PG->postmaster_pid;
            @killed = ($master, split ' ', `pgrep -P $master`);
            kill 'KILL', $master;
        },
        # A new postmaster needs the old backends gone.
        repair => sub {
            wait_until(sub { !kill(0, @killed) }, 30) or die "timed out waiting for the killed server to be gone\n";
            $PG->start;
        },
    },
    paused => {
        break => sub { pause_pg() },
        repair => \&resume_pg,
    },
    restarted => {
        break  => sub { $PG->stop },
        repair => sub { $PG->start },
    },
    refusing => {
        break => sub {
            admin_sql('ALTER DATABASE chatterdb CONNECTION LIMIT 0');
            admin_sql(q{SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                  WHERE application_name = 'chatterd'});
        },
        repair => sub { admin_sql('ALTER DATABASE chatterdb CONNECTION LIMIT -1') },
    },
);

# ---- checks (the load and the others: Chatterd::MixedLoad) --------------------------------

# Seconds of CPU the workers used so far (user + system).
sub worker_cpu {
    my ($ng) = @_;
    my $ticks = 0;
    for my $pid ($ng->worker_pids) {
        open(my $fh, '<', "/proc/$pid/stat") or next;
        my @f = split ' ', (<$fh> =~ s/^.*\) //sr);
        $ticks += $f[11] + $f[12];
    }
    return $ticks / 100;
}

# ---- the scenarios ------------------------------------------------------------------------

for my $via (qw(unix tcp)) {
    for my $fault (qw(killed paused restarted refusing)) {
        subtest "$fault, over $via, under the load of $CLIENTS clients" => sub {
            truncate_chatts();
            my $ng = load_nginx($conninfo{$via}, $TIMEOUT);
            my @workers = sort $ng->worker_pids;
            my $warm = http_get($ng->port, '/getimages');
            is($warm->{status}, 200, 'warm-up: 200');
            # Every connection of both pools open: the descriptors to come back to.
            my $load = new_load($ng->port, $CLIENTS);
            run_load($load, Time::HiRes::time() + 1);
            my $fds_before = worker_fds($ng);
            $ng->mark_error_log;
            my $log_start = scalar(() = $ng->error_log_text =~ /\n/g);

            run_load($load, Time::HiRes::time() + 1);
            $faults{$fault}{break}->();
            my $broken_at = Time::HiRes::time();
            my $cpu_before = worker_cpu($ng);
            run_load($load, $broken_at + 3);
            my $cpu_down = (worker_cpu($ng) - $cpu_before) / (Time::HiRes::time() - $broken_at);
            $faults{$fault}{repair}->();
            my $repaired_at = Time::HiRes::time();
            run_load($load, $repaired_at + 3);

            my $log = $ng->error_log_since_mark;
            my $outages = () = $log =~ /\[error\][^\n]* cannot be reached: /g;
            my $recoveries = () = $log =~ /\[error\][^\n]* is reachable again /g;
            is($recoveries, $outages, "every pool that lost the database found it again ($outages)");
            my @after = map { http_get($ng->port, '/getimages') } 1 .. 6;
            is_deeply([map { $_->{status} } @after], [(200) x 6], 'requests after recovery: 200');

            my @answers = grep { $_->[3] >= $broken_at - 1 } @{$load->{answers}};
            my @bad = grep { $_->[1] !~ /\A(?:200|503)\z/ } @answers;
            ok(!@bad, scalar(@answers) . ' requests, every one answered 200 or 503')
                or diag(join "\n", map { "@$_" } @bad[0 .. ($#bad < 9 ? $#bad : 9)]);
            my @unavailable = grep { $_->[1] eq '503' } @answers;
            my $slowest = percentile(1, map { $_->[2] } @unavailable);
            cmp_ok($slowest, '<=', $TIMEOUT + 1, "every 503 within chatterd_pg_timeout (slowest "
                   . sprintf('%.2f s', $slowest) . ')');
            my $first_200 = (sort { $a <=> $b } map { $_->[3] + $_->[2] }
                             grep { $_->[1] eq '200' && $_->[3] >= $repaired_at } @answers)[0];
            my $back = defined $first_200 ? sprintf('%.2f s', $first_200 - $repaired_at) : 'never';
            ok(defined $first_200, "a 200 after the repair ($back)");
            $log = $ng->error_log_since_mark;
            my @lines = split /\n/, $log;
            my @loud = grep { /\[(?:error|crit|alert|emerg)\]/ } @lines;
            diag(sprintf('%s over %s: %d requests, %d answered 503 (p99 %.3f s), first 200 %s '
                         . 'after the repair; %d error lines; workers\' CPU while down %.0f %%',
                         $fault, $via, scalar @answers, scalar @unavailable,
                         percentile(0.99, map { $_->[2] } @unavailable), $back, scalar @loud,
                         100 * $cpu_down));

            my $kept_lines = grep { /postimages: whether the row of post \S+ was stored is unknown/ } @lines;
            cmp_ok(scalar @loud, '<=', 30, 'the error log grew by a bounded number of '
                   . 'error lines (' . scalar(@loud) . ')')
                or diag(join "\n", @loud[0 .. 29]);
            cmp_ok($kept_lines, '<=', scalar(grep { $_->[0] eq 'postimages_media' } @unavailable),
                   'a kept-media line only for a 503 postimages');
            ok(!grep({ /exited on signal|\[alert\]|\[crit\]|\[emerg\]/ } @lines), 'no worker '
               . 'exited on a signal, no alert') or diag(join "\n", grep { /signal|alert|crit/ } @lines);
            is_deeply([sort $ng->worker_pids], \@workers, 'the same workers');

            my $fds_after = wait_fds_back($ng, $fds_before);
            ok(!grep({ ($fds_after->{$_} // 1e9) > $fds_before->{$_} } keys %$fds_before),
               'worker descriptors are back where they started')
                or diag(explain({before => $fds_before, after => $fds_after}));
            check_media_consistency("$fault over $via", $log);
            $ng->stop;
        };
    }
}

done_testing();
