#!/usr/bin/perl
# Deterministic benchmark payloads for bench/run.sh.
#   gen.pl DIR      writes into DIR:
#     image.jpeg       1 MiB: JPEG/JFIF APP0 header, then pseudo-random bytes
#     video8.mp4       8 MiB: ISO BMFF ftyp box (isom), then pseudo-random bytes
#     video9.mp4       9 MiB: the same, 9 MiB (for the 10 MiB memory/disk run)
#     form-none.body   multipart form: username + message only (246 bytes, like the reference's)
#     form-img.body    username + message + image (1 MiB JPEG)
#     form-vid.body    username + message + image (1 MiB JPEG) + video (8 MiB MP4)
#     form-10m.body    username + message + image (1 MiB JPEG) + video (9 MiB MP4)
#     form-meta.body   username + message + DIR/photo.jpeg, when bench/run.sh made it (a phone
#                      photo with its tags: what chatterd_media_metadata strip reads)
#     chatt.json       the postchatt JSON body
#     content-type     the multipart Content-Type header value (fixed boundary)
# The pseudo-random bytes are SHA-512 in counter mode over a fixed seed and the file's name, so
# every run, on every machine, produces the same bytes (core Perl only: Digest::SHA).
use strict;
use warnings;
use Digest::SHA qw(sha512);

my $dir = shift or die "usage: gen.pl DIR\n";
-d $dir or mkdir $dir or die "gen.pl: mkdir $dir: $!\n";

my $SEED     = 'chatterd-bench-2025';
my $BOUNDARY = 'chatterdBench7MA4YWxkTrZu0gW';
my $MiB      = 1024 * 1024;

# $len bytes of deterministic noise, different for every $label.
sub noise {
    my ($label, $len) = @_;
    my @blocks;
    my $have = 0;
    for (my $i = 0; $have < $len; $i++) {
        my $b = sha512("$SEED/$label/$i");
        push @blocks, $b;
        $have += length $b;
    }
    return substr(join('', @blocks), 0, $len);
}

sub write_file {
    my ($name, $bytes) = @_;
    open my $fh, '>:raw', "$dir/$name" or die "gen.pl: $dir/$name: $!\n";
    print {$fh} $bytes or die "gen.pl: writing $dir/$name: $!\n";
    close $fh or die "gen.pl: closing $dir/$name: $!\n";
}

# JPEG: SOI, then an APP0 segment of length 16 naming JFIF (what sniffers look for).
my $jfif = "\xFF\xD8\xFF\xE0\x00\x10JFIF";
my $image = $jfif . noise('image', $MiB - length $jfif);

# MP4: a 32-byte ftyp box, major brand isom, minor version 0x200, compatible isom iso2 avc1 mp41.
my $ftyp = "\0\0\0\x20ftypisom\0\0\x02\0isomiso2avc1mp41";
my $video8 = $ftyp . noise('video8', 8 * $MiB - length $ftyp);
my $video9 = $ftyp . noise('video9', 9 * $MiB - length $ftyp);

# multipart/form-data (RFC 7578) as the apps send it: text fields, then file parts.
sub text_part {
    my ($name, $value) = @_;
    return "--$BOUNDARY\r\nContent-Disposition: form-data; name=\"$name\"\r\n\r\n$value\r\n";
}
sub file_part {
    my ($name, $filename, $type, $bytes) = @_;
    return "--$BOUNDARY\r\nContent-Disposition: form-data; name=\"$name\"; filename=\"$filename\"\r\n"
         . "Content-Type: $type\r\n\r\n$bytes\r\n";
}
my $end = "--$BOUNDARY--\r\n";

# The text-only form is padded to exactly 246 bytes, the size of the reference's form.
my $username = 'bench';
my $message  = 'Hello from the chatterd benchmark';
my $none = text_part('username', $username) . text_part('message', $message) . $end;
die "gen.pl: the text-only form is over 246 bytes\n" if length $none > 246;
$message .= "." x (246 - length $none);
$none = text_part('username', $username) . text_part('message', $message) . $end;

my $fields = text_part('username', $username) . text_part('message', $message);
write_file('image.jpeg', $image);
write_file('video8.mp4', $video8);
write_file('video9.mp4', $video9);
write_file('form-none.body', $none);
write_file('form-img.body', $fields . file_part('image', 'chattImage', 'image/jpeg', $image) . $end);
write_file('form-vid.body', $fields . file_part('image', 'chattImage', 'image/jpeg', $image)
                          . file_part('video', 'chattVideo', 'video/mp4', $video8) . $end);
write_file('form-10m.body', $fields . file_part('image', 'chattImage', 'image/jpeg', $image)
                          . file_part('video', 'chattVideo', 'video/mp4', $video9) . $end);
if (-e "$dir/photo.jpeg") {
    open my $fh, '<:raw', "$dir/photo.jpeg" or die "gen.pl: $dir/photo.jpeg: $!\n";
    my $photo = do { local $/; <$fh> };
    write_file('form-meta.body', $fields . file_part('image', 'chattImage', 'image/jpeg', $photo) . $end);
}
write_file('chatt.json', qq({"username":"$username","message":"$message"}));
write_file('content-type', "multipart/form-data; boundary=$BOUNDARY");
