package Chatterd::Nginx;

# Programmatic nginx launcher for scenario tests written in plain
# Test::More (concurrency, a SIGSTOPped database, clients that disconnect),
# where the data-driven Test::Nginx::Socket format does not fit.
#
#   use Chatterd::Nginx;
#   use Chatterd::Http;
#
#   my $ng = Chatterd::Nginx->start(
#       main_config => '...', http_config => '...', config => '...',
#       workers => 1, master => 0);
#   my $res = http_get($ng->port, '/t');
#   $ng->mark_error_log;
#   ...
#   like($ng->error_log_since_mark, qr/\[error\]/, 'logged');
#   $ng->stop;     # also done when $ng goes out of scope
#
#   use Chatterd::Nginx qw(start_nginx);
#   my $ng = start_nginx(media_root => $dir, http_config => 'chatterd_pg_timeout 2s;');
#
# start_nginx() is start() as chatterd's scenario suites want it: a master and its workers
# logging at info, running as root when the suite does (they write the media root inside the
# test tree), chatterd_pg and chatterd_media_root set, the endpoints at their paths. Its options
# are start()'s, with these first:
#   pg           chatterd_pg's conninfo (default TEST_NGINX_PG_CONNINFO)
#   media_root   chatterd_media_root (default none)
#   http_config  lines after those two
#   config       default: the four endpoints of nginx.conf.example (Chatterd::ExampleConf)
#
# Options of start():
#   main_config, http_config, config   conf fragments, as in Test::Nginx
#                                      ($TEST_NGINX_* are expanded)
#   user_files   {name => content} or [[name, content], ...] put in html/
#   workers      worker_processes (default 1)
#   master       true: master_process on (default off: one process)
#   port         default: one Chatterd::Ports hands out
#   servroot     default: <TEST_NGINX_SERVROOT or t/servroot>_<script name>
#   log_level    default: TEST_NGINX_LOG_LEVEL or debug
#   root_location  false: no "location / { root html; }"
#   binary       default: TEST_NGINX_BINARY, nginx in PATH, /usr/sbin/nginx
#
# start() dies with nginx's stderr / error log when nginx does not start.
# With TEST_NGINX_NO_CLEAN set, nginx is left running when the object is
# destroyed (an explicit stop() still stops it).

use strict;
use warnings;

use Exporter 'import';
use File::Basename ();

use Chatterd::ExampleConf;
use Chatterd::NginxProcess;
use Chatterd::Wait qw(wait_until);

our @EXPORT_OK = qw(start_nginx);

my %instances_of_servroot;    # base servroot -> instances started so far

sub start {
    my ($class, %opt) = @_;
    my %sections = (
        map({ $_ => Chatterd::NginxProcess::expand_env($opt{$_}, $_) }
            grep { defined $opt{$_} } qw(main_config http_config config)),
        user_files => _user_files($opt{user_files}),
    );
    my $proc = Chatterd::NginxProcess->new(
        binary        => $opt{binary},
        port          => $opt{port} // Chatterd::NginxProcess::free_port(),
        servroot      => $opt{servroot} // _default_servroot(),
        log_level     => $opt{log_level} // $ENV{TEST_NGINX_LOG_LEVEL} // 'debug',
        load_modules  => Chatterd::NginxProcess::load_modules_from_env(),
        master        => $opt{master},
        workers       => $opt{workers} // 1,
        root_location => $opt{root_location} // 1,
    );
    $proc->stop;    # a leftover from an earlier run in this servroot
    $proc->prepare(%sections);
    eval { $proc->start; 1 } or do { my $err = $@; $proc->stop; die $err };
    return bless { proc => $proc, owner => $$, mark => 0 }, $class;
}

sub start_nginx {
    my (%opt) = @_;
    my $pg    = delete $opt{pg} // $ENV{TEST_NGINX_PG_CONNINFO};
    my $media = delete $opt{media_root};
    return __PACKAGE__->start(
        master      => 1,
        log_level   => 'info',
        main_config => $> == 0 ? "user root root;\n" : undef,
        %opt,
        http_config => qq{chatterd_pg "$pg";\n}
                       . (defined $media ? "chatterd_media_root $media;\n" : '')
                       . ($opt{http_config} // ''),
        config      => $opt{config} // Chatterd::ExampleConf::endpoint_locations(),
    );
}

# Accessors.
sub port           { $_[0]{proc}->port }
sub servroot       { $_[0]{proc}->servroot }
sub html_dir       { $_[0]{proc}->html_dir }
sub error_log_path { $_[0]{proc}->error_log_path }
sub pid            { $_[0]{proc}->pid }
sub is_running     { $_[0]{proc}->is_running }

# List of worker pids (with master off: the single nginx process).
sub worker_pids { $_[0]{proc}->worker_pids }

# The whole error log so far.
sub error_log_text { $_[0]{proc}->read_error_log(0) }

# Remember the current end of the error log; returns the byte offset.
sub mark_error_log {
    my ($self) = @_;
    $self->{mark} = $self->{proc}->error_log_size;
    return $self->{mark};
}

# Error log text written since the last mark_error_log() (since the start
# when never marked); in list context, the lines.
sub error_log_since_mark {
    my ($self) = @_;
    my $text = $self->{proc}->read_error_log($self->{mark});
    return wantarray ? split(/\n/, $text) : $text;
}

# Polls the error log (since the last mark) until $pattern (a qr// or a substring) shows up;
# returns the first matching line, or undef after `timeout` seconds (default 5).
sub wait_for_error_log {
    my ($self, $pattern, %opt) = @_;
    my $match = ref $pattern ? $pattern : qr/\Q$pattern\E/;
    return wait_until(sub { (grep { $_ =~ $match } $self->error_log_since_mark)[0] },
                      $opt{timeout} // 5) || undef;
}

# Stop nginx (graceful, then forceful); waits until it is gone.
sub stop {
    my ($self) = @_;
    return 1 unless $self->{proc};
    return $self->{proc}->stop;
}

sub DESTROY {
    my ($self) = @_;
    # Forked children (concurrent clients) must not stop the parent's nginx.
    return unless $self->{owner} && $self->{owner} == $$;
    return if $ENV{TEST_NGINX_NO_CLEAN};
    local ($@, $!, $?);
    $self->stop;
}

# <TEST_NGINX_SERVROOT or ./t/servroot>_<script name>[_<n>]: one per test
# script (so prove -j does not mix them up), and one per instance when a
# script runs several at once.
sub _default_servroot {
    my $base = Chatterd::NginxProcess::absolute_path(
        $ENV{TEST_NGINX_SERVROOT} || 't/servroot');
    (my $script = File::Basename::basename($0)) =~ s/\.t\z//;
    $script =~ s/[^\w.-]/_/g;
    my $root = "${base}_$script";
    my $n = ++$instances_of_servroot{$root};
    return $n > 1 ? "${root}_$n" : $root;
}

sub _user_files {
    my ($files) = @_;
    return [] unless $files;
    return [ map { [$_, $files->{$_}] } sort keys %$files ] if ref $files eq 'HASH';
    return $files;
}

1;
