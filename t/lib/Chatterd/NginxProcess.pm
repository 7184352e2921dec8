package Chatterd::NginxProcess;

# One nginx instance of a test run, for the fallback Test::Nginx::Socket and Chatterd::Nginx:
# its server root laid out afresh, nginx.conf rendered as Test::Nginx::Socket does, nginx started
# as a daemon and waited for until it listens, stopped (SIGQUIT, then SIGTERM, then SIGKILL) and
# waited for until it is gone, its error log read from an offset. Errors are die()s.

use strict;
use warnings;

use Cwd ();
use Errno ();
use File::Path ();
use File::Spec;
use POSIX ();
use Time::HiRes ();

use Chatterd::Ports ();

our $START_TIMEOUT = 10;    # seconds for nginx to start listening
our $STOP_GRACE    = 5;     # seconds after SIGQUIT before SIGTERM
our $POLL_INTERVAL = 0.02;  # seconds between polls

# Marker file that identifies a directory as one of our server roots, so
# that wiping it can never remove something else by accident.  In conf/,
# which the real Test::Nginx removes before it removes the server root:
# anything else left at the top would make it bail out.
my $MARKER = File::Spec->catfile('conf', '.chatterd-servroot');

#---------------------------------------------------------------------------
# Construction and defaults
#---------------------------------------------------------------------------

# Chatterd::NginxProcess->new(%options)
#   binary        nginx executable (default: binary_from_env())
#   port          listen port on 127.0.0.1 (default 1984)
#   servroot      server root, made absolute (default t/servroot)
#   log_level     error_log level (default debug)
#   load_modules  arrayref of .so paths -> load_module lines
#   master        true: master_process on
#   workers       worker_processes
#   root_location false: no "location / { root html; }"
#   worker_connections  (default 1024)
#   user          user directive (default none)
sub new {
    my ($class, %opt) = @_;
    my $self = bless {
        binary        => $opt{binary} // binary_from_env(),
        port          => $opt{port} // 1984,
        servroot      => absolute_path($opt{servroot} // 't/servroot'),
        log_level     => $opt{log_level} // 'debug',
        load_modules  => $opt{load_modules} // [],
        master        => $opt{master} ? 1 : 0,
        workers       => $opt{workers} // 1,
        root_location => $opt{root_location} // 1,
        worker_connections => $opt{worker_connections} // 1024,
        user          => $opt{user},
        started_pid   => undef,
    }, $class;
    return $self;
}

# Plain accessors.
sub binary        { $_[0]{binary} }
sub port          { $_[0]{port} }
sub servroot      { $_[0]{servroot} }
sub html_dir      { File::Spec->catdir($_[0]{servroot}, 'html') }
sub error_log_path { File::Spec->catfile($_[0]{servroot}, 'logs', 'error.log') }
sub pid_file      { File::Spec->catfile($_[0]{servroot}, 'logs', 'nginx.pid') }
sub stderr_file   { File::Spec->catfile($_[0]{servroot}, 'logs', 'nginx-start.stderr') }

# Setters for the conf-level settings (used by Test::Nginx::Socket, whose
# settings may change between blocks).
sub set {
    my ($self, %opt) = @_;
    for my $key (keys %opt) {
        die "Chatterd::NginxProcess: unknown setting '$key'\n"
            unless exists $self->{$key};
        $self->{$key} = $key eq 'servroot' ? absolute_path($opt{$key}) : $opt{$key};
    }
    return $self;
}

# TEST_NGINX_BINARY, else "nginx" found in PATH, else /usr/sbin/nginx.
sub binary_from_env {
    return $ENV{TEST_NGINX_BINARY} if defined $ENV{TEST_NGINX_BINARY}
                                     && length $ENV{TEST_NGINX_BINARY};
    for my $dir (File::Spec->path) {
        my $candidate = File::Spec->catfile($dir, 'nginx');
        return $candidate if -f $candidate && -x _;
    }
    return '/usr/sbin/nginx';
}

# TEST_NGINX_LOAD_MODULES: space-separated .so paths, made absolute
# (relative to the current directory) because nginx would resolve them
# against its prefix, the server root.
sub load_modules_from_env {
    my $list = $ENV{TEST_NGINX_LOAD_MODULES} // '';
    return [ map { absolute_path($_) } grep { length } split /\s+/, $list ];
}

sub absolute_path {
    my ($path) = @_;
    return File::Spec->rel2abs($path, Cwd::getcwd());
}

# A port handed out by Chatterd::Ports (the name the suites know).
sub free_port { Chatterd::Ports::free_port() }

#---------------------------------------------------------------------------
# Configuration
#---------------------------------------------------------------------------

# Replace every $TEST_NGINX_FOO in $text by $ENV{TEST_NGINX_FOO}.  Dies
# (message starts with "undefined environment variable") when one is not
# set; $where names the section for the message.
sub expand_env {
    my ($text, $where) = @_;
    return $text unless defined $text;
    $text =~ s{\$(TEST_NGINX_[A-Za-z0-9_]+)}{
        defined $ENV{$1}
            ? $ENV{$1}
            : die "undefined environment variable \$$1 used in $where\n"
    }ge;
    return $text;
}

# The nginx.conf text for the given sections (main_config, http_config,
# config), laid out like Test::Nginx::Socket's generated configuration.
sub render_config {
    my ($self, %section) = @_;
    my $root = $self->{servroot};
    my $text = "# Generated by Chatterd::NginxProcess; do not edit.\n";

    $text .= "load_module $_;\n" for @{ $self->{load_modules} };
    $text .= "worker_processes $self->{workers};\n"
           . "daemon on;\n"
           . 'master_process ' . ($self->{master} ? 'on' : 'off') . ";\n"
           . "error_log logs/error.log $self->{log_level};\n"
           . "pid logs/nginx.pid;\n";
    $text .= "user $self->{user};\n" if defined $self->{user};

    $text .= "\n" . _section($section{main_config});

    $text .= <<"EOF";

events {
    accept_mutex off;
    worker_connections $self->{worker_connections};
}

http {
    access_log logs/access.log;
    default_type text/plain;
    keepalive_timeout 68;

    client_body_temp_path $root/client_body_temp;
    proxy_temp_path $root/proxy_temp;
    fastcgi_temp_path $root/fastcgi_temp;
    uwsgi_temp_path $root/uwsgi_temp;
    scgi_temp_path $root/scgi_temp;

EOF
    $text .= _section($section{http_config}, '    ');
    $text .= <<"EOF";

    server {
        listen 127.0.0.1:$self->{port};
        server_name localhost;
        client_max_body_size 30M;

EOF
    $text .= _section($section{config}, '        ');
    if ($self->{root_location}) {
        $text .= "\n        location / {\n            root html;\n        }\n";
    }
    $text .= "    }\n}\n";
    return $text;
}

# A config fragment, indented, ending with a newline ('' when empty).
sub _section {
    my ($fragment, $indent) = @_;
    return '' unless defined $fragment && $fragment =~ /\S/;
    $indent //= '';
    $fragment =~ s/\n*\z/\n/;
    $fragment =~ s/^(?=.)/$indent/mg;
    return $fragment;
}

#---------------------------------------------------------------------------
# Server root
#---------------------------------------------------------------------------

# Wipe and recreate the server root, write conf/nginx.conf and the user
# files.  nginx must not be running in it (call stop() first).
#   prepare(main_config => ..., http_config => ..., config => ...,
#           user_files => [[name, content], ...])
sub prepare {
    my ($self, %section) = @_;
    $self->_wipe_servroot;
    my $root = $self->{servroot};
    for my $dir ('', qw(conf html logs)) {
        _mkdir(File::Spec->catdir($root, $dir));
    }
    _write_file($root, $MARKER, "server root of a chatterd test run\n");
    _write_file($root, 'conf/nginx.conf', $self->render_config(%section));
    for my $file (@{ $section{user_files} // [] }) {
        my ($name, $content) = @$file;
        _check_user_file_name($name);
        _write_file($self->html_dir, $name, $content);
    }
    return $self;
}

# Remove the server root, refusing to touch a directory that does not look
# like one of ours (or one left by the real Test::Nginx).
sub _wipe_servroot {
    my ($self) = @_;
    my $root = $self->{servroot};
    return unless -e $root;
    die "server root $root exists and is not a directory\n" unless -d $root;
    opendir my $dh, $root or die "cannot read $root: $!\n";
    my @entries = grep { !/^\.\.?\z/ } readdir $dh;
    closedir $dh;
    my $ours = !@entries
        || -e File::Spec->catfile($root, $MARKER)
        || -e File::Spec->catfile($root, 'conf', 'nginx.conf');
    die "refusing to wipe $root: it does not look like a test server root\n"
        unless $ours;
    File::Path::remove_tree($root, { error => \my $errors });
    die "cannot remove $root: " . join(', ', map { values %$_ } @$errors) . "\n"
        if @$errors;
}

sub _check_user_file_name {
    my ($name) = @_;
    die "user file name is empty\n" unless defined $name && length $name;
    die "user file name '$name' must be relative and stay inside html/\n"
        if File::Spec->file_name_is_absolute($name)
        || grep { $_ eq '..' } split m{/}, $name;
}

# Directories are 0755 and files 0644 whatever the umask, so that nginx
# worker processes running as an unprivileged user (master_process on,
# started as root) can read them.
sub _mkdir {
    my ($dir) = @_;
    File::Path::make_path($dir, { mode => 0755, error => \my $errors });
    die "cannot create $dir\n" if @$errors;
    chmod 0755, $dir;
}

sub _write_file {
    my ($base, $relative, $content) = @_;
    my $path = File::Spec->catfile($base, $relative);
    my ($volume, $dir) = File::Spec->splitpath($path);
    my @created = File::Path::make_path(File::Spec->catpath($volume, $dir, ''));
    chmod 0755, @created;
    open my $fh, '>:raw', $path or die "cannot write $path: $!\n";
    print {$fh} $content // '';
    close $fh or die "cannot write $path: $!\n";
    chmod 0644, $path;
    return $path;
}

#---------------------------------------------------------------------------
# Start
#---------------------------------------------------------------------------

# Start nginx ("-p servroot/ -c conf/nginx.conf", daemon mode) and wait
# until it listens.  Dies with nginx's stderr (or the error log) on
# failure.
sub start {
    my ($self) = @_;
    my ($status, $stderr) = $self->_run_launcher;
    if ($status != 0) {
        die "nginx failed to start (exit status $status):\n"
            . _indent($stderr || $self->_error_log_tail || "(no output)\n");
    }
    $self->_wait_until_ready;
    return $self;
}

# Run the foreground nginx (it forks the daemon and exits); returns its
# exit status and whatever it wrote to stdout/stderr.
sub _run_launcher {
    my ($self) = @_;
    my @cmd = ($self->{binary}, '-p', "$self->{servroot}/", '-c', 'conf/nginx.conf');
    my $out = $self->stderr_file;

    local $SIG{CHLD} = 'DEFAULT';    # a test may have set it to IGNORE
    my $pid = fork;
    die "fork failed: $!\n" unless defined $pid;
    if ($pid == 0) {
        # Child: stdout/stderr to a file, not a pipe, because the daemon
        # may keep the descriptors open after the launcher exits.
        open STDIN,  '<', '/dev/null';
        open STDOUT, '>', $out or POSIX::_exit(126);
        open STDERR, '>&', \*STDOUT or POSIX::_exit(126);
        exec { $cmd[0] } @cmd or do {
            print STDERR "cannot execute $cmd[0]: $!\n";
            POSIX::_exit(127);
        };
    }

    my $deadline = Time::HiRes::time() + $START_TIMEOUT;
    my $reaped;
    while (($reaped = waitpid($pid, POSIX::WNOHANG())) == 0) {
        if (Time::HiRes::time() > $deadline) {
            kill 'KILL', $pid;
            waitpid $pid, 0;
            die "nginx launcher did not exit within ${START_TIMEOUT}s\n";
        }
        Time::HiRes::sleep($POLL_INTERVAL);
    }
    # $reaped == -1: someone else reaped it; readiness polling will tell.
    my $status = $reaped == -1 ? 0
               : ($? >> 8) || ($? & 127 ? 128 + ($? & 127) : 0);
    return ($status, _slurp($out) // '');
}

# Poll until the pid file names a live process and the port is listening.
sub _wait_until_ready {
    my ($self) = @_;
    my $deadline = Time::HiRes::time() + $START_TIMEOUT;
    while (1) {
        my $pid = $self->pid;
        if (defined $pid) {
            if (!process_alive($pid)) {
                die "nginx (pid $pid) exited right after starting:\n"
                    . _indent($self->_error_log_tail || "(empty error log)\n");
            }
            if ($self->_port_listening && $self->_workers_up) {
                $self->{started_pid} = $pid;
                return;
            }
        }
        if (Time::HiRes::time() > $deadline) {
            die "nginx did not listen on 127.0.0.1:$self->{port} within "
                . "${START_TIMEOUT}s:\n"
                . _indent($self->_error_log_tail || "(empty error log)\n");
        }
        Time::HiRes::sleep($POLL_INTERVAL);
    }
}

# With master_process on, the master writes the pid file before it forks
# the workers: wait for them too (at least one for "auto").
sub _workers_up {
    my ($self) = @_;
    return 1 unless $self->{master};
    my $want = $self->{workers} =~ /^\d+$/ ? $self->{workers} : 1;
    return scalar($self->worker_pids) >= $want;
}

# True when a socket listens on our port.  Reads /proc/net/tcp rather than
# connecting, so that no probe connection shows up in the error log of the
# first request.
sub _port_listening {
    my ($self) = @_;
    my $port_hex = sprintf '%04X', $self->{port};
    open my $fh, '<', '/proc/net/tcp' or die "/proc/net/tcp: $!\n";
    while (my $line = <$fh>) {
        # "  0: 0100007F:07C0 00000000:0000 0A ..."; state 0A = LISTEN
        return 1 if $line =~ /^\s*\d+:\s+[0-9A-F]{8}:$port_hex\s+\S+\s+0A\s/i;
    }
    return 0;
}

#---------------------------------------------------------------------------
# Processes and stop
#---------------------------------------------------------------------------

# The pid in logs/nginx.pid (master, or the single process), or undef.
sub pid {
    my ($self) = @_;
    my $text = _slurp($self->pid_file);
    return undef unless defined $text && $text =~ /^\s*(\d+)\s*$/;
    return $1;
}

# Is the process alive (and not a zombie)?
sub process_alive {
    my ($pid) = @_;
    return 0 unless $pid && (kill(0, $pid) || $! == Errno::EPERM);
    my $stat = _slurp("/proc/$pid/stat") // return 0;
    return $stat =~ /^\d+ \(.*\) (\S)/s && $1 ne 'Z' && $1 ne 'X' ? 1 : 0;
}

sub is_running {
    my ($self) = @_;
    my $pid = $self->pid;
    return defined $pid && process_alive($pid);
}

# Worker pids: with master_process off, the single nginx process; with it
# on, the children of the master that are worker processes.
sub worker_pids {
    my ($self) = @_;
    my $master = $self->pid;
    return () unless defined $master && process_alive($master);
    return ($master) unless $self->{master};
    return grep {
        my $cmd = _slurp("/proc/$_/cmdline") // '';
        $cmd =~ /worker process/;
    } _children_of($master);
}

sub _children_of {
    my ($parent) = @_;
    opendir my $dh, '/proc' or return ();
    my @children;
    for my $pid (grep { /^\d+$/ } readdir $dh) {
        my $stat = _slurp("/proc/$pid/stat") // next;
        # field 4 (after "pid (comm) state") is the parent pid
        push @children, $pid if $stat =~ /^\d+ \(.*\) \S (\d+)/s && $1 == $parent;
    }
    closedir $dh;
    return sort { $a <=> $b } @children;
}

# Stop nginx if it runs in this server root: SIGQUIT (graceful), then
# SIGTERM after $STOP_GRACE seconds, then SIGKILL; waits (polling) until
# the master/single process and the workers are gone.  Returns true when
# nothing is left running.
sub stop {
    my ($self) = @_;
    my $pid = $self->pid;
    return 1 unless defined $pid && process_alive($pid);
    return 1 unless $self->_is_our_nginx($pid);

    my @all = ($pid, $self->{master} ? _children_of($pid) : ());
    for my $step (['QUIT', $STOP_GRACE], ['TERM', 3], ['KILL', 3]) {
        my ($signal, $wait) = @$step;
        kill $signal, grep { process_alive($_) } @all;
        if (_wait_gone($wait, @all)) {
            unlink $self->pid_file;    # stale after SIGKILL
            $self->{started_pid} = undef;
            return 1;
        }
    }
    warn "nginx (pid $pid) did not exit even after SIGKILL\n";
    return 0;
}

# A pid from the pid file belongs to our nginx when we started it, or (for a
# stale pid file from an earlier run) when it is an nginx process.
sub _is_our_nginx {
    my ($self, $pid) = @_;
    return 1 if defined $self->{started_pid} && $self->{started_pid} == $pid;
    return (_slurp("/proc/$pid/cmdline") // '') =~ /nginx/ ? 1 : 0;
}

sub _wait_gone {
    my ($seconds, @pids) = @_;
    my $deadline = Time::HiRes::time() + $seconds;
    while (grep { process_alive($_) } @pids) {
        return 0 if Time::HiRes::time() > $deadline;
        Time::HiRes::sleep($POLL_INTERVAL);
    }
    return 1;
}

#---------------------------------------------------------------------------
# Error log
#---------------------------------------------------------------------------

# Current size of the error log in bytes (0 when absent): an offset for
# read_error_log().
sub error_log_size {
    my ($self) = @_;
    return -s $self->error_log_path || 0;
}

# The error log text from byte $offset (default 0) to the end.
sub read_error_log {
    my ($self, $offset) = @_;
    open my $fh, '<:raw', $self->error_log_path or return '';
    seek $fh, $offset // 0, 0;
    local $/;
    my $text = <$fh>;
    return $text // '';
}

sub _error_log_tail {
    my ($self, $lines) = @_;
    my @lines = split /\n/, $self->read_error_log;
    @lines = grep { !/\[debug\]/ } @lines;    # the interesting part
    splice @lines, 0, @lines - ($lines // 20) if @lines > ($lines // 20);
    return join '', map { "$_\n" } @lines;
}

#---------------------------------------------------------------------------
# Small helpers
#---------------------------------------------------------------------------

sub _slurp {
    my ($path) = @_;
    open my $fh, '<:raw', $path or return undef;
    local $/;
    my $text = <$fh>;
    return $text // '';
}

sub _indent {
    my ($text) = @_;
    $text =~ s/^/    /mg;
    return $text;
}

1;

