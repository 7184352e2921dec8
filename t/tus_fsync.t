# Durable resumable uploads (chatterd_media_fsync, on by default): an strace of the worker shows
# the PATCH that completes an upload synced (fdatasync) before its 204 is written to the client,
# a PATCH that leaves it unfinished not synced (a crash can only cost it its tail, and a tus
# client asks HEAD for the offset before it resumes), and a creation's info file synced, then
# the uploads directory (fsync), before its 201; with chatterd_media_fsync off, no sync at all.
use strict; use warnings;
use FindBin; BEGIN { push @INC, "$FindBin::Bin/lib" }
use Test::More;
use File::Path ();
use File::Temp ();
use POSIX ();

use Chatterd::Db qw(media_root);
use Chatterd::Http qw(http_request build_request);
use Chatterd::Nginx;
use Chatterd::Upload qw(media);
use Chatterd::Wait qw(wait_until);

my ($STRACE) = grep { -x } map { "$_/strace" } split /:/, $ENV{PATH} // '';
plan skip_all => 'strace is not installed (scripts/deps.sh installs it)' unless $STRACE;

my $MEDIA = media_root();
File::Path::remove_tree("$MEDIA/.uploads");

sub slurp { open(my $fh, '<', $_[0]) or return ''; local $/; return <$fh> // '' }

sub tus {
    my ($ng, $method, $path, $body, @headers) = @_;
    return http_request($ng->port, build_request($method, $path, body => $body,
        headers => ['Tus-Resumable' => '1.0.0', @headers]));
}

# A creation and two PATCHes (half, then the rest) while strace follows the worker; returns the
# syscalls as lines.
sub traced_upload {
    my ($fsync) = @_;
    my $ng = Chatterd::Nginx->start(
        workers     => 1,
        master      => 1,
        main_config => $> == 0 ? "user root root;\n" : undef,
        http_config => "chatterd_media_root $MEDIA;\n" . ($fsync ? '' : "chatterd_media_fsync off;\n"),
        config      => "location /files/ { chatterd uploads; }\n");
    my ($worker) = $ng->worker_pids;
    my $dir = File::Temp::tempdir(CLEANUP => 1);
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        open STDERR, '>', "$dir/stderr";
        exec $STRACE, '-f', '-qq', '-s', '64', '-e',
             'trace=fdatasync,fsync,renameat,renameat2,rename,writev,write,sendto,sendmsg',
             '-o', "$dir/trace", '-p', $worker
            or POSIX::_exit(127);
    }
    # strace writes nothing before the first traced call: a warm-up request shows it is attached.
    ok(wait_until(sub {
        tus($ng, OPTIONS => '/files/');
        slurp("$dir/trace") =~ /204 No Content/;
    }), 'strace is attached to the worker');
    my $video = media('mp4', 2 * 1024 * 1024, 3);
    my $res = tus($ng, POST => '/files/', undef, 'Upload-Length' => length $video);
    is($res->{status}, 201, 'created');
    my ($path) = ($res->{headers}{location} // '') =~ m{^(/files/[0-9a-f]{32})$};
    my $half = length($video) / 2;
    for my $part ([0, substr($video, 0, $half)], [$half, substr($video, $half)]) {
        $res = tus($ng, PATCH => $path, $part->[1],
                   'Content-Type' => 'application/offset+octet-stream',
                   'Upload-Offset' => $part->[0]);
        is($res->{status}, 204, "the PATCH at $part->[0]: 204");
    }
    ok(wait_until(sub { (() = slurp("$dir/trace") =~ /204 No Content/g) >= 3 }, 5),
       'both PATCHes\' answers are in the trace');
    kill 'INT', $pid;
    waitpid $pid, 0;
    tus($ng, DELETE => $path);
    $ng->stop;
    my @lines = split /\n/, slurp("$dir/trace");
    # After the warm-up's answer.
    my ($warm) = grep { $lines[$_] =~ /204 No Content/ } 0 .. $#lines;
    return @lines[$warm + 1 .. $#lines];
}

sub first_index {
    my ($re, @lines) = @_;
    for my $i (0 .. $#lines) { return $i if $lines[$i] =~ $re }
    return undef;
}

subtest 'on (the default): a creation and a completing PATCH are on disk before their answers' => sub {
    my @trace = traced_upload(1);
    my $rename  = first_index(qr/rename\w*\(.*\.tmp"/, @trace);
    my $created = first_index(qr/201 Created/, @trace);
    my $half    = first_index(qr/204 No Content/, @trace);
    my $answer  = defined $half ? first_index(qr/204 No Content/, @trace[$half + 1 .. $#trace]) : undef;
    $answer += $half + 1 if defined $answer;
    ok(defined $rename && defined $created && defined $answer, 'the rename and the answers are traced')
        or diag(join "\n", @trace);
    is(scalar(grep { /^\d+\s+f(data)?sync\(/ } @trace[$created .. $half]), 0,
       'the first PATCH, which leaves the upload unfinished, is not synced')
        or diag(join "\n", @trace);
    my @before_rename = @trace[0 .. ($rename // 0)];
    ok(grep({ /^\d+\s+fdatasync\(/ } @before_rename), 'the info file is synced before its rename')
        or diag(join "\n", @trace);
    my $dir = first_index(qr/^\d+\s+fsync\(/, @trace);
    ok(defined $dir && $dir > $rename && $dir < $created, 'the directory is synced before the 201')
        or diag(join "\n", @trace);
    my $data = first_index(qr/^\d+\s+fdatasync\(/, @trace[$half .. $#trace]);
    ok(defined $data && $half + $data < $answer, 'the completing PATCH\'s bytes are synced before its 204')
        or diag(join "\n", @trace);
};

subtest 'chatterd_media_fsync off: no sync' => sub {
    my @trace = traced_upload(0);
    ok(defined first_index(qr/204 No Content/, @trace), 'the PATCH\'s answer is traced');
    is(scalar(grep { /^\d+\s+f(data)?sync\(/ } @trace), 0, 'neither fdatasync nor fsync')
        or diag(join "\n", @trace);
};

File::Path::remove_tree("$MEDIA/.uploads");
done_testing();
