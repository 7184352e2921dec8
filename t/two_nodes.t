# Two nodes: two nginx instances with the module (each a master and 2 workers, on their own
# ports), sharing one PostgreSQL (TEST_NGINX_PG_CONNINFO) and one media directory (the same
# chatterd_media_root, the same directory behind /media/), as N nodes behind a load balancer
# share them (docs/SCALING.md):
#   (a) chatterd_media_url relative: a post through one node (postimages with an image and a
#       video, postchatt) is listed by the other's getimages and getchatts, and the other serves
#       its media (the URLs' paths) with the same bytes; both ways. Each URL carries the Host
#       of the node that took the post;
#   (b) chatterd_media_url absolute (the load balancer's name), the same on both nodes: every
#       URL has that base whichever node took the post, and both nodes list the same JSON;
#   (c) the media sweep runs on each node (worker 0 of each): a round of each node that looks
#       at the other node's files once they are older than chatterd_media_sweep keeps them
#       (their rows name them), while an orphan goes.
use strict; use warnings;
use FindBin; BEGIN { push @INC, "$FindBin::Bin/lib" }
use Test::More;
use JSON::PP ();
use Time::HiRes ();

use Chatterd::Db qw(sql truncate_chatts media_root media_files check_media_consistency);
use Chatterd::Http qw(http_request http_get build_request multipart_body);
use Chatterd::Nginx qw(start_nginx);
use Chatterd::Upload qw(media image_part video_part same_bytes);
use Chatterd::ExampleConf;
use Chatterd::Wait qw(wait_until);

for my $var (qw(TEST_NGINX_PG_CONNINFO TEST_NGINX_PSQL)) {
    plan skip_all => "$var is not set (run through make test)" unless $ENV{$var};
}

my $MEDIA = media_root();
my $JSON  = JSON::PP->new->utf8;
my $NAME  = qr/[0-9a-f]{32}/;
my $LB    = 'https://chatter.example.test/media/';   # the absolute base of (b)

# One node. Both nodes get the same configuration but for the port (a free one each).
sub start_node {
    my (%opt) = @_;
    my $media_url = $opt{media_url} // '/media/';
    my $ng = start_nginx(
        workers     => 2,
        media_root  => $MEDIA,
        http_config => "chatterd_media_url $media_url;\nclient_max_body_size 1m;\n" . ($opt{http_config} // ''),
        config      => Chatterd::ExampleConf::endpoint_locations() . <<CONF,
location /media/ {
    alias $MEDIA/;
    types { image/jpeg jpeg; video/mp4 mp4; }
}
CONF
    );
    is(scalar(my @w = $ng->worker_pids), 2, 'node on port ' . $ng->port . ': a master and 2 workers');
    return $ng;
}

# The Host a client of this node sends: its own address, so that a relative URL names it.
sub host_of { '127.0.0.1:' . $_[0]->port }

# A postimages with an image and a video through $ng; returns the bytes posted.
sub post_images {
    my ($ng, $username, $seed) = @_;
    my %bytes = (image => media('jpeg', 6000 + $seed, $seed), video => media('mp4', 30000 + $seed, $seed));
    my $body = multipart_body('twoNodesBoundary', [name => 'username', value => $username],
        [name => 'message', value => "images of $username"],
        image_part($bytes{image}), video_part($bytes{video}));
    my $res = http_request($ng->port, build_request(POST => '/postimages', body => $body,
        headers => [Host => host_of($ng),
                    'Content-Type' => 'multipart/form-data; boundary=twoNodesBoundary']));
    is($res->{status}, 200, "postimages of $username through port " . $ng->port . ': 200');
    return \%bytes;
}

sub post_chatt {
    my ($ng, $username) = @_;
    my $res = http_request($ng->port, build_request(POST => '/postchatt',
        body => $JSON->encode({username => $username, message => "chatt of $username"}),
        headers => [Host => host_of($ng), 'Content-Type' => 'application/json']));
    is($res->{status}, 200, "postchatt of $username through port " . $ng->port . ': 200');
}

sub rows_of {
    my ($ng, $endpoint) = @_;
    my $res = http_request($ng->port, build_request(GET => "/$endpoint", headers => [Host => host_of($ng)]));
    is($res->{status}, 200, "$endpoint through port " . $ng->port . ': 200');
    return ($JSON->decode($res->{body}), $res->{body});
}

# The path of a media URL, fetched from $ng: 200, its type, the bytes posted.
sub check_served {
    my ($ng, $url, $bytes, $mime, $label) = @_;
    my ($path) = $url =~ m{\Ahttps?://[^/]+(/media/[^/]+)\z} or return fail("$label: a media URL ($url)");
    my $res = http_get($ng->port, $path);
    is($res->{status}, 200, "$label: $path served by port " . $ng->port);
    is($res->{headers}{'content-type'}, $mime, "$label: as $mime");
    same_bytes($res->{body}, $bytes, "$label: the same bytes");
}

subtest '(a) relative chatterd_media_url: what one node took, the other lists and serves' => sub {
    truncate_chatts();
    my %node = (A => start_node(), B => start_node());
    for my $way (['A', 'B'], ['B', 'A']) {
        my ($from, $to) = @$way;
        my ($src, $dst) = @node{$from, $to};
        my $user = "via$from";
        my $bytes = post_images($src, $user, ord $from);
        post_chatt($src, $user);

        my ($images) = rows_of($dst, 'getimages');
        my ($row) = grep { $_->[0] eq $user } @$images;
        ok($row, "node $to lists the post node $from took") or next;
        is(scalar @$row, 6, 'a getimages row of 6');
        my $base = quotemeta('http://' . host_of($src) . '/media/');
        like($row->[4], qr{\A$base$user-$NAME\.jpeg\z}, "imageurl carries node ${from}'s Host");
        like($row->[5], qr{\A$base$user-$NAME\.mp4\z}, "videourl carries node ${from}'s Host");
        check_served($dst, $row->[4], $bytes->{image}, 'image/jpeg', "image posted via $from, from $to");
        check_served($dst, $row->[5], $bytes->{video}, 'video/mp4', "video posted via $from, from $to");

        my ($chatts) = rows_of($dst, 'getchatts');
        my ($chatt) = grep { $_->[0] eq $user && $_->[1] eq "chatt of $user" } @$chatts;
        ok($chatt, "node ${to}'s getchatts lists the postchatt node $from took");
        is(scalar @{$chatt // []}, 4, 'a getchatts row of 4');
    }
    check_media_consistency('two nodes, relative URLs');
    $_->stop for values %node;
};

subtest '(b) absolute chatterd_media_url: the same base whichever node took the post' => sub {
    truncate_chatts();
    my %node = (A => start_node(media_url => $LB), B => start_node(media_url => $LB));
    my %bytes = (A => post_images($node{A}, 'lbA', 11), B => post_images($node{B}, 'lbB', 12));
    my ($rows_a, $json_a) = rows_of($node{A}, 'getimages');
    my ($rows_b, $json_b) = rows_of($node{B}, 'getimages');
    is($json_a, $json_b, 'both nodes list the same JSON, byte for byte');
    is(scalar @$rows_a, 2, 'two rows');
    for my $row (@$rows_a) {
        my ($from) = $row->[0] =~ /\Alb([AB])\z/ or next;
        like($row->[4], qr{\A\Q$LB\E$row->[0]-$NAME\.jpeg\z}, "post via $from: imageurl on the load balancer's base");
        like($row->[5], qr{\A\Q$LB\E$row->[0]-$NAME\.mp4\z}, "post via $from: videourl on the load balancer's base");
        for my $to (qw(A B)) {
            check_served($node{$to}, $row->[4], $bytes{$from}{image}, 'image/jpeg', "image via $from, from $to");
            check_served($node{$to}, $row->[5], $bytes{$from}{video}, 'video/mp4', "video via $from, from $to");
        }
    }
    check_media_consistency('two nodes, absolute URLs');
    $_->stop for values %node;
};

# A sweep round ends with this line (info, or warn when it moved files to the quarantine).
my $ROUND = qr/media sweep of \Q$MEDIA\E: \d+ media files judged, (\d+) moved to/;

subtest "(c) each node's sweep keeps the other node's fresh files" => sub {
    truncate_chatts();
    my $sweep = "chatterd_media_sweep 2s;\nchatterd_pg_timeout 1s;\n";
    my %node = (A => start_node(http_config => $sweep), B => start_node(http_config => $sweep));
    for my $name (qw(A B)) {
        ok($node{$name}->wait_for_error_log($ROUND), "node $name: its first sweep round, at its start");
    }
    post_images($node{A}, 'sweptA', 21);
    post_images($node{B}, 'sweptB', 22);
    # An orphan, as a post whose outcome was unknown leaves one: the sweeps do remove files.
    my $orphan = "ghost-" . ('5a' x 16) . '.jpeg';
    open(my $fh, '>', "$MEDIA/$orphan") or die "$orphan: $!";
    print {$fh} media('jpeg', 100, 1);
    close $fh;
    my @posted = grep { /^swept[AB]-/ } media_files();
    is(scalar @posted, 4, 'each post published its image and video');

    # A file is a candidate once its mtime and ctime are older than the grace period (whole
    # seconds, against nginx's clock): wait until the newest file is, then for two more rounds
    # of each node, so that the second one listed the media root after that moment.
    my $newest = 0;
    for my $file (@posted, $orphan) {
        my @st = stat "$MEDIA/$file" or next;
        $newest = $st[9] if $st[9] > $newest;
        $newest = $st[10] if $st[10] > $newest;
    }
    ok(wait_until(sub { time() >= $newest + 3 }, 10), 'the files are older than chatterd_media_sweep');
    $_->mark_error_log for values %node;
    for my $name (qw(A B)) {
        my @rounds;
        ok(wait_until(sub { @rounds = grep { /$ROUND/ } $node{$name}->error_log_since_mark; @rounds >= 2 }),
           "node $name: two sweep rounds since then") or next;
        my ($removed) = $rounds[1] =~ $ROUND;
        ok(defined $removed, "node $name: its second round looked at the files and ran its query")
            or diag($rounds[1]);
        my %pids = map { /\[\w+\] (\d+)#/ ? ($1 => 1) : () } @rounds;
        is(scalar keys %pids, 1, "node $name: one worker sweeps");
    }
    is_deeply([grep { /^swept[AB]-/ } media_files()], [sort @posted],
              "both nodes' posted files survived both nodes' sweeps");
    ok(!-e "$MEDIA/$orphan", 'the orphan was swept away');
    my $log = join '', map { $node{$_}->error_log_text } qw(A B);
    my $total = 0;
    $total += $_ for $log =~ /$ROUND/g;
    is($total, 1, 'the two nodes removed one file between them: the orphan');
    check_media_consistency('two nodes after their sweeps');
    $_->stop for values %node;
};

done_testing();
