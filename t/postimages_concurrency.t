# POST /postimages, concurrency (scenario test): 20 uploads with the same username are in
# flight at once (every connection has sent half its body before any sends the rest), then
# complete.  Each must get 200 {}, and the table must hold 20 rows whose 20 (plus videos)
# files are distinct, complete and each holds the bytes its own request sent.
#   round 1: one nginx process and chatterd_pg_pool 2, so the INSERTs queue;
#   round 2: master + 4 worker processes (each with its own pool).
use strict; use warnings;
use FindBin; BEGIN { push @INC, "$FindBin::Bin/lib" }
use Test::More;
use Chatterd::Nginx;
use Chatterd::Http qw(multipart_body parse_http_response);
use Chatterd::Db qw(sql truncate_chatts media_root media_files check_media_consistency);
use File::Spec;
use IO::Select;
use IO::Socket::INET;
use Time::HiRes ();

plan skip_all => 'TEST_NGINX_PSQL is not set (run through make test)' unless $ENV{TEST_NGINX_PSQL};
$ENV{TEST_NGINX_PG_CONNINFO} //= 'host=/var/run/postgresql dbname=chatterdb user=chatter';

use constant CLIENTS => 20;
my $Root = media_root();

# Exactly $size bytes behind the magic; every aligned 4-byte word of the filler differs,
# and the seed makes each client's bytes its own.
sub media {
    my ($magic, $size, $seed) = @_;
    my $n = $size - length $magic;
    return $magic . substr(pack('N*', map { ($_ * 2654435761 + $seed * 40503) & 0xFFFFFFFF } 0 .. $n / 4 + 1), 0, $n);
}
sub jpeg { media("\xFF\xD8\xFF\xE0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00", @_) }
sub mp4  { media("\0\0\0\x20ftypisom\0\0\x02\0isomiso2avc1mp41", @_) }

sub slurp {
    my ($path) = @_;
    open my $fh, '<:raw', $path or return undef;
    local $/;
    return scalar <$fh>;
}

# Client $i: message "post $i", its own image, and a video for even $i.
sub client_form {
    my ($i) = @_;
    my %media = (image => jpeg(150_000 + 1000 * $i, $i));
    $media{video} = mp4(250_000, 100 + $i) unless $i % 2;
    my $body = multipart_body('XyZ',
        [name => 'username', value => 'same user'],
        [name => 'message', value => "post $i"],
        [name => 'image', filename => 'chattImage', type => 'image/jpeg', value => $media{image}],
        ($media{video} ? [name => 'video', filename => 'chattVideo', type => 'video/mp4', value => $media{video}] : ()));
    my $request = "POST /postimages HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
                . "Content-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: " . length($body)
                . "\r\n\r\n$body";
    return ($request, \%media);
}

# Writes $conn->{out} from $conn->{sent} up to $limit, without blocking on any one socket.
sub write_all_up_to {
    my ($conns, $limit_of, $seconds) = @_;
    local $SIG{PIPE} = 'IGNORE';
    my $deadline = Time::HiRes::time() + $seconds;
    while (my @pending = grep { $_->{sent} < $limit_of->($_) && !$_->{failed} } @$conns) {
        return 0 if Time::HiRes::time() > $deadline;
        my $sel = IO::Select->new(map { $_->{sock} } @pending);
        my %by_sock = map { ($_->{sock} => $_) } @pending;
        for my $sock ($sel->can_write(0.5)) {
            my $c = $by_sock{$sock};
            my $n = syswrite $sock, $c->{out}, $limit_of->($c) - $c->{sent}, $c->{sent};
            if (defined $n) { $c->{sent} += $n } else { $c->{failed} = "write: $!" }
        }
    }
    return 1;
}

# Reads every connection until the server closes it (Connection: close).
sub read_all {
    my ($conns, $seconds) = @_;
    my $deadline = Time::HiRes::time() + $seconds;
    my %open = map { ($_->{sock} => $_) } @$conns;
    while (%open && Time::HiRes::time() < $deadline) {
        my $sel = IO::Select->new(map { $_->{sock} } values %open);
        for my $sock ($sel->can_read(0.5)) {
            my $c = $open{$sock};
            my $n = sysread $sock, $c->{in}, 65536, length $c->{in};
            delete $open{$sock} unless $n;
        }
    }
    return !%open;
}

sub round {
    my ($label, %nginx) = @_;
    subtest $label => sub {
        my %processes = map { defined $nginx{$_} ? ($_ => $nginx{$_}) : () } qw(workers master main_config);
        my $ng = Chatterd::Nginx->start(
            http_config => qq{chatterd_pg "\$TEST_NGINX_PG_CONNINFO";\nchatterd_media_root \$TEST_NGINX_MEDIA_ROOT;\n}
                         . ($nginx{http_config} // ''),
            config => qq{location = /postimages { chatterd postimages; client_max_body_size 21m; }\n},
            %processes);
        truncate_chatts();

        my @conns = map {
            my ($request, $media) = client_form($_);
            my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $ng->port, Proto => 'tcp')
                or die "connect: $!";
            $sock->blocking(0);
            { i => $_, sock => $sock, out => $request, media => $media, sent => 0, in => '' };
        } 1 .. CLIENTS;

        # Everyone is half-way before anyone finishes.
        ok(write_all_up_to(\@conns, sub { int(length($_[0]{out}) / 2) }, 30), 'all 20 sent half their request');
        ok(write_all_up_to(\@conns, sub { length $_[0]{out} }, 30), 'all 20 sent the rest');
        ok(read_all(\@conns, 30), 'all 20 answered and closed');
        for my $c (@conns) {
            my $res = parse_http_response($c->{in});
            is(($res->{status} // 'none') . ' ' . ($res->{body} // ''), '200 {}', "client $c->{i}: 200 {}")
                or diag($c->{failed} // substr($c->{in}, 0, 300));
        }

        my @rows = sql(q{SELECT message, imageurl, videourl FROM chatts WHERE username = 'same user'});
        is(scalar @rows, CLIENTS, '20 rows with that username');
        my (%seen, @urls);
        for my $row (@rows) {
            my ($message, @row_urls) = @$row;
            my ($i) = $message =~ /\Apost (\d+)\z/ or next;
            $seen{$i}++;
            my ($c) = grep { $_->{i} == $i } @conns;
            for my $field (qw(image video)) {
                my $url = shift @row_urls;
                if (!$c->{media}{$field}) {
                    is($url, undef, "post $i: no $field");
                    next;
                }
                my $ext = $field eq 'image' ? 'jpeg' : 'mp4';
                my ($file) = ($url // '') =~ m{\Ahttp://localhost/media/(same_user-[0-9a-f]{32}\.$ext)\z};
                ok($file, "post $i: ${field}url names a same_user-<hex>.$ext file") or next;
                push @urls, $url;
                ok(slurp(File::Spec->catfile($Root, $file)) eq $c->{media}{$field},
                   "post $i: its $field file holds exactly its own bytes");
            }
        }
        is(scalar(keys %seen), CLIENTS, 'every client has its own row');
        my %distinct = map { $_ => 1 } @urls;
        is(scalar(keys %distinct), scalar(@urls), 'no two rows share a file');
        is(scalar(@urls), CLIENTS + CLIENTS / 2, '30 media URLs (20 images, 10 videos)');
        is_deeply([media_files()], [sort map { m{([^/]+)\z} } @urls], 'the media root holds exactly those 30 files');
        unlike(scalar $ng->error_log_text, qr/\[(?:error|alert|crit|emerg)\]/, 'nothing went wrong in the error log')
            or diag(join "\n", grep { /\[(?:error|alert|crit|emerg)\]/ } split /\n/, $ng->error_log_text);
        check_media_consistency($label);
        $ng->stop;
        truncate_chatts();
    };
}

round('one process, 2 database connections for 20 uploads',
      http_config => "chatterd_pg_pool 2;\n");

# Workers started by root run as "nobody" unless told otherwise, and could not write to
# the media root or reach the database socket that this run's user created.
round('master and 4 worker processes', master => 1, workers => 4,
      main_config => $> == 0 ? "user root root;\n" : undef);

done_testing();
