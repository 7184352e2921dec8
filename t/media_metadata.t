# POST /postimages with real photos and clips tagged the way phones tag them, made at test time
# by t/lib/media_samples.sh (ImageMagick, ffmpeg, exiftool) into a temporary directory: the
# stored file keeps no location and no device identity (exiftool finds no GPS, location, city,
# make, model, serial, software or comment tag), keeps a JPEG's orientation, and keeps every
# byte of image and video data:
#   - JPEG, PNG, GIF lose whole segments, chunks or extensions: what is left equals the
#     original's other segments, chunks or blocks, in order, byte for byte;
#   - WebP, MP4, MOV, HEIC, AVIF keep their size: every byte that differs is a zero, or a
#     "free"/"JUNK" type written over a metadata box's or chunk's, or WebP's VP8X flags;
#   - ImageMagick's compare finds the same pixels (AE 0); ffmpeg finds the same video stream
#     (its md5).
# A file without metadata is stored byte for byte.
use strict; use warnings;
use FindBin; BEGIN { push @INC, "$FindBin::Bin/lib" }
use Test::More;
use Chatterd::Nginx;
use Chatterd::Http qw(http_request multipart_body);
use Chatterd::Db qw(sql truncate_chatts media_root);
use File::Spec;
use File::Temp ();

plan skip_all => 'TEST_NGINX_PSQL is not set (run through make test)' unless $ENV{TEST_NGINX_PSQL};
$ENV{TEST_NGINX_PG_CONNINFO} //= 'host=/var/run/postgresql dbname=chatterdb user=chatter';

sub have { my ($tool) = @_; return !system("command -v $tool >/dev/null 2>&1") }
my %package = (exiftool => 'libimage-exiftool-perl', convert => 'imagemagick', compare => 'imagemagick',
               ffmpeg => 'ffmpeg');
for my $tool (sort keys %package) {
    die "$tool is missing (scripts/deps.sh installs $package{$tool})\n" unless have($tool);
}

my $Samples = File::Temp->newdir('media-samples-XXXXXX', TMPDIR => 1);
system("$FindBin::Bin/lib/media_samples.sh", "$Samples") == 0 or die "t/lib/media_samples.sh failed\n";
my $Root = media_root();
my $Identifying = qr/GPS|Location|Coordinates|ISO6709|City|Make|Model|Serial|Software|Comment/i;

sub slurp { open my $fh, '<:raw', $_[0] or die "$_[0]: $!"; local $/; return scalar <$fh> }

# The bytes in a temporary file (removed when the returned object goes).
sub spew {
    my $tmp = File::Temp->new(SUFFIX => '.bin');
    print {$tmp} $_[0] or die "write: $!";
    close $tmp or die "close: $!";
    return $tmp;
}

# exiftool's tags of a file (or of bytes), "[Group] Name : value", file system ones left out.
sub tags {
    my ($path) = @_;
    open my $fh, '-|', 'exiftool', '-a', '-G1', '-s', '-q', '-q', $path or die "exiftool: $!";
    my @tags = grep { !/^\[(System|ExifTool)\]/ } <$fh>;
    close $fh;
    chomp @tags;
    return @tags;
}

# ---- containers, as lists of [type, bytes] ----

sub jpeg_parts {
    my ($bytes) = @_;
    my ($pos, @parts) = (2, ['SOI', substr($bytes, 0, 2)]);
    while ($pos + 4 <= length $bytes) {
        my $marker = ord substr($bytes, $pos + 1, 1);
        if ($marker == 0xDA) { push @parts, ['scan', substr($bytes, $pos)]; last }
        my $length = unpack 'n', substr($bytes, $pos + 2, 2);
        push @parts, [sprintf('%02X', $marker), substr($bytes, $pos, 2 + $length)];
        $pos += 2 + $length;
    }
    return @parts;
}

sub png_parts {
    my ($bytes) = @_;
    my ($pos, @parts) = (8);
    while ($pos + 12 <= length $bytes) {
        my ($length, $type) = unpack 'Na4', substr($bytes, $pos, 8);
        push @parts, [$type, substr($bytes, $pos, 12 + $length)];
        $pos += 12 + $length;
    }
    return @parts;
}

# Extensions (by label) and images; sub-blocks read as a decoder reads them.
sub gif_parts {
    my ($bytes) = @_;
    my $packed = ord substr($bytes, 10, 1);
    my $pos = 13 + ($packed & 0x80 ? 3 << (($packed & 7) + 1) : 0);
    my @parts = (['screen', substr($bytes, 0, $pos)]);
    while ($pos < length $bytes) {
        my $start = $pos;
        my $introducer = ord substr($bytes, $pos, 1);
        if ($introducer == 0x3B) { push @parts, ['trailer', substr($bytes, $pos)]; last }
        my $type;
        if ($introducer == 0x21) {
            my $label = ord substr($bytes, $pos + 1, 1);
            $type = sprintf 'ext%02X', $label;
            $type .= ' ' . substr($bytes, $pos + 3, 11) if $label == 0xFF;
            $pos += 2;
        } else {
            my $local = ord substr($bytes, $pos + 9, 1);
            $pos += 10 + ($local & 0x80 ? 3 << (($local & 7) + 1) : 0) + 1;
            $type = 'image';
        }
        while ((my $size = ord substr($bytes, $pos, 1)) != 0) { $pos += 1 + $size }
        $pos += 1;
        push @parts, [$type, substr($bytes, $start, $pos - $start)];
    }
    return @parts;
}

# Keeps the parts whose type is not in @removed.
sub kept { my ($removed, @parts) = @_; return grep { $_->[0] !~ $removed } @parts }

# For files that keep their size: the offsets where the stored file differs in a way metadata
# removal does not explain.
sub unexplained_changes {
    my ($original, $stored) = @_;
    my @unexplained;
    for my $i (0 .. length($original) - 1) {
        my $byte = substr($stored, $i, 1);
        next if $byte eq substr($original, $i, 1) || $byte eq "\0";
        next if grep { $_ >= 0 && substr($stored, $_, 4) =~ /\A(free|JUNK)\z/ } $i - 3 .. $i;
        next if $i == 20 && substr($stored, 12, 4) eq 'VP8X';    # the EXIF/XMP flags
        push @unexplained, $i;
    }
    return @unexplained;
}

# ---- the server ----

my $ng = Chatterd::Nginx->start(
    http_config => qq{chatterd_pg "\$TEST_NGINX_PG_CONNINFO";\nchatterd_media_root \$TEST_NGINX_MEDIA_ROOT;\n},
    config => qq{location = /postimages { chatterd postimages; client_max_body_size 21m; }\n}
              . qq{location = /postimages-keep { chatterd postimages; chatterd_media_metadata keep; }\n});
truncate_chatts();

# Posts the sample as the given part; the stored file's bytes.
sub post_sample {
    my ($field, $name, $path) = @_;
    my $original = slurp("$Samples/$name");
    my $body = multipart_body('XyZ', [name => 'username', value => 'tester'],
        [name => 'message', value => $name],
        [name => $field, filename => $name, type => 'application/octet-stream', value => $original]);
    my $res = http_request($ng->port,
        "POST ${\ ($path // '/postimages')} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
        . "Content-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: " . length($body)
        . "\r\n\r\n$body", timeout => 10);
    is(($res->{status} // 'none') . ' ' . ($res->{body} // ''), '200 {}', "$name: posted");
    my ($row) = sql("SELECT imageurl, videourl FROM chatts WHERE message = '$name'");
    my $url = $row ? $row->[$field eq 'image' ? 0 : 1] // '' : '';
    my ($file) = $url =~ m{/media/([^/]+)\z} or return (fail("$name: a row names the file"), undef);
    return ($original, slurp(File::Spec->catfile($Root, $file)));
}

sub no_identity_left {
    my ($name, $original, $stored) = @_;
    my $before = () = grep { /$Identifying/ } tags("$Samples/$name");
    my @after = grep { /$Identifying/ } tags(spew($stored)->filename);
    cmp_ok($before, '>', 0, "$name: the sample carries identifying tags ($before)");
    is(scalar @after, 0, "$name: the stored file carries none") or diag(join "\n", @after);
    note(sprintf '%s: %d -> %d tags, %d -> %d identifying, %d -> %d bytes', $name,
         scalar(tags("$Samples/$name")), scalar(tags(spew($stored)->filename)), $before,
         scalar @after, length $original, length $stored);
}

sub same_pixels {
    my ($name, $original, $stored) = @_;
    my ($a, $b) = (spew($original), spew($stored));
    my $ae = `compare -metric AE '${\ $a->filename}' '${\ $b->filename}' null: 2>&1`;
    like($ae, qr/\A0(?![\d.e])/, "$name: compare -metric AE gives 0");    # warnings may follow
}

sub same_video {
    my ($name, $original, $stored) = @_;
    my @md5 = map {
        my $f = spew($_);
        scalar `ffmpeg -v error -i '${\ $f->filename}' -map 0:v -c copy -f md5 - 2>&1`;
    } $original, $stored;
    like($md5[0], qr/\AMD5=/, "$name: ffmpeg reads the video stream");
    is($md5[1], $md5[0], "$name: the video stream's md5 is the same");
}

subtest 'JPEG: Exif, XMP, IPTC and the comment go, the orientation and the image stay' => sub {
    my ($original, $stored) = post_sample(image => 'photo.jpg');
    no_identity_left('photo.jpg', $original, $stored);
    my $metadata = qr/\A(E1|ED|FE)\z/;
    is_deeply([map { $_->[1] } kept($metadata, jpeg_parts($stored))],
              [map { $_->[1] } kept($metadata, jpeg_parts($original))],
              'every other segment and the scan are unchanged, in order');
    ok((grep { /Orientation\s*: Rotate 90 CW/ } tags(spew($stored)->filename)), 'Orientation 6 is kept');
    same_pixels('photo.jpg', $original, $stored);
};

subtest 'PNG: eXIf and text chunks go, every other chunk stays' => sub {
    my ($original, $stored) = post_sample(image => 'photo.png');
    no_identity_left('photo.png', $original, $stored);
    my $metadata = qr/\A(eXIf|tEXt|zTXt|iTXt)\z/;
    is(substr($stored, 0, 8), substr($original, 0, 8), 'the signature');
    is_deeply([map { $_->[1] } png_parts($stored)], [map { $_->[1] } kept($metadata, png_parts($original))],
              'every other chunk is unchanged, in order');
    same_pixels('photo.png', $original, $stored);
};

subtest 'GIF: the comment and the XMP go, every other block stays' => sub {
    my ($original, $stored) = post_sample(image => 'photo.gif');
    no_identity_left('photo.gif', $original, $stored);
    is_deeply([map { $_->[1] } gif_parts($stored)],
              [map { $_->[1] } kept(qr/\A(extFE|extFF XMP DataXMP)\z/, gif_parts($original))],
              'every other block is unchanged, in order');
    same_pixels('photo.gif', $original, $stored);
};

for my $sample (['image', 'photo.webp'], ['image', 'photo.heic'], ['image', 'photo.avif'],
                ['video', 'clip.mp4'], ['video', 'clip.mov']) {
    my ($field, $name) = @$sample;
    subtest "$name: metadata overwritten in place, nothing else changed" => sub {
        my ($original, $stored) = post_sample($field => $name);
        no_identity_left($name, $original, $stored);
        is(length $stored, length $original, 'the same size: no offset moved');
        my @unexplained = unexplained_changes($original, $stored);
        is(scalar @unexplained, 0, 'every change is a zero or a free/JUNK type')
            or diag("first unexplained offsets: @unexplained[0 .. ($#unexplained < 9 ? $#unexplained : 9)]");
        isnt($stored, $original, 'something was overwritten');
        $field eq 'image' ? same_pixels($name, $original, $stored) : same_video($name, $original, $stored);
    };
}

subtest 'a file with nothing to strip is stored byte for byte' => sub {
    my ($original, $stored) = post_sample(image => 'clean.jpg');
    ok(defined $stored && $stored eq $original, 'clean.jpg: the same bytes');
};

subtest 'chatterd_media_metadata keep: a tagged file is stored byte for byte' => sub {
    truncate_chatts();
    my ($original, $stored) = post_sample(image => 'photo.jpg', '/postimages-keep');
    ok(defined $stored && $stored eq $original, 'photo.jpg: the same bytes, tags and all');
};

done_testing();
