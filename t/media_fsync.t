# Durable media (chatterd_media_fsync, on by default): an strace of the worker during one
# upload shows, before the INSERT naming the file is written to the database's socket, the
# file's data synced (fdatasync), its name given (linkat), then the media root synced (fsync);
# with chatterd_media_fsync off, neither sync.
use strict; use warnings;
use FindBin; BEGIN { push @INC, "$FindBin::Bin/lib" }
use Test::More;
use File::Temp ();
use POSIX ();
use Time::HiRes ();

use Chatterd::Db qw(sql truncate_chatts media_root check_media_consistency);
use Chatterd::Http qw(http_request build_request multipart_body);
use Chatterd::Nginx;
use Chatterd::Wait qw(wait_until);
use Chatterd::Upload qw(media image_part);

for my $var (qw(TEST_NGINX_PG_CONNINFO TEST_NGINX_PSQL)) {
    plan skip_all => "$var is not set (run through make test)" unless $ENV{$var};
}
my ($STRACE) = grep { -x } map { "$_/strace" } split /:/, $ENV{PATH} // '';
plan skip_all => 'strace is not installed (scripts/deps.sh installs it)' unless $STRACE;

my $MEDIA = media_root();

sub slurp { open(my $fh, '<', $_[0]) or return ''; local $/; return <$fh> // '' }

# One upload while strace follows the worker; returns the stored file's name and the
# syscalls as lines.
sub traced_upload {
    my ($fsync) = @_;
    truncate_chatts();
    my $ng = Chatterd::Nginx->start(
        workers     => 1,
        master      => 1,
        main_config => $> == 0 ? "user root root;\n" : undef,
        http_config => <<CONF . ($fsync ? '' : "chatterd_media_fsync off;\n"),
chatterd_pg "$ENV{TEST_NGINX_PG_CONNINFO}";
chatterd_media_root $MEDIA;
chatterd_media_sweep off;
CONF
        config => "location = /postimages { chatterd postimages; }\n"
                # The warm-up's query is strace's sign of life: never a cached listing.
                . "location = /getchatts { chatterd getchatts; chatterd_list_cache off; }\n");
    my ($worker) = $ng->worker_pids;
    my $dir = File::Temp::tempdir(CLEANUP => 1);
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        open STDERR, '>', "$dir/stderr";
        exec $STRACE, '-f', '-qq', '-s', '65536', '-e', 'trace=fdatasync,fsync,linkat,sendto',
             '-o', "$dir/trace", '-p', $worker
            or POSIX::_exit(127);
    }
    # strace writes nothing before the first traced call: a warm-up request shows it is attached.
    ok(wait_until(sub {
        http_request($ng->port, build_request(GET => '/getchatts'));
        slurp("$dir/trace") =~ /sendto/;
    }), 'strace is attached to the worker');
    my $body = multipart_body('fsyncBoundary', [name => 'username', value => 'durable'],
                              [name => 'message', value => 'synced'],
                              image_part(media('jpeg', 3 * 1024 * 1024, 5)));
    my $res = http_request($ng->port, build_request(POST => '/postimages', body => $body,
        headers => ['Content-Type' => 'multipart/form-data; boundary=fsyncBoundary']));
    is($res->{status}, 200, 'the upload is stored') or diag($res->{raw});
    my ($url) = map { $_->[0] } sql('SELECT imageurl FROM chatts');
    my ($name) = ($url // '') =~ m{/([^/]+)\z};
    ok(wait_until(sub { slurp("$dir/trace") =~ /sendto\([^\n]*\Q$name\E/ }, 5),
       'the INSERT naming the file is in the trace') if $name;
    kill 'INT', $pid;
    waitpid $pid, 0;
    check_media_consistency('after the upload');
    $ng->stop;
    return ($name // '?', split /\n/, slurp("$dir/trace"));
}

sub first_index {
    my ($re, @lines) = @_;
    for my $i (0 .. $#lines) { return $i if $lines[$i] =~ $re }
    return undef;
}

subtest 'on (the default): data, name and directory synced before the INSERT' => sub {
    my ($name, @trace) = traced_upload(1);
    my $insert = first_index(qr/sendto\(.*\Q$name\E/, @trace);
    my $link   = first_index(qr/linkat\(.*\Q$name\E/, @trace);
    my $data   = first_index(qr/^\d+\s+fdatasync\(/, @trace);
    my $dir    = defined $link ? first_index(qr/^\d+\s+fsync\(/, @trace[$link .. $#trace]) : undef;
    $dir += $link if defined $dir;
    ok(defined $insert && defined $link, 'the link and the INSERT are traced')
        or diag(join "\n", @trace);
    ok(defined $data && $data < $link, 'fdatasync of the file before its link')
        or diag(join "\n", @trace);
    ok(defined $dir && $dir < $insert, 'fsync of the directory after the link, before the INSERT')
        or diag(join "\n", @trace);
};

subtest 'chatterd_media_fsync off: no sync' => sub {
    my ($name, @trace) = traced_upload(0);
    ok(defined first_index(qr/sendto\(.*\Q$name\E/, @trace), 'the INSERT is traced');
    is(scalar(grep { /^\d+\s+f(data)?sync\(/ } @trace), 0, 'neither fdatasync nor fsync')
        or diag(join "\n", @trace);
};

done_testing();
