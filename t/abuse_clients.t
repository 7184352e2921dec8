# Abusive and broken clients (scenario test), against one nginx (master, one worker):
#   - slowloris: an upload whose body trickles in a byte every 0.5 s is not cut while it
#     trickles (client_body_timeout bounds the wait for each read, not the whole body: the
#     operator's limit_conn and SECURITY.md cover that), and is cut within client_body_timeout
#     (2 s) once it stalls: 408, the reason logged, no row, no file;
#   - the same trickle where chatterd_body_time (3 s) bounds the whole body: cut after 3 s
#     although it never stalls, 408, the reason logged, no row, no file;
#   - clients that disconnect at every stage of a post: in the request head, right after it,
#     in a text part, in the first bytes of the image (before it is sniffed), in the middle of
#     the image, between two parts, one byte before the end (each with FIN and with RST), and
#     right after the whole body (the post may then be stored: with its file, or not at all);
#   - clients that leave while their request waits for a paused database (SIGSTOP; always
#     resumed): postimages, postchatt, getimages, getchatts;
#   - clients that leave during the answer of a large getimages (about 6 MB), five at once;
#   - pipelining: an upload, then getimages, postchatt, getchatts and a /media/ miss sent in
#     one write on one keep-alive connection: five answers in order; and a client that reads
#     only the first answer of such a burst and leaves.
# After each: no worker crash or alert, the same worker, its descriptors and RSS back
# (Chatterd::Workers), every file has its row and every row its files (a post whose outcome
# was unknown keeps its file, logged, until the media sweep: allowed only then).
use strict; use warnings;
use FindBin; BEGIN { push @INC, "$FindBin::Bin/lib" }
use Test::More;
use IO::Select;
use IO::Socket::INET;
use Socket qw(SOL_SOCKET SO_LINGER);
use Time::HiRes ();

use Chatterd::Nginx qw(start_nginx);
use Chatterd::Wait qw(wait_until);
use Chatterd::Http qw(http_request http_get build_request multipart_body);
use Chatterd::Db qw(sql sql_value truncate_chatts media_root media_files check_media_consistency
                    pause_pg resume_pg);
use Chatterd::ExampleConf;
use Chatterd::Upload qw(media image_part);
use Chatterd::Workers qw(worker_state check_workers open_in);

plan skip_all => 'TEST_NGINX_PSQL is not set (run through make test)' unless $ENV{TEST_NGINX_PSQL};
plan skip_all => 'TEST_NGINX_PG_DIR is not set (run through make test)' unless $ENV{TEST_NGINX_PG_DIR};


my $Root = media_root();
# Freed answer blocks go back to the kernel, so that RSS shows a leak (see the getimages scenario).
local $ENV{GLIBC_TUNABLES} = 'glibc.malloc.mmap_threshold=32768';
my $ng = start_nginx(
    media_root  => $Root,
    # The listings wait for the database as the posts do, and build their answers in memory:
    # without the list cache, which would answer them from its file (t/list_cache.t).
    http_config => "chatterd_pg_timeout 3s;\nclient_body_timeout 2s;\nchatterd_list_cache off;\n",
    config => Chatterd::ExampleConf::endpoint_locations('client_max_body_size 21m;') . <<CONF,
location = /postimages/bounded { chatterd postimages; client_max_body_size 21m; chatterd_body_time 3s; }
location /media/ { alias $Root/; }
location = /status { chatterd_status; }
CONF
);
my $port = $ng->port;

sub form {
    my ($user, $message, @media) = @_;
    return multipart_body('XyZ', [name => 'username', value => $user],
                          [name => 'message', value => $message], @media);
}
sub post_head {
    my ($length, %o) = @_;
    return "POST " . ($o{path} // '/postimages') . " HTTP/1.1\r\nHost: localhost\r\n"
         . ($o{keepalive} ? '' : "Connection: close\r\n")
         . "Content-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: $length\r\n\r\n";
}
sub connect_raw {
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp')
        or die "connect: $!";
    binmode $sock;
    return $sock;
}
sub send_bytes {
    my ($sock, $bytes) = @_;
    local $SIG{PIPE} = 'IGNORE';
    $sock->blocking(1);
    my $off = 0;
    while ($off < length $bytes) {
        my $n = syswrite($sock, $bytes, 262144, $off) // return 0;
        $off += $n;
    }
    return 1;
}
sub hang_up {
    my ($sock, $reset) = @_;
    setsockopt($sock, SOL_SOCKET, SO_LINGER, pack('ii', 1, 0)) if $reset;
    close $sock;
}
# Files the worker holds in the media root (an upload in progress), the directory aside.
sub upload_files_open { grep { $_ ne $Root } open_in($ng, $Root) }
sub access_count {
    my ($pattern) = @_;
    open my $fh, '<', $ng->servroot . '/logs/access.log' or return 0;
    return scalar grep { $_ =~ $pattern } <$fh>;
}
# Warm-up: every endpoint once, a large getimages (the worker's answer blocks), an upload (its
# descriptor of the media root).
sub warm_up {
    truncate_chatts();
    my $image = media(jpeg => 30_000, 1);
    is(http_request($port, post_head(length form('w', 'w', image_part($image))) . form('w', 'w', image_part($image)))->{status},
       200, 'warm-up upload');
    sql(q{INSERT INTO chatts (username, message, imageurl)
          SELECT 'reader' || i, repeat('m', 150) || i, 'http://localhost/media/none' || i || '.jpeg'
          FROM generate_series(1, 30000) AS i});
    is(http_get($port, '/getimages', timeout => 30)->{status}, 200, 'warm-up getimages');
    is(http_get($port, '/getchatts', timeout => 30)->{status}, 200, 'warm-up getchatts');
    sql(q{DELETE FROM chatts WHERE username LIKE 'reader%'});
}

sub scenario {
    my ($label, $code, $warm) = @_;
    subtest $label => sub {
        truncate_chatts();
        $warm->() if $warm;
        my $before = worker_state($ng);
        $ng->mark_error_log;
        $code->();
        check_workers($ng, $before, $label);
        check_media_consistency($label, scalar $ng->error_log_since_mark);
    };
}

subtest 'warm-up' => \&warm_up;

#---------------------------------------------------------------------------
# slowloris
#---------------------------------------------------------------------------

scenario('slowloris: a body trickling a byte every 0.5 s, then stalling' => sub {
    my $body = form('slow', 'loris', image_part(media(jpeg => 100_000, 2)));
    my $start = index($body, "\xFF\xD8") + 1000;    # 1000 bytes into the image
    my $sock = connect_raw();
    send_bytes($sock, post_head(length $body) . substr($body, 0, $start));
    ok(wait_until(sub { upload_files_open() }, 5), 'the upload is being received into a file');
    my $timeouts = access_count(qr{"POST /postimages HTTP/1\.1" 408 });
    my $t0 = Time::HiRes::time();
    my $at = $start;
    while (Time::HiRes::time() - $t0 < 5) {    # 2.5 times client_body_timeout
        send_bytes($sock, substr($body, $at++, 1)) or last;
        Time::HiRes::sleep(0.5);
    }
    ok(!IO::Select->new($sock)->can_read(0), 'after 5 s of trickle (10 bytes) the connection is still open: '
       . 'client_body_timeout bounds each wait, not the whole body');
    my $stalled = Time::HiRes::time();
    my $closed = wait_until(sub {
        IO::Select->new($sock)->can_read(0) or return 0;
        return !sysread($sock, my $buf, 65536);
    }, 6);
    my $after = Time::HiRes::time() - $stalled;
    ok($closed, sprintf('once it stalls, nginx closes the connection (after %.1f s)', $after));
    cmp_ok($after, '<', 2 + 1.5, 'within client_body_timeout 2s (and a timer tick)');
    ok(wait_until(sub { access_count(qr{"POST /postimages HTTP/1\.1" 408 }) > $timeouts }, 3), 'the access log says 408');
    ok($ng->wait_for_error_log(qr/\[info\].*chatterd: postimages: no body data within client_body_timeout/),
       'the error log says why');
    ok(wait_until(sub { !upload_files_open() }, 5), 'the worker holds no file of the media root');
    is(sql_value('SELECT count(*) FROM chatts'), 0, 'no row');
    is_deeply([media_files()], [], 'no file');
    close $sock;
});

scenario('a body trickling a byte every 0.5 s, bounded by chatterd_body_time 3s' => sub {
    my $body = form('slow', 'bounded', image_part(media(jpeg => 100_000, 2)));
    my $start = index($body, "\xFF\xD8") + 1000;
    my $sock = connect_raw();
    my $timeouts = access_count(qr{"POST /postimages/bounded HTTP/1\.1" 408 });
    my $t0 = Time::HiRes::time();
    send_bytes($sock, post_head(length $body, path => '/postimages/bounded') . substr($body, 0, $start));
    ok(wait_until(sub { upload_files_open() }, 5), 'the upload is being received into a file');
    my ($at, $closed) = ($start, 0);
    while (Time::HiRes::time() - $t0 < 8) {
        if (IO::Select->new($sock)->can_read(0)) { $closed = !sysread($sock, my $buf, 65536); last }
        # A write fails once nginx has reset the connection (it closed with a byte unread).
        send_bytes($sock, substr($body, $at++, 1)) or do { $closed = 1; last };
        Time::HiRes::sleep(0.5);
    }
    my $after = Time::HiRes::time() - $t0;
    ok($closed, sprintf('closed by nginx while it still trickled (after %.1f s)', $after));
    cmp_ok($after, '>=', 3, 'not before chatterd_body_time 3s');
    cmp_ok($after, '<', 3 + 2, 'within chatterd_body_time 3s (and a timer tick)');
    ok(wait_until(sub { access_count(qr{"POST /postimages/bounded HTTP/1\.1" 408 }) > $timeouts }, 3),
       'the access log says 408');
    ok($ng->wait_for_error_log(qr/\[info\].*chatterd: postimages: the body did not arrive within chatterd_body_time 3000ms \(\d+ bytes received\)/),
       'the error log says why');
    ok(wait_until(sub { !upload_files_open() }, 5), 'the worker holds no file of the media root');
    is(sql_value('SELECT count(*) FROM chatts'), 0, 'no row');
    is_deeply([media_files()], [], 'no file');
    close $sock;
});

#---------------------------------------------------------------------------
# Disconnects at every stage
#---------------------------------------------------------------------------

scenario('a client that disconnects at every stage of a post, FIN and RST' => sub {
    my $body = form('quitter', 'gone', image_part(media(jpeg => 400_000, 3)));
    my $head = post_head(length $body);
    my $request = $head . $body;
    my $image_at = length($head) + index($body, "\xFF\xD8");
    my %cuts = (
        'in the request head'            => 20,
        'right after the head'           => length $head,
        'in the username part'           => length($head) + index($body, 'quitter') + 3,
        'in the first bytes of the image'=> $image_at + 5,
        'in the middle of the image'     => $image_at + 200_000,
        'one byte before the end'        => length($request) - 1,
    );
    # A form whose image comes first: a cut between the image and the next part.
    my $image_first = multipart_body('XyZ', image_part(media(jpeg => 100_000, 4)),
                                     [name => 'username', value => 'q'], [name => 'message', value => 'm']);
    my $between = post_head(length $image_first) . $image_first;
    my $between_at = index($between, '--XyZ', length(post_head(length $image_first)) + 10);
    for my $reset (0, 1) {
        for my $stage ((sort keys %cuts), 'between the image and the next part') {
            my ($bytes, $cut) = $stage =~ /^between/ ? ($between, $between_at) : ($request, $cuts{$stage});
            my $sock = connect_raw();
            send_bytes($sock, substr($bytes, 0, $cut));
            Time::HiRes::sleep(0.15);    # the worker reads what came
            hang_up($sock, $reset);
            ok(wait_until(sub { !upload_files_open() }, 5),
               ($reset ? 'RST' : 'FIN') . " $stage (byte $cut): no file held afterwards");
        }
    }
    is(sql_value('SELECT count(*) FROM chatts'), 0, 'no row');
    is_deeply([media_files()], [], 'no file');
    my $noticed = grep { /client prematurely closed connection|Connection reset by peer/ } $ng->error_log_since_mark;
    cmp_ok($noticed, '>=', 8, "nginx logged the clients that left ($noticed lines)");
});

scenario('clients that leave right after sending the whole body' => sub {
    for my $i (1 .. 10) {
        my $body = form('hasty', "post $i", image_part(media(jpeg => 100_000, 10 + $i)));
        my $sock = connect_raw();
        send_bytes($sock, post_head(length $body) . $body);
        hang_up($sock, $i % 2);
    }
    ok(wait_until(sub { !upload_files_open() }, 10), 'no file held afterwards');
    Time::HiRes::sleep(0.5);
    my $rows = sql_value('SELECT count(*) FROM chatts');
    my $files = () = media_files();
    diag("$rows of 10 stored");
    is($files, $rows, "as many files as rows ($rows): each post stored whole or not at all");
});

#---------------------------------------------------------------------------
# While the database is paused
#---------------------------------------------------------------------------

scenario('clients that leave while their request waits for a paused database' => sub {
    is(http_get($port, '/getchatts')->{status}, 200, 'the database answers before the pause');
    pause_pg();
    my @socks;
    for my $i (1 .. 4) {
        my $body = form('waiter', "post $i", image_part(media(jpeg => 50_000, 20 + $i)));
        push @socks, [post_head(length $body) . $body, 'postimages'];
        push @socks, [build_request(POST => '/postchatt', body => qq{{"username":"waiter","message":"chatt $i"}},
                                    headers => ['Content-Type' => 'application/json']), 'postchatt'];
        push @socks, [build_request(GET => '/getimages'), 'getimages'];
        push @socks, [build_request(GET => '/getchatts'), 'getchatts'];
    }
    for my $s (@socks) {
        my $sock = connect_raw();
        send_bytes($sock, $s->[0]);
        $s->[2] = $sock;
    }
    Time::HiRes::sleep(1);    # every request is waiting: sent to the database, or queued
    ok(!grep({ IO::Select->new($_->[2])->can_read(0) } @socks), 'no answer while the database is paused');
    hang_up($_->[2], 0) for @socks[0 .. 7];
    hang_up($_->[2], 1) for @socks[8 .. $#socks];
    Time::HiRes::sleep(1);
    resume_pg();
    ok(wait_until(sub { !upload_files_open() }, 10), 'no file held once the requests ended');
    Time::HiRes::sleep(3.5);    # past chatterd_pg_timeout: every one of them has ended
    is(http_get($port, '/getchatts')->{status}, 200, 'the database answers after the pause');
    my $rows = sql_value('SELECT count(*) FROM chatts');
    diag("$rows of 8 posts stored");
});

#---------------------------------------------------------------------------
# During a large answer
#---------------------------------------------------------------------------

# Each of five getimages running at once builds its own 6 MB answer (four connections, four
# COPYs; a fifth that waited shares one). With glibc's default malloc settings the worker's heap
# grows by up to 30 MB with those 64 KiB blocks and glibc keeps the freed ones (only the top of
# the heap is trimmed): measured 11 MB before, 40-43 MB after each of 12 rounds, with
# chatterd_answer_bytes back to 0 every time. So RSS would not say whether anything leaked;
# nginx runs here with GLIBC_TUNABLES=glibc.malloc.mmap_threshold=32768 (set at the top), which
# maps each block on its own and unmaps it when freed: RSS then comes back to the baseline (taken
# after one round, which fills the worker's 4 MiB of kept blocks) unless blocks leak.
sub leave_during_answers {
    my @socks = map { my $s = connect_raw(); send_bytes($s, build_request(GET => '/getimages')); $s } 1 .. 5;
    for my $i (0 .. $#socks) {
        my $got = '';
        my $sel = IO::Select->new($socks[$i]);
        while (length $got < 100_000 * ($i + 1) && $sel->can_read(10)) {
            sysread($socks[$i], $got, 65536, length $got) or last;
        }
        hang_up($socks[$i], $i % 2);
    }
}
scenario('five clients that leave during a 6 MB getimages answer, three times' => sub {
    for my $round (1 .. 3) {
        leave_during_answers();
        my $whole = http_get($port, '/getimages', timeout => 30);
        is($whole->{status}, 200, "round $round: a whole getimages afterwards");
        cmp_ok(length($whole->{body} // ''), '>', 5_000_000, "round $round: all of it (" . length($whole->{body} // '') . ' bytes)');
    }
    my ($status) = http_get($port, '/status')->{body} =~ /^chatterd_answer_bytes (\d+)/m;
    is($status, 0, 'chatterd_answer_bytes is back to 0');
    sql(q{DELETE FROM chatts WHERE username LIKE 'reader%'});
}, sub {
    sql(q{INSERT INTO chatts (username, message, imageurl)
          SELECT 'reader' || i, repeat('m', 150) || i, 'http://localhost/media/none' || i || '.jpeg'
          FROM generate_series(1, 30000) AS i});
    leave_during_answers();
});

#---------------------------------------------------------------------------
# Pipelining
#---------------------------------------------------------------------------

# The answers in a keep-alive byte stream, in order (Content-Length or chunked bodies).
sub responses {
    my ($raw) = @_;
    my @responses;
    while ($raw =~ s/\AHTTP\/1\.1 (\d{3})[^\r\n]*\r\n((?:[^\r\n]+\r\n)*)\r\n//) {
        my ($status, $headers) = ($1, $2);
        my $body = '';
        if ($headers =~ /^Content-Length:\s*(\d+)\r$/mi) {
            $body = substr($raw, 0, $1, '');
        }
        elsif ($headers =~ /^Transfer-Encoding: chunked\r$/mi) {
            while ($raw =~ s/\A([0-9a-fA-F]+)\r\n//) {
                my $size = hex $1;
                $body .= substr($raw, 0, $size, '');
                substr($raw, 0, 2, '');    # CRLF after the chunk (or after the last, empty one)
                last if $size == 0;
            }
        }
        push @responses, { status => $status, body => $body };
    }
    return @responses;
}

scenario('pipelined requests after an upload on one keep-alive connection' => sub {
    my $image = media(jpeg => 300_000, 30);
    my $body = form('piped', 'first', image_part($image));
    my $keep = sub { build_request(@_) =~ s/Connection: close\r\n//r };
    my $burst = post_head(length $body, keepalive => 1) . $body
              . $keep->(GET => '/getimages')
              . $keep->(POST => '/postchatt', body => '{"username":"piped","message":"second"}',
                        headers => ['Content-Type' => 'application/json'])
              . $keep->(GET => '/getchatts')
              . build_request(GET => '/media/no-such-file.jpeg');
    my $res = http_request($port, $burst, timeout => 10);
    my @answers = responses($res->{raw});
    is(join(' ', map { $_->{status} } @answers), '200 200 200 200 404', 'five answers, in order');
    like($answers[1]{body} // '', qr/"piped","first"/, 'getimages lists the upload before it');
    like($answers[3]{body} // '', qr/"piped","first".*"piped","second"/s, 'getchatts lists both posts');
    is(sql_value('SELECT count(*) FROM chatts'), 2, 'two rows');

    # The same burst, but the client reads only the first answer and leaves.
    for my $reset (0, 1) {
        my $sock = connect_raw();
        send_bytes($sock, $burst);
        my $got = '';
        my $sel = IO::Select->new($sock);
        while ($got !~ /\r\n\r\n\{\}/ && $sel->can_read(10)) { sysread($sock, $got, 65536, length $got) or last }
        like($got, qr{\AHTTP/1\.1 200 }, 'the first answer came');
        hang_up($sock, $reset);
    }
    ok(wait_until(sub { !upload_files_open() }, 5), 'no file held');
});

$ng->stop;
truncate_chatts();
done_testing();
