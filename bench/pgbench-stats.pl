#!/usr/bin/perl
# Summarises one pgbench run in the format of wrk.lua's BENCH line:
#   pgbench-stats.pl PGBENCH_OUTPUT LOG_FILE...
#   -> BENCH <tps> <p50 ms> <p99 ms> <transactions> <failed> 0 0 <p90 ms> <max ms>
# tps is pgbench's own figure (without initial connection time). The latency percentiles come
# from the per-transaction logs (-l), whose third field is the transaction's latency in us:
#   client_id transaction_no time script_no time_epoch time_us [...]
use strict;
use warnings;

my ($output, @logs) = @ARGV;
die "usage: pgbench-stats.pl PGBENCH_OUTPUT LOG_FILE...\n" unless defined $output && @logs;

open my $fh, '<', $output or die "pgbench-stats.pl: $output: $!\n";
my ($tps, $failed) = (undef, 0);
while (<$fh>) {
    $tps = $1 if /^tps = ([\d.]+)/;
    $failed = $1 if /^number of failed transactions: (\d+)/;
}
close $fh;
die "pgbench-stats.pl: no tps in $output\n" unless defined $tps;

my @us;
for my $log (@logs) {
    open my $lf, '<', $log or die "pgbench-stats.pl: $log: $!\n";
    while (<$lf>) {
        my @f = split;
        push @us, $f[2] if @f >= 6;
    }
    close $lf;
}
die "pgbench-stats.pl: no transactions logged\n" unless @us;
@us = sort { $a <=> $b } @us;

# Nearest-rank percentile, as wrk reports them.
sub percentile {
    my ($p) = @_;
    my $rank = int($p / 100 * @us + 0.999999);
    $rank = 1 if $rank < 1;
    return $us[$rank - 1] / 1000;
}
printf "BENCH %.2f %.3f %.3f %d %d 0 0 %.3f %.3f\n", $tps, percentile(50), percentile(99), scalar @us, $failed,
    percentile(90), $us[-1] / 1000;
