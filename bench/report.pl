#!/usr/bin/perl
# bench/REPORT.md and the charts' data from one `make bench` run.
#   report.pl OUT_DIR REPORT_MD RATIOS_DAT LATENCY_DAT
# Reads OUT_DIR/results.tsv (one line per measured run, written by bench/lib.sh's record):
#   rep scenario system connections req/s p50_ms p90_ms p99_ms max_ms requests non2xx
#   socket_errors bytes_per_request server_cpu_ms_per_request db_cpu_ms_per_request
#   busiest_worker_percent (empty when not measured)
# OUT_DIR/memory.tsv (memory_run):
#   system processes idle_rss_kB peak_rss_kB written_bytes uploads_stored stored_bytes_per_upload req/s
# and OUT_DIR/info.txt (machine and run facts, "key<TAB>value"; other lines are notes).
# Every figure is the median over the runs; ratios are taken between medians.
# Writes RATIOS_DAT (+ .gp, its x tic labels) for ratios.gnuplot and LATENCY_DAT (+ .gp, the
# panels) for latency.gnuplot.
use strict;
use warnings;
use List::Util qw(sum);

my ($out, $report, $dat, $latdat) = @ARGV;
die "usage: report.pl OUT_DIR REPORT_MD RATIOS_DAT LATENCY_DAT\n" unless defined $latdat;

# ---------------------------------------------------------------- inputs
my (%runs, %info, @notes, %conns);
open my $fh, '<', "$out/results.tsv" or die "report.pl: $out/results.tsv: $!\n";
while (<$fh>) {
    chomp;
    my %r;
    (my $rep, my $scenario, my $system, my $c, @r{qw(rps p50 p90 p99 max requests non2xx errors bytes cpu db busy)})
        = split /\t/, $_, -1;
    push @{ $runs{$scenario}{$system}{$c} }, \%r;
    $conns{$c} = 1;
}
close $fh;
my @conns = sort { $a <=> $b } keys %conns;

if (open my $ih, '<', "$out/info.txt") {
    while (<$ih>) {
        chomp;
        if (/^([^\t]+)\t(.*)$/) { $info{$1} = $2 } else { push @notes, $_ }
    }
    close $ih;
}

my @memory;
if (open my $mh, '<', "$out/memory.tsv") {
    while (<$mh>) {
        chomp;
        my %m;
        @m{qw(system processes idle hwm written stored per_upload rps)} = split /\t/;
        push @memory, \%m;
    }
    close $mh;
}

# ---------------------------------------------------------------- what is compared with what
# The targets of issues 14, 21 (post-meta) and 22 (post-tus). key, label; target => [scenario, system, rate ratio at least, p99 ratio
# at most (posts only)] of the baseline the target is set against; at => the connections where
# the target holds (others are informative); others => [[scenario, system]] informative
# baselines. pgbench's INSERT run ("insert") is the baseline of postimages without media and
# postchatt.
my @scenarios = (
    { key => 'post-none', label => 'postimages, no media (246 B form)',
      target => ['insert', 'pgbench', 1.0, 2.0], others => [['post-none', 'dav']] },
    { key => 'postchatt', label => 'postchatt (JSON)',
      target => ['insert', 'pgbench', 1.0, 2.0], others => [] },
    { key => 'post-img', label => 'postimages, 1 MiB JPEG',
      target => ['post-img', 'dav', 0.95], others => [['post-img', 'nofsync']] },
    { key => 'post-meta', label => 'postimages, phone photo (~1.5 MB JPEG, tags stripped)',
      target => ['post-meta', 'keep', 0.98], others => [] },
    { key => 'post-vid', label => 'postimages, 1 MiB JPEG + 8 MiB MP4',
      target => ['post-vid', 'dav', 0.95], others => [['post-vid', 'nofsync']] },
    { key => 'post-tus', label => 'tus upload, 9 MiB MP4 in 1 MiB PATCHes (issue 22; uploads/s)',
      target => ['post-tus', 'dav', 0.9], others => [['post-tus', 'nofsync']] },
    { key => 'get-1k', label => 'getimages, 1,000 rows', at => [8, 64],
      target => ['get-1k', 'pgbench', 1.0], others => [['get-1k', 'static']] },
    { key => 'get-10k', label => 'getimages, 10,000 rows', at => [8, 64],
      target => ['get-10k', 'static', 1.0], others => [['get-10k', 'pgbench']] },
    { key => 'get-100k', label => 'getimages, 100,000 rows', at => [8, 64],
      target => ['get-100k', 'static', 1.0], others => [] },
    { key => 'get-304', label => 'getimages 304 (If-None-Match), 100,000 rows', at => [8, 64],
      target => ['get-304', 'static', 1.0], others => [] },
    { key => 'media', label => 'GET /media, 1 MiB JPEG',
      target => ['media', 'static', 0.95], others => [] },
);
my %chart_label = ('post-none' => 'postimages\nno media', 'post-img' => 'postimages\n1 MiB',
                   'post-meta' => 'postimages\nphoto, strip',
                   'post-vid' => 'postimages\n9 MiB (8 conns)', 'post-tus' => 'tus upload\n9 MiB (8 conns)', 'get-1k' => 'getimages\n1,000 rows',
                   'get-10k' => 'getimages\n10,000 rows', 'get-100k' => 'getimages\n100,000 rows',
                   'get-304' => 'getimages 304\n100,000 rows', 'postchatt' => 'postchatt',
                   'media' => 'GET /media\n1 MiB');

# ---------------------------------------------------------------- statistics
sub median {
    my @v = sort { $a <=> $b } @_;
    return undef unless @v;
    my $m = int(@v / 2);
    return @v % 2 ? $v[$m] : ($v[$m - 1] + $v[$m]) / 2;
}
# Medians of one (scenario, system, connections): undef when it was not measured.
sub stats {
    my ($scenario, $system, $c) = @_;
    my $r = $runs{$scenario}{$system}{$c} or return undef;
    my %s = map { my $k = $_; ($k => median(map { $_->{$k} } @$r)) } qw(rps p50 p90 p99 max bytes);
    for my $k (qw(cpu db busy)) {   # only where it was measured
        $s{$k} = median(grep { defined && length } map { $_->{$k} } @$r);
    }
    $s{mbs} = $s{bytes} ? $s{rps} * $s{bytes} / 1e6 : undef;
    $s{runs} = @$r;
    $s{failed} = sum(map { $_->{non2xx} + $_->{errors} } @$r);
    return \%s;
}
sub ratio {
    my ($a, $b, $k) = @_;
    $k //= 'rps';
    return undef unless $a && $b && $b->{$k} > 0;
    return $a->{$k} / $b->{$k};
}

# ---------------------------------------------------------------- formatting
sub num {   # 1,234 / 12.3 / 1.23
    my ($v) = @_;
    return '—' unless defined $v;
    my $s = $v >= 100 ? sprintf('%.0f', $v) : $v >= 10 ? sprintf('%.1f', $v) : sprintf('%.2f', $v);
    1 while $s =~ s/^(\d+)(\d{3})/$1,$2/;
    return $s;
}
sub ms {
    my ($v) = @_;
    return '—' unless defined $v;
    return $v >= 100 ? sprintf('%.0f', $v) : $v >= 10 ? sprintf('%.1f', $v) : sprintf('%.2f', $v);
}
sub ratio_text { my ($r) = @_; defined $r ? sprintf('%.2f', $r) : '—' }
sub cpu_text {   # "server + PostgreSQL" CPU ms per request
    my ($s) = @_;
    return '—' unless defined $s->{cpu} || defined $s->{db};
    return sprintf('%s + %s', defined $s->{cpu} ? sprintf('%.3f', $s->{cpu}) : '—',
                   defined $s->{db} ? sprintf('%.3f', $s->{db}) : '—');
}
# met/missed and by how much: at least TARGET (or, with $most, at most TARGET)
sub verdict {
    my ($value, $target, $most) = @_;
    return 'not measured' unless defined $value;
    if ($most) {
        return $value <= $target ? '**met**' : sprintf('**missed** (needs ÷%.1f)', $value / $target);
    }
    return $value >= $target ? sprintf('**met** (+%.0f%%)', ($value / $target - 1) * 100)
                             : sprintf('**missed** (needs ×%.2f)', $target / $value);
}
sub system_name {
    my ($scenario, $system) = @_;
    return 'chatterd' if $system eq 'chatterd';
    return "peer (" . ($info{peer_name} // $info{peer}) . ")" if $system eq 'peer';
    return 'pgbench INSERT' if $system eq 'pgbench' && $scenario eq 'insert';
    return 'pgbench SELECT' if $system eq 'pgbench';
    return 'nginx DAV PUT' if $system eq 'dav';
    return 'chatterd, chatterd_media_fsync off' if $system eq 'nofsync';
    return 'chatterd, chatterd_media_metadata keep' if $system eq 'keep';
    return 'nginx static' if $system eq 'static';
    return $system;
}
# The lines of one scenario: [system, scenario] of chatterd, its target baseline, the others, the peer.
sub lines_of {
    my ($sc) = @_;
    return (['chatterd', $sc->{key}], [$sc->{target}[1], $sc->{target}[0]],
            (map { [$_->[1], $_->[0]] } @{ $sc->{others} }), ['peer', $sc->{key}]);
}

# ---------------------------------------------------------------- REPORT.md
my @md;
my $elapsed = $info{elapsed} // 0;
push @md, '# chatterd benchmark', '',
    '_Generated by `make bench` (bench/run.sh); rewritten by every run. Method at the end._', '';
push @md, (defined $info{note} ? ("**Note:** $info{note}", '') : ()),
    ($info{quick} ? ('**A quick check (BENCH_QUICK=1): one short run per scenario, not a measurement.**', '') : ());
push @md, '## Machine and run', '',
    '| | |', '|---|---|',
    (map { "| $_->[0] | $_->[1] |" }
        ['date', $info{date} // '?'], ['cores (nproc)', $info{nproc} // '?'], ['CPU', $info{cpu} // '?'],
        ['memory', $info{memory} // '?'], ['kernel', $info{kernel} // '?'], ['nginx', $info{nginx} // '?'],
        ['PostgreSQL', $info{postgresql} // '?'], ['wrk', $info{wrk} // '?'],
        ['chatterd commit', $info{commit} // '?'],
        ['runs per scenario', sprintf('%s × %s s (after a %s s warm-up), medians reported',
            $info{runs} // '?', $info{seconds} // '?', $info{warmup} // '?')],
        ['connections', join(', ', @conns) . ' (wrk -t1 -cN --latency; pgbench -c N -j 2 -M prepared); '
            . 'the 9 MiB uploads, the peer and the memory run at 8'],
        ['load average at the end', $info{load} // '?'],
        ['peer', $info{peer} // 'none'],
        ['duration of this run', sprintf('%d min %02d s (build, setup, scenarios, memory run)',
            $elapsed / 60, $elapsed % 60)]),
    '';

# Targets first: they are what the run is for.
push @md, '## Targets (issues 14, 20, 21 and 22)', '',
    'Rate: chatterd\'s req/s ÷ the baseline\'s at the same connections; tail (inserts without media): '
    . 'chatterd\'s p99 ÷ pgbench\'s. Where a target only holds at some concurrencies, the others are '
    . 'shown as _informative_.', '',
    '| scenario | conns | chatterd req/s | baseline req/s | ratio | required | rate | chatterd p99 ms | baseline p99 ms | p99 ratio | tail |',
    '|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---|';
my (%ratio_at, @tally);
for my $sc (@scenarios) {
    my ($tscen, $tsys, $want, $p99_most) = @{ $sc->{target} };
    for my $c (@conns) {
        my $s = stats($sc->{key}, 'chatterd', $c) or next;
        my $b = stats($tscen, $tsys, $c);
        my $r = ratio($s, $b);
        $ratio_at{ $sc->{key} }{$c} = $r;
        my $holds = !$sc->{at} || grep { $_ == $c } @{ $sc->{at} };
        # A run where requests failed measured something else (404s, timeouts): no verdict.
        my $failed = $s->{failed} + ($b ? $b->{failed} : 0);
        my $invalid = $failed ? sprintf('⚠ not valid: %d requests failed', $failed) : undef;
        my $rate = !$holds ? '_informative_' : $invalid // verdict($r, $want);
        my ($pr, $tail) = (undef, '');
        if ($p99_most) {
            $pr = ratio($s, $b, 'p99');
            $tail = $invalid // verdict($pr, $p99_most, 1);
            push @tally, $tail;
        }
        push @tally, $rate if $holds;
        push @md, sprintf('| %s ÷ %s | %d | %s | %s | %s | ≥ %.2f | %s | %s | %s | %s | %s |',
            $sc->{label}, system_name($tscen, $tsys), $c, num($s->{rps}), num($b && $b->{rps}),
            ratio_text($r), $want, $rate, ms($s->{p99}), ms($b && $b->{p99}),
            $p99_most ? ratio_text($pr) . " (≤ $p99_most)" : '', $tail);
    }
}
my %mem = map { $_->{system} => $_ } @memory;
if (my $m = $mem{chatterd}) {
    my $growth = ($m->{hwm} - $m->{idle}) / 1024;
    my $amp = $m->{stored} ? $m->{written} / ($m->{stored} * $m->{per_upload}) : undef;
    push @md, sprintf('| worker peak RSS growth, 8 × 10 MiB uploads (sum of %d workers) | 8 | %.1f MiB | | | < 4 MiB | %s | | | | |',
        $m->{processes}, $growth,
        $growth < 4 ? sprintf('**met** (%.1f MiB to spare)', 4 - $growth)
                    : sprintf('**missed** by %.1f MiB', $growth - 4));
    push @md, sprintf('| disk bytes written per uploaded media byte | 8 | %s | | | ≤ 1.10 | %s | | | | |',
        defined $amp ? sprintf('%.3f', $amp) : '—',
        !defined $amp ? 'not measured'
            : $amp <= 1.1 ? sprintf('**met** (%.0f%% under)', (1 - $amp / 1.1) * 100)
                          : sprintf('**missed** by %.0f%%', ($amp / 1.1 - 1) * 100));
}
push @md, '', sprintf('Of the issue\'s %d rate and tail targets measured here: %d met, %d missed, %d not valid.',
    scalar @tally, scalar(grep { /met/ } @tally), scalar(grep { /missed/ } @tally),
    scalar(grep { /not valid/ } @tally)), '';

# Every measurement.
push @md, '## Results (medians)', '',
    'MB/s counts request bodies for uploads and response bodies for downloads (10⁶ bytes). '
    . '"chatterd ÷" is chatterd\'s req/s over that line\'s req/s. "CPU ms/req" is the CPU time the '
    . 'server\'s processes (nginx workers, the peer\'s processes) + PostgreSQL\'s spent per request '
    . 'during the measured seconds: unlike req/s, it hardly moves with the other load on the machine. '
    . '"busiest worker" is the share of the 2 nginx workers\' CPU that the busier one spent (50 %: even; '
    . '100 %: every connection on one worker).', '',
    '| scenario | conns | server | req/s | p50 ms | p90 ms | p99 ms | max ms | MB/s | CPU ms/req: server + PostgreSQL | busiest worker | chatterd ÷ |',
    '|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|';
my $failures = 0;
my @latency;   # [scenario label, [[row label, p50, p90, p99, max]...]]
for my $sc (@scenarios) {
    my $first = 1;
    my @rows;
    for my $c (@conns) {
        my $cs = stats($sc->{key}, 'chatterd', $c);
        for my $l (lines_of($sc)) {
            my ($system, $scenario) = @$l;
            my $s = stats($scenario, $system, $c) or next;
            my $flag = '';
            if ($s->{failed}) {
                $flag = sprintf(' ⚠ %d failed', $s->{failed});
                $failures++;
            }
            push @md, sprintf('| %s | %d | %s%s | %s | %s | %s | %s | %s | %s | %s | %s | %s |',
                $first ? $sc->{label} : '', $c, system_name($scenario, $system), $flag, num($s->{rps}),
                ms($s->{p50}), ms($s->{p90}), ms($s->{p99}), ms($s->{max}), num($s->{mbs}), cpu_text($s),
                defined $s->{busy} && length $s->{busy} ? "$s->{busy} %" : '',
                $system eq 'chatterd' ? '' : ratio_text(ratio($cs, $s)));
            push @rows, ["$c $system", @$s{qw(p50 p90 p99 max)}];
            $first = 0;
        }
    }
    push @latency, [$sc->{label}, \@rows] if @rows;
}
push @md, '', $failures
    ? '⚠ marks servers that answered non-2xx or had socket errors in some run: see bench/out/logs/.'
    : 'Every request of every run was answered 2xx, with no socket errors.';
push @md, map { "- $_" } @notes;
push @md, '';

if (@memory) {
    push @md, '## Memory and disk: 8 concurrent uploads of 1 MiB JPEG + 9 MiB MP4', '',
        sprintf('wrk -c8 for %s s, on freshly started nginx workers after a warm-up of the same uploads '
            . '(workers that ran the 256-connection scenarios keep those buffers resident). Peak RSS: VmHWM after `echo 5 > /proc/PID/clear_refs`, summed over the '
            . 'processes, against their VmRSS at idle just before. Written: `/proc/PID/io` write_bytes '
            . '(counted when the page cache is dirtied) over the run, divided by uploads stored × bytes stored '
            . 'per upload (media bytes for chatterd and the peer: rows with a video; the whole body for DAV: '
            . 'files created).', $info{seconds} // '?'), '',
        '| server | processes | req/s | idle RSS MiB | peak RSS MiB | growth MiB | uploads stored | MiB written | written ÷ stored |',
        '|---|---:|---:|---:|---:|---:|---:|---:|---:|';
    for my $m (@memory) {
        push @md, sprintf('| %s | %d | %s | %.1f | %.1f | %.1f | %d | %.0f | %s |',
            system_name('memory', $m->{system}), $m->{processes}, num($m->{rps}), $m->{idle} / 1024,
            $m->{hwm} / 1024, ($m->{hwm} - $m->{idle}) / 1024, $m->{stored}, $m->{written} / 1048576,
            $m->{stored} ? sprintf('%.3f', $m->{written} / ($m->{stored} * $m->{per_upload})) : '—');
    }
    push @md, '';
}

push @md, '## Charts', '', '![chatterd / baseline per scenario and concurrency](ratios.png)', '',
    'chatterd\'s req/s over the baseline its target is set against, at each concurrency; red marks are '
    . 'the targets. Bottom (when a peer ran): chatterd over the peer at 8 connections, log scale.', '',
    '![latency per scenario and concurrency](latency.png)', '',
    'p50, p90, p99 and max latency (ms, log scale) of chatterd and its baselines, per scenario and '
    . 'concurrency (medians of the runs). wrk measures from the request\'s first byte sent to the '
    . 'answer\'s last byte received; pgbench\'s per-transaction log from the statement\'s start to its result.', '';

push @md, '## Method', '',
    '- One nginx (`worker_processes 2`, `access_log off`, sendfile) serves chatterd as nginx.conf.example '
    . 'configures it (`chatterd_pg_pool 4`, `reuseport`) on one port and the baselines on another; PostgreSQL 15 '
    . '(scripts/pg.sh, default durability, `max_connections` 400 for pgbench\'s 256 clients) on the same '
    . 'machine, chatterd and pgbench on its unix socket, the peer over TCP. Config: nginx.conf.example through '
    . 'scripts/nginx-conf.pl, with the baselines\' server from bench/baselines.conf (bench/lib.sh nginx_start).',
    '- Payloads (bench/gen.pl, fixed seed): a 1 MiB JPEG and 8/9 MiB MP4s of pseudo-random bytes after '
    . 'real headers, multipart bodies with a fixed boundary as the apps send them.',
    '- Every run: warm-up, then the measured run; before each (warm-up and run) of an insert scenario '
    . 'the table is truncated and the media directories emptied; getimages re-seeds its rows '
    . '(bench/seed.sql) before each. The scenarios of one concurrency run one after the other, then the '
    . 'next concurrency, then the next run: chatterd and its baselines are minutes apart at most.',
    '- Uploaded files are emptied (truncated) and set aside, never deleted, until the end: on ext4 '
    . 'without a journal, as here, creating a file skips every inode freed in the last minutes one by one, '
    . 'so deleting thousands of files before a run slows the next run\'s file creations (it cut DAV PUT '
    . 'of a 246 B body from ~12,000 to ~3,000 req/s).',
    '- Baselines: DAV `PUT` of the same body into a directory (nginx writes it to a temporary file on '
    . 'the same file system, then renames it to a fresh name per request, as chatterd creates a new '
    . 'file per upload); pgbench running chatterd\'s INSERT (bench/pgbench-insert.sql, one run serves '
    . 'postchatt and postimages without media) and SELECT (bench/pgbench-select.sql) at the same client '
    . 'count, latencies from its per-transaction log; nginx static serving the getimages JSON chatterd '
    . 'produced (saved to files) and the 1 MiB JPEG.',
    '- The machine has 2 cores shared by wrk, nginx, PostgreSQL (and the peer), and by whatever else runs '
    . 'on it: absolute numbers move between runs; the ratios, measured minutes apart in the same run, '
    . 'are what the targets use, and CPU ms/req tells the cost apart from the noise.',
    '- Raw per-run numbers: bench/out/results.tsv; wrk and pgbench outputs: bench/out/logs/.',
    '- How connections spread over nginx\'s workers (default accept, `accept_mutex on`, `reuseport`): '
    . 'bench/accept.sh; why targets were missed and what changed after which measurements: '
    . 'bench/PROFILE.md (written by hand, not regenerated).', '';

open my $rh, '>', $report or die "report.pl: $report: $!\n";
print {$rh} join("\n", @md);
close $rh;

# ---------------------------------------------------------------- chart data
# ratios: index, "label", ratio at 8, 64, 256 connections, target, ratio vs the peer at 8
open my $dh, '>', $dat or die "report.pl: $dat: $!\n";
my $i = 0;
my @tics;
for my $sc (@scenarios) {
    my @v = ((map { $ratio_at{ $sc->{key} }{$_} } 8, 64, 256), $sc->{target}[2],
             ratio(stats($sc->{key}, 'chatterd', 8), stats($sc->{key}, 'peer', 8)));
    push @tics, sprintf('"%s" %d', $chart_label{ $sc->{key} }, $i);
    printf {$dh} "%d \"%s\" %s\n", $i++, $sc->{key},
        join(' ', map { defined $_ ? sprintf('%.4f', $_) : 'NaN' } @v);
}
close $dh;
open my $gh, '>', "$dat.gp" or die "report.pl: $dat.gp: $!\n";
print {$gh} 'set xtics (', join(', ', @tics), ")\n";
close $gh;

# latency: one data block per scenario ("conns system" p50 p90 p99 max), one panel each.
open my $lh, '>', $latdat or die "report.pl: $latdat: $!\n";
open my $lg, '>', "$latdat.gp" or die "report.pl: $latdat.gp: $!\n";
printf {$lg} "set multiplot layout %d,2\n", (@latency + 1) / 2;
for my $n (0 .. $#latency) {
    my ($label, $rows) = @{ $latency[$n] };
    print {$lh} "\n\n" if $n;
    printf {$lh} "\"%s\" %s\n", $_->[0], join(' ', map { defined $_ && $_ > 0 ? $_ : 'NaN' } @$_[1 .. 4])
        for @$rows;
    print {$lg} "set title \"$label\"\n",
        "plot datafile index $n using 2:xtic(1) title 'p50', '' index $n using 3 title 'p90', ",
        "'' index $n using 4 title 'p99', '' index $n using 5 title 'max'\n";
}
print {$lg} "unset multiplot\n";
close $lh;
close $lg;
