# HTTP/2 uploads cut short (scenario test; curl --http2 and a small python3-h2 client,
# t/lib/h2_uploads.py, over TLS with a self-signed certificate):
#   - four uploads on one connection at once, two of them reset (RST_STREAM CANCEL) half-way,
#     one in the middle of its image and one in its first bytes: the two others are stored with
#     their files, the reset ones leave nothing, the connection goes on;
#   - a connection closed while three uploads are in flight on it: nothing stored;
#   - curl --http2 killed (SIGKILL) in the middle of an upload: nothing stored.
# Each: no crash or alert, the same worker, descriptors and RSS back (Chatterd::Workers), files
# and rows agree. Skipped without python3-h2 (apt-get install python3-h2).
use strict; use warnings;
use FindBin; BEGIN { push @INC, "$FindBin::Bin/lib" }
use Test::More;
use File::Temp qw(tempdir);

use Chatterd::Nginx qw(start_nginx);
use Chatterd::Ports qw(free_port);
use Chatterd::Http qw(multipart_body);
use Chatterd::Db qw(sql sql_value truncate_chatts media_root media_files check_media_consistency);
use Chatterd::Upload qw(media image_part);
use Chatterd::Wait qw(wait_until);
use Chatterd::Workers qw(worker_state check_workers open_in);

plan skip_all => 'TEST_NGINX_PSQL is not set (run through make test)' unless $ENV{TEST_NGINX_PSQL};
plan skip_all => 'python3-h2 is not installed' if system('/usr/bin/python3', '-c', 'import h2') != 0;

my $Root = media_root();
my $certs = tempdir(CLEANUP => 1);
system("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost"
       . " -keyout $certs/server.key -out $certs/server.crt >/dev/null 2>&1") == 0 or die "openssl failed\n";
my $tls = free_port();
local $ENV{GLIBC_TUNABLES} = 'glibc.malloc.mmap_threshold=32768';    # see t/abuse_clients.t
my $ng = start_nginx(
    media_root  => $Root,
    config      => <<CONF,
listen 127.0.0.1:$tls ssl http2;
ssl_certificate     $certs/server.crt;
ssl_certificate_key $certs/server.key;
location ~ ^/postimages/?\$ { chatterd postimages; client_max_body_size 21m; }
location /media/ { alias $Root/; }
CONF
);

my $work = tempdir(CLEANUP => 1);
my $body = multipart_body('XyZ', [name => 'username', value => 'h2'], [name => 'message', value => 'stream'],
                          image_part(media(jpeg => 500_000, 7)));
open my $fh, '>:raw', "$work/body" or die;
print {$fh} $body;
close $fh;
my $image_at = index($body, "\xFF\xD8");

# Files the worker holds in the media root (an upload in progress), the directory aside.
sub upload_files_open { grep { $_ ne $Root } open_in($ng, $Root) }

sub h2_uploads {
    my ($plan) = @_;
    my $out = `/usr/bin/python3 $FindBin::Bin/lib/h2_uploads.py $tls $work/body XyZ $plan 2>&1`;
    return map { /^(\d+) (\S+)$/ ? ($1 => $2) : () } split /\n/, $out;
}

sub scenario {
    my ($label, $code) = @_;
    subtest $label => sub {
        truncate_chatts();
        my %warm = h2_uploads('full');    # the worker's TLS, HTTP/2 and media root state
        is($warm{0}, 200, 'warm-up upload over HTTP/2: 200');
        truncate_chatts();
        my $before = worker_state($ng);
        $ng->mark_error_log;
        $code->();
        check_workers($ng, $before, $label);
        check_media_consistency($label);
    };
}

scenario('four uploads on one connection, two reset half-way' => sub {
    my %status = h2_uploads(join ',', 'full', 'reset:' . ($image_at + 250_000), 'full', 'reset:' . ($image_at + 10));
    is(join(' ', map { $status{$_} // 'none' } 0 .. 3), '200 reset 200 reset', 'the others were answered 200');
    is(sql_value('SELECT count(*) FROM chatts'), 2, 'two rows');
    is(scalar(my @f = media_files()), 2, 'two files, theirs');
    is(scalar(grep { /\[info\].* client canceled stream [37],/ } $ng->error_log_since_mark), 2,
       'nginx saw both streams reset');
});

scenario('a connection closed with three uploads in flight' => sub {
    my %status = h2_uploads(join ',', 'reset:' . ($image_at + 100_000), 'reset:' . ($image_at + 400_000),
                                      'close:' . ($image_at + 200_000));
    is($status{2}, 'closed', 'the client closed the connection');
    ok(wait_until(sub { !upload_files_open() }), 'no file held once the connection is closed');
    is(sql_value('SELECT count(*) FROM chatts'), 0, 'no row');
    is_deeply([media_files()], [], 'no file');
});

scenario('curl --http2 killed in the middle of an upload' => sub {
    my $pid = open(my $curl, '-|', 'curl', '-sS', '--http2', '-k', '--limit-rate', '100k', '-o', '/dev/null',
                   '-w', '%{http_code}', '-H', 'Content-Type: multipart/form-data; boundary=XyZ',
                   '--data-binary', "\@$work/body", "https://127.0.0.1:$tls/postimages") or die "curl: $!";
    ok(wait_until(\&upload_files_open), 'the upload is being received into a file');
    kill 'KILL', $pid;
    close $curl;
    ok(wait_until(sub { !upload_files_open() }), 'no file held once curl is gone');
    is(sql_value('SELECT count(*) FROM chatts'), 0, 'no row');
    is_deeply([media_files()], [], 'no file');
});

$ng->stop;
truncate_chatts();
done_testing();
