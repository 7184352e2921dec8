# Requests that wait are served together (scenario test).
# One process, chatterd_pg_pool 2. A psql session locks the table, so the first request's
# statement waits on the server, holding one connection; the requests of the same kind sent
# after it wait in chatterd's queue although the other connection is idle (one statement of a
# batch at a time; nginx's stub_status shows them in progress). Once the lock is released:
# the waiting posts go as one INSERT: one transaction, so their rows share one `time`.
#   - every value arrives verbatim (the text arrays' quoting: quotes, backslashes, braces,
#     commas, the word NULL, empty strings, emoji, newlines)
#   - one message too long in the batch: that post alone gets 400, the others 200; in a batch
#     of uploads, its file is removed and the other's kept
#   - a client that leaves while waiting: its post stores nothing, the others are stored
#   - HTTP/2 streams of one connection in one batch
# the waiting getimages share one COPY, the waiting getchatts another (behind the getchatts
#   that took the idle connection), each answered in full;
#   a reader that leaves mid-COPY: the other request runs it again.
use strict; use warnings;
use FindBin; BEGIN { push @INC, "$FindBin::Bin/lib" }
use Test::More;
use Chatterd::Nginx;
use Chatterd::NginxProcess;
use Chatterd::Http qw(http_get parse_http_response multipart_body);
use Chatterd::Db qw(sql sql_value truncate_chatts media_root media_files check_media_consistency);
use Chatterd::Upload qw(media text_part image_part);
use Chatterd::Wait qw(wait_until);
use File::Temp ();
use IO::Handle;
use IO::Select;
use IO::Socket::INET;
use JSON::PP ();
use Time::HiRes ();

plan skip_all => 'TEST_NGINX_PSQL is not set (run through make test)' unless $ENV{TEST_NGINX_PSQL};
# stub_status shows the waiting requests; the debug log, the shared COPYs.
my $binary = Chatterd::NginxProcess::binary_from_env();
my $features = `$binary -V 2>&1`;
plan skip_all => "$binary lacks --with-debug or --with-http_stub_status_module"
    unless $features =~ /--with-debug/ && $features =~ /--with-http_stub_status_module/;
$ENV{TEST_NGINX_PG_CONNINFO} //= 'host=/var/run/postgresql dbname=chatterdb user=chatter';

# HTTP/2 over TLS (curl's --parallel does not multiplex h2c streams), self-signed.
my $h2_port = Chatterd::NginxProcess::free_port();
my $certs = File::Temp->newdir;
system("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost"
       . " -keyout $certs/server.key -out $certs/server.crt >$certs/openssl.log 2>&1") == 0
    or die "openssl could not make a self-signed certificate\n";
media_root();   # sets $TEST_NGINX_MEDIA_ROOT for the configuration
my $ng = Chatterd::Nginx->start(
    http_config => <<"CONF",
chatterd_pg "\$TEST_NGINX_PG_CONNINFO";
chatterd_pg_pool 2;
# Four 64 KiB answer blocks: the six GETs that wait together below fit only if a waiting GET
# holds no answer memory (its answer starts with its rows, or is the reader's).
chatterd_answer_memory_max 256k;
server {
    listen 127.0.0.1:$h2_port ssl http2;
    ssl_certificate     $certs/server.crt;
    ssl_certificate_key $certs/server.key;
    location = /postchatt { chatterd postchatt; }
    location = /status { stub_status; }
}
CONF
    config => "location = /postchatt { chatterd postchatt; }\nlocation = /status { stub_status; }\n"
            . "location = /getimages { chatterd getimages; }\nlocation = /getchatts { chatterd getchatts; }\n"
            . "location = /postimages { chatterd postimages; chatterd_media_root \$TEST_NGINX_MEDIA_ROOT; }\n");
my $json = JSON::PP->new->utf8->canonical;

# Requests nginx is processing (stub_status "Writing", both servers), the status request
# itself included.
sub in_progress {
    my $res = http_get($ng->port, '/status');
    return ($res->{body} // '') =~ /Writing: (\d+)/ ? $1 : -1;
}

# A psql session holding a lock on chatts: EXCLUSIVE (the default: reads go on, INSERTs
# wait) or ACCESS EXCLUSIVE (reads wait too). With queued => 1, the lock is only asked for:
# it waits behind the locks taken before it (and statements asking after it wait behind it).
sub lock_table {
    my ($mode, %opt) = @_;
    $mode //= 'EXCLUSIVE';
    (my $lock = lc $mode) =~ s/(?:^| )(\w)/\u$1/g;
    my $granted = $opt{queued} ? 'false' : 'true';
    open(my $psql, '|-', split(' ', $ENV{TEST_NGINX_PSQL}), '-q', '-v', 'ON_ERROR_STOP=1')
        or die "psql: $!";
    $psql->autoflush(1);
    print $psql "BEGIN;\nLOCK TABLE chatts IN $mode MODE;\n";
    wait_until(sub { sql_value(qq{SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
                                  WHERE c.relname = 'chatts' AND l.mode = '${lock}Lock'
                                  AND l.granted = $granted}) == 1 })
        or die "the table lock was not taken\n";
    return $psql;
}

sub unlock_table {
    my ($psql) = @_;
    print $psql "COMMIT;\n";
    close $psql;
}

# chatterd's statements waiting for the table lock on the server.
sub waiting_on_lock {
    return sql_value(q{SELECT count(*) FROM pg_stat_activity
                       WHERE application_name = 'chatterd' AND wait_event_type = 'Lock'});
}

sub post_request {
    my ($username, $message) = @_;
    my $body = $json->encode({username => $username, message => $message});
    return "POST /postchatt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
         . "Content-Type: application/json\r\nContent-Length: " . length($body) . "\r\n\r\n$body";
}

sub send_get {
    my ($path) = @_;
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $ng->port, Proto => 'tcp')
        or die "connect: $!";
    print {$sock} "GET $path HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    return {sock => $sock, in => '', username => $path};
}

sub send_post {
    my ($username, $message) = @_;
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $ng->port, Proto => 'tcp')
        or die "connect: $!";
    print {$sock} post_request($username, $message);
    return {sock => $sock, in => '', username => $username, message => $message};
}

# Reads every client's answer to the end (Connection: close), leaving the sockets open;
# returns false on a timeout.
sub read_answers {
    my (@clients) = @_;
    my %open = map { ($_->{sock} => $_) } @clients;
    my $deadline = Time::HiRes::time() + 20;
    while (%open && Time::HiRes::time() < $deadline) {
        for my $sock (IO::Select->new(map { $_->{sock} } values %open)->can_read(0.5)) {
            my $n = sysread $sock, $open{$sock}{in}, 65536, length $open{$sock}{in};
            delete $open{$sock} unless $n;
        }
    }
    $_->{res} = parse_http_response($_->{in}) for @clients;
    return !%open;
}

sub answer_of { my $r = $_[0]{res}; return ($r->{status} // 'none') . ' ' . ($r->{body} // '') }

# Stored rows as "username|message" => number of rows, and the sizes of the groups of rows
# that share a transaction (same time), sorted.
sub stored {
    my %rows;
    $rows{"$_->[0]|$_->[1]"}++ for sql('SELECT username, message FROM chatts');
    my @groups = map { $_->[0] } sql('SELECT count(*) FROM chatts GROUP BY time ORDER BY 1');
    return (\%rows, \@groups);
}

# The first post holds the only connection, waiting on the lock; then @posts are sent and
# waited for until nginx has them all in progress. Returns the first client and the others.
sub post_behind_a_lock {
    my ($psql, @posts) = @_;
    my $first = send_post('first', 'holds the connection');
    ok(wait_until(sub { waiting_on_lock() == 1 }), 'the first statement waits for the lock');
    my @clients = map { send_post(@$_) } @posts;
    my $expected = 1 + @clients + 1;
    ok(wait_until(sub { in_progress() == $expected }), scalar(@clients) . ' more posts wait in the queue')
        or diag('in progress: ' . in_progress());
    return ($first, @clients);
}

my @tricky = (
    ['quote "double" and \'single\'', 'back\\slash\\'],
    ['{braces},commas', 'NULL'],
    ['', ''],
    ['NULL', '{"a","b"}'],
    ["\x{1F600} \x{30B8}\x{30E7}\x{30F3}", "tab\there\nnew line"],
    [' padded ', '\\"'],
    ["apostrophe's", ');DROP TABLE chatts;--'],
);
# Perl strings as the database returns them: UTF-8 bytes.
sub bytes_of { my $s = shift; utf8::encode($s); return $s }

subtest 'waiting posts are stored by one statement, every value verbatim' => sub {
    truncate_chatts();
    my $psql = lock_table();
    my ($first, @clients) = post_behind_a_lock($psql, @tricky);
    unlock_table($psql);
    ok(read_answers($first, @clients), 'every client answered');
    is(answer_of($clients[$_]), '200 {}', "post $_ of " . scalar(@clients) . ': 200 {}') for 0 .. $#clients;
    is(answer_of($first), '200 {}', 'the first post: 200 {}');
    my ($rows, $groups) = stored();
    my %expected = ('first|holds the connection' => 1);
    $expected{bytes_of($_->[0]) . '|' . bytes_of($_->[1])}++ for @tricky;
    is_deeply($rows, \%expected, 'the table holds every post once, verbatim');
    is_deeply($groups, [1, scalar @tricky], 'the waiting posts share one transaction');
};

subtest 'a message too long fails only its own post' => sub {
    truncate_chatts();
    $ng->mark_error_log;
    my $psql = lock_table();
    my ($first, @clients) = post_behind_a_lock($psql, ['a', 'one'], ['b', 'x' x 256], ['c', 'three']);
    unlock_table($psql);
    ok(read_answers($first, @clients), 'every client answered');
    is(answer_of($clients[1]), '400 "Message too long"', 'the long message: 400');
    is(answer_of($_), '200 {}', "post '$_->{username}': 200 {}") for $first, @clients[0, 2];
    my ($rows) = stored();
    is_deeply($rows, {'first|holds the connection' => 1, 'a|one' => 1, 'c|three' => 1},
              'the other posts are stored, the long one is not');
    my @logged = grep { /SQLSTATE 22001/ } $ng->error_log_since_mark;
    is(scalar @logged, 1, 'one error-log line for the long message');
};

# postimages in a batch that fails: the post with the long message gets 400 and leaves no
# file; the other one is stored with its file.
subtest 'a message too long in a batch of uploads leaves no file' => sub {
    truncate_chatts();
    my $psql = lock_table();
    my $first = send_post('first', 'holds the connection');
    ok(wait_until(sub { waiting_on_lock() == 1 }), 'the first statement waits for the lock');
    my @uploads = map {
        my ($username, $message, $seed) = @$_;
        my $body = multipart_body('XyZ', text_part(username => $username), text_part(message => $message),
                                  image_part(media(jpeg => 20_000, $seed)));
        my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $ng->port, Proto => 'tcp')
            or die "connect: $!";
        print {$sock} "POST /postimages HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
                    . "Content-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: "
                    . length($body) . "\r\n\r\n$body";
        {sock => $sock, in => '', username => $username};
    } ['long', 'x' x 256, 1], ['fits', 'ok', 2];
    ok(wait_until(sub { in_progress() == 1 + 2 + 1 }), 'two uploads wait in the queue')
        or diag('in progress: ' . in_progress());
    unlock_table($psql);
    ok(read_answers($first, @uploads), 'every client answered');
    is(answer_of($uploads[0]), '400 "Message too long"', 'the long message: 400');
    is(answer_of($uploads[1]), '200 {}', 'the other upload: 200 {}');
    my @rows = sql(q{SELECT username, imageurl FROM chatts WHERE imageurl IS NOT NULL});
    is(scalar @rows, 1, 'one row with an image');
    is($rows[0][0], 'fits', 'the one that fits');
    # Checked before the clients close: a refused upload's file is gone with its answer, even
    # while nginx lingers on the connection after a 400.
    my @files = media_files();
    is(scalar @files, 1, 'one file in the media root') or diag("@files");
    check_media_consistency('after the failed batch of uploads');
};

subtest 'a client that leaves while waiting stores nothing' => sub {
    truncate_chatts();
    my $psql = lock_table();
    my ($first, $stays, $leaves, $stays_too) =
        post_behind_a_lock($psql, ['stays', '1'], ['leaves', '2'], ['stays too', '3']);
    close $leaves->{sock};
    ok(wait_until(sub { in_progress() == 4 }), 'nginx noticed the client leave');
    unlock_table($psql);
    ok(read_answers($first, $stays, $stays_too), 'the others answered');
    is(answer_of($_), '200 {}', "post '$_->{username}': 200 {}") for $first, $stays, $stays_too;
    my ($rows, $groups) = stored();
    is_deeply($rows, {'first|holds the connection' => 1, 'stays|1' => 1, 'stays too|3' => 1},
              'no row for the client that left');
    is_deeply($groups, [1, 2], 'the two that stayed share one transaction');
};

subtest 'HTTP/2 streams of one connection in one batch' => sub {
    truncate_chatts();
    my $dir = File::Temp->newdir;
    my $psql = lock_table();
    my $first = send_post('first', 'holds the connection');
    ok(wait_until(sub { waiting_on_lock() == 1 }), 'the first statement waits for the lock');
    my @transfers;
    for my $i (1 .. 5) {
        push @transfers, '--next' if @transfers;
        push @transfers, '--http2', '-k', '-sS', '-H', 'Content-Type: application/json',
             '--data-binary', $json->encode({username => 'h2', message => "stream $i"}),
             '-o', "$dir/$i", '-w', '%{http_code} %{num_connects}\n', "https://127.0.0.1:$h2_port/postchatt";
    }
    open(my $curl, '-|', 'curl', '--parallel', '--no-progress-meter', '--max-time', '20', @transfers) or die "curl: $!";
    ok(wait_until(sub { in_progress() == 2 + 5 }), 'five streams wait in the queue')
        or diag('in progress: ' . in_progress());
    unlock_table($psql);
    my @written = <$curl>;
    close $curl;
    ok(read_answers($first), 'the first post answered');
    is(join(',', sort map { /^(\d+)/ } @written), '200,200,200,200,200', 'five streams: 200');
    my $connections = 0;
    $connections += (/ (\d+)$/)[0] for @written;
    is($connections, 1, 'over one connection');
    my ($rows, $groups) = stored();
    is_deeply($rows, {'first|holds the connection' => 1, map { ("h2|stream $_" => 1) } 1 .. 5},
              'five rows from the streams');
    is_deeply($groups, [1, 5], 'in one transaction');
};

subtest 'waiting getimages share one COPY, waiting getchatts another' => sub {
    truncate_chatts();
    sql(q{INSERT INTO chatts (username, message, imageurl) SELECT 'user ' || i, 'message ' || i,
          CASE WHEN i % 2 = 0 THEN 'http://localhost/media/' || i || '.jpeg' END
          FROM generate_series(1, 300) AS i});
    $ng->mark_error_log;
    my $psql = lock_table('ACCESS EXCLUSIVE');
    my $first = send_get('/getimages');
    ok(wait_until(sub { waiting_on_lock() == 1 }), 'the first COPY waits for the lock');
    # The getimages wait for the first one's COPY; the first getchatts takes the idle
    # connection, and the other two wait for it.
    my @images = map { send_get('/getimages') } 1 .. 3;
    my @chatts = map { send_get('/getchatts') } 1 .. 3;
    ok(wait_until(sub { waiting_on_lock() == 2 }), 'one getchatts waits for the lock too');
    ok(wait_until(sub { in_progress() == 1 + 6 + 1 }), 'five more GETs wait in the queue')
        or diag('in progress: ' . in_progress());
    unlock_table($psql);
    ok(read_answers($first, @images, @chatts), 'every client answered');
    like(answer_of($_), qr/^200 \[/, "$_->{username}: 200 with rows") for $first, @images, @chatts;
    my $rows = $json->decode($first->{res}{body});
    is(scalar @$rows, 300, 'getimages: 300 rows');
    is(scalar(grep { @$_ == 6 } @$rows), 300, 'of 6 elements each');
    is($_->{res}{body}, $first->{res}{body}, 'a shared getimages: the same rows') for @images;
    my $chatts = $json->decode($chatts[0]{res}{body});
    is_deeply($chatts, [map { [@$_[0 .. 3]] } @$rows], 'getchatts: the same rows, 4 elements each');
    is($_->{res}{body}, $chatts[0]{res}{body}, 'another getchatts: the same rows') for @chatts[1, 2];
    my @shared = map { /one shared statement for (\d+) requests/ ? $1 : () } $ng->error_log_since_mark;
    is_deeply([sort @shared], [2, 3], 'one COPY for the 3 waiting getimages, one for the 2 waiting getchatts');
};

# The reader of a shared COPY (the request that builds the JSON) leaves while the COPY runs:
# the other request runs the COPY again and gets every row. A second lock, asked for while the
# first is held, makes the shared COPY wait on the server once the first request's is done.
subtest 'a shared COPY whose reader leaves: the other request runs it again' => sub {
    truncate_chatts();
    sql(q{INSERT INTO chatts (username, message) SELECT 'user ' || i, 'message ' || i
          FROM generate_series(1, 50) AS i});
    $ng->mark_error_log;
    my $first_lock = lock_table('ACCESS EXCLUSIVE');
    my $first = send_get('/getimages');
    ok(wait_until(sub { waiting_on_lock() == 1 }), 'the first COPY waits for the lock');
    my ($reader, $other) = map { send_get('/getimages') } 1 .. 2;
    ok(wait_until(sub { in_progress() == 1 + 2 + 1 }), 'two more GETs wait in the queue')
        or diag('in progress: ' . in_progress());
    my $second_lock = lock_table('ACCESS EXCLUSIVE', queued => 1);
    unlock_table($first_lock);
    ok(read_answers($first), 'the first GET answered');
    like(answer_of($first), qr/^200 \[/, 'the first GET: 200 with rows');
    ok(wait_until(sub { waiting_on_lock() == 1 }), 'the shared COPY waits for the second lock');
    close $reader->{sock};
    ok(wait_until(sub { in_progress() == 1 + 1 }), 'nginx noticed the reader leave');
    unlock_table($second_lock);
    ok(read_answers($other), 'the other GET answered');
    is(answer_of($other), answer_of($first), 'with every row');
    my @shared = map { /one shared statement for (\d+) requests/ ? $1 : () } $ng->error_log_since_mark;
    is_deeply(\@shared, [2], 'after one shared COPY for both');
};

unlike(scalar $ng->error_log_text, qr/\[(?:alert|crit|emerg)\]/, 'no alert in the error log');
$ng->stop;
truncate_chatts();
done_testing();
