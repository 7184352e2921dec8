package Chatterd::MixedLoad;

# The load of the outage suites (pg_outage.t, pg_failover.t), the nginx it runs against, and
# what they check after it:
#
#   use Chatterd::MixedLoad qw(start_nginx new_load run_load worker_fds wait_fds_back
#                              check_media percentile is_post);
#   my $ng = start_nginx($conninfo, 2);    # chatterd_pg_timeout 2s
#   my $load = new_load($ng->port, 200);   # 200 clients
#   run_load($load, $until);               # a time, or a sub returning one (it may move);
#                                          # $load->{tick}, when set, is called at every turn
#   $load->{answers}                       # [kind, status, seconds, when it was sent] each
#
# Each client sends one request per connection (Connection: close), in turn getimages,
# getchatts, postchatt, postimages with an image and without, reads the answer to the end and
# starts again until the load stops; one that waits longer than 10 s has timed out.

use strict;
use warnings;

use Exporter 'import';
use IO::Select;
use IO::Socket::INET;
use Test::More ();
use Time::HiRes ();

use Chatterd::Db qw(sql media_files media_root);
use Chatterd::ExampleConf;
use Chatterd::Http qw(build_request multipart_body);
use Chatterd::Nginx;
use Chatterd::Upload qw(media image_part);
use Chatterd::Workers qw(pid_fds);

our @EXPORT_OK = qw(start_nginx new_load run_load worker_fds wait_fds_back check_media percentile
                    is_post);

use constant CLIENT_TIMEOUT => 10;

# nginx (a master, 2 workers) serving the four endpoints and the media, on the
# database of $conninfo with chatterd_pg_timeout $timeout seconds and a backoff of at most 1 s.
sub start_nginx {
    my ($conninfo, $timeout) = @_;
    my $media = media_root();
    return Chatterd::Nginx->start(
        workers     => 2,
        master      => 1,
        log_level   => 'info',
        # The workers write the media root inside the test tree.
        main_config => $> == 0 ? "user root root;\n" : undef,
        http_config => <<CONF,
chatterd_pg "$conninfo";
chatterd_pg_timeout ${timeout}s;
chatterd_pg_backoff_max 1s;
chatterd_media_root $media;
client_max_body_size 1m;
CONF
        config      => Chatterd::ExampleConf::endpoint_locations() . <<CONF,
location /media/ { alias $media/; }
CONF
    );
}

sub upload_request {
    my @parts = @_;
    my $body = multipart_body('chatterdLoadBoundary', @parts);
    return build_request(POST => '/postimages', body => $body,
        headers => ['Content-Type' => 'multipart/form-data; boundary=chatterdLoadBoundary']);
}

my @REQUESTS = (
    [getimages => build_request(GET => '/getimages')],
    [getchatts => build_request(GET => '/getchatts')],
    [postchatt => build_request(POST => '/postchatt',
        body => '{"username":"load","message":"hello"}',
        headers => ['Content-Type' => 'application/json'])],
    [postimages_media => upload_request([name => 'username', value => 'load'],
        [name => 'message', value => 'with media'], image_part(media('jpeg', 4096, 7)))],
    [postimages_text => upload_request([name => 'username', value => 'load'],
        [name => 'message', value => 'no media'])],
);

sub is_post { $_[0] =~ /^post/ }

sub new_load {
    my ($port, $clients) = @_;
    return { port => $port, count => $clients, answers => [], clients => [], next => 0 };
}

sub start_client {
    my ($load, $i) = @_;
    my ($kind, $raw) = @{$REQUESTS[($load->{next}++) % @REQUESTS]};
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $load->{port},
                                     Proto => 'tcp', Blocking => 0);
    unless ($sock) {
        push @{$load->{answers}}, [$kind, 'connect failed', 0, Time::HiRes::time()];
        return;
    }
    $load->{clients}[$i] = { sock => $sock, kind => $kind, out => $raw, in => '',
                             sent => Time::HiRes::time() };
}

sub run_load {
    my ($load, $until) = @_;
    my $deadline = ref $until ? $until : sub { $until };
    while (Time::HiRes::time() < $deadline->() || grep { defined } @{$load->{clients}}) {
        $load->{tick}->() if $load->{tick};
        my $stopping = Time::HiRes::time() >= $deadline->();
        my ($r, $w) = (IO::Select->new, IO::Select->new);
        my %by_fd;
        for my $i (0 .. $load->{count} - 1) {
            start_client($load, $i) if !$stopping && !$load->{clients}[$i];
            my $c = $load->{clients}[$i] or next;
            $by_fd{fileno $c->{sock}} = $i;
            length $c->{out} ? $w->add($c->{sock}) : $r->add($c->{sock});
        }
        last unless %by_fd;
        my ($readable, $writable) = IO::Select->select($r, $w, undef, 0.05);
        for my $sock (@{$writable // []}) {
            my $c = $load->{clients}[$by_fd{fileno $sock}];
            my $n = syswrite($sock, $c->{out});
            substr($c->{out}, 0, $n, '') if $n;
            finish($load, $by_fd{fileno $sock}, 'write failed') if !defined $n && !$!{EAGAIN};
        }
        for my $sock (@{$readable // []}) {
            my $i = $by_fd{fileno $sock};
            my $n = sysread($sock, $load->{clients}[$i]{in}, 65536, length $load->{clients}[$i]{in});
            next if !defined $n && $!{EAGAIN};
            finish($load, $i) if !$n;
        }
        my $now = Time::HiRes::time();
        for my $i (0 .. $load->{count} - 1) {
            my $c = $load->{clients}[$i] or next;
            finish($load, $i, 'client timeout') if $now - $c->{sent} > CLIENT_TIMEOUT;
        }
    }
}

sub finish {
    my ($load, $i, $failure) = @_;
    my $c = delete $load->{clients}[$i];
    close $c->{sock};
    my ($status) = $c->{in} =~ m{\AHTTP/1\.[01] (\d{3}) };
    push @{$load->{answers}},
        [$c->{kind}, $failure // $status // 'no answer', Time::HiRes::time() - $c->{sent}, $c->{sent}];
}

# ---- checks

# {pid => open descriptors} of $ng's workers.
sub worker_fds {
    my ($ng) = @_;
    return { map { my $n = pid_fds($_); defined $n ? ($_ => $n) : () } $ng->worker_pids };
}

# Waits up to 10 s until no worker of $before holds more descriptors than then; the last count.
sub wait_fds_back {
    my ($ng, $before) = @_;
    my $now;
    my $deadline = Time::HiRes::time() + 10;
    while (1) {
        $now = worker_fds($ng);
        return $now unless grep { ($now->{$_} // 1e9) > $before->{$_} } keys %$before;
        return $now if Time::HiRes::time() > $deadline;
        Time::HiRes::sleep(0.05);
    }
}

# On the cluster Chatterd::Db works on: files without a row must be files whose post's outcome
# was unknown (and logged in $log); every row's files must exist. Returns how many were kept.
sub check_media {
    my ($label, $log) = @_;
    my %kept = map { $_ => 1 } map { split ' ' }
        $log =~ /whether the row of post \S+ was stored is unknown \([^)]*\); its files \(([^)]*)\) are kept/g;
    my %files = map { $_ => 1 } media_files();
    my %named;
    for my $row (sql('SELECT imageurl, videourl FROM chatts')) {
        $named{$_} = 1 for map { m{/media/([^/]+)\z} ? $1 : () } grep { defined } @$row;
    }
    my @orphans = grep { !$named{$_} && !$kept{$_} } sort keys %files;
    my @missing = grep { !$files{$_} } sort keys %named;
    Test::More::ok(!@orphans, "$label: every media file has its row, or its post's outcome was unknown")
        or Test::More::diag("files without a row: @orphans");
    Test::More::ok(!@missing, "$label: every row's media files exist")
        or Test::More::diag("missing: @missing");
    return scalar keys %kept;
}

sub percentile {
    my ($p, @values) = @_;
    return 0 unless @values;
    @values = sort { $a <=> $b } @values;
    return $values[int($p * $#values + 0.5)];
}

1;
