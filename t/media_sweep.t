# The media sweep (chatterd_media_sweep): media files that no row names are moved to the root's
# quarantine once older than the grace period, by worker 0 at its start and then every period,
# and the quarantine is emptied a period later:
#   (a) an orphan file and a stale temporary file go to the quarantine, which /media/ never
#       serves, then out of it; a file a row names, a file younger than the grace period and an
#       operator's own file stay; each round says what it did in one line, and the status page
#       counts it;
#   (a') a media root of more files than one query checks (10,000): one round goes through
#       all of them, and every orphan goes, wherever the listing puts it;
#   (b) a worker killed between publishing a post's file and storing its row (PostgreSQL
#       paused past the post's deadline): the master's new worker sweeps the file away, and
#       files and rows agree again;
#   (c) nginx -t: the grace period must be longer than chatterd_pg_timeout; a media root
#       directory (however spelled: trailing slash, symbolic link) may serve only one database
#       when any location sweeps it, whatever the other locations' sweep setting; the
#       quarantine must be outside the media root, on its filesystem, and no media root; a root
#       that is a mount point (no default quarantine on its filesystem) is not swept, with a
#       warning;
#   (d) chatterd_media_sweep_limit: a round that finds more unnamed files moves none and says
#       so, until a reload raises the limit;
#   (e) chatterd_media_sweep_timeout: the sweep's query has its own deadline, not
#       chatterd_pg_timeout: a query that waits longer (a lock on chatts) still completes.
use strict; use warnings;
use FindBin; BEGIN { push @INC, "$FindBin::Bin/lib" }
use Test::More;
use File::Path ();
use IO::Socket::INET;
use Time::HiRes ();

use Chatterd::Db qw(sql sql_value truncate_chatts media_root media_files check_media_consistency pause_pg resume_pg);
use Chatterd::Http qw(http_get build_request multipart_body);
use Chatterd::Nginx;
use Chatterd::Sweep qw(start_sweeping_nginx wait_until);
use Chatterd::Upload qw(media image_part);

for my $var (qw(TEST_NGINX_PG_CONNINFO TEST_NGINX_PG_DIR TEST_NGINX_PSQL)) {
    plan skip_all => "$var is not set (run through make test)" unless $ENV{$var};
}


my $MEDIA      = media_root();
my $QUARANTINE = "$MEDIA.quarantine";
my $HEX        = '0123456789abcdef' x 2;

sub touch {
    my ($name) = @_;
    open(my $fh, '>', "$MEDIA/$name") or die "$name: $!";
    print {$fh} "x";
    close $fh;
}

# The sweep ages files by their last change. Files a test expects to go in one round must
# change in the same second, or a round that starts as they cross the grace period takes some
# and leaves the rest.
sub touch_in_one_second {
    my @names = @_;
    my %seconds;
    do {
        touch($_) for @names;
        %seconds = map { (stat "$MEDIA/$_")[10] => 1 } @names;
    } while (keys %seconds > 1);
}

sub entries {
    my ($dir) = @_;
    opendir(my $dh, $dir) or return ();
    return sort grep { !/^\.\.?\z/ } readdir $dh;
}

sub empty_quarantine { unlink map { "$QUARANTINE/$_" } entries($QUARANTINE) }

subtest '(a) what goes and what stays' => sub {
    truncate_chatts();
    empty_quarantine();
    touch_in_one_second("bob-$HEX.jpeg", ".$HEX.upload");
    touch("carol-$HEX.jpeg");
    touch('notes.txt');
    sql("INSERT INTO chatts (username, message, imageurl) VALUES "
        . "('carol', 'hi', 'http://localhost/media/carol-$HEX.jpeg')");
    my $ng = start_sweeping_nginx();
    ok($ng->wait_for_error_log(qr/media sweep of \Q$MEDIA\E: 0 media files judged, 0 moved/),
       'the first round, at the start, finds every file too young');
    ok(-e "$MEDIA/bob-$HEX.jpeg", 'a young orphan stays');
    ok(wait_until(sub { !-e "$MEDIA/bob-$HEX.jpeg" && !-e "$MEDIA/.$HEX.upload" }),
       'the orphan and the stale temporary file leave the media root once older than 2 s');
    my $moved = $ng->wait_for_error_log(
        qr/\[warn\].*media sweep of \Q$MEDIA\E: \d+ media files judged, 2 moved to "\Q$QUARANTINE\E" \(no row names them\), 0 emptied/);
    ok($moved, 'one line says how many went to the quarantine') or diag($ng->error_log_since_mark);
    is(http_get($ng->port, "/media/bob-$HEX.jpeg")->{status}, 404, '/media/ does not serve a quarantined file');
    is(http_get($ng->port, "/media/carol-$HEX.jpeg")->{status}, 200, 'but serves a named one');
    ok($ng->wait_for_error_log(qr/media sweep of \Q$MEDIA\E: \d+ media files judged, 0 moved to "\Q$QUARANTINE\E" \(no row names them\), 2 emptied/),
       'a period later the quarantine loses them');
    is_deeply([entries($QUARANTINE)], [], 'the quarantine is empty');
    is_deeply([media_files()], ["carol-$HEX.jpeg", 'notes.txt'],
              "the named file and the operator's file stay");
    my $page = http_get($ng->port, '/status')->{body};
    like($page, qr/^chatterd_media_sweep_files_total\{fate="quarantined"\} 2$/m, 'the status page counts the moved files');
    like($page, qr/^chatterd_media_sweep_files_total\{fate="emptied"\} 2$/m, 'and the emptied ones');
    like($page, qr/^chatterd_media_sweep_rounds_total\{result="done"\} [1-9]/m, 'and the rounds');
    $ng->stop;
};

subtest "(a') more files than one query checks" => sub {
    truncate_chatts();
    empty_quarantine();
    my ($named, $orphans) = (12000, 30);
    sql("INSERT INTO chatts (username, message, imageurl) SELECT 'n', 'm', "
        . "'http://localhost/media/n-' || lpad(to_hex(i), 32, '0') || '.jpeg' "
        . "FROM generate_series(1, $named) AS i");
    touch(sprintf('n-%032x.jpeg', $_)) for 1 .. $named;
    touch_in_one_second(map { sprintf('o-%032x.jpeg', $_) } 1 .. $orphans);
    my $ng = start_sweeping_nginx();
    ok(wait_until(sub { !grep { /^o-/ } media_files() }, 30),
       "all $orphans orphans go, among $named named files");
    ok($ng->wait_for_error_log(qr/media sweep of \Q$MEDIA\E: \d+ media files judged, $orphans moved/, timeout => 10),
       'in one round');
    my @quarantined = entries($QUARANTINE);
    is(scalar(@quarantined), $orphans, 'to the quarantine');
    is(scalar(grep { /^n-/ } media_files()), $named, 'every named file stays');
    $ng->stop;
    truncate_chatts();
};

subtest '(b) a worker killed between its file and its row' => sub {
    truncate_chatts();
    my $ng = start_sweeping_nginx();
    my ($worker) = $ng->worker_pids;
    my $warm = http_get($ng->port, '/getimages');
    is($warm->{status}, 200, 'warm-up: 200');

    pause_pg();
    my $body = multipart_body('sweepBoundary', [name => 'username', value => 'dave'],
                              [name => 'message', value => 'lost'], image_part(media('jpeg', 5000, 3)));
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $ng->port) or die $!;
    print {$sock} build_request(POST => '/postimages', body => $body,
        headers => ['Content-Type' => 'multipart/form-data; boundary=sweepBoundary']);
    my $sent = Time::HiRes::time();
    ok(wait_until(sub { grep { /^dave-/ } media_files() }),
       'the file is published, its INSERT waits on the paused database');
    kill 'KILL', $worker;
    ok(wait_until(sub { my @w = $ng->worker_pids; @w && $w[0] != $worker }),
       'the master starts a new worker');
    # The INSERT carries its deadline: resumed after it, PostgreSQL stores nothing.
    wait_until(sub { Time::HiRes::time() > $sent + 1.5 });
    resume_pg();
    close $sock;
    ok(wait_until(sub { !grep { /^dave-/ } media_files() }),
       'the new worker 0 sweeps the file away');
    ok((grep { /^dave-/ } entries($QUARANTINE)) || $ng->wait_for_error_log(qr/\b1 emptied/),
       'to the quarantine');
    is(scalar(sql('SELECT 1 FROM chatts')), 0, 'no row');
    check_media_consistency('after the sweep');
    $ng->stop;
};

# nginx -t on a configuration: whether it starts (undef, and $@ says why, when it does not).
sub try_start {
    my ($http, $config) = @_;
    my $ng = eval {
        Chatterd::Nginx->start(workers => 1, http_config => $http, config => $config);
    };
    $ng->stop if $ng;
    return $ng;
}

subtest '(c) nginx -t' => sub {
    my $PG = $ENV{TEST_NGINX_PG_CONNINFO};
    ok(!try_start(qq{chatterd_pg "$PG"; chatterd_pg_timeout 5s; chatterd_media_root $MEDIA;
                     chatterd_media_sweep 5s;}, 'location /postimages { chatterd postimages; }'),
       'a grace period not longer than chatterd_pg_timeout is refused');
    like($@, qr/"chatterd_media_sweep" must be longer than "chatterd_pg_timeout"/, 'and says why');

    my $db2 = qq{chatterd_pg "$PG application_name=b";};
    ok(!try_start("chatterd_media_root $MEDIA;\n", <<CONF), 'one media root for two databases is refused');
location /a { chatterd postimages; chatterd_pg "$PG"; }
location /b { chatterd postimages; $db2 }
CONF
    like($@, qr/chatterd_media_root "\Q$MEDIA\E" \(the directory of "\Q$MEDIA\E"\) serves two databases/, 'and says why');

    ok(!try_start('', <<CONF), 'also when the other location does not sweep, and spells the root with a trailing slash');
location /a { chatterd postimages; chatterd_pg "$PG"; chatterd_media_root $MEDIA; }
location /b { chatterd postimages; $db2 chatterd_media_root $MEDIA/; chatterd_media_sweep off; }
CONF
    like($@, qr/serves two databases/, 'and says why');

    my $link = "$MEDIA-link";
    unlink $link;
    symlink($MEDIA, $link) or die "symlink: $!";
    ok(!try_start('', <<CONF), 'or comes first, through a symbolic link');
location /b { chatterd postimages; $db2 chatterd_media_root $link; chatterd_media_sweep off; }
location /a { chatterd postimages; chatterd_pg "$PG"; chatterd_media_root $MEDIA; }
CONF
    like($@, qr/chatterd_media_root "\Q$MEDIA\E" \(the directory of "\Q$link\E"\) serves two databases/, 'and says why');

    ok(try_start("chatterd_media_root $MEDIA;\nchatterd_media_sweep off;\n", <<CONF), 'unless no location sweeps it');
location /a { chatterd postimages; chatterd_pg "$PG"; }
location /b { chatterd postimages; $db2 chatterd_media_root $link; }
CONF
    ok(try_start('', <<CONF), 'one database under two spellings of a root is one sweep');
location /a { chatterd postimages; chatterd_pg "$PG"; chatterd_media_root $MEDIA; }
location /b { chatterd postimages; chatterd_pg "$PG"; chatterd_media_root $link/; }
CONF
    unlink $link;

    my $conf = qq{chatterd_pg "$PG"; chatterd_media_root $MEDIA;};
    File::Path::make_path("$MEDIA/q");
    ok(!try_start("$conf chatterd_media_quarantine $MEDIA/q;", 'location /p { chatterd postimages; }'),
       'a quarantine inside the media root is refused');
    like($@, qr/chatterd_media_quarantine "\Q$MEDIA\E\/q" is inside chatterd_media_root "\Q$MEDIA\E"/, 'and says why');
    rmdir "$MEDIA/q";
  SKIP: {
        skip 'no /dev/shm on another filesystem', 2
            unless -d '/dev/shm' && (stat '/dev/shm')[0] != (stat $MEDIA)[0];
        ok(!try_start("$conf chatterd_media_quarantine /dev/shm;", 'location /p { chatterd postimages; }'),
           'a quarantine on another filesystem is refused');
        like($@, qr/chatterd_media_quarantine "\/dev\/shm" is not on the filesystem of chatterd_media_root/, 'and says why');
    }
    my $other = "$MEDIA-other";
    File::Path::make_path($other);
    ok(!try_start($conf, <<CONF), "another location's media root as the quarantine is refused");
location /b { chatterd postimages; chatterd_media_root $other; }
location /a { chatterd postimages; chatterd_media_quarantine $other; }
CONF
    like($@, qr/chatterd_media_quarantine "\Q$other\E" is a media root/, 'and says why');
    ok(!try_start($conf, <<CONF), 'and so is a quarantine as the media root of a later location');
location /a { chatterd postimages; chatterd_media_quarantine $other; }
location /b { chatterd postimages; chatterd_media_root $other; }
CONF
    like($@, qr/chatterd_media_root "\Q$other\E" is a media sweep's quarantine/, 'and says why');
    File::Path::remove_tree($other);
  SKIP: {
        my $mnt = "$MEDIA-mnt";
        File::Path::make_path($mnt);
        skip 'needs root and mount -t tmpfs', 3
            unless $> == 0 && system('mount', '-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', $mnt) == 0;
        my $ng = eval { Chatterd::Nginx->start(workers => 1, http_config => qq{chatterd_pg "$PG";},
                                               config => "location /p { chatterd postimages; chatterd_media_root $mnt; }") };
        ok($ng, 'a media root that is a mount point, without chatterd_media_quarantine: nginx starts') or diag($@);
        my $said = $ng ? do { local (@ARGV, $/) = $ng->{proc}->stderr_file; <> } // '' : '';
        like($said, qr/\[warn\].*chatterd_media_root "\Q$mnt\E" is not swept: it is a mount point/,
             'and warns that the root is not swept');
        $ng->stop if $ng;
        system('umount', $mnt);
        ok(!-e "$mnt.quarantine", 'no quarantine was made on the other filesystem');
        rmdir $mnt;
    }
    my $own = "$MEDIA-own-quarantine";
    File::Path::remove_tree($own);
    ok(try_start("$conf chatterd_media_quarantine $own;", 'location /p { chatterd postimages; }'),
       'a quarantine of its own, beside the root');
    ok(-d $own, 'which nginx makes');
    File::Path::remove_tree($own);
};

subtest '(d) chatterd_media_sweep_limit' => sub {
    truncate_chatts();
    empty_quarantine();
    my @orphans = map { sprintf('l-%032x.jpeg', $_) } 1 .. 6;
    touch_in_one_second(@orphans);
    my $ng = start_sweeping_nginx(http => 'chatterd_media_sweep_limit 5;');
    ok($ng->wait_for_error_log(qr/\[alert\].*media sweep of \Q$MEDIA\E stopped, nothing moved: more than 5 media files/, timeout => 15),
       'a round that finds 6 unnamed files with a limit of 5 stops and says why');
    is(scalar(grep { /^l-/ } media_files()), 6, 'every file stays');
    like(http_get($ng->port, '/status')->{body}, qr/^chatterd_media_sweep_rounds_total\{result="stopped"\} [1-9]/m,
         'the status page counts the stopped round');

    my $conf = $ng->servroot . "/conf/nginx.conf";
    my $text = do { local (@ARGV, $/) = $conf; <> };
    $text =~ s/chatterd_media_sweep_limit 5;/chatterd_media_sweep_limit 6;/ or die 'no limit in the configuration';
    open(my $fh, '>', $conf) or die "$conf: $!";
    print {$fh} $text;
    close $fh;
    $ng->mark_error_log;
    kill 'HUP', $ng->pid;
    ok(wait_until(sub { !grep { /^l-/ } media_files() }),
       'raised to 6 by a reload, the next round moves them');
    ok($ng->wait_for_error_log(qr/\b6 moved to "\Q$QUARANTINE\E"/), 'in one round');
    $ng->stop;
    empty_quarantine();
};

subtest '(e) the sweep query has its own deadline' => sub {
    truncate_chatts();
    empty_quarantine();
    my @orphans = map { sprintf('t-%032x.jpeg', $_) } 1 .. 3;
    touch_in_one_second(@orphans);
    # Older than the grace period (2 s) when the lock's transaction begins, so that the
    # transaction does not hold them back.
    my $changed = (stat "$MEDIA/$orphans[0]")[10];
    wait_until(sub { time() > $changed + 3 });
    my $locker = fork() // die "fork: $!";
    if ($locker == 0) {
        exec(split(' ', $ENV{TEST_NGINX_PSQL}), '-c',
             'BEGIN; LOCK TABLE chatts; SELECT pg_sleep(5); COMMIT;') or exit 1;
    }
    ok(wait_until(sub {
        sql_value("SELECT count(*) FROM pg_locks WHERE relation = 'chatts'::regclass "
                  . "AND mode = 'AccessExclusiveLock' AND granted") > 0 }), 'chatts is locked for 5 s');
    my $ng = start_sweeping_nginx();
    ok(wait_until(sub { !grep { /^t-/ } media_files() }, 20),
       'the sweep query, which waits for the lock longer than chatterd_pg_timeout (1 s), completes');
    unlike($ng->error_log_text, qr/media sweep of \Q$MEDIA\E postponed/, 'never postponed');
    waitpid $locker, 0;
    $ng->stop;
    empty_quarantine();
};

done_testing();
