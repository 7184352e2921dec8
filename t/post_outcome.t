# Every post's outcome is settled within seconds of the database answering, not by the media
# sweep (off here): a post answered 503 because its INSERT's outcome was unknown is looked up
# once the backend it was sent to has been ended (a commit waiting for a synchronous standby
# is committed locally, and visible once the wait ends, even by a cancel); its files are kept
# or removed to match, with one line.
#   (a) a commit waiting for a synchronous standby that never comes (synchronous_standby_names
#       'nobody'): 503 after chatterd_pg_timeout; the row is found, its file kept and served;
#   (b) an INSERT blocked by a lock past chatterd_pg_timeout: it never commits; its file goes;
#   (c) worker_shutdown_timeout ends the request while its commit waits for the standby: the
#       file stays, the row is found (before, the request's end removed the file while the row
#       was committed);
#   (d) a postchatt client that goes away while its INSERT waits for a lock: settled at once
#       (before, the INSERT went on, and stored the row once the lock was gone).
use strict; use warnings;
use FindBin; BEGIN { push @INC, "$FindBin::Bin/lib" }
use Test::More;
use IO::Socket::INET;
use POSIX ();
use Time::HiRes ();

use Chatterd::Db qw(sql sql_value truncate_chatts media_root media_files check_media_consistency);
use Chatterd::Http qw(http_request http_get build_request multipart_body);
use Chatterd::Nginx;
use Chatterd::Wait qw(wait_until);
use Chatterd::Upload qw(media image_part);

for my $var (qw(TEST_NGINX_PG_CONNINFO TEST_NGINX_PSQL)) {
    plan skip_all => "$var is not set (run through make test)" unless $ENV{$var};
}
my $MEDIA = media_root();
my ($SOCKET) = $ENV{TEST_NGINX_PG_CONNINFO} =~ /host=(\S+)/;
my ($PORT)   = $ENV{TEST_NGINX_PG_CONNINFO} =~ /port=(\d+)/;

# As the superuser (local trust on the test cluster's socket); the first column of the first row.
sub admin_value {
    my ($statement) = @_;
    open(my $fh, '-|', 'psql', '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-h', $SOCKET,
         '-p', $PORT, '-U', 'postgres', '-d', 'chatterdb', '-c', $statement)
        or die "psql: $!";
    local $/;
    my $out = <$fh> // '';
    close $fh or die "psql failed for: $statement\n";
    chomp $out;
    return (split /\n/, $out)[0];
}

# Commits wait for a standby named 'nobody' (the configuration of docs/SCALING.md, its standby
# down), or not; a new session sees it once the server has reloaded.
sub require_standby {
    my ($name) = @_;
    admin_value($name ? "ALTER SYSTEM SET synchronous_standby_names = '$name'"
                      : 'ALTER SYSTEM RESET synchronous_standby_names');
    admin_value('SELECT pg_reload_conf()');
    wait_until(sub { (sql_value('SHOW synchronous_standby_names') // '') eq $name })
        or die "synchronous_standby_names did not become '$name'\n";
}
END { local ($?, $@); eval { require_standby('') } if $SOCKET }

sub start_nginx {
    my (%opt) = @_;
    return Chatterd::Nginx->start(
        workers     => 1,
        master      => 1,
        log_level   => 'info',
        main_config => ($> == 0 ? "user root root;\n" : '') . ($opt{main} // ''),
        http_config => <<CONF,
chatterd_pg "$ENV{TEST_NGINX_PG_CONNINFO}";
chatterd_pg_timeout $opt{timeout};
chatterd_media_root $MEDIA;
chatterd_media_sweep off;
CONF
        config => <<CONF);
location = /postimages { chatterd postimages; }
location = /postchatt  { chatterd postchatt; }
location = /getchatts  { chatterd getchatts; }
location /media/ { alias $MEDIA/; }
CONF
}

sub upload_request {
    my ($user) = @_;
    my $body = multipart_body('outcomeB', [name => 'username', value => $user],
                              [name => 'message', value => 'unknown'],
                              image_part(media('jpeg', 200_000, 3)));
    return build_request(POST => '/postimages', body => $body,
        headers => ['Content-Type' => 'multipart/form-data; boundary=outcomeB']);
}

# A session holding a lock that INSERT needs (and SELECT does not), until release_lock.
sub hold_lock {
    my $holder = fork // die "fork: $!";
    if (!$holder) {
        $ENV{PGAPPNAME} = 'post_outcome_lock';
        open STDOUT, '>', '/dev/null';
        exec('psql', '-X', '-q', '-h', $SOCKET, '-p', $PORT, '-U', 'postgres', '-d', 'chatterdb',
             '-c', 'BEGIN; LOCK TABLE chatts IN EXCLUSIVE MODE; SELECT pg_sleep(120);')
            or POSIX::_exit(127);
    }
    ok(wait_until(sub { admin_value("SELECT count(*) FROM pg_locks WHERE granted AND "
                                    . "relation = 'chatts'::regclass AND mode = 'ExclusiveLock'") }),
       'the lock is held');
    return $holder;
}
sub release_lock {
    my ($holder) = @_;
    admin_value("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                . "WHERE application_name = 'post_outcome_lock'");
    waitpid $holder, 0;
}

sub the_file { my ($user) = @_; my @f = grep { /^\Q$user\E-/ } media_files(); return $f[0] }

subtest '(a) a commit waiting for a synchronous standby' => sub {
    truncate_chatts();
    my $ng = start_nginx(timeout => '1s');
    is(http_get($ng->port, '/getchatts')->{status}, 200, 'warm-up');
    require_standby('nobody');
    $ng->mark_error_log;
    my $res = http_request($ng->port, upload_request('ann'), timeout => 10);
    is($res->{status}, 503, '503 after chatterd_pg_timeout');
    my $name = the_file('ann');
    ok($name, 'the file is kept while the outcome is unknown');
    my $line = $ng->wait_for_error_log(qr/postimages: post \S+, whose outcome was unknown, was/,
                                       timeout => 20);
    like($line // '', qr/\[notice\].* was stored \(its backend \d+ has ended\); kept \Q$name\E/,
         'settled, stored: one line') or diag($ng->error_log_since_mark);
    my ($id) = ($line // '') =~ /post ([-0-9a-f]{36}),/;
    is($id && sql_value("SELECT username FROM chatts WHERE id = '$id'"), 'ann', 'the row is there');
    require_standby('');
    ok(-e "$MEDIA/$name", 'the file stays');
    is(http_get($ng->port, "/media/$name")->{status}, 200, 'and is served');
    is(scalar(() = $ng->error_log_since_mark =~ /whose outcome was unknown/g), 1, 'one line');
    check_media_consistency('(a)');
    $ng->stop;
};

subtest '(b) an INSERT that never commits' => sub {
    truncate_chatts();
    my $ng = start_nginx(timeout => '1s');
    is(http_get($ng->port, '/getchatts')->{status}, 200, 'warm-up');
    my $holder = hold_lock();
    $ng->mark_error_log;
    my $res = http_request($ng->port, upload_request('bob'), timeout => 10);
    is($res->{status}, 503, '503 after chatterd_pg_timeout');
    my $line = $ng->wait_for_error_log(qr/postimages: post \S+, whose outcome was unknown, was/,
                                       timeout => 20);
    like($line // '', qr/\[notice\].* was not stored \(its backend \d+ has ended\); removed bob-/,
         'settled, not stored: one line') or diag($ng->error_log_since_mark);
    ok(!the_file('bob'), 'the file is gone');
    release_lock($holder);
    is(sql_value('SELECT count(*) FROM chatts'), 0, 'no row, once the lock is gone');
    check_media_consistency('(b)');
    $ng->stop;
};

subtest '(c) worker_shutdown_timeout while the commit waits' => sub {
    truncate_chatts();
    my $ng = start_nginx(timeout => '30s', main => "worker_shutdown_timeout 1s;\n");
    is(http_get($ng->port, '/getchatts')->{status}, 200, 'warm-up');
    require_standby('nobody');
    $ng->mark_error_log;
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $ng->port) or die $!;
    print {$sock} upload_request('cat');
    ok(wait_until(sub { admin_value("SELECT count(*) FROM pg_stat_activity "
                                    . "WHERE wait_event = 'SyncRep'") }),
       'the INSERT waits for the standby');
    my $name = the_file('cat');
    kill 'HUP', $ng->pid;    # the old worker ends the request after worker_shutdown_timeout
    my $line = $ng->wait_for_error_log(qr/postimages: post \S+, whose outcome was unknown, was/,
                                       timeout => 30);
    like($line // '', qr/ was stored \(its backend \d+ has ended\); kept \Q$name\E/,
         'settled, stored: one line') or diag($ng->error_log_since_mark);
    close $sock;
    require_standby('');
    ok($name && -e "$MEDIA/$name", 'the file stays');
    is(sql_value('SELECT count(*) FROM chatts'), 1, 'the row is there');
    check_media_consistency('(c)');
    $ng->stop;
};

subtest '(d) the client goes away while its postchatt INSERT is blocked' => sub {
    truncate_chatts();
    my $ng = start_nginx(timeout => '30s');
    is(http_get($ng->port, '/getchatts')->{status}, 200, 'warm-up');
    my $holder = hold_lock();
    $ng->mark_error_log;
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $ng->port) or die $!;
    print {$sock} build_request(POST => '/postchatt', body => '{"username":"dan","message":"gone"}',
                                headers => ['Content-Type' => 'application/json']);
    ok(wait_until(sub { admin_value("SELECT count(*) FROM pg_locks WHERE NOT granted AND "
                                    . "relation = 'chatts'::regclass") }),
       'the INSERT waits for the lock');
    close $sock;
    my $line = $ng->wait_for_error_log(qr/postchatt: post \S+, whose outcome was unknown, was/,
                                       timeout => 20);
    like($line // '', qr/ was not stored \(its backend \d+ has ended\)/,
         'settled at once, not stored: one line') or diag($ng->error_log_since_mark);
    release_lock($holder);
    is(sql_value('SELECT count(*) FROM chatts'), 0, 'no row, once the lock is gone');
    $ng->stop;
};

done_testing();
