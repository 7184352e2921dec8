# The media root refuses to be written (scenario test):
#   - read-only: a tmpfs media root remounted read-only under running workers (root workers,
#     whom file modes do not stop): a post with a file gets 500 and a logged reason naming the
#     directory and EROFS, a post without media is still stored, and once the mount is writable
#     again uploads work at once;
#   - not writable by the worker's user: workers running as nobody, a media root owned by root
#     with mode 0755: 500, EACCES logged, as docs/OPERATIONS.md's troubleshooting says;
#   - full mid-upload: a 2 MiB tmpfs and an image of 3 MiB: 500 while the client is still
#     sending (Connection: close), ENOSPC logged, no file left, the space comes back (the
#     O_TMPFILE file had no name) and a small upload then fits; two uploads at once when only
#     one fits: one 200, one 500, and the row names the complete file.
# Each scenario also checks: no worker crash or alert, the same worker pids, worker
# descriptors and RSS back where they were (Chatterd::Workers), no file without its row and no
# row without its file (check_media_consistency).
# Needs root and mount(2) (tmpfs); skipped otherwise.
use strict; use warnings;
use FindBin; BEGIN { push @INC, "$FindBin::Bin/lib" }
use Test::More;
use File::Path ();
use File::Temp qw(tempdir);
use IO::Select;
use IO::Socket::INET;
use Time::HiRes ();

use Chatterd::Nginx qw(start_nginx);
use Chatterd::Http qw(http_request build_request multipart_body);
use Chatterd::Db qw(sql sql_value truncate_chatts media_files check_media_consistency);
use Chatterd::Upload qw(media image_part);
use Chatterd::Wait qw(wait_until);
use Chatterd::Workers qw(worker_state check_workers);

plan skip_all => 'TEST_NGINX_PSQL is not set (run through make test)' unless $ENV{TEST_NGINX_PSQL};
plan skip_all => 'needs root (mount, workers as root and as nobody)' unless $> == 0;

my $base = tempdir('chatterd-abuse-media-XXXXXX', TMPDIR => 1, CLEANUP => 1);
chmod 0755, $base;    # nobody must reach the media roots below it
my @mounted;
sub mount_tmpfs {
    my ($dir, $size) = @_;
    File::Path::make_path($dir);
    system('mount', '-t', 'tmpfs', '-o', "size=$size,mode=0755", 'tmpfs', $dir) == 0 or return 0;
    push @mounted, $dir;
    return 1;
}
END { local $?; system('umount', '-l', $_) for reverse @mounted }
mount_tmpfs("$base/probe", '64k') or plan skip_all => 'mount -t tmpfs is not permitted here';

use constant MiB => 1024 * 1024;

sub post_request {
    my ($user, $message, @media) = @_;
    my $body = multipart_body('XyZ', [name => 'username', value => $user],
                              [name => 'message', value => $message], @media);
    return build_request(POST => '/postimages', body => $body,
                         headers => ['Content-Type' => 'multipart/form-data; boundary=XyZ']);
}

sub statvfs_used_kib {
    my ($dir) = @_;
    my ($line) = grep { /\S/ } (split /\n/, `df -k --output=used $dir`)[1];
    return $line =~ /(\d+)/ ? $1 : -1;
}

# Every scenario: empty table, the media root of the scenario, a warm-up upload (the worker
# opens its descriptor of the media root and fills its caches), the baseline.
sub scenario {
    my ($label, $root, $code, %opt) = @_;
    subtest $label => sub {
        local $ENV{TEST_NGINX_MEDIA_ROOT} = $root;
        truncate_chatts();
        my $ng = start_nginx(
            $opt{as_nobody} ? (main_config => "user nobody nogroup;\n") : (),
            config      => <<CONF,
location ~ ^/postimages/?\$ {
    chatterd postimages;
    chatterd_media_root $root;
    client_max_body_size 21m;
}
location /media/ { alias $root/; }
CONF
        );
        # (Where no file can be written, a post without media: the pool's connection.)
        my @media = $opt{text_warmup} ? () : image_part(media(jpeg => 50_000, 1));
        my $warm = http_request($ng->port, post_request('warm', 'up', @media));
        is($warm->{status}, 200, 'warm-up post: 200');
        if ($opt{text_warmup}) {
            # The worker opens its one descriptor of the media root at its first media part and
            # keeps it (by design), even when no file can be created in it.
            my $first = http_request($ng->port, post_request('warm', 'up', image_part(media(jpeg => 50_000, 1))));
            is($first->{status}, 500, 'a first post with media: 500');
        }
        my $before = worker_state($ng);
        $ng->mark_error_log;
        $code->($ng);
        check_workers($ng, $before, $label);
        check_media_consistency($label);
        $ng->stop;
        truncate_chatts();
    };
}

#---------------------------------------------------------------------------

my $ro = "$base/readonly";
mount_tmpfs($ro, '8m') or die "mount $ro failed\n";
scenario('a media root remounted read-only under running workers' => $ro, sub {
    my ($ng) = @_;
    system('mount', '-o', 'remount,ro', $ro) == 0 or die "remount,ro failed\n";
    my $rows = sql_value('SELECT count(*) FROM chatts');
    for my $i (1 .. 20) {
        my $res = http_request($ng->port, post_request('ro', "refused $i", image_part(media(jpeg => 200_000, 2))));
        is($res->{status}, 500, "post $i with an image: 500") if $i == 1 || $res->{status} != 500;
        is($res->{body}, '"Internal server error"', 'the body is a JSON string') if $i == 1;
    }
    like($ng->wait_for_error_log(qr/\[error\].*creating a media file in/) // '',
         qr/\[error\] .*chatterd: creating a media file in "\Q$ro\E" failed \(30: Read-only file system\)/,
         'the error log names the directory and EROFS');
    is(sql_value('SELECT count(*) FROM chatts'), $rows, 'no row stored for them');
    my $text = http_request($ng->port, post_request('ro', 'no media'));
    is($text->{status}, 200, 'a post without media is still stored: 200');
    system('mount', '-o', 'remount,rw', $ro) == 0 or die "remount,rw failed\n";
    my $again = http_request($ng->port, post_request('ro', 'writable again', image_part(media(jpeg => 200_000, 3))));
    is($again->{status}, 200, 'writable again: 200 at once');
    my @files = media_files();
    is(scalar @files, 2, 'the media root holds the warm-up file and that one')
        or diag("@files");
});

#---------------------------------------------------------------------------

my $closed = "$base/root-owned";
mkdir $closed or die "mkdir $closed: $!";
chmod 0755, $closed;
scenario('workers as nobody, a media root owned by root (0755)' => $closed, sub {
    my ($ng) = @_;
    my ($worker) = $ng->worker_pids;
    my ($uid) = grep { /^Uid:/ } do { open my $fh, '<', "/proc/$worker/status" or die; <$fh> };
    like($uid, qr/^Uid:\s+65534\b/, 'the worker runs as nobody');
    my $res = http_request($ng->port, post_request('nobody', 'refused', image_part(media(jpeg => 200_000, 4))));
    is($res->{status}, 500, 'a post with an image: 500');
    like($res->{body}, qr/\A"[^"]+"\z/, "the body is a JSON string: $res->{body}");
    like($ng->wait_for_error_log(qr/\[error\].*chatterd: /) // '',
         qr/\[error\] .*chatterd: (?:creating a media file in|opening chatterd_media_root) "\Q$closed\E" failed \(13: Permission denied\)/,
         'the error log names the directory and EACCES');
    is(sql_value('SELECT count(*) FROM chatts'), 1, 'no row (but the warm-up)');
    is(http_request($ng->port, post_request('nobody', 'no media'))->{status}, 200,
       'a post without media is stored: 200');
}, as_nobody => 1, text_warmup => 1);

#---------------------------------------------------------------------------

my $small = "$base/full";
mount_tmpfs($small, '2m') or die "mount $small failed\n";
scenario('a 2 MiB media root that fills up mid-upload' => $small, sub {
    my ($ng) = @_;
    my $used_before = statvfs_used_kib($small);
    my $big = post_request('full', 'too big for the disk', image_part(media(jpeg => 3 * MiB, 5)));
    my $res = http_request($ng->port, $big, timeout => 10);
    is($res->{status}, 500, '3 MiB into 2 MiB: 500');
    is($res->{body}, '"Internal server error"', 'the body is a JSON string');
    is(lc($res->{headers}{connection} // ''), 'close', 'Connection: close (answered before the body ended)');
    ok($res->{write_error} || $res->{reset} || 1, 'the client may still have been sending');
    like($ng->wait_for_error_log(qr/\[error\].*writing media file/) // '',
         qr/\[error\] .*chatterd: writing media file "\(unnamed\)" failed \(28: No space left on device\)/,
         'the error log says ENOSPC');
    is(sql_value('SELECT count(*) FROM chatts'), 1, 'no row stored (only the warm-up)');
    ok(wait_until(sub { statvfs_used_kib($small) <= $used_before + 4 }),
       'the space of the unfinished file came back (' . statvfs_used_kib($small) . " KiB used, $used_before before)");
    is(http_request($ng->port, post_request('full', 'fits', image_part(media(jpeg => 500_000, 6))))->{status}, 200,
       'a 500 KB upload then fits: 200');

    # Two uploads at once, 900 KiB each, in about 1.45 MiB of free space: they interleave (each
    # sends 500 KB, then the rest), so the second one to need the space is refused.
    my @socks = map { IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $ng->port) or die } 1, 2;
    my @reqs = map { post_request('pair', "pair $_", image_part(media(jpeg => 900 * 1024, 10 + $_))) } 1, 2;
    local $SIG{PIPE} = 'IGNORE';
    for my $half (0, 1) {
        for my $i (0, 1) {
            my $chunk = $half ? substr($reqs[$i], 500_000) : substr($reqs[$i], 0, 500_000);
            $socks[$i]->blocking(1);
            syswrite($socks[$i], $chunk) // 0;
            Time::HiRes::sleep(0.2);
        }
    }
    my @statuses;
    for my $sock (@socks) {
        my $raw = '';
        my $sel = IO::Select->new($sock);
        while ($sel->can_read(10)) { sysread($sock, $raw, 65536, length $raw) or last }
        push @statuses, $raw =~ m{\AHTTP/1\.1 (\d{3})} ? $1 : 'none';
        close $sock;
    }
    is(join(' ', sort @statuses), '200 500', "one stored, one refused for space (@statuses)");
    is(sql_value(q{SELECT count(*) FROM chatts WHERE username = 'pair'}), 1, 'one row for the pair');
    my ($url) = map { $_->[0] } sql(q{SELECT imageurl FROM chatts WHERE username = 'pair'});
    my ($name) = ($url // '') =~ m{/media/([^/]+)\z};
    is(-s "$small/" . ($name // 'none'), 900 * 1024, 'its file is complete');
});

done_testing();
