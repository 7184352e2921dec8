#!/usr/bin/perl
# make bench's client of whole uploads (bench/run.sh: the post-tus scenario), run by wrk_run in
# wrk's place (BENCH_LOAD) with wrk's arguments: -cCONNS -dSECONDS URL (the others ignored).
# Each of CONNS processes sends one upload after the other, each on its own keep-alive
# connection, for SECONDS; the measured unit is a whole upload of BENCH_BODY's bytes:
#   BENCH_METHOD=TUS  tus 1.0.0: POST URL (Upload-Length), then PATCHes of BENCH_CHUNK bytes
#                     (default 1 MiB) to its Location, sequentially, each answered before the next
#   BENCH_METHOD=PUT  one PUT URL of the whole body (nginx DAV)
# It prints wrk.lua's line, counting uploads where wrk counts requests:
#   BENCH <uploads/s> <p50 ms> <p99 ms> <uploads> <non-2xx> <socket errors> 0 <p90 ms> <max ms>
use strict; use warnings;
use IO::Socket::INET;
use Time::HiRes qw(time);
use File::Temp ();

my ($conns, $seconds, $url) = (1, 5, undef);
while (my $arg = shift @ARGV) {
    if ($arg =~ /\A-c(\d+)\z/) { $conns = $1 }
    elsif ($arg =~ /\A-d(\d+)s?\z/) { $seconds = $1 }
    elsif ($arg =~ /\A(-s|--timeout)\z/) { shift @ARGV }
    elsif ($arg =~ /\A-/) { }
    else { $url = $arg }
}
my ($host, $port, $path) = ($url // '') =~ m{\Ahttp://([^/:]+):(\d+)(/.*)\z} or die "usage: tus.pl -cN -dS http://host:port/path\n";
my $method = $ENV{BENCH_METHOD} // 'TUS';
my $chunk  = $ENV{BENCH_CHUNK} // 1 << 20;
my $body = do { open my $fh, '<:raw', $ENV{BENCH_BODY} or die "BENCH_BODY: $!"; local $/; <$fh> };
my $size = length $body;

# One request on $sock; returns (status, headers hashref). Dies on a socket error.
sub exchange {
    my ($sock, $head, $offset, $length) = @_;
    my $data = $head;
    for (my $sent = 0; $sent < length $data;) {
        my $n = syswrite($sock, $data, length($data) - $sent, $sent) // die "write: $!\n";
        $sent += $n;
    }
    for (my $sent = 0; $sent < $length;) {
        my $n = syswrite($sock, $body, $length - $sent, $offset + $sent) // die "write: $!\n";
        $sent += $n;
    }
    my ($in, $end) = ('', -1);
    while (($end = index $in, "\r\n\r\n") < 0) {
        sysread($sock, $in, 65536, length $in)
            or die "read: closed after " . ($head =~ /\A(\S+ \S+)/)[0] . " ($offset)\n";
    }
    my ($status_line, @lines) = split /\r\n/, substr($in, 0, $end);
    my %h = map { /\A([^:]+):\s*(.*)\z/ ? (lc $1 => $2) : () } @lines;
    my $left = ($h{'content-length'} // 0) - (length($in) - $end - 4);
    while ($left > 0) { my $n = sysread($sock, my $buf, $left) or die "read: closed\n"; $left -= $n }
    my ($status) = $status_line =~ /\AHTTP\/1\.\d (\d{3})/ or die "bad status line\n";
    return ($status, \%h);
}

sub one_upload {
    my ($sock) = @_;
    my $common = "Host: $host:$port\r\n";
    if ($method eq 'PUT') {
        my ($status) = exchange($sock, "PUT $path HTTP/1.1\r\n${common}Content-Type: video/mp4\r\n"
                                        . "Content-Length: $size\r\n\r\n", 0, $size);
        return $status =~ /\A2/;
    }
    $common .= "Tus-Resumable: 1.0.0\r\n";
    my ($status, $h) = exchange($sock, "POST $path HTTP/1.1\r\n${common}Upload-Length: $size\r\n"
                                       . "Content-Length: 0\r\n\r\n", 0, 0);
    return 0 unless $status == 201 && $h->{location};
    my ($upload) = $h->{location} =~ m{\A(?:https?://[^/]+)?(/.*)\z} or return 0;
    for (my $offset = 0; $offset < $size; $offset += $chunk) {
        my $n = $size - $offset < $chunk ? $size - $offset : $chunk;
        ($status) = exchange($sock, "PATCH $upload HTTP/1.1\r\n${common}"
                             . "Content-Type: application/offset+octet-stream\r\nUpload-Offset: $offset\r\n"
                             . "Content-Length: $n\r\n\r\n", $offset, $n);
        return 0 unless $status == 204;
    }
    return 1;
}

my $dir = File::Temp->newdir;
my $start = time;
my $deadline = $start + $seconds;
my @pids;
for my $c (1 .. $conns) {
    my $pid = fork // die "fork: $!";
    if ($pid) { push @pids, $pid; next }
    my ($done, $bad, $errors, @ms) = (0, 0, 0);
    my $sock;
    while (time < $deadline) {
        $sock //= IO::Socket::INET->new(PeerAddr => $host, PeerPort => $port, Proto => 'tcp');
        unless ($sock) { $errors++; next }
        my $t0 = time;
        my $ok = eval { one_upload($sock) };
        if (!defined $ok) { $errors++; print STDERR "tus.pl: client $c: $@"; undef $sock; next }
        $ok ? push(@ms, (time - $t0) * 1000) : $bad++;
        $done++;
    }
    open my $out, '>', "$dir/$c" or die; print {$out} "$bad $errors\n", map { "$_\n" } @ms; close $out;
    exit 0;
}
waitpid $_, 0 for @pids;
my $elapsed = time - $start;
my ($bad, $errors, @ms) = (0, 0);
for my $c (1 .. $conns) {
    open my $in, '<', "$dir/$c" or next;
    my ($b, $e) = split ' ', scalar <$in>;
    $bad += $b; $errors += $e;
    chomp(my @lines = <$in>);
    push @ms, @lines;
}
@ms = sort { $a <=> $b } @ms;
my $pct = sub { @ms ? $ms[int($_[0] / 100 * $#ms + 0.5)] : 0 };
printf "uploads of %d bytes (%s): %d in %.2f s\n", $size, $method, scalar @ms, $elapsed;
printf "BENCH %.2f %.3f %.3f %d %d %d 0 %.3f %.3f\n", @ms / $elapsed, $pct->(50), $pct->(99),
    scalar(@ms) + $bad, $bad, $errors, $pct->(90), @ms ? $ms[-1] : 0;
