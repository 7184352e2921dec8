# The media sweep never removes a file that a row names now or will name later (scenario test,
# Test::More). Each case leaves orphan-looking files (no visible row names them) older than the
# grace period (2 s) and lets the sweep run:
#   (a) a commit that waits for a synchronous standby (synchronous_standby_names set, no standby
#       connected), sent by a session of chatterd's role that no worker will settle (as a worker
#       killed after sending its INSERT leaves it): its transaction stays open, so the sweep
#       holds the files its rows name back; once the requirement is lifted the rows become
#       visible, and every row's file is there. (A post of a living worker is settled by the
#       worker itself: t/post_outcome.t);
#   (b) a transaction chatterd's role cannot see the start of (a superuser's session on the
#       database): rounds are skipped while it is open, and the files go once it ends;
#   (c) a database in recovery (a streaming standby of the test cluster, on
#       a handed-out port): rounds are skipped; promoted, it is swept;
#   (d) a prepared transaction on it that may have inserted: rounds are skipped until it is
#       rolled back.
# The test cluster's synchronous_standby_names is reset at the end, however the suite ends.
use strict; use warnings;
use FindBin; BEGIN { push @INC, "$FindBin::Bin/lib" }
use Test::More;
use File::Path ();
use POSIX ();
use Time::HiRes ();

use Chatterd::Db qw(sql sql_value truncate_chatts media_root media_files check_media_consistency);
use Chatterd::Ports ();
use Chatterd::Sweep qw(start_sweeping_nginx wait_until);

for my $var (qw(TEST_NGINX_PG_CONNINFO TEST_NGINX_PG_DIR TEST_NGINX_PG_PORT TEST_NGINX_PSQL)) {
    plan skip_all => "$var is not set (run through make test)" unless $ENV{$var};
}
my ($PGBIN) = reverse sort glob('/usr/lib/postgresql/*/bin');
plan skip_all => 'pg_basebackup is missing' unless $PGBIN && -x "$PGBIN/pg_basebackup";

my $MEDIA   = media_root();
my $HEX     = '0123456789abcdef' x 2;
my %CLUSTER = (
    test    => {dir => $ENV{TEST_NGINX_PG_DIR}, port => $ENV{TEST_NGINX_PG_PORT}},
    standby => {dir => "$ENV{TEST_NGINX_PG_DIR}-sweep-standby", port => Chatterd::Ports::free_port()},
);
$_->{socket} = "$_->{dir}.socket" for values %CLUSTER;

# As root, PostgreSQL's programs run as postgres, who owns the clusters (scripts/pg.sh).
sub as_postgres { return $> == 0 ? ('runuser', '-u', 'postgres', '--', 'env', '-C', '/', @_) : @_ }

# psql on a cluster (its socket, local trust) as $user: the first column of the first row.
sub psql_value {
    my ($cluster, $user, $statement) = @_;
    my $c = $CLUSTER{$cluster};
    open(my $fh, '-|', "$PGBIN/psql", '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-h', $c->{socket},
         '-p', $c->{port}, '-U', $user, '-d', 'chatterdb', '-c', $statement) or die "psql: $!";
    my @lines = <$fh>;
    close $fh or die "psql on $cluster failed for: $statement\n";
    chomp(my $first = $lines[0] // '');
    return $first;
}
sub admin { psql_value(shift, 'postgres', @_) }

# psql in the background, for a transaction that stays open; returns its pid.
sub psql_in_background {
    my ($cluster, $user, $statement) = @_;
    my $c   = $CLUSTER{$cluster};
    my $pid = fork() // die "fork: $!";
    return $pid if $pid;
    open STDOUT, '>', '/dev/null';
    exec("$PGBIN/psql", '-X', '-q', '-h', $c->{socket}, '-p', $c->{port}, '-U', $user,
         '-d', 'chatterdb', '-c', $statement) or POSIX::_exit(127);
}

sub pg_ctl { system(as_postgres("$PGBIN/pg_ctl", '-D', $CLUSTER{standby}{dir}, '-s', '-w', '-t', '60', @_)) == 0 }

sub remove_standby {
    my $s = $CLUSTER{standby};
    pg_ctl('-m', 'immediate', 'stop') if -f "$s->{dir}/postmaster.pid";
    File::Path::remove_tree($s->{dir}, $s->{socket});
}

sub require_standby {
    my ($names) = @_;
    admin('test', "ALTER SYSTEM SET synchronous_standby_names = '$names'");
    admin('test', 'SELECT pg_reload_conf()');
    wait_until(sub { admin('test', 'SHOW synchronous_standby_names') eq $names }, 10)
        or die "synchronous_standby_names did not become '$names'\n";
}

END {
    local ($?, $@);
    eval { admin('test', 'ALTER SYSTEM RESET synchronous_standby_names'); admin('test', 'SELECT pg_reload_conf()') };
    eval { remove_standby() };
}

sub orphans {
    my ($prefix, $n) = @_;
    my @names = map { sprintf("$prefix-%032x.jpeg", $_) } 1 .. $n;
    for my $name (@names) {
        open(my $fh, '>', "$MEDIA/$name") or die "$name: $!";
        close $fh;
    }
    return @names;
}
sub left { my ($prefix) = @_; return grep { /^\Q$prefix\E-/ } media_files() }

subtest '(a) commits that wait for a synchronous standby' => sub {
    truncate_chatts();
    my $ng = start_sweeping_nginx();
    my @files = orphans('sync', 3);
    require_standby('chatterd_absent_standby');
    my $rows = join ', ', map { "('sync', 'hi', gen_random_uuid(), 'http://localhost/media/$_')" } @files;
    my $insert = psql_in_background('test', 'chatter',
        "INSERT INTO chatts (username, message, id, imageurl) VALUES $rows");
    ok(wait_until(sub { sql_value("SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'") > 0 }),
       'the INSERT naming the files waits for the absent standby');
    is(sql_value('SELECT count(*) FROM chatts'), 0, 'no row is visible yet');
    my $held = $ng->wait_for_error_log(qr/media sweep of \Q$MEDIA\E: .*\b[3-9] held back by open transactions/);
    ok($held, 'a round finds the files old enough but holds them back, their transaction being open')
        or diag($ng->error_log_text);
    is(scalar(left('sync')), 3, 'the files are there');
    require_standby('');
    waitpid($insert, 0);
    ok(wait_until(sub { sql_value('SELECT count(*) FROM chatts') == 3 }), 'lifted: the 3 rows become visible');
    check_media_consistency('every row names a file that is there');
    $ng->mark_error_log;
    ok($ng->wait_for_error_log(qr/media sweep of \Q$MEDIA\E: [1-9]\d* media files judged, 0 moved/),
       'the next round judges them, and keeps them');
    check_media_consistency('after it');
    $ng->stop;
};

subtest '(b) a transaction chatterd cannot see the start of' => sub {
    truncate_chatts();
    my @names = orphans('unseen', 3);
    my $session = psql_in_background('test', 'postgres', 'BEGIN; SELECT txid_current(); SELECT pg_sleep(6); COMMIT;');
    ok(wait_until(sub { admin('test', "SELECT count(*) FROM pg_stat_activity WHERE datname = 'chatterdb' "
                                      . "AND usename = 'postgres' AND backend_xid IS NOT NULL") > 0 }),
       "a superuser's transaction is open on chatterdb");
    my $ng = start_sweeping_nginx();
    ok($ng->wait_for_error_log(qr/\[warn\].*media sweep of \Q$MEDIA\E skipped, nothing judged: a session of a role that may insert/),
       'a round is skipped while it is open, and says why');
    is(scalar(left('unseen')), 3, 'the files stay');
    waitpid $session, 0;
    ok(wait_until(sub { !left('unseen') }), 'once it ends, the files go');
    $ng->stop;
};

subtest '(c) a database in recovery, then (d) a prepared transaction' => sub {
    truncate_chatts();
    remove_standby();
    my $s = $CLUSTER{standby};
    File::Path::make_path($s->{dir}, $s->{socket});
    chmod 0700, $s->{dir};
    if ($> == 0) {
        my (undef, undef, $uid, $gid) = getpwnam('postgres') or die "no postgres user\n";
        chown $uid, $gid, $s->{dir}, $s->{socket};
    }
    system(as_postgres("$PGBIN/pg_basebackup", '-D', $s->{dir}, '-R', '-c', 'fast', '-X', 'stream',
                       '--no-sync', '-h', $CLUSTER{test}{socket}, '-p', $CLUSTER{test}{port}, '-U', 'postgres')) == 0
        or die "pg_basebackup failed\n";
    unlink "$s->{dir}/server.log";
    open(my $conf, '>>', "$s->{dir}/postgresql.conf") or die $!;
    print {$conf} "port = $s->{port}\nunix_socket_directories = '$s->{socket}'\nfsync = off\n"
                . "max_prepared_transactions = 2\n";
    close $conf;
    ok(pg_ctl('-l', "$s->{dir}/server.log", '-o', "-p $s->{port} -k $s->{socket}", 'start'), 'the standby starts');
    is(admin('standby', 'SELECT pg_is_in_recovery()'), 't', 'in recovery');

    my @names = orphans('standby', 3);
    my $ng = start_sweeping_nginx(conninfo => "host=$s->{socket} port=$s->{port} dbname=chatterdb user=chatter");
    ok($ng->wait_for_error_log(qr/\[warn\].*media sweep of \Q$MEDIA\E skipped, nothing judged: the database is in recovery/),
       '(c) a round on the standby is skipped, and says why');
    ok($ng->wait_for_error_log(qr/\[notice\].*media sweep of \Q$MEDIA\E skipped, nothing judged: the database is in recovery/),
       '(c) the next one too, at notice');
    is(scalar(left('standby')), 3, '(c) the files stay');

    ok(pg_ctl('promote'), 'the standby is promoted');
    ok(wait_until(sub { admin('standby', 'SELECT pg_is_in_recovery()') eq 'f' }), 'out of recovery');
    # schema.sql's trigger NOTIFYs the list caches, and PostgreSQL cannot PREPARE a transaction
    # that notified: the prepared INSERT is made in replica mode (as logical replication applies
    # rows), where ordinary triggers do not fire, which takes the superuser.
    my $prepared = psql_in_background('standby', 'postgres',
        "BEGIN; SET LOCAL session_replication_role = replica; "
        . "INSERT INTO chatts (username, message) VALUES ('p', 'p'); PREPARE TRANSACTION 'sweep_test';");
    waitpid $prepared, 0;
    is(admin('standby', 'SELECT count(*) FROM pg_prepared_xacts'), 1, '(d) a transaction is prepared');
    $ng->mark_error_log;
    ok($ng->wait_for_error_log(qr/media sweep of \Q$MEDIA\E skipped, nothing judged: a prepared transaction/),
       '(d) a round is skipped while it waits, and says why');
    is(scalar(left('standby')), 3, '(d) the files stay');
    admin('standby', "ROLLBACK PREPARED 'sweep_test'");
    ok(wait_until(sub { !left('standby') }), 'rolled back, the files go');
    $ng->stop;
    remove_standby();
};

done_testing();
