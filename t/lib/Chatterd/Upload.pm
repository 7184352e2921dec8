package Chatterd::Upload;

# What the POST /postimages suites (postimages.t, postimages_limits.t, postimages_clients.t)
# share:
#
#   use Chatterd::Upload qw(expect filler media text_part image_part video_part same_bytes
#                           check_stored check_nothing_stored);
#
# - media bytes: filler($n, $seed), $n deterministic bytes in which every aligned 4-byte
#   word differs (a multiplicative hash of its index), so a lost, repeated or moved piece
#   cannot go unnoticed; media($kind, $size, $seed), exactly $size bytes of jpeg, mp4 or
#   mov: real magic, then filler;
# - form parts: text_part(name => value), image_part($bytes), video_part($bytes), as the
#   apps send them (Chatterd::Http::multipart_body);
# - what a request must leave behind: check_stored($name, \%e, port => ...) for the one
#   stored row and its files, served back over /media/ byte for byte, and
#   check_nothing_stored($name) for no row and no file;
# - for the data-driven suites, setup(config => ...) registers a block preprocessor (empty
#   chatts table and media root, chatterd_pg + chatterd_media_root, the given config) and a
#   response body check: a block whose --- init calls ::expect(...) must leave exactly that
#   one row and exactly its files, every other block no row and no file.
#
# It registers through the functions Test::Nginx::Socket exports into the test script, so the
# suites run unchanged under the real Test::Nginx.

use strict;
use warnings;

use Exporter 'import';
use Test::More ();
use Chatterd::Db qw(sql truncate_chatts media_files check_media_consistency);
use Chatterd::Http qw(http_get);

our @EXPORT_OK = qw(expect filler media text_part image_part video_part same_bytes
                    check_stored check_nothing_stored);

#---------------------------------------------------------------------------
# Media bytes and form parts
#---------------------------------------------------------------------------

sub filler {
    my ($n, $seed) = @_;
    my $words = int($n / 4) + 1;
    return substr(pack('N*', map { ($_ * 2654435761 + $seed * 40503) & 0xFFFFFFFF } 0 .. $words), 0, $n);
}

our %Magic = (
    jpeg => "\xFF\xD8\xFF\xE0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00",
    mp4  => "\0\0\0\x20ftypisom\0\0\x02\0isomiso2avc1mp41",
    mov  => "\0\0\0\x14ftypqt  \0\0\0\0qt  ",
);
my %Cache;

# media('jpeg', $size, $seed): exactly $size bytes (cached: the suites send the same
# megabytes in a request and compare them with what is served back).
sub media {
    my ($kind, $size, $seed) = @_;
    $seed //= 1;
    return $Cache{"$kind/$size/$seed"} //= $Magic{$kind} . filler($size - length $Magic{$kind}, $seed);
}

sub text_part  { [name => $_[0], value => $_[1]] }
sub image_part { [name => 'image', filename => 'chattImage', type => 'image/jpeg', value => $_[0]] }
sub video_part { [name => 'video', filename => 'chattVideo', type => 'video/mp4', value => $_[0]] }

#---------------------------------------------------------------------------
# What a request must leave behind
#---------------------------------------------------------------------------

# Byte equality without dumping megabytes: reports lengths and the first difference.
sub same_bytes {
    my ($got, $want, $label) = @_;
    $got //= '';
    return Test::More::pass($label) if $got eq $want;
    my $at = 0;
    $at++ while $at < length($got) && $at < length($want)
             && substr($got, $at, 1) eq substr($want, $at, 1);
    Test::More::fail($label);
    Test::More::diag(sprintf "got %d bytes, want %d; first difference at offset %d: got %s, want %s",
                     length $got, length $want, $at,
                     map { unpack('H*', substr($_, $at, 16)) } $got, $want);
}

# The one stored row must hold the posted fields, and its URLs name files in the media
# root, served over /media/ on port $opt{port} byte for byte with the right type:
#   check_stored($name, {username => ..., message => ..., base => URL base,
#                        image => [bytes, ext, mime], video => [...],
#                        prefix => file name prefix (undef: none)},
#                port => ..., timeout => seconds for each GET /media/ (default: http_get's))
sub check_stored {
    my ($name, $e, %opt) = @_;
    my @rows = sql('SELECT username, message, imageurl, videourl FROM chatts');
    Test::More::is(scalar @rows, 1, "$name - exactly one row stored") or return;
    my ($username, $message, $imageurl, $videourl) = @{ $rows[0] };
    my %url = (image => $imageurl, video => $videourl);
    Test::More::is($username, $e->{username}, "$name - username stored as sent");
    Test::More::is($message, $e->{message}, "$name - message stored as sent");
    my @files;
    for my $field (qw(image video)) {
        unless ($e->{$field}) {
            Test::More::is($url{$field}, undef, "$name - ${field}url is NULL");
            next;
        }
        my ($bytes, $ext, $mime) = @{ $e->{$field} };
        my $prefix = defined $e->{prefix} ? quotemeta("$e->{prefix}-") : '';
        Test::More::like($url{$field} // '', qr{\A\Q$e->{base}\E$prefix[0-9a-f]{32}\.\Q$ext\E\z},
                         "$name - ${field}url is base + name + .$ext") or next;
        my ($file) = $url{$field} =~ m{([^/]+)\z};
        push @files, $file;
        my $res = http_get($opt{port}, "/media/$file",
                           defined $opt{timeout} ? (timeout => $opt{timeout}) : ());
        Test::More::is($res->{status}, 200, "$name - $field served over /media/");
        Test::More::is($res->{headers}{'content-type'}, $mime, "$name - $field served as $mime");
        same_bytes($res->{body}, $bytes, "$name - $field served byte for byte");
    }
    Test::More::is_deeply([media_files()], [sort @files], "$name - the media root holds exactly its files");
}

sub check_nothing_stored {
    my ($name) = @_;
    my @rows = sql('SELECT username, message, imageurl, videourl FROM chatts');
    Test::More::is(scalar @rows, 0, "$name - no row stored");
    Test::More::is_deeply([media_files()], [], "$name - no file left in the media root");
}

#---------------------------------------------------------------------------
# The data-driven suites
#---------------------------------------------------------------------------

our $Expect;    # set by a block's --- init through expect()

# expect(username => ..., message => ..., image => [bytes, ext, mime], video => [...],
#        prefix => file name prefix (undef: none), base => URL base)
sub expect {
    my (%e) = @_;
    $e{base} //= 'http://localhost/media/';
    $Expect = \%e;
}

# setup(config => the default config of a block,
#       block_timeout => the default --- timeout of a block (undef: Test::Nginx's),
#       get_timeout => seconds for each GET /media/ (undef: http_get's))
sub setup {
    my (%opt) = @_;
    my $config = $opt{config} // die "setup: config is required\n";
    main::add_block_preprocessor(sub {
        my ($block) = @_;
        truncate_chatts();
        $Expect = undef;
        $block->set_value(http_config => <<'EOF') unless defined $block->http_config;
chatterd_pg "$TEST_NGINX_PG_CONNINFO";
chatterd_media_root $TEST_NGINX_MEDIA_ROOT;
EOF
        $block->set_value(config => $config) unless defined $block->config;
        $block->set_value(timeout => $opt{block_timeout})
            if defined $opt{block_timeout} && !defined $block->timeout;
    });
    main::add_response_body_check(sub {
        my ($block, $body, $req_idx, $repeated, $dry_run) = @_;
        return if $dry_run;
        my $name = $block->name;
        if (my $e = $Expect) {
            check_stored($name, $e, port => main::server_port(), timeout => $opt{get_timeout});
        }
        else {
            check_nothing_stored($name);
        }
        check_media_consistency($name);
    });
}

1;
