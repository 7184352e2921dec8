package Chatterd::Ports;

# TCP ports for the servers a suite starts (nginx, PostgreSQL clusters, a second listen):
#
#   use Chatterd::Ports qw(free_port);
#   my $port = free_port();
#
# A port is handed out when nothing on 127.0.0.1 holds it, and it stays this process's until it
# exits: a lock file (flock) under $LOCK_DIR tells every other suite, of any clone or user, to
# pass it by, even between a server's stop and its restart on the same port. The ports come from
# outside the kernel's range for the local ends of client connections
# (/proc/sys/net/ipv4/ip_local_port_range), which a load test can fill and which could otherwise
# take a port between its hand-out and the server's bind().

use strict;
use warnings;

use Exporter 'import';
use Fcntl qw(:flock);
use File::Basename ();
use IO::Socket::INET;

our @EXPORT_OK = qw(free_port);

our $LOCK_DIR = ($ENV{PG_BASE} // '/tmp/chatterd') . '/ports';    # beside scripts/pg.sh's clusters
my $LOWEST = 25500;    # above the scripts' fixed default ports (the highest: TEST_PG_PORT's 25439)
my %held;              # port -> its lock file's handle, held until exit

sub free_port {
    my ($first, $last) = _range();
    for (1 .. 1000) {
        my $port = $first + int rand($last - $first + 1);
        next if $held{$port};
        my $lock = _lock($port) or next;
        next unless _unbound($port);
        $held{$port} = $lock;
        return $port;
    }
    die "Chatterd::Ports: no free port in $first-$last\n";
}

# The band below the kernel's client port range, or above it when it starts too low.
sub _range {
    my ($client_low, $client_high) = (32768, 60999);
    if (open my $fh, '<', '/proc/sys/net/ipv4/ip_local_port_range') {
        ($client_low, $client_high) = split ' ', <$fh>;
    }
    return ($LOWEST, $client_low - 1) if $client_low > $LOWEST + 1000;
    return ($client_high + 1, 65535) if $client_high < 65535 - 1000;
    die "Chatterd::Ports: the client port range $client_low-$client_high leaves no room\n";
}

sub _lock {
    my ($port) = @_;
    # Sticky and writable by every user, like /tmp (and pg.sh's PG_BASE).
    for my $dir (grep { !-d } File::Basename::dirname($LOCK_DIR), $LOCK_DIR) {
        mkdir $dir and chmod 01777, $dir;
    }
    # Read-only when it exists: in a sticky folder, opening another user's file to write (or
    # with O_CREAT) can be refused even to root (fs.protected_regular).
    my $file = "$LOCK_DIR/$port";
    my $fh;
    open($fh, '<', $file) or open($fh, '>>', $file) or return undef;
    return flock($fh, LOCK_EX | LOCK_NB) ? $fh : undef;
}

# Nothing listens on the port or holds it otherwise (without SO_REUSEADDR a connection
# lingering in TIME_WAIT counts too).
sub _unbound {
    my ($port) = @_;
    my $sock = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $port, Proto => 'tcp')
        or return 0;
    close $sock;
    return 1;
}

1;
