package Chatterd::Workers;

# What the fault and abuse suites (t/abuse_*.t) check of nginx's worker processes after each
# scenario, and scripts/soak.pl samples:
#
#   use Chatterd::Workers qw(worker_state settled_like check_workers);
#   my $before = worker_state($ng);          # {pid => {fds => n, rss_kib => n}}
#   ... the scenario ...
#   check_workers($ng, $before, 'label');    # ok()s: same workers, descriptors and RSS back,
#                                            # no crash or alert in the error log since the mark
#
# Descriptors must come back exactly (or below): an upload holds its socket and its media
# files, a query its place in the pool, and all of them end with the request. RSS gets a slack
# of RSS_SLACK_KIB (6 MiB) per worker, because memory a worker freed is not always returned
# to the kernel: glibc's malloc keeps freed chunks in its arenas (trimmed only from the top of
# the heap), each worker keeps up to 4 MiB of 64 KiB answer blocks for later getimages and
# getchatts answers (docs/OPERATIONS.md: Sizing), and nginx's own pools and buffers of the
# connections of a scenario come from the same heap. A leak per request grows beyond that within
# a scenario of hundreds of requests; the baseline is taken after a warm-up that fills the caches
# once.

use strict;
use warnings;

use Exporter 'import';
use Test::More ();

use Chatterd::Wait qw(wait_until);

our @EXPORT_OK = qw(pid_fds pid_rss_kib worker_state settled_like check_workers open_in RSS_SLACK_KIB);

use constant RSS_SLACK_KIB => 6 * 1024;
# Under AddressSanitizer (make test-asan) freed memory waits in its quarantine: RSS says nothing
# about leaks there (the leak check does), so only descriptors are compared.
use constant RSS_CHECKED => !$ENV{CHATTERD_TEST_SANITIZED};

sub pid_fds {
    my ($pid) = @_;
    opendir(my $dh, "/proc/$pid/fd") or return undef;
    return scalar grep { /^\d+$/ } readdir $dh;
}

sub pid_rss_kib {
    my ($pid) = @_;
    open(my $fh, '<', "/proc/$pid/status") or return undef;
    while (my $line = <$fh>) { return $1 if $line =~ /^VmRSS:\s+(\d+) kB/ }
    return undef;
}

# What the workers of $ng hold open in the directory $dir: the directory itself, once for each
# descriptor of it, and its files (an upload in progress holds an O_TMPFILE file there, shown as
# "<dir>/#<inode> (deleted)", or a hidden temporary file).
sub open_in {
    my ($ng, $dir) = @_;
    my @held;
    for my $pid ($ng->worker_pids) {
        opendir(my $dh, "/proc/$pid/fd") or next;
        push @held, grep { $_ eq $dir || index($_, "$dir/") == 0 }
                    map { readlink("/proc/$pid/fd/$_") // () } grep { /^\d+$/ } readdir $dh;
    }
    return @held;
}

# {pid => {fds, rss_kib}} for every worker of $ng (a Chatterd::Nginx).
sub worker_state {
    my ($ng) = @_;
    return { map { ($_ => { fds => pid_fds($_), rss_kib => pid_rss_kib($_) }) } $ng->worker_pids };
}

# True when every worker of $before is still there with no more descriptors than then and an
# RSS within the slack; waits up to $seconds (default 10) for it. Returns the last state.
sub settled_like {
    my ($ng, $before, $seconds) = @_;
    my $now;
    my $ok = wait_until(sub {
        $now = worker_state($ng);
        !grep {
            my $n = $now->{$_};
            !$n || !defined $n->{fds} || $n->{fds} > $before->{$_}{fds}
                || (RSS_CHECKED && $n->{rss_kib} > $before->{$_}{rss_kib} + RSS_SLACK_KIB)
        } keys %$before;
    }, $seconds // 10);
    return ($ok, $now);
}

# The ok()s every abuse scenario ends with.
sub check_workers {
    my ($ng, $before, $label, %opt) = @_;
    my $log = $ng->error_log_since_mark;
    my @bad = grep { /exited on signal|\[alert\]|\[crit\]|\[emerg\]/ } split /\n/, $log;
    Test::More::ok(!@bad, "$label: no worker exited on a signal, no alert")
        or Test::More::diag(join "\n", @bad[0 .. ($#bad < 9 ? $#bad : 9)]);
    Test::More::is_deeply([sort keys %{ worker_state($ng) }], [sort keys %$before],
                          "$label: the same worker processes");
    my ($ok, $now) = settled_like($ng, $before, $opt{seconds});
    my $text = join ', ', map {
        sprintf('%d: fds %d->%s, RSS %d->%s KiB', $_, $before->{$_}{fds}, $now->{$_}{fds} // 'gone',
                $before->{$_}{rss_kib}, $now->{$_}{rss_kib} // 'gone')
    } sort keys %$before;
    Test::More::ok($ok, "$label: worker descriptors and RSS back ($text)");
    return $now;
}

1;
