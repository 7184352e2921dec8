# POST /postimages with imageupload / videoupload: a finished resumable upload (issue 22) taken
# over by a post. The uploads are laid out as the tus location writes them
# (<media root>/.uploads/<id> holding the bytes received, <id>.info their Upload-Length), from
# real photos and clips (t/lib/media_samples.sh). Checks:
#   - each field, by absolute URL and by path: one row, the file served under /media/ (sha256
#     of the source when there is nothing to strip, no identifying tag when there is), the
#     upload's files gone;
#   - the file is taken over, not copied, where stripping moves no byte (a clip: the served
#     file is the upload's own inode), and stripped in place;
#   - an upload made through the tus location (POST, PATCH) posts, and its URL is then 404;
#   - every 422, with its one reason: a URL that names no upload, an unknown, unfinished,
#     locked (a PATCH holds it), expired or already posted upload, an image upload that is a video and
#     the reverse, a media part sent with its upload field; none leaves a row or a file, and
#     the upload stays;
#   - a failed INSERT (the database refuses the row) keeps the upload, and the same upload
#     posts once the database takes rows again;
#   - while a post's INSERT waits, the upload stays locked (a second post of it: 422); when no
#     answer comes (503) the upload is removed at once, and the post resolver keeps its file
#     only with its row.
use strict; use warnings;
use FindBin; BEGIN { push @INC, "$FindBin::Bin/lib" }
use Test::More;
use Chatterd::Nginx;
use Chatterd::Http qw(http_request http_get multipart_body);
use Chatterd::Db qw(sql media_root pause_pg resume_pg);
use Chatterd::Wait qw(wait_until);
use Digest::SHA qw(sha256_hex);
use Fcntl qw(:flock);
use File::Path ();
use File::Spec;
use File::Temp ();
use POSIX ();

plan skip_all => 'TEST_NGINX_PSQL is not set (run through make test)' unless $ENV{TEST_NGINX_PSQL};
$ENV{TEST_NGINX_PG_CONNINFO} //= 'host=/var/run/postgresql dbname=chatterdb user=chatter';
for my $tool (qw(exiftool convert ffmpeg)) {
    die "$tool is missing (scripts/deps.sh installs it)\n" if system("command -v $tool >/dev/null 2>&1");
}

my $Samples = File::Temp->newdir('tus-post-samples-XXXXXX', TMPDIR => 1);
system("$FindBin::Bin/lib/media_samples.sh", "$Samples") == 0 or die "t/lib/media_samples.sh failed\n";
my $Root    = media_root();
my $Uploads = "$Root/.uploads";
my $Identifying = qr/GPS|Location|Coordinates|ISO6709|City|Make|Model|Serial|Software|Comment/i;

sub slurp { open my $fh, '<:raw', $_[0] or die "$_[0]: $!"; local $/; return scalar <$fh> }

sub spew {
    my ($path, $bytes) = @_;
    open my $fh, '>:raw', $path or die "$path: $!";
    print {$fh} $bytes or die "$path: $!";
    close $fh or die "$path: $!";
}

# exiftool's identifying tags in bytes.
sub identifying_tags {
    my ($bytes) = @_;
    my $tmp = File::Temp->new(SUFFIX => '.bin');
    spew($tmp->filename, $bytes);
    open my $fh, '-|', 'exiftool', '-a', '-G1', '-s', '-q', '-q', $tmp->filename or die "exiftool: $!";
    my @tags = grep { !/^\[(System|ExifTool)\]/ && /$Identifying/ } <$fh>;
    close $fh;
    return @tags;
}

my $ng = Chatterd::Nginx->start(
    http_config => qq{chatterd_pg "\$TEST_NGINX_PG_CONNINFO";\nchatterd_media_root \$TEST_NGINX_MEDIA_ROOT;\n},
    config => qq{location = /postimages { chatterd postimages; }\n}
              . qq{location = /postimages-keep { chatterd postimages; chatterd_media_metadata keep; }\n}
              . qq{location /media/ { alias \$TEST_NGINX_MEDIA_ROOT/; }\n}
              . qq{location /uploads/ { chatterd uploads; }\n}
              . qq{location = /postimages-2s { chatterd postimages; chatterd_pg_timeout 2s; }\n}
              . qq{location = /postimages-30s { chatterd postimages; chatterd_pg_timeout 30s; }\n});

# The media root's files, .uploads left out.
sub media_files {
    opendir(my $dh, $Root) or die "$Root: $!";
    return sort grep { !/\A(\.|\.\.|\.uploads)\z/ } readdir $dh;
}

sub clean_slate {
    sql('TRUNCATE chatts');
    unlink map { "$Root/$_" } media_files();
    File::Path::remove_tree($Uploads);
    mkdir $Uploads, 0700 or die "$Uploads: $!";
}

# An info file as the tus location writes it (src/core/upload_info.h).
sub info { return "tus-upload 1\nlength $_[0]\nmetadata \n" }

# An upload as the tus location leaves it: the first $received bytes (all by default) of a
# declared length of length($bytes). Returns its id.
sub make_upload {
    my ($bytes, $received) = @_;
    my $id = unpack 'H*', join '', map { chr int rand 256 } 1 .. 16;
    spew("$Uploads/$id", substr($bytes, 0, $received // length $bytes));
    spew("$Uploads/$id.info", info(length $bytes));
    return $id;
}

sub upload_exists { my ($id) = @_; return -e "$Uploads/$id" || -e "$Uploads/$id.info" }

# Posts the parts; the answer as "status body".
sub post {
    my ($path, @parts) = @_;
    my $body = multipart_body('XyZ', [name => 'username', value => 'tester'],
                              [name => 'message', value => 'a post'], @parts);
    my $res = http_request($ng->port,
        "POST $path HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
        . "Content-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: " . length($body)
        . "\r\n\r\n$body", timeout => 20);
    return ($res->{status} // 'none') . ' ' . ($res->{body} // '');
}

# The one row's file for the field, served over /media/: [name, bytes].
sub served {
    my ($field) = @_;
    my @rows = sql('SELECT imageurl, videourl FROM chatts');
    is(scalar @rows, 1, 'one row') or return;
    my $url = $rows[0][$field eq 'image' ? 0 : 1] // '';
    my ($name) = $url =~ m{\Ahttp://localhost/media/(tester-[0-9a-f]{32}\.\w+)\z}
        or return fail("${field}url names a media file: '$url'");
    my $res = http_get($ng->port, "/media/$name");
    is($res->{status}, 200, "$field served over /media/");
    return [$name, $res->{body}];
}

sub nothing_stored {
    my ($label) = @_;
    is(scalar(() = sql('SELECT 1 FROM chatts')), 0, "$label: no row");
    is_deeply([media_files()], [], "$label: no file in the media root");
}

my %sample = map { $_ => slurp("$Samples/$_") } qw(clean.jpg photo.jpg photo.png photo.webp clip.mp4 clip.mov);

subtest 'imageupload (absolute URL), nothing to strip: the same bytes, the upload gone' => sub {
    clean_slate();
    my $id = make_upload($sample{'clean.jpg'});
    is(post('/postimages', [name => 'imageupload', value => "http://localhost/uploads/$id"]), '200 {}', 'posted');
    my $file = served('image') or return;
    like($file->[0], qr/\.jpeg\z/, 'named .jpeg');
    is(sha256_hex($file->[1]), sha256_hex($sample{'clean.jpg'}), 'sha256 of the source');
    ok(!upload_exists($id), 'the upload (data and .info) is gone');
    is_deeply([media_files()], [$file->[0]], 'the media root holds exactly its file');
};

subtest 'imageupload (path), a tagged JPEG: a stripped copy; the upload gone' => sub {
    clean_slate();
    my $id = make_upload($sample{'photo.jpg'});
    ok(scalar identifying_tags($sample{'photo.jpg'}), 'the sample carries identifying tags');
    is(post('/postimages', [name => 'imageupload', value => "/uploads/$id"]), '200 {}', 'posted');
    my $file = served('image') or return;
    is_deeply([identifying_tags($file->[1])], [], 'no identifying tag served');
    cmp_ok(length $file->[1], '<', length $sample{'photo.jpg'}, 'the metadata segments are left out');
    ok(!upload_exists($id), 'the upload is gone');
};

for my $case (['clip.mp4', 'video', 'mp4'], ['clip.mov', 'video', 'mov'], ['photo.webp', 'image', 'webp']) {
    my ($name, $field, $ext) = @$case;
    subtest "${field}upload, a tagged $name: stripped in place and taken over, not copied" => sub {
        clean_slate();
        my $id = make_upload($sample{$name});
        my $inode = (stat "$Uploads/$id")[1];
        is(post('/postimages', ["name" => "${field}upload", value => "/uploads/$id"]), '200 {}', 'posted');
        my $file = served($field) or return;
        like($file->[0], qr/\.$ext\z/, "named .$ext");
        is_deeply([identifying_tags($file->[1])], [], 'no identifying tag served');
        is(length $file->[1], length $sample{$name}, 'the same size: nothing moved');
        isnt($file->[1], $sample{$name}, 'the metadata was overwritten');
        is((stat "$Root/$file->[0]")[1], $inode, "the upload's own file (inode $inode)");
        ok(!upload_exists($id), 'the upload is gone');
    };
}

subtest 'chatterd_media_metadata keep: a tagged clip is served byte for byte, not copied' => sub {
    clean_slate();
    my $id = make_upload($sample{'clip.mp4'});
    my $inode = (stat "$Uploads/$id")[1];
    is(post('/postimages-keep', [name => 'videoupload', value => "http://localhost:1/x/$id"]), '200 {}', 'posted');
    my $file = served('video') or return;
    is(sha256_hex($file->[1]), sha256_hex($sample{'clip.mp4'}), 'sha256 of the source');
    is((stat "$Root/$file->[0]")[1], $inode, "the upload's own file");
    ok(!upload_exists($id), 'the upload is gone');
};

subtest 'imageupload and videoupload in one post' => sub {
    clean_slate();
    my $image = make_upload($sample{'photo.png'});
    my $video = make_upload($sample{'clip.mp4'});
    is(post('/postimages', [name => 'imageupload', value => "/u/$image"], [name => 'videoupload', value => "/u/$video"]),
       '200 {}', 'posted');
    my @rows = sql('SELECT imageurl, videourl FROM chatts');
    like($rows[0][0] // '', qr/\.png\z/, 'imageurl .png');
    like($rows[0][1] // '', qr/\.mp4\z/, 'videourl .mp4');
    is(scalar(() = media_files()), 2, 'two files');
    ok(!upload_exists($image) && !upload_exists($video), 'both uploads gone');
};

# One tus request to the uploads location; (status, headers).
sub tus {
    my ($method, $path, $body, @headers) = @_;
    my $head = "$method $path HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nTus-Resumable: 1.0.0\r\n";
    $head .= "$_\r\n" for @headers;
    my $res = http_request($ng->port, $head . 'Content-Length: ' . length($body) . "\r\n\r\n$body", timeout => 20);
    return ($res->{status} // 0, $res->{headers} // {});
}

subtest 'an upload made through the tus location (POST, PATCHes): posted, then its URL is 404' => sub {
    clean_slate();
    my $bytes = $sample{'clip.mp4'};
    my ($status, $h) = tus(POST => '/uploads/', '', 'Upload-Length: ' . length $bytes);
    is($status, 201, 'created: 201');
    my ($path) = ($h->{location} // '') =~ m{(/uploads/[0-9a-f]{32})\z} or return fail('a Location');
    my $half = int(length($bytes) / 2);
    for my $piece ([0, $half], [$half, length($bytes) - $half]) {
        ($status) = tus(PATCH => $path, substr($bytes, $piece->[0], $piece->[1]),
                        'Content-Type: application/offset+octet-stream', "Upload-Offset: $piece->[0]");
        is($status, 204, "PATCH at $piece->[0]: 204");
    }
    is(post('/postimages-keep', [name => 'videoupload', value => $h->{location}]), '200 {}', 'posted with its Location');
    my $file = served('video') or return;
    is(sha256_hex($file->[1]), sha256_hex($bytes), 'sha256 of the source');
    ($status) = tus(HEAD => $path, '');
    is($status, 404, 'HEAD of the upload URL: 404');
};

# ---- refusals -------------------------------------------------------------------------------

sub refused {
    my ($label, $reason, $keeps, @parts) = @_;
    $ng->mark_error_log;
    is(post('/postimages', @parts), qq{422 "$reason"}, "$label: 422 \"$reason\"");
    nothing_stored($label);
    ok(upload_exists($keeps), "$label: the upload stays") if $keeps;
    my $log = $ng->error_log_since_mark;
    like($log, qr/\[info\].*chatterd: postimages: .*\Q$reason\E|\[info\].*chatterd: postimages: form has both/,
         "$label: an info line says why");
}

subtest 'refusals: 422 with one reason, no row, no file, the upload kept' => sub {
    clean_slate();
    my $jpeg = make_upload($sample{'clean.jpg'});
    my $clip = make_upload($sample{'clip.mp4'});
    refused('not an upload URL', 'Invalid upload URL', undef, [name => 'imageupload', value => '/uploads/../etc']);
    refused('an upper-case id', 'Invalid upload URL', undef, [name => 'imageupload', value => '/uploads/' . uc $jpeg]);
    refused('an unknown upload', 'Unknown upload', undef,
            [name => 'imageupload', value => '/uploads/' . ('0' x 32)]);
    my $half = make_upload($sample{'clip.mp4'}, int(length($sample{'clip.mp4'}) / 2));
    refused('an unfinished upload', 'Upload not finished', $half, [name => 'videoupload', value => "/uploads/$half"]);
    unlink "$Uploads/$jpeg.info";
    refused('an upload without its .info', 'Unknown upload', $jpeg, [name => 'imageupload', value => "/uploads/$jpeg"]);
    spew("$Uploads/$jpeg.info", info(length $sample{'clean.jpg'}));
    refused('an image upload holding a video', 'Upload is not a supported image', $clip,
            [name => 'imageupload', value => "/uploads/$clip"]);
    refused('a video upload holding an image', 'Upload is not a supported video', $jpeg,
            [name => 'videoupload', value => "/uploads/$jpeg"]);
    {
        open my $patch, '<', "$Uploads/$clip" or die $!;
        flock($patch, LOCK_EX | LOCK_NB) or die "flock: $!";
        refused('a locked upload (a PATCH in progress)', 'Upload in progress', $clip,
                [name => 'videoupload', value => "/uploads/$clip"]);
    }
    $ng->mark_error_log;
    is(post('/postimages', [name => 'image', filename => 'a.jpg', type => 'image/jpeg', value => $sample{'clean.jpg'}],
            [name => 'imageupload', value => "/uploads/$jpeg"]),
       '422 "Unprocessable entity"', 'image and imageupload: 422');
    nothing_stored('image and imageupload');
    ok(upload_exists($jpeg), 'image and imageupload: the upload stays');
    like(scalar $ng->error_log_since_mark, qr/\[info\].*form has both "image" and "imageupload"/, 'an info line says why');

    is(post('/postimages', [name => 'videoupload', value => "/uploads/$clip"]), '200 {}', 'the clip posts once unlocked');
    sql('TRUNCATE chatts');
    unlink map { "$Root/$_" } media_files();
    refused('an upload already posted', 'Unknown upload', undef, [name => 'videoupload', value => "/uploads/$clip"]);
    my $old = make_upload($sample{'clean.jpg'});
    my $two_days_ago = time - 2 * 86400;
    utime $two_days_ago, $two_days_ago, "$Uploads/$old" or die "utime: $!";
    # (not checked to stay: the expiry may remove it at any time)
    refused('an upload idle past chatterd_upload_expiry', 'Upload expired', undef,
            [name => 'imageupload', value => "/uploads/$old"]);
};

subtest 'a failed INSERT keeps the upload, which posts once the database takes rows' => sub {
    clean_slate();
    my $id = make_upload($sample{'clip.mp4'});
    my $sha = sha256_hex($sample{'clip.mp4'});
    sql(q{ALTER TABLE chatts ADD CONSTRAINT tus_post_refuses CHECK (message <> 'a post')});
    my $answer = eval { post('/postimages', [name => 'videoupload', value => "/uploads/$id"]) };
    sql('ALTER TABLE chatts DROP CONSTRAINT tus_post_refuses');
    like($answer, qr/\A500 /, 'the INSERT fails: 500');
    nothing_stored('after the failed INSERT');
    ok(-e "$Uploads/$id" && -e "$Uploads/$id.info", 'the upload stays, data and .info');
    is(-s "$Uploads/$id", length $sample{'clip.mp4'}, 'with all its bytes');
    is(post('/postimages', [name => 'videoupload', value => "/uploads/$id"]), '200 {}', 'posted again: 200');
    my $file = served('video') or return;
    is_deeply([identifying_tags($file->[1])], [], 'stripped');
    ok(!upload_exists($id), 'the upload is gone');
};

# The post at $path of the upload $id, in a child process; returns a function that waits for it
# and gives its answer.
sub post_in_background {
    my ($path, $id) = @_;
    my $answers = File::Temp->new;
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        print {$answers} post($path, [name => 'imageupload', value => "/uploads/$id"]);
        close $answers;
        POSIX::_exit(0);
    }
    return sub {
        waitpid $pid, 0;
        open my $fh, '<', $answers->filename or die $!;
        local $/;
        return scalar <$fh>;
    };
}

subtest 'while a post of an upload waits for the database, the upload is its own (422 to another post)' => sub {
    clean_slate();
    is(post('/postimages-30s'), '200 {}', 'the pool has a connection');
    sql('TRUNCATE chatts');
    my $id = make_upload($sample{'clean.jpg'});
    pause_pg();
    my $first = post_in_background('/postimages-30s', $id);
    # Once its file is published, the first post's INSERT waits for the paused database.
    ok(wait_until(sub { (() = media_files()) == 1 }), 'the first post published its file');
    is(post('/postimages-30s', [name => 'imageupload', value => "/uploads/$id"]), '422 "Upload in progress"',
       'a second post of the same upload meanwhile: 422 "Upload in progress"');
    resume_pg();
    is($first->(), '200 {}', 'the first post is stored once the database answers');
    is(scalar(() = sql('SELECT 1 FROM chatts')), 1, 'one row');
    ok(!upload_exists($id), 'the upload is gone');
};

subtest 'an unknown outcome (no answer from the database) removes the upload; the resolver settles the file' => sub {
    clean_slate();
    is(post('/postimages-2s'), '200 {}', 'the pool has a connection');
    sql('TRUNCATE chatts');
    my $id = make_upload($sample{'clean.jpg'});
    $ng->mark_error_log;
    pause_pg();
    my $answer = post('/postimages-2s', [name => 'imageupload', value => "/uploads/$id"]);
    my @kept = media_files();
    resume_pg();
    is($answer, '503 "Service unavailable"', 'no answer within chatterd_pg_timeout: 503');
    ok(!upload_exists($id), 'the upload is removed at once: a retry cannot store the chatt twice');
    is(scalar @kept, 1, 'the file is kept meanwhile (its row may exist)');
    ok($ng->wait_for_error_log(qr/post \S+, whose outcome was unknown, was (not )?stored/, timeout => 30),
       'the resolver settles the post once the database answers');
    my $rows = () = sql('SELECT 1 FROM chatts');
    is_deeply([media_files()], $rows ? \@kept : [], 'its file stays only with its row');
};

File::Path::remove_tree($Uploads);
done_testing();
