#!/usr/bin/perl
# bench/list-delay.pl PORT_A PORT_B N: the cross-node visibility delay of a post (bench/run.sh,
# scenario list-delay). N times: a chatt is posted through node B; from its 200, node A's
# /getchatts is polled with If-None-Match (the tag A gave before the post) until it answers 200
# with the new message. Prints "DELAY <median ms> <p90 ms> <max ms> <N>" (each poll is a new
# connection, as an app's refresh would be; the poll loop adds its own round trip to each figure).
use strict;
use warnings;
use IO::Socket::INET;
use Time::HiRes qw(time);

my ($port_a, $port_b, $n) = @ARGV;
die "usage: $0 PORT_A PORT_B N\n" unless $n;

sub request {
    my ($port, $text) = @_;
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp')
        or die "connect $port: $!\n";
    print {$sock} $text;
    local $/;
    my $answer = <$sock> // '';
    close $sock;
    my ($status) = $answer =~ m{\AHTTP/1\.\d (\d{3})} or die "no answer from $port\n";
    my ($etag) = $answer =~ /^ETag: (\S+)\r$/mi;
    my ($body) = $answer =~ /\r\n\r\n(.*)\z/s;
    return ($status, $etag, $body // '');
}

sub get {
    my ($port, $etag) = @_;
    my $inm = defined $etag ? "If-None-Match: $etag\r\n" : '';
    return request($port, "GET /getchatts HTTP/1.1\r\nHost: localhost\r\n${inm}Connection: close\r\n\r\n");
}

my @delays;
for my $i (1 .. $n) {
    my (undef, $etag) = get($port_a);
    my $message = "visible $i " . int(rand(1e9));
    my $json = qq({"username":"delay","message":"$message"});
    my ($posted) = request($port_b, "POST /postchatt HTTP/1.1\r\nHost: localhost\r\n"
        . "Content-Type: application/json\r\nContent-Length: " . length($json)
        . "\r\nConnection: close\r\n\r\n$json");
    die "the post through node B answered $posted\n" unless $posted == 200;
    my $t0 = time;
    my $deadline = $t0 + 10;
    while (1) {
        my ($status, undef, $body) = get($port_a, $etag);
        last if $status == 200 && index($body, $message) >= 0;
        die "node A did not list the post within 10 s\n" if time > $deadline;
    }
    push @delays, (time - $t0) * 1000;
}
@delays = sort { $a <=> $b } @delays;
printf "DELAY %.2f %.2f %.2f %d\n", $delays[int($#delays / 2)], $delays[int($#delays * 0.9)],
    $delays[-1], scalar @delays;
