#!/usr/bin/perl
# bench/REPORT.md and the chart's data from one `make bench` run.
#   report.pl OUT_DIR REPORT_MD RATIOS_DAT
# Reads OUT_DIR/results.tsv (one line per measured run, written by run.sh's record):
#   rep scenario system req/s p50_ms p99_ms requests non2xx socket_errors bytes_per_request
#   server_cpu_ms_per_request db_cpu_ms_per_request (empty when not measured)
# OUT_DIR/memory.tsv (memory_run):
#   system processes idle_rss_kB peak_rss_kB written_bytes uploads_stored stored_bytes_per_upload req/s
# and OUT_DIR/info.txt (machine and run facts, "key<TAB>value"; other lines are notes).
# Every figure is the median over the runs; ratios are taken between medians.
# Writes RATIOS_DAT (the chart's data) and RATIOS_DAT.gp (its x tic labels) for ratios.gnuplot.
use strict;
use warnings;
use List::Util qw(sum);

my ($out, $report, $dat) = @ARGV;
die "usage: report.pl OUT_DIR REPORT_MD RATIOS_DAT\n" unless defined $dat;

# ---------------------------------------------------------------- inputs
my (%runs, %info, @notes);
open my $fh, '<', "$out/results.tsv" or die "report.pl: $out/results.tsv: $!\n";
while (<$fh>) {
    chomp;
    my ($rep, $scenario, $system, $rps, $p50, $p99, $requests, $non2xx, $errors, $bytes, $cpu, $db) =
        split /\t/, $_, -1;
    push @{ $runs{$scenario}{$system} },
        { rps => $rps, p50 => $p50, p99 => $p99, requests => $requests, non2xx => $non2xx,
          errors => $errors, bytes => $bytes, cpu => $cpu, db => $db };
}
close $fh;

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
# key, label, target => [scenario, system, ratio] of the baseline the target is set against,
# others => [[scenario, system]] informative baselines. pgbench's INSERT run ("insert") is the
# baseline of both postimages without media and postchatt.
my @scenarios = (
    { key => 'post-none', label => 'postimages, no media (246 B form)',
      target => ['insert', 'pgbench', 0.8], others => [['post-none', 'dav']] },
    { key => 'post-img', label => 'postimages, 1 MiB JPEG',
      target => ['post-img', 'dav', 0.9], others => [] },
    { key => 'post-vid', label => 'postimages, 1 MiB JPEG + 8 MiB MP4',
      target => ['post-vid', 'dav', 0.9], others => [] },
    { key => 'get-1k', label => 'getimages, 1,000 rows',
      target => ['get-1k', 'pgbench', 0.8], others => [['get-1k', 'static']] },
    { key => 'get-10k', label => 'getimages, 10,000 rows',
      target => ['get-10k', 'pgbench', 0.8], others => [['get-10k', 'static']] },
    { key => 'postchatt', label => 'postchatt (JSON)',
      target => ['insert', 'pgbench', 0.8], others => [] },
    { key => 'media', label => 'GET /media, 1 MiB JPEG',
      target => ['media', 'static', 0.95], others => [] },
);
my %chart_label = ('post-none' => 'postimages\nno media', 'post-img' => 'postimages\n1 MiB',
                   'post-vid' => 'postimages\n9 MiB', 'get-1k' => 'getimages\n1,000 rows',
                   'get-10k' => 'getimages\n10,000 rows', 'postchatt' => 'postchatt',
                   'media' => 'GET /media\n1 MiB');

# ---------------------------------------------------------------- statistics
sub median {
    my @v = sort { $a <=> $b } @_;
    return undef unless @v;
    my $m = int(@v / 2);
    return @v % 2 ? $v[$m] : ($v[$m - 1] + $v[$m]) / 2;
}
# Medians of one (scenario, system): undef when it was not measured.
sub stats {
    my ($scenario, $system) = @_;
    my $r = $runs{$scenario}{$system} or return undef;
    my %s = map { my $k = $_; ($k => median(map { $_->{$k} } @$r)) } qw(rps p50 p99 bytes);
    for my $k (qw(cpu db)) {   # CPU per request: only where it was measured
        $s{$k} = median(grep { defined && length } map { $_->{$k} } @$r);
    }
    $s{mbs} = $s{bytes} ? $s{rps} * $s{bytes} / 1e6 : undef;
    $s{runs} = @$r;
    $s{failed} = sum(map { $_->{non2xx} + $_->{errors} } @$r);
    return \%s;
}
sub ratio {
    my ($a, $b) = @_;
    return undef unless $a && $b && $b->{rps} > 0;
    return $a->{rps} / $b->{rps};
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
sub verdict {   # met/missed and by how much, for "at least" targets
    my ($value, $target) = @_;
    return 'not measured' unless defined $value;
    my $by = ($value / $target - 1) * 100;
    return $value >= $target ? sprintf('**met** (+%.0f%%)', $by)
                             : sprintf('**missed** by %.0f%% (needs ×%.2f)', -$by, $target / $value);
}
sub system_name {
    my ($scenario, $system) = @_;
    return 'chatterd' if $system eq 'chatterd';
    return "peer (" . ($info{peer_name} // $info{peer}) . ")" if $system eq 'peer';
    return 'pgbench INSERT (same SQL, -M prepared)' if $system eq 'pgbench' && $scenario eq 'insert';
    return 'pgbench SELECT (the SELECT chatterd COPYs, -M prepared)' if $system eq 'pgbench';
    return 'nginx DAV PUT (same body)' if $system eq 'dav';
    return 'nginx static (same bytes)' if $system eq 'static';
    return $system;
}

# ---------------------------------------------------------------- REPORT.md
my @md;
my $elapsed = $info{elapsed} // 0;
push @md, '# chatterd benchmark', '',
    '_Generated by `make bench` (bench/run.sh); rewritten by every run. Method at the end._', '',
    '## Machine and run', '',
    '| | |', '|---|---|',
    (map { "| $_->[0] | $_->[1] |" }
        ['date', $info{date} // '?'], ['cores (nproc)', $info{nproc} // '?'], ['CPU', $info{cpu} // '?'],
        ['memory', $info{memory} // '?'], ['kernel', $info{kernel} // '?'], ['nginx', $info{nginx} // '?'],
        ['PostgreSQL', $info{postgresql} // '?'], ['wrk', $info{wrk} // '?'],
        ['chatterd commit', $info{commit} // '?'],
        ['runs per scenario', sprintf('%s × %s s (after a %s s warm-up), medians reported',
            $info{runs} // '?', $info{seconds} // '?', $info{warmup} // '?')],
        ['connections', ($info{connections} // 8) . ' (wrk -t1 -c8 --latency; pgbench -c 8 -j 2 -M prepared)'],
        ['peer', $info{peer} // 'none'],
        ['duration of this run', sprintf('%d min %02d s (build, setup, scenarios, memory run)',
            $elapsed / 60, $elapsed % 60)]),
    '';

# Targets first: they are what the run is for.
push @md, '## Targets', '',
    '| target | chatterd | baseline | ratio | required | result |', '|---|---:|---:|---:|---:|---|';
my @chart;
for my $sc (@scenarios) {
    my $c = stats($sc->{key}, 'chatterd');
    my ($tscen, $tsys, $want) = @{ $sc->{target} };
    my $b = stats($tscen, $tsys);
    my $r = ratio($c, $b);
    push @md, sprintf('| %s: chatterd ÷ %s | %s req/s | %s req/s | %s | ≥ %.2f | %s |',
        $sc->{label}, system_name($tscen, $tsys), num($c && $c->{rps}), num($b && $b->{rps}),
        ratio_text($r), $want, verdict($r, $want));
    my @other = map { ratio($c, stats(@$_)) } @{ $sc->{others} };
    push @chart, [$chart_label{ $sc->{key} }, $r, $want, $other[0], ratio($c, stats($sc->{key}, 'peer'))];
}
my %mem = map { $_->{system} => $_ } @memory;
if (my $m = $mem{chatterd}) {
    my $growth = ($m->{hwm} - $m->{idle}) / 1024;
    my $amp = $m->{stored} ? $m->{written} / ($m->{stored} * $m->{per_upload}) : undef;
    push @md, sprintf('| worker peak RSS growth, 8 × 10 MiB uploads (sum of %d workers) | %.1f MiB | | | < 4 MiB | %s |',
        $m->{processes}, $growth,
        $growth < 4 ? sprintf('**met** (%.1f MiB to spare)', 4 - $growth)
                    : sprintf('**missed** by %.1f MiB', $growth - 4));
    push @md, sprintf('| disk bytes written per uploaded media byte | %s | | | ≤ 1.10 | %s |',
        defined $amp ? sprintf('%.3f', $amp) : '—',
        !defined $amp ? 'not measured'
            : $amp <= 1.1 ? sprintf('**met** (%.0f%% under)', (1 - $amp / 1.1) * 100)
                          : sprintf('**missed** by %.0f%%', ($amp / 1.1 - 1) * 100));
}
push @md, '';

# Every measurement.
push @md, '## Results (medians)', '',
    'MB/s counts request bodies for uploads and response bodies for downloads (10⁶ bytes). '
    . '"chatterd ÷" is chatterd\'s req/s over that line\'s req/s. "CPU ms/req" is the CPU time the '
    . 'server\'s processes (nginx workers, the peer\'s processes) + PostgreSQL\'s spent per request '
    . 'during the measured seconds: unlike req/s, it hardly moves with the other load on the machine.', '',
    '| scenario | server | req/s | p50 ms | p99 ms | MB/s | CPU ms/req: server + PostgreSQL | chatterd ÷ |',
    '|---|---|---:|---:|---:|---:|---:|---:|';
my $failures = 0;
for my $sc (@scenarios) {
    my $c = stats($sc->{key}, 'chatterd');
    my @lines = (['chatterd', $sc->{key}], [$sc->{target}[1], $sc->{target}[0]],
                 (map { [$_->[1], $_->[0]] } @{ $sc->{others} }), ['peer', $sc->{key}]);
    my $first = 1;
    for my $l (@lines) {
        my ($system, $scenario) = @$l;
        my $s = stats($scenario, $system) or next;
        my $flag = '';
        if ($s->{failed}) {
            $flag = sprintf(' ⚠ %d failed', $s->{failed});
            $failures++;
        }
        push @md, sprintf('| %s | %s%s | %s | %s | %s | %s | %s | %s |',
            $first ? $sc->{label} : '', system_name($scenario, $system), $flag, num($s->{rps}),
            ms($s->{p50}), ms($s->{p99}), num($s->{mbs}), cpu_text($s),
            $system eq 'chatterd' ? '' : ratio_text(ratio($c, $s)));
        $first = 0;
    }
}
push @md, '', $failures
    ? '⚠ marks servers that answered non-2xx or had socket errors in some run: see bench/out/logs/.'
    : 'Every request of every run was answered 2xx, with no socket errors.';
push @md, map { "- $_" } @notes;
push @md, '';

if (@memory) {
    push @md, '## Memory and disk: 8 concurrent uploads of 1 MiB JPEG + 9 MiB MP4', '',
        sprintf('wrk -c8 for %s s. Peak RSS: VmHWM after `echo 5 > /proc/PID/clear_refs`, summed over the '
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

push @md, '## Chart', '', '![chatterd / baseline and chatterd / peer per scenario](ratios.png)', '',
    'Top: chatterd\'s req/s over the baseline its target is set against (dark), over the other '
    . 'baseline where there is one (light); red marks are the targets. Bottom (when a peer ran): '
    . 'chatterd over the peer, log scale.', '';

push @md, '## Method', '',
    '- One nginx (`worker_processes 2`, `access_log off`, sendfile) serves chatterd (`chatterd_pg_pool 4`, '
    . 'the locations of nginx.conf.example) on one port and the baselines on another; PostgreSQL 15 '
    . '(scripts/pg.sh, default durability) on the same machine, chatterd and pgbench on its unix socket, '
    . 'the peer over TCP. Config: bench/nginx.conf.in.',
    '- Payloads (bench/gen.pl, fixed seed): a 1 MiB JPEG and 8/9 MiB MP4s of pseudo-random bytes after '
    . 'real headers, multipart bodies with a fixed boundary as the apps send them.',
    '- Every run: warm-up, then the measured run; before each (warm-up and run) of an insert scenario '
    . 'the table is truncated and the media directories emptied; getimages re-seeds its rows '
    . '(bench/seed.sql) before each.',
    '- Uploaded files are emptied (truncated) and set aside, never deleted, until the end: on ext4 '
    . 'without a journal, as here, creating a file skips every inode freed in the last minutes one by one, '
    . 'so deleting thousands of files before a run slows the next run\'s file creations (it cut DAV PUT '
    . 'of a 246 B body from ~12,000 to ~3,000 req/s).',
    '- Baselines: DAV `PUT` of the same body into a directory (nginx writes it to a temporary file on '
    . 'the same file system, then renames it to a fresh name per request, as chatterd creates a new '
    . 'file per upload); pgbench running chatterd\'s INSERT (bench/pgbench-insert.sql, one run serves '
    . 'postchatt and postimages without media) and SELECT (bench/pgbench-select.sql), p50/p99 from its '
    . 'per-transaction log; nginx static serving the getimages JSON chatterd produced (saved to files) '
    . 'and the 1 MiB JPEG.',
    '- The machine has 2 cores shared by wrk, nginx, PostgreSQL (and the peer), and by whatever else runs '
    . 'on it: absolute numbers move between runs; the ratios, measured minutes apart in the same run, '
    . 'are what the targets use, and CPU ms/req tells the cost apart from the noise.',
    '- Raw per-run numbers: bench/out/results.tsv; wrk and pgbench outputs: bench/out/logs/.',
    '- Why targets were missed, and what changed after which measurements (perf profiles, syscall '
    . 'traces, alternated experiments; written for the runs of 2026-11-24 and 2026-12-01, not '
    . 'regenerated): bench/PROFILE.md.', '';

open my $rh, '>', $report or die "report.pl: $report: $!\n";
print {$rh} join("\n", @md);
close $rh;

# ---------------------------------------------------------------- chart data
# index, "label", ratio vs target baseline, target, ratio vs other baseline, ratio vs peer
open my $dh, '>', $dat or die "report.pl: $dat: $!\n";
my $i = 0;
for my $c (@chart) {
    my ($label, @v) = @$c;
    printf {$dh} "%d \"%s\" %s\n", $i++, $label,
        join(' ', map { defined $_ ? sprintf('%.4f', $_) : 'NaN' } @v);
}
close $dh;

# The x tic labels (two lines each), loaded by ratios.gnuplot.
open my $gh, '>', "$dat.gp" or die "report.pl: $dat.gp: $!\n";
print {$gh} 'set xtics (', join(', ', map { sprintf('"%s" %d', $chart[$_][0], $_) } 0 .. $#chart), ")\n";
close $gh;
