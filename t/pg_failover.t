# Failover to a promoted standby under load. A primary cluster and a streaming standby
# (pg_basebackup -R, synchronous replication), and chatterd's conninfo names both, the standby
# first, with target_session_attrs=read-write: every connection libpq opens tries the standby,
# finds it read-only and moves on to the primary, so its socket changes inside one connect (the
# pool follows it by inode). Two workers serve a mixed load of every endpoint from concurrent
# clients; the primary dies (an immediate shutdown: SIGQUIT to its postmaster, what pg_ctl stop
# -m immediate sends) and the standby is promoted. Asserted, over TCP and over the unix sockets:
# - before: posts are answered 200 and stored on the primary, the pools' connections are on the
#   primary and none stays on the standby, a GET lists the posts;
# - during and after: every request answered 200 or 503, the 503s within chatterd_pg_timeout
#   + 1 s, no client timed out; posts answered 200 again within $RECOVERY_BOUND s of the
#   promotion, without reloading nginx (same master, same workers); no worker exited on a
#   signal, no alert; a bounded error log; every pool that lost the database found it again;
#   no post answered 200 while there was no primary;
# - on the promoted server: new posts stored there, every post answered 200 is there
#   (replication is synchronous: an acknowledged commit was flushed on the standby), every row's
#   files exist and every file has its row but for posts whose outcome was unknown (logged).
# Clusters: "$TEST_NGINX_PG_DIR-primary" and "-standby", on ports Chatterd::Ports hands out, made
# from scratch for each variant and removed at the end. FAILOVER_CLIENTS (default 50) sets the
# number of concurrent clients.
use strict; use warnings;
use FindBin; BEGIN { push @INC, "$FindBin::Bin/lib" }
use Test::More;
use File::Path ();
use POSIX ();
use Time::HiRes ();

use Chatterd::Db qw(sql_value truncate_chatts check_media_consistency);
use Chatterd::Http qw(http_request http_get build_request);
use Chatterd::MixedLoad qw(load_nginx new_load run_load worker_fds wait_fds_back percentile is_post);
use Chatterd::Pg;
use Chatterd::Wait qw(wait_until);

for my $var (qw(TEST_NGINX_PG_DIR)) {
    plan skip_all => "$var is not set (run through make test)" unless $ENV{$var};
}
my $PGBIN = $ENV{PGBIN} // (sort { _version($a) <=> _version($b) }
                            glob('/usr/lib/postgresql/*/bin'))[-1] // '';
sub _version { ($_[0] =~ m{/(\d+)/bin\z})[0] // 0 }
plan skip_all => "pg_basebackup is missing (no $PGBIN/pg_basebackup)"
    unless -x "$PGBIN/pg_basebackup" && -x "$PGBIN/pg_ctl";

my $PRIMARY = "$ENV{TEST_NGINX_PG_DIR}-primary";
my $STANDBY = "$ENV{TEST_NGINX_PG_DIR}-standby";
# pg.sh puts a cluster's socket in "<dir>.socket"; the standby's follows the same rule, so
# "pg.sh psql" (Chatterd::Db) works on both.
my %PG     = map { $_ => Chatterd::Pg->new($_) } $PRIMARY, $STANDBY;
my %SOCKET = map { $_ => $PG{$_}->socket_dir } $PRIMARY, $STANDBY;
my ($PRIMARY_PORT, $STANDBY_PORT) = map { $PG{$_}->port } $PRIMARY, $STANDBY;
my $CLIENTS = $ENV{FAILOVER_CLIENTS} // 50;
my $TIMEOUT = 2;           # chatterd_pg_timeout, seconds
my $RECOVERY_BOUND = 10;   # seconds from the promotion to the first post answered 200
my $AS_ROOT = $> == 0;

# ---- clusters -----------------------------------------------------------------------------

# initdb refuses root: as root, the clusters belong to the postgres OS user (as in pg.sh).
# From /: postgres cannot enter a clone only its owner may (pg.sh does the same).
sub as_owner { return $AS_ROOT ? ('runuser', '-u', 'postgres', '--', 'env', '-C', '/', @_) : @_ }

sub run {
    my @cmd = @_;
    system(@cmd) == 0 or die "failed ($?): @cmd\n";
}

sub quiet_run {
    my @cmd = @_;
    my $pid = fork // die "fork: $!\n";
    if (!$pid) {
        open STDOUT, '>', '/dev/null';
        exec { $cmd[0] } @cmd or POSIX::_exit(127);
    }
    waitpid $pid, 0;
    return $? == 0;
}

sub stop_cluster {
    my ($dir) = @_;
    return unless -f "$dir/postmaster.pid";
    quiet_run(as_owner("$PGBIN/pg_ctl", '-D', $dir, '-m', 'immediate', '-w', '-t', '30', 'stop'));
}

sub remove_clusters {
    stop_cluster($_) for $STANDBY, $PRIMARY;
    File::Path::remove_tree($_) for grep { -e } $PRIMARY, "$PRIMARY.socket", "$PRIMARY.initdb.log",
                                               $STANDBY, "$STANDBY.socket";
}

# Also after INT, TERM or HUP, which Chatterd::Db turns into an exit.
END {
    local ($?, $@);
    eval { remove_clusters() } if $PGBIN;
}

# A primary from scratch (pg.sh: role chatter, database chatterdb, schema.sql), a standby made
# from it with pg_basebackup -R, and synchronous replication between them. initdb's pg_hba
# (--auth-local=trust) already has "local replication all trust": the standby streams over
# the primary's unix socket as postgres, nothing to add.
sub make_clusters {
    remove_clusters();
    $PG{$PRIMARY}->start;
    File::Path::make_path($STANDBY, $SOCKET{$STANDBY});
    chmod 0700, $STANDBY;
    chmod 0755, $SOCKET{$STANDBY};
    if ($AS_ROOT) {
        my (undef, undef, $uid, $gid) = getpwnam('postgres') or die "no postgres user\n";
        chown $uid, $gid, $STANDBY, $SOCKET{$STANDBY};
    }
    run(as_owner("$PGBIN/pg_basebackup", '-D', $STANDBY, '-R', '-c', 'fast', '-X', 'stream', '--no-sync',
                 '-h', $SOCKET{$PRIMARY}, '-p', $PRIMARY_PORT, '-U', 'postgres'));
    unlink "$STANDBY/server.log";    # the primary's, copied
    # The copied postgresql.conf names the primary's port and socket: later lines win.
    # Throwaway clusters whose processes die, not the machine: no fsync.
    append_conf($STANDBY, "port = $STANDBY_PORT\nunix_socket_directories = '$SOCKET{$STANDBY}'\n"
                          . "synchronous_standby_names = ''\nfsync = off\n");
    # Only now (the standby's copy must not have it, or the promoted server would wait for a
    # standby of its own): every commit waits until the standby has written it.
    append_conf($PRIMARY, "synchronous_standby_names = '*'\nfsync = off\n");
    run(as_owner("$PGBIN/pg_ctl", '-D', $PRIMARY, '-s', 'reload'));
    run(as_owner("$PGBIN/pg_ctl", '-D', $STANDBY, '-l', "$STANDBY/server.log", '-s', '-w', '-t', '60',
                 '-o', "-p $STANDBY_PORT -k $SOCKET{$STANDBY}", 'start'));
    wait_until(sub {
        ($PG{$PRIMARY}->admin_value(q{SELECT string_agg(state || '/' || sync_state, ',')
                                      FROM pg_stat_replication}) // '') eq 'streaming/sync'
    }, 30) or die "timed out waiting for the standby to stream synchronously\n";
}

sub append_conf {
    my ($dir, $text) = @_;
    open(my $fh, '>>', "$dir/postgresql.conf") or die "$dir/postgresql.conf: $!\n";
    print $fh "# pg_failover.t\n$text";
    close $fh or die "$dir/postgresql.conf: $!\n";
}

sub chatterd_connections {
    my ($dir) = @_;
    return $PG{$dir}->admin_value(q{SELECT count(*) FROM pg_stat_activity
                                    WHERE application_name = 'chatterd'});
}

# ---- helpers (the load and its checks: Chatterd::MixedLoad) -------------------------------

sub post_chatt {
    my ($ng, $message) = @_;
    return http_request($ng->port, build_request(POST => '/postchatt',
        body => qq({"username":"failover","message":"$message"}),
        headers => ['Content-Type' => 'application/json']));
}

# ---- the scenario -------------------------------------------------------------------------

my %conninfo = (
    tcp  => "host=127.0.0.1,127.0.0.1 port=$STANDBY_PORT,$PRIMARY_PORT dbname=chatterdb "
            . "user=chatter password=chattchatt target_session_attrs=read-write",
    unix => "host=$SOCKET{$STANDBY},$SOCKET{$PRIMARY} port=$STANDBY_PORT,$PRIMARY_PORT "
            . "dbname=chatterdb user=chatter target_session_attrs=read-write",
);

for my $via (qw(tcp unix)) {
    subtest "failover to the promoted standby, over $via, under the load of $CLIENTS clients" => sub {
        my $setup_started = Time::HiRes::time();
        make_clusters();
        $PG{$PRIMARY}->use_for_db;
        truncate_chatts();
        my $ng = load_nginx($conninfo{$via}, $TIMEOUT);
        my $master = $ng->pid;
        my @workers = sort $ng->worker_pids;
        diag(sprintf('%s: clusters made and nginx started in %.1f s', $via,
                     Time::HiRes::time() - $setup_started));

        # ---- before: the primary takes the posts, the standby has no connection of ours
        my @before = map { post_chatt($ng, "before $via $_") } 1 .. 4;
        is_deeply([map { $_->{status} } @before], [(200) x 4], 'before: posts answered 200');
        is(sql_value(qq{SELECT count(*) FROM chatts WHERE message LIKE 'before $via %'}), 4,
           'before: the posts are on the primary');
        my $listed = http_get($ng->port, '/getchatts');
        is($listed->{status}, 200, 'before: getchatts 200');
        is(scalar(() = $listed->{body} =~ /"before \Q$via\E \d"/g), 4, 'before: getchatts lists them');
        cmp_ok(chatterd_connections($PRIMARY), '>', 0, 'before: the pools are connected to the primary');
        ok(wait_until(sub { chatterd_connections($STANDBY) == 0 }, 5),
           'before: no connection of the pools stays on the (read-only) standby');
        # Sessions the standby saw end: libpq tried it first, then moved on.
        ok(wait_until(sub { $PG{$STANDBY}->admin_value(q{SELECT sessions FROM pg_stat_database
                                                         WHERE datname = 'chatterdb'}) > 0 }, 5),
           'before: the connections went through the standby first');
        is($PG{$STANDBY}->admin_value('SELECT pg_is_in_recovery()'), 't', 'before: the standby is a standby');

        # Every connection of both pools open: the descriptors to come back to.
        my $load = new_load($ng->port, $CLIENTS);
        run_load($load, Time::HiRes::time() + 1);
        my $fds_before = worker_fds($ng);
        $ng->mark_error_log;

        # ---- the primary dies under the load; a while later the standby is promoted
        run_load($load, Time::HiRes::time() + 1);
        my $primary_pid = $PG{$PRIMARY}->postmaster_pid // die "the primary does not run\n";
        kill 'QUIT', $primary_pid;
        my $killed_at = Time::HiRes::time();
        run_load($load, $killed_at + 1.5);

        my ($promote_pid, $promote_status, $promoted_at);
        my $promote_at = Time::HiRes::time();
        $promote_pid = fork // die "fork: $!\n";
        if (!$promote_pid) {
            open STDOUT, '>', '/dev/null';
            my @cmd = as_owner("$PGBIN/pg_ctl", '-D', $STANDBY, '-w', '-t', '30', 'promote');
            exec { $cmd[0] } @cmd or POSIX::_exit(127);
        }
        # Until a post is answered 200 and 3 s more, at most $RECOVERY_BOUND + 3 s.
        my ($first_post_200, $seen) = (undef, scalar @{$load->{answers}});
        $load->{tick} = sub {
            if ($promote_pid && waitpid($promote_pid, POSIX::WNOHANG()) == $promote_pid) {
                ($promote_status, $promoted_at, $promote_pid) = ($?, Time::HiRes::time(), undef);
            }
            my $answers = $load->{answers};
            for my $ans (@$answers[$seen .. $#$answers]) {
                my $done = $ans->[3] + $ans->[2];
                $first_post_200 = $done if !defined $first_post_200 && is_post($ans->[0])
                                           && $ans->[1] eq '200' && $done >= $promote_at;
            }
            $seen = @$answers;
        };
        run_load($load, sub { defined $first_post_200 ? $first_post_200 + 3
                                                      : $promote_at + $RECOVERY_BOUND + 3 });
        delete $load->{tick};
        if ($promote_pid) {    # still running: wait for it
            waitpid $promote_pid, 0;
            ($promote_status, $promoted_at) = ($?, Time::HiRes::time());
        }
        is($promote_status, 0, 'pg_ctl promote succeeded');
        wait_until(sub { !kill(0, $primary_pid) }, 10) or die "timed out waiting for the old primary to be gone\n";

        # ---- the answers
        my @answers = grep { $_->[3] + $_->[2] >= $killed_at - 1 } @{$load->{answers}};
        my @bad = grep { $_->[1] !~ /\A(?:200|503)\z/ } @answers;
        ok(!@bad, scalar(@answers) . ' requests, every one answered 200 or 503')
            or diag(join "\n", map { "@$_" } @bad[0 .. ($#bad < 9 ? $#bad : 9)]);
        my @unavailable = grep { $_->[1] eq '503' } @answers;
        my $slowest = percentile(1, map { $_->[2] } @unavailable);
        cmp_ok($slowest, '<=', $TIMEOUT + 1, 'every 503 within chatterd_pg_timeout + 1 s (slowest '
               . sprintf('%.2f s', $slowest) . ')');
        # No primary between the death (and the commits it had acknowledged just before) and the
        # promotion: no post can have been stored.
        my @stored_meanwhile = grep { is_post($_->[0]) && $_->[1] eq '200'
                                      && $_->[3] >= $killed_at + 0.5
                                      && $_->[3] + $_->[2] < $promote_at } @answers;
        ok(!@stored_meanwhile, 'no post answered 200 while there was no primary')
            or diag(join "\n", map { "@$_" } @stored_meanwhile);

        my %first;
        for my $ans (grep { $_->[1] eq '200' && $_->[3] + $_->[2] >= $promote_at } @answers) {
            my $done = $ans->[3] + $ans->[2];
            $first{$ans->[0]} = $done if !defined $first{$ans->[0]} || $done < $first{$ans->[0]};
        }
        my $since = sub { defined $_[0] ? sprintf('%.2f s', $_[0] - $promote_at) : 'never' };
        my $first_postchatt = $first{postchatt};
        ok(defined $first_postchatt && $first_postchatt - $promote_at < $RECOVERY_BOUND,
           'postchatt answered 200 again within ' . $RECOVERY_BOUND . ' s of the promotion ('
           . $since->($first_postchatt) . ')');
        ok(defined $first{$_}, "$_ answered 200 after the promotion (" . $since->($first{$_}) . ')')
            for qw(getimages getchatts postimages_media postimages_text);
        is($ng->pid, $master, 'the same nginx master (no reload, no restart)');
        is_deeply([sort $ng->worker_pids], \@workers, 'the same workers');

        # ---- the error log
        my $log = $ng->error_log_since_mark;
        my @lines = split /\n/, $log;
        my @loud = grep { /\[(?:error|crit|alert|emerg)\]/ } @lines;
        my $outages = () = $log =~ /\[error\][^\n]* cannot be reached: /g;
        my $recoveries = () = $log =~ /\[error\][^\n]* is reachable again /g;
        cmp_ok($outages, '>', 0, "the pools noticed the outage ($outages)");
        is($recoveries, $outages, "every pool that lost the database found it again ($recoveries)");
        cmp_ok(scalar @loud, '<=', 30, 'the error log grew by a bounded number of error lines ('
               . scalar(@loud) . ')') or diag(join "\n", @loud[0 .. 29]);
        ok(!grep({ /exited on signal|\[alert\]|\[crit\]|\[emerg\]/ } @lines), 'no worker '
           . 'exited on a signal, no alert') or diag(join "\n", grep { /signal|alert|crit/ } @lines);
        my ($cause) = $log =~ /cannot be reached: ([^\n]*?); requests that/;
        note("the outage's cause as logged: " . ($cause // '?'));

        # ---- the promoted server
        $PG{$STANDBY}->use_for_db;
        is($PG{$STANDBY}->admin_value('SELECT pg_is_in_recovery()'), 'f', 'the standby was promoted');
        my @after = map { post_chatt($ng, "after $via $_") } 1 .. 4;
        is_deeply([map { $_->{status} } @after], [(200) x 4], 'after: posts answered 200');
        is(sql_value(qq{SELECT count(*) FROM chatts WHERE message LIKE 'after $via %'}), 4,
           'after: the posts are on the promoted server');
        is(sql_value(qq{SELECT count(*) FROM chatts WHERE message LIKE 'before $via %'}), 4,
           'after: the posts from before are there too');
        my $listed_after = http_get($ng->port, '/getchatts');
        is(scalar(() = $listed_after->{body} =~ /"(?:before|after) \Q$via\E \d"/g), 8,
           'after: getchatts lists the posts from before and after');
        cmp_ok(chatterd_connections($STANDBY), '>', 0, 'after: the pools are connected to the promoted server');
        my $posts_200 = grep { is_post($_->[0]) && $_->[1] eq '200' } @{$load->{answers}};
        my $load_rows = sql_value(q{SELECT count(*) FROM chatts WHERE username = 'load'});
        cmp_ok($load_rows, '>=', $posts_200, "every post answered 200 is on the promoted server "
               . "($load_rows rows, $posts_200 posts answered 200)");

        my $fds_after = wait_fds_back($ng, $fds_before);
        ok(!grep({ ($fds_after->{$_} // 1e9) > $fds_before->{$_} } keys %$fds_before),
           'worker descriptors are back where they started')
            or diag(explain({before => $fds_before, after => $fds_after}));
        my $kept = check_media_consistency("failover over $via", scalar $ng->error_log_since_mark);

        my @posts = grep { is_post($_->[0]) } @answers;
        diag(sprintf('%s: %d requests from the death of the primary on, %d answered 503 (p99 '
                     . '%.3f s, slowest %.3f s); posts: %d, %d answered 200; promote took %.2f s; '
                     . 'first 200 after the promotion: postchatt %s, postimages %s, getchatts %s; '
                     . 'from the primary\'s death to the first post 200: %s; %d error lines, '
                     . '%d outages/recoveries logged, %d media files of unknown outcome',
                     $via, scalar @answers, scalar @unavailable,
                     percentile(0.99, map { $_->[2] } @unavailable), $slowest, scalar @posts,
                     scalar(grep { $_->[1] eq '200' } @posts), $promoted_at - $promote_at,
                     $since->($first_postchatt), $since->($first{postimages_media}),
                     $since->($first{getchatts}),
                     defined $first_post_200 ? sprintf('%.2f s', $first_post_200 - $killed_at)
                                             : 'never',
                     scalar @loud, $outages, $kept));
        $ng->stop;
    };
}

done_testing();
