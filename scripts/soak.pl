#!/usr/bin/perl
# The soak (scripts/soak.sh starts the database and sets the environment): one nginx (master,
# two workers) on 127.0.0.1 under SOAK_CLIENTS (64) concurrent clients of every endpoint and
# /media/ for SOAK_SECONDS, with a fault every SOAK_FAULT_EVERY seconds (first after half of
# it), in turn: PostgreSQL killed (-9) and restarted, nginx -s reload, a worker killed (-9),
# PostgreSQL paused (SIGSTOP) and resumed, the database's connection limit 0 then lifted.
# Prints a summary; exits 1 when a check fails (see docs/DEVELOPING.md: Soak).
use strict; use warnings;
use FindBin; BEGIN { push @INC, "$FindBin::Bin/../t/lib" }
use IO::Select;
use IO::Socket::INET;
use POSIX ();
use Time::HiRes ();

use Chatterd::Nginx qw(start_nginx);
use Chatterd::Pg;
use Chatterd::Ports qw(free_port);
use Chatterd::Http qw(http_get build_request multipart_body);
use Chatterd::Db qw(sql sql_value truncate_chatts media_root media_files pause_pg
                    resume_pg);
use Chatterd::Upload qw(media image_part);
use Chatterd::Wait qw(wait_until);
use Chatterd::Workers qw(pid_fds pid_rss_kib);
use Chatterd::ExampleConf;

my $SECONDS     = $ENV{SOAK_SECONDS} // 600;
my $CLIENTS     = $ENV{SOAK_CLIENTS} // 64;
my $FAULT_EVERY = $ENV{SOAK_FAULT_EVERY} // 60;
my $PORT        = $ENV{SOAK_PORT} || free_port();
my $PG          = Chatterd::Pg->new($ENV{TEST_NGINX_PG_DIR}, port => $ENV{TEST_NGINX_PG_PORT});
my $TIMEOUT     = 3;     # chatterd_pg_timeout
my $BACKOFF     = 2;     # chatterd_pg_backoff_max
my $SWEEP       = 30;    # chatterd_media_sweep
my $CLIENT_TIMEOUT = 15;
die "SOAK_CLIENTS must be at least 64\n" if $CLIENTS < 64 && !$ENV{SOAK_ALLOW_FEWER};

my @failures;
sub check { my ($ok, $what) = @_; push @failures, $what unless $ok; printf "%-4s %s\n", $ok ? 'ok' : 'FAIL', $what; $ok }
sub admin_sql { eval { $PG->admin_value($_[0], 'chatterdb'); 1 } or warn $@ }
END { local ($?, $@); resume_pg(); eval { admin_sql('ALTER DATABASE chatterdb CONNECTION LIMIT -1') } }
$SIG{$_} = sub { exit 2 } for qw(INT TERM HUP);    # END resumes PostgreSQL

#---------------------------------------------------------------------------
# nginx
#---------------------------------------------------------------------------

my $root = media_root();
truncate_chatts();
my $ng = start_nginx(
    port        => $PORT,
    workers     => 2,
    media_root  => $root,
    http_config => <<CONF,
access_log off;
chatterd_pg_timeout ${TIMEOUT}s;
chatterd_pg_backoff_max ${BACKOFF}s;
chatterd_media_sweep ${SWEEP}s;
chatterd_media_max_size 256k;
client_body_timeout 5s;
CONF
    config => Chatterd::ExampleConf::endpoint_locations('client_max_body_size 1m;') . <<CONF,
location = /status { chatterd_status; }
location /media/ { alias $root/; }
CONF
);
# Stopped however the soak ends: at global destruction the object may be gone before it can.
END { local ($?, $@); $ng->stop if $ng }
my $servroot = $ng->servroot;

# Pinned rows whose files /media/ requests fetch (never pruned).
my @PINNED;
for my $i (1 .. 4) {
    my $body = multipart_body('Soak', [name => 'username', value => 'pinned'], [name => 'message', value => "pin $i"],
                              image_part(media(jpeg => 100_000, $i)));
    my $res = Chatterd::Http::http_request($PORT, build_request(POST => '/postimages', body => $body,
        headers => ['Content-Type' => 'multipart/form-data; boundary=Soak']));
    die "pinned upload failed: " . ($res->{status} // 'none') . "\n" unless ($res->{status} // 0) == 200;
}
@PINNED = map { $_->[0] =~ m{/media/([^/]+)\z} } sql(q{SELECT imageurl FROM chatts WHERE username = 'pinned'});

#---------------------------------------------------------------------------
# The load
#---------------------------------------------------------------------------

sub upload {
    my (@parts) = @_;
    return build_request(POST => '/postimages', body => multipart_body('Soak', @parts),
                         headers => ['Content-Type' => 'multipart/form-data; boundary=Soak']);
}
# [kind, request, statuses always expected, needs the database]
my @KINDS = (
    [getimages        => build_request(GET => '/getimages'), '200', 1],
    [getchatts        => build_request(GET => '/getchatts'), '200', 1],
    [postchatt        => build_request(POST => '/postchatt', body => '{"username":"soak","message":"hello"}',
                                       headers => ['Content-Type' => 'application/json']), '200', 1],
    [postimages_media => upload([name => 'username', value => 'soak'], [name => 'message', value => 'media'],
                                image_part(media(jpeg => 20_000, 7))), '200', 1],
    [postimages_text  => upload([name => 'username', value => 'soak'], [name => 'message', value => 'text']), '200', 1],
    (map { [media => build_request(GET => "/media/$_"), '200', 0] } @PINNED[0, 1]),
    [media_range      => build_request(GET => "/media/$PINNED[2]", headers => [Range => 'bytes=1000-50999']), '206', 0],
    [media_missing    => build_request(GET => '/media/none-0123456789abcdef.jpeg'), '404', 0],
    [postimages_415   => upload([name => 'username', value => 'soak'], [name => 'message', value => 'bad'],
                                image_part('not an image ' x 100)), '415', 0],
    [postimages_413   => upload([name => 'username', value => 'soak'], [name => 'message', value => 'big'],
                                image_part(media(jpeg => 300_000, 8))), '413', 0],
);
my @MIX = map { $KINDS[$_] } (0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 5, 6, 7, 8, 9, 10);

my %load = (clients => [], next => 0, answers => []);
sub start_client {
    my ($i) = @_;
    my $kind = $MIX[$load{next}++ % @MIX];
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $PORT, Proto => 'tcp', Blocking => 0);
    unless ($sock) { push @{$load{answers}}, [$kind->[0], 'connect failed', Time::HiRes::time(), 0]; return }
    $load{clients}[$i] = { sock => $sock, kind => $kind, out => $kind->[1], in => '', sent => Time::HiRes::time() };
}
sub finish {
    my ($i, $failure) = @_;
    my $c = delete $load{clients}[$i];
    close $c->{sock};
    my ($status) = $c->{in} =~ m{\AHTTP/1\.[01] (\d{3}) };
    $status = 'incomplete' if defined $status && !$failure && Chatterd::Http::parse_http_response($c->{in})->{incomplete};
    push @{$load{answers}}, [$c->{kind}[0], $failure // $status // 'no answer', $c->{sent}, Time::HiRes::time() - $c->{sent}];
}
sub run_load_step {
    my ($stopping) = @_;
    my ($r, $w) = (IO::Select->new, IO::Select->new);
    my %by_fd;
    for my $i (0 .. $CLIENTS - 1) {
        start_client($i) if !$stopping && !$load{clients}[$i];
        my $c = $load{clients}[$i] or next;
        $by_fd{fileno $c->{sock}} = $i;
        length $c->{out} ? $w->add($c->{sock}) : $r->add($c->{sock});
    }
    return 0 unless %by_fd;
    local $SIG{PIPE} = 'IGNORE';
    my ($readable, $writable) = IO::Select->select($r, $w, undef, 0.05);
    for my $sock (@{$writable // []}) {
        my $i = $by_fd{fileno $sock};
        my $c = $load{clients}[$i] or next;
        my $n = syswrite($sock, $c->{out});
        if ($n) { substr($c->{out}, 0, $n, '') }
        elsif (!defined $n && !$!{EAGAIN}) { $c->{out} = '' }    # refused early: read the answer
    }
    for my $sock (@{$readable // []}) {
        my $i = $by_fd{fileno $sock};
        my $c = $load{clients}[$i] or next;
        my $n = sysread($sock, $c->{in}, 65536, length $c->{in});
        next if !defined $n && $!{EAGAIN};
        finish($i) if !$n;
    }
    my $now = Time::HiRes::time();
    for my $i (0 .. $CLIENTS - 1) {
        my $c = $load{clients}[$i] or next;
        finish($i, 'client timeout') if $now - $c->{sent} > $CLIENT_TIMEOUT;
    }
    return 1;
}

#---------------------------------------------------------------------------
# Faults
#---------------------------------------------------------------------------

my @killed_pg;
my %FAULTS = (
    pg_killed => { db => 1,
        break  => sub { my $m = $PG->postmaster_pid; @killed_pg = ($m, split ' ', `pgrep -P $m`); kill 'KILL', $m },
        repair => sub { wait_until(sub { !kill(0, @killed_pg) }, 20); $PG->start } },
    nginx_reload => { db => 0,
        break  => sub { system($ng->{proc}->binary . " -p $servroot/ -c conf/nginx.conf -s reload 2>/dev/null") == 0
                            or warn "reload failed\n" },
        repair => sub {} },
    worker_kill9 => { db => 0,
        break  => sub { my @w = $ng->worker_pids; kill 'KILL', $w[-1] if @w },
        repair => sub {} },
    pg_paused => { db => 1,
        break  => \&pause_pg,
        repair => \&resume_pg },
    pg_refusing => { db => 1,
        break  => sub { admin_sql('ALTER DATABASE chatterdb CONNECTION LIMIT 0');
                        admin_sql(q{SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'chatterd'}) },
        repair => sub { admin_sql('ALTER DATABASE chatterdb CONNECTION LIMIT -1') } },
);
my @ROTATION = qw(pg_killed nginx_reload worker_kill9 pg_paused pg_refusing);
my $FAULT_LENGTH = 5;    # seconds between break and repair
# After a repair, the pools find the database within the backoff, and requests sent before it
# may still time out: 503 is expected until repair + backoff + timeout + 2 s.
my $GRACE = $BACKOFF + $TIMEOUT + 2;

#---------------------------------------------------------------------------
# Samples: every worker's descriptors and RSS, every 10 s
#---------------------------------------------------------------------------

my @samples;    # [t, {pid => [fds, rss]}]
sub sample {
    my ($t) = @_;
    push @samples, [$t, { map { ($_ => [pid_fds($_) // 0, pid_rss_kib($_) // 0]) } $ng->worker_pids }];
}
sub prune {
    for my $row (sql(q{DELETE FROM chatts WHERE username <> 'pinned' AND time < now() - interval '20 seconds'
                       RETURNING imageurl, videourl})) {
        unlink map { "$root/$_" } map { m{/media/([^/]+)\z} ? $1 : () } grep { defined } @$row;
    }
}

#---------------------------------------------------------------------------
# Run
#---------------------------------------------------------------------------

$| = 1;
printf "soak: %d s, %d clients, a fault every %d s, nginx on 127.0.0.1:%d, PostgreSQL port %d\n",
       $SECONDS, $CLIENTS, $FAULT_EVERY, $PORT, $PG->port;
$ng->mark_error_log;
my $log_offset = -s $ng->error_log_path;
my $start = Time::HiRes::time();
my $end = $start + $SECONDS;
my (@faults, $active);
my $next_fault = $start + $FAULT_EVERY / 2;
my $next_sample = $start;
my $next_prune = $start + 10;
my @initial_workers = $ng->worker_pids;
while (1) {
    my $now = Time::HiRes::time();
    last if $now >= $end && !$active;
    run_load_step(0);
    if ($now >= $next_sample) { sample($now - $start); $next_sample += 10 }
    # Not while a database fault lasts: psql would fail, or wait on a paused server.
    if ($now >= $next_prune && !($active && $active->{db})) { prune(); $next_prune += 10 }
    if (!$active && $now >= $next_fault && $now < $end - 5) {
        my $name = $ROTATION[@faults % @ROTATION];
        printf "%6.1f s  fault %d: %s\n", $now - $start, scalar(@faults) + 1, $name;
        $FAULTS{$name}{break}->();
        $active = { name => $name, broken => Time::HiRes::time(), db => $FAULTS{$name}{db} };
        push @faults, $active;
        $next_fault += $FAULT_EVERY;
    }
    elsif ($active && $now >= $active->{broken} + $FAULT_LENGTH) {
        $FAULTS{$active->{name}}{repair}->();
        $active->{repaired} = Time::HiRes::time();
        printf "%6.1f s  repaired: %s\n", $active->{repaired} - $start, $active->{name};
        undef $active;
    }
}
1 while run_load_step(1);
my $stopped = Time::HiRes::time();
sample($stopped - $start);

#---------------------------------------------------------------------------
# Checks
#---------------------------------------------------------------------------

my @answers = @{$load{answers}};
my %tally;
$tally{$_->[0]}{$_->[1]}++ for @answers;
my $served = grep { $_->[1] =~ /\A2\d\d\z/ } @answers;
printf "\n%d requests in %.0f s (%.0f/s), %d answered 2xx\n", scalar @answers, $stopped - $start,
       @answers / ($stopped - $start), $served;
for my $kind (sort keys %tally) {
    printf "  %-17s %s\n", $kind, join(', ', map { "$_: $tally{$kind}{$_}" } sort keys %{$tally{$kind}});
}

# Every answer: its kind's expected status, or 503 within a database fault's window (kinds
# that need the database), or no answer within a worker kill's window.
sub in_window {
    my ($t, $sent_len, $pred) = @_;
    for my $f (grep { $pred->($_) } @faults) {
        my $until = ($f->{repaired} // $f->{broken}) + ($f->{db} ? $GRACE : 2);
        return 1 if $t + $sent_len >= $f->{broken} - 0.1 && $t <= $until;
    }
    return 0;
}
my (%unexplained, %explained);
for my $a (@answers) {
    my ($kind, $status, $sent, $took) = @$a;
    my ($def) = grep { $_->[0] eq $kind } @KINDS;
    if ($status eq $def->[2]) { next }
    elsif ($status eq '503' && $def->[3] && in_window($sent, $took, sub { $_[0]{db} })) { $explained{"$kind 503 in a database fault"}++ }
    elsif ($status =~ /\A(?:no answer|incomplete|connect failed)\z/ && in_window($sent, $took, sub { $_[0]{name} eq 'worker_kill9' })) {
        $explained{"$kind $status when a worker was killed"}++;
    }
    else { $unexplained{"$kind $status"}++ }
}
print "\nnon-200 answers with their reason:\n";
printf "  %6d  %s\n", $explained{$_}, $_ for sort keys %explained;
for my $kind (qw(postimages_415 postimages_413 media_missing media_range)) {
    printf "  %6d  %s (the request's own fault)\n", $tally{$kind}{(grep { $_->[0] eq $kind } @KINDS)[0][2]} // 0, $kind;
}
check(!%unexplained, 'every answer is the expected one, a 503 during a database fault, or cut by the worker kill')
    or printf "  unexplained: %s\n", join ', ', map { "$_: $unexplained{$_}" } sort keys %unexplained;

# The error log since the start, reasons tallied.
my $log = do { open my $fh, '<', $ng->error_log_path or die; seek $fh, $log_offset, 0; local $/; <$fh> };
my %reasons;
for my $line (split /\n/, $log) {
    next unless $line =~ /\[(\w+)\] \d+#\d+: (?:\*\d+ )?(.*?)(?:, client: .*)?$/;
    my ($level, $what) = ($1, $2);
    next if $level eq 'notice' && $what !~ /exited|signal/;
    $what =~ s/\d+(?:\.\d+)?/N/g;
    $what =~ s/"[^"]*-[0-9a-f]{32}\.\w+"/"FILE"/g;
    $what = substr($what, 0, 220);
    $reasons{"[$level] $what"}++;
}
print "\nerror log since the start (numbers as N), by count:\n";
my @by_count = sort { $reasons{$b} <=> $reasons{$a} || $a cmp $b } keys %reasons;
printf "  %6d  %s\n", $reasons{$_}, $_ for @by_count[0 .. ($#by_count < 24 ? $#by_count : 24)];
my $r413 = () = $log =~ /exceeds chatterd_media_max_size/g;
my $r415 = () = $log =~ /media part "image" is not a supported image/g;
check($r413 >= ($tally{postimages_413}{413} // 0) && $r415 >= ($tally{postimages_415}{415} // 0),
      "every 413 and 415 has its log line ($r413 / $r415 lines)");
my $db_lines = () = $log =~ /cannot be reached|did not answer within|connection to postgres .* lost|is reachable again/g;
my $db_faults = grep { $_->{db} } @faults;
check(!$db_faults || $db_lines >= $db_faults, "the database faults are stated in the error log ($db_lines lines)");
my @crashes = $log =~ /^.*exited on signal.*$/mg;
my $kills = grep { $_->{name} eq 'worker_kill9' } @faults;
check(@crashes == $kills && !grep({ !/signal 9/ } @crashes),
      "no worker crash but the injected kills (" . scalar(@crashes) . " exited on a signal, $kills injected)")
    or print map { "  $_\n" } @crashes;
my @alerts = grep { /\[(?:alert|crit|emerg)\]/ && !/exited on signal 9/ } split /\n/, $log;
check(!@alerts, 'no alert, crit or emerg line') or print map { "  $_\n" } @alerts[0 .. ($#alerts < 9 ? $#alerts : 9)];

# Descriptors and RSS: every worker's, summed over the workers, first / last / max sample.
print "\nworkers (sums over the workers alive; a sample every 10 s):\n";
my @fds = map { my $s = $_->[1]; my $n = 0; $n += $s->{$_}[0] for keys %$s; $n } @samples;
my @rss = map { my $s = $_->[1]; my $n = 0; $n += $s->{$_}[1] for keys %$s; $n } @samples;
my @max_rss = map { my $s = $_->[1]; (sort { $b <=> $a } map { $s->{$_}[1] } keys %$s)[0] // 0 } @samples;
my $max = sub { (sort { $b <=> $a } @_)[0] };
printf "  descriptors: first %d, last %d, max %d\n", $fds[0], $fds[-1], $max->(@fds);
printf "  RSS: first %.1f MiB, last %.1f MiB, max %.1f MiB (largest single worker: first %.1f, last %.1f, max %.1f MiB)\n",
       map { $_ / 1024 } $rss[0], $rss[-1], $max->(@rss), $max_rss[0], $max_rss[-1], $max->(@max_rss);
printf "  samples: %s\n", join ' ', map { sprintf '%d:%d/%.0fM', $_->[0], $fds[$_->[2]], $rss[$_->[2]] / 1024 }
                                   map { [$samples[$_][0], 0, $_] } 0 .. $#samples;
# Flat: a worker's descriptors are its listening sockets, the pool's connections and what is
# in flight; after the load, no more than at the first sample (under load) plus a margin for
# the pool's probe. RSS: the largest worker at the end within 24 MiB of the largest at the
# first sample (answer blocks retained by malloc, see t/abuse_clients.t, over a table that
# pruning keeps under ~20 s of posts).
Time::HiRes::sleep(1);
sample(Time::HiRes::time() - $start);
my $settled = $samples[-1][1];
my $n_workers = keys %$settled;
my $fds_settled = 0; $fds_settled += $settled->{$_}[0] for keys %$settled;
check($n_workers == 2, "two workers at the end ($n_workers)");
check($fds_settled <= $fds[0] + 2 * $n_workers, "descriptors after the load ($fds_settled) not above the first sample ($fds[0]) + 2 per worker");
my $rss_settled = (sort { $b <=> $a } map { $settled->{$_}[1] } keys %$settled)[0];
check($rss_settled <= $max_rss[0] + 24 * 1024, sprintf('largest worker RSS after the load %.1f MiB, first sample %.1f MiB (+24 MiB allowed)',
                                                        $rss_settled / 1024, $max_rss[0] / 1024));

# Table and media directory: every row's files exist; files without a row go with the sweep
# (posts whose outcome was unknown, a post cut by the worker kill): wait for it.
my $named = sub {
    my %n;
    for my $row (sql('SELECT imageurl, videourl FROM chatts')) {
        $n{$_} = 1 for map { m{/media/([^/]+)\z} ? $1 : () } grep { defined } @$row;
    }
    return \%n;
};
my %files = map { $_ => 1 } media_files();
my @missing = grep { !$files{$_} } sort keys %{ $named->() };
check(!@missing, 'every row\'s media files exist (' . scalar(@missing) . ' missing)') or print "  @missing[0 .. ($#missing < 9 ? $#missing : 9)]\n";
my @orphans;
my $deadline = Time::HiRes::time() + $SWEEP + 20;
while (1) {
    my $n = $named->();
    @orphans = grep { !$n->{$_} } media_files();
    last if !@orphans || Time::HiRes::time() > $deadline;
    Time::HiRes::sleep(1);
}
my $kept = () = $log =~ /postimages: whether the row of post \S+ was stored is unknown/g;
check(!@orphans, "no media file without its row once the sweep ran ($kept kept for an unknown outcome during the soak)")
    or print "  @orphans[0 .. ($#orphans < 9 ? $#orphans : 9)]\n";
my $status = http_get($PORT, '/status')->{body} // '';
my ($m503) = 0; $m503 += $1 while $status =~ /^chatterd_requests_total\{[^}]*status="503"\} (\d+)/mg;
printf "\nstatus page: %d answers 503 counted by nginx; %d seen by the clients\n", $m503, scalar grep { $_->[1] eq '503' } @answers;

printf "\nfaults injected: %d (%s)\n", scalar @faults, join(', ', map { $_->{name} } @faults);
print @failures ? "\nSOAK FAILED: " . join('; ', @failures) . "\n" : "\nSOAK PASSED\n";
$ng->stop;
exit(@failures ? 1 : 0);
