# The reference tus client, tus-js-client (npm, pinned in tools/tus-client), run under Node as a
# phone on a flaky network uses it (tools/tus-client/resume.mjs): a ~9 MiB MP4 (made here with
# ffmpeg) uploaded in 1 MiB PATCHes to `chatterd uploads;`, aborted part-way (the PATCH in
# flight cut off), resumed by a NEW Upload from the stored URL, finished, then posted with
# videoupload. The served /media/ file must be byte-identical (sha256) to the source; the
# resume must start where the server's offset says, past 0 (a resume, not a restart); the
# upload's URL is then 404. The offsets and digests are printed (note) for the record.
use strict; use warnings;
use FindBin; BEGIN { push @INC, "$FindBin::Bin/lib" }
use Test::More;
use Chatterd::Nginx;
use Chatterd::Http qw(http_get);
use Chatterd::Db qw(sql media_root);
use Digest::SHA qw(sha256_hex);
use File::Path ();
use File::Temp ();
use JSON::PP qw(decode_json);

plan skip_all => 'TEST_NGINX_PSQL is not set (run through make test)' unless $ENV{TEST_NGINX_PSQL};
my $Client = "$FindBin::Bin/../tools/tus-client";
die "node is missing (scripts/deps.sh installs it)\n" if system('command -v node >/dev/null 2>&1');
die "ffmpeg is missing (scripts/deps.sh installs it)\n" if system('command -v ffmpeg >/dev/null 2>&1');
die "$Client/node_modules is missing: run scripts/deps.sh (npm ci there)\n" unless -d "$Client/node_modules/tus-js-client";

my $Dir  = File::Temp->newdir('tus-client-XXXXXX', TMPDIR => 1);
my $Clip = "$Dir/clip9.mp4";
# ~9 MiB: 10 s of 720p at a constant 7.5 Mbit/s.
system('ffmpeg', qw(-v error -y -f lavfi -i testsrc2=size=1280x720:rate=30 -t 10 -c:v libx264
       -preset ultrafast -b:v 7500k -minrate 7500k -maxrate 7500k -bufsize 1500k
       -x264-params nal-hrd=cbr:force-cfr=1 -pix_fmt yuv420p -movflags +faststart), $Clip) == 0
    or die "ffmpeg failed\n";
my $source = do { open my $fh, '<:raw', $Clip or die $!; local $/; <$fh> };
cmp_ok(length $source, '>', 8 << 20, sprintf 'the clip is ~9 MiB (%d bytes)', length $source);

my $Root = media_root();
sql('TRUNCATE chatts');
File::Path::remove_tree("$Root/.uploads");
my $ng = Chatterd::Nginx->start(
    http_config => qq{chatterd_pg "\$TEST_NGINX_PG_CONNINFO";\nchatterd_media_root \$TEST_NGINX_MEDIA_ROOT;\n},
    # keep: the served file is the upload's bytes, whatever tags ffmpeg wrote.
    config => qq{location /uploads/ { chatterd uploads; }\n}
              . qq{location = /postimages { chatterd postimages; chatterd_media_metadata keep; }\n}
              . qq{location /media/ { alias \$TEST_NGINX_MEDIA_ROOT/; }\n});
my $base = 'http://127.0.0.1:' . $ng->port;
my $chunk = 1 << 20;
my $abort_after = int(4.5 * $chunk);    # in the middle of the fifth PATCH

open my $run, '-|', 'node', "$Client/resume.mjs", "$base/uploads/", "$base/postimages", $Clip, $chunk, $abort_after
    or die "node: $!";
my @out = <$run>;
close $run;
is($?, 0, 'tus-js-client ran to the end') or diag(@out);
my $r = eval { decode_json($out[-1] // '') } or BAIL_OUT("no result line from resume.mjs: @out");

note(sprintf "tus-js-client: %d bytes; sent at the abort %d; the server's offset after the abort %d; "
             . "resumed from %d", @$r{qw(size sentAtAbort serverOffsetAfterAbort resumedFrom)});
cmp_ok($r->{sentAtAbort}, '>', $abort_after, 'the abort came past the chosen offset');
cmp_ok($r->{sentAtAbort}, '<', length $source, 'before the end');
cmp_ok($r->{resumedFrom}, '>', 0, 'the new Upload resumed: its first PATCH did not start at 0');
cmp_ok($r->{resumedFrom}, '<=', $r->{sentAtAbort}, 'from no more than the client had sent');
cmp_ok($r->{resumedFrom}, '>=', $r->{serverOffsetAfterAbort}, "from the server's offset (HEAD)");
like($r->{uploadUrl}, qr{/uploads/[0-9a-f]{32}\z}, 'the upload URL');
is("$r->{postStatus} $r->{postBody}", '200 {}', 'postimages with videoupload: 200 {}');
is($r->{headAfterPost}, 404, 'the upload URL is then 404');

my ($row) = sql(q{SELECT videourl FROM chatts WHERE username = 'tus-js-client'});
my ($name) = (($row // [])->[0] // '') =~ m{/media/([^/]+\.mp4)\z} or BAIL_OUT('no row names the video');
my $served = http_get($ng->port, "/media/$name", timeout => 20);
is($served->{status}, 200, 'the video is served under /media/');
my %sha = (source => sha256_hex($source), client => $r->{sha256}, served => sha256_hex($served->{body} // ''));
note("sha256: source $sha{source}, as tus-js-client read it $sha{client}, served $sha{served}");
is($sha{client}, $sha{source}, 'tus-js-client sent the source');
is($sha{served}, $sha{source}, 'the served file is byte-identical (sha256)');

File::Path::remove_tree("$Root/.uploads");
done_testing();
