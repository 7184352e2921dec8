# The media sweep (chatterd_media_sweep): media files that no row names are removed once older
# than the grace period, by worker 0 at its start and then every period:
#   (a) an orphan file and a stale temporary file go; a file a row names, a file younger than
#       the grace period and an operator's own file stay;
#   (a') a media root of more files than one query checks (10,000): one round goes through
#       all of them, and every orphan goes, wherever the listing puts it;
#   (b) a worker killed between publishing a post's file and storing its row (PostgreSQL
#       paused past the post's deadline): the master's new worker sweeps the file away, and
#       files and rows agree again;
#   (c) nginx -t: the grace period must be longer than chatterd_pg_timeout, and a media root
#       may serve only one database.
use strict; use warnings;
use FindBin; BEGIN { push @INC, "$FindBin::Bin/lib" }
use Test::More;
use IO::Socket::INET;
use Time::HiRes ();

use Chatterd::Db qw(sql truncate_chatts media_root media_files check_media_consistency pause_pg resume_pg);
use Chatterd::Http qw(http_get build_request multipart_body);
use Chatterd::Nginx;
use Chatterd::Upload qw(media image_part);
use Chatterd::Wait qw(wait_until);

for my $var (qw(TEST_NGINX_PG_CONNINFO TEST_NGINX_PG_DIR TEST_NGINX_PSQL)) {
    plan skip_all => "$var is not set (run through make test)" unless $ENV{$var};
}


my $MEDIA = media_root();
my $HEX   = '0123456789abcdef' x 2;

sub touch {
    my ($name) = @_;
    open(my $fh, '>', "$MEDIA/$name") or die "$name: $!";
    print {$fh} "x";
    close $fh;
}

# The sweep ages files by the second. Files a test expects to go in one round must share their
# second, or a round that starts as they cross the grace period takes some and leaves the rest.
sub touch_in_one_second {
    my @names = @_;
    my %seconds;
    do {
        touch($_) for @names;
        %seconds = map { (stat "$MEDIA/$_")[10] => 1 } @names;
    } while (keys %seconds > 1);
}

sub start_nginx {
    my (%opt) = @_;
    return Chatterd::Nginx::start_nginx(
        media_root  => $MEDIA,
        http_config => "chatterd_pg_timeout 1s;\nchatterd_media_sweep 2s;\n",
        config      => <<'CONF',
location ~ ^/postimages/?$ { chatterd postimages; }
location ~ ^/getimages/?$  { chatterd getimages; }
CONF
    );
}

subtest '(a) what goes and what stays' => sub {
    truncate_chatts();
    touch_in_one_second("bob-$HEX.jpeg", ".$HEX.upload");
    touch("carol-$HEX.jpeg");
    touch('notes.txt');
    sql("INSERT INTO chatts (username, message, imageurl) VALUES "
        . "('carol', 'hi', 'http://localhost/media/carol-$HEX.jpeg')");
    my $ng = start_nginx();
    ok($ng->wait_for_error_log(qr/media sweep of \Q$MEDIA\E: removed 0 media files/),
       'the first round, at the start, finds every file too young');
    ok(-e "$MEDIA/bob-$HEX.jpeg", 'a young orphan stays');
    ok(wait_until(sub { !-e "$MEDIA/bob-$HEX.jpeg" && !-e "$MEDIA/.$HEX.upload" }),
       'the orphan and the stale temporary file go once older than 2 s');
    ok($ng->wait_for_error_log(qr/\[warn\].*media sweep of \Q$MEDIA\E: removed 2 media files that no row names/),
       'one line says how many');
    is_deeply([media_files()], ["carol-$HEX.jpeg", 'notes.txt'],
              "the named file and the operator's file stay");
    $ng->stop;
};

subtest "(a') more files than one query checks" => sub {
    truncate_chatts();
    my ($named, $orphans) = (12000, 30);
    sql("INSERT INTO chatts (username, message, imageurl) SELECT 'n', 'm', "
        . "'http://localhost/media/n-' || lpad(to_hex(i), 32, '0') || '.jpeg' "
        . "FROM generate_series(1, $named) AS i");
    touch(sprintf('n-%032x.jpeg', $_)) for 1 .. $named;
    touch_in_one_second(map { sprintf('o-%032x.jpeg', $_) } 1 .. $orphans);
    my $ng = start_nginx();
    ok(wait_until(sub { !grep { /^o-/ } media_files() }, 30),
       "all $orphans orphans go, among $named named files");
    ok($ng->wait_for_error_log(qr/media sweep of \Q$MEDIA\E: removed $orphans media files/, timeout => 10),
       'in one round');
    is(scalar(grep { /^n-/ } media_files()), $named, 'every named file stays');
    $ng->stop;
    truncate_chatts();
};

subtest '(b) a worker killed between its file and its row' => sub {
    truncate_chatts();
    my $ng = start_nginx();
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
    is(scalar(sql('SELECT 1 FROM chatts')), 0, 'no row');
    check_media_consistency('after the sweep');
    $ng->stop;
};

subtest '(c) nginx -t' => sub {
    my $bad = eval {
        Chatterd::Nginx->start(workers => 1, http_config => <<CONF,
chatterd_pg "$ENV{TEST_NGINX_PG_CONNINFO}";
chatterd_pg_timeout 5s;
chatterd_media_root $MEDIA;
chatterd_media_sweep 5s;
CONF
            config => 'location /postimages { chatterd postimages; }');
    };
    ok(!$bad, 'a grace period not longer than chatterd_pg_timeout is refused');
    like($@, qr/"chatterd_media_sweep" must be longer than "chatterd_pg_timeout"/, 'and says why');
    $bad = eval {
        Chatterd::Nginx->start(workers => 1, http_config => "chatterd_media_root $MEDIA;\n",
            config => <<CONF);
location /a { chatterd postimages; chatterd_pg "$ENV{TEST_NGINX_PG_CONNINFO}"; }
location /b { chatterd postimages; chatterd_pg "$ENV{TEST_NGINX_PG_CONNINFO} application_name=b"; }
CONF
    };
    ok(!$bad, 'one media root for two databases is refused');
    like($@, qr/chatterd_media_root "\Q$MEDIA\E" serves two databases/, 'and says why');
    my $off = Chatterd::Nginx->start(workers => 1, http_config => "chatterd_media_root $MEDIA;\n"
        . "chatterd_media_sweep off;\n", config => <<CONF);
location /a { chatterd postimages; chatterd_pg "$ENV{TEST_NGINX_PG_CONNINFO}"; }
location /b { chatterd postimages; chatterd_pg "$ENV{TEST_NGINX_PG_CONNINFO} application_name=b"; }
CONF
    ok($off, 'unless the sweep is off');
    $off->stop;
};

done_testing();
