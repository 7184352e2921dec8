package Chatterd::Db;

# The test database and media directory, as scripts/test.sh sets them up:
#   TEST_NGINX_PG_CONNINFO   libpq conninfo chatterd uses (unix socket)
#   TEST_NGINX_PG_DIR        the throwaway cluster's data directory
#   TEST_NGINX_PG_PORT       its port
#   TEST_NGINX_PSQL          a command running psql as chatter on it
#
#   use Chatterd::Db qw(sql truncate_chatts media_root media_files check_media_consistency);
#   truncate_chatts();                       # also empties the media root
#   my @rows = sql('SELECT username FROM chatts ORDER BY time');   # list of arrayrefs
#   check_media_consistency('after TEST 3');  # one ok(): files <-> rows agree
#   check_media_consistency('after the outage', $error_log);   # files of unknown posts allowed

use strict;
use warnings;

use Exporter 'import';
use File::Path ();
use File::Spec;
use Test::More ();
use Time::HiRes ();

our @EXPORT_OK = qw(sql sql_value truncate_chatts media_root media_files
                    check_media_consistency pause_pg resume_pg);

# The media root the suites configure: under the test server root, created on demand.
sub media_root {
    my $root = $ENV{TEST_NGINX_MEDIA_ROOT}
        // File::Spec->rel2abs(($ENV{TEST_NGINX_SERVROOT} // 't/servroot') . '_media');
    File::Path::make_path($root) unless -d $root;
    $ENV{TEST_NGINX_MEDIA_ROOT} = $root;
    return $root;
}

# Runs one SQL statement; returns its rows as arrayrefs of column values (NULL -> undef).
sub sql {
    my ($statement) = @_;
    my $psql = $ENV{TEST_NGINX_PSQL} or die "TEST_NGINX_PSQL is not set (run through make test)\n";
    # Unit separator / record separator: values may contain tabs and newlines.
    open(my $fh, '-|', split(' ', $psql), '-A', '-t', '-F', "\x1f", '-R', "\x1e",
         '-P', 'null=\\N', '-c', $statement)
        or die "psql: $!";
    local $/;
    my $out = <$fh> // '';
    close $fh or die "psql failed for: $statement\n";
    $out =~ s/\n\z//;
    return map { [map { $_ eq '\\N' ? undef : $_ } split /\x1f/, $_, -1] }
           grep { length } split /\x1e/, $out;
}

sub sql_value {
    my ($statement) = @_;
    my @rows = sql($statement);
    return @rows ? $rows[0][0] : undef;
}

# A clean slate: no rows, no media files, no resumable uploads.
sub truncate_chatts {
    sql('TRUNCATE chatts');
    my $root = media_root();
    File::Path::remove_tree(File::Spec->catdir($root, '.uploads'));
    unlink map { File::Spec->catfile($root, $_) } _entries($root);
}

# Names of the files in the media root (dot-files included: none should ever stay), but for
# .uploads, the directory of resumable uploads (t/tus.t checks what it holds).
sub media_files { return sort grep { $_ ne '.uploads' } _entries(media_root()) }

# Every file in the media root is named by a row, and every row's URLs name an existing file;
# with $log (error log text), a file may also be one whose post's outcome was unknown, which
# the log names as kept. One ok(); returns how many such files there are.
sub check_media_consistency {
    my ($label, $log) = @_;
    my %kept = map { $_ => 1 } map { split ' ' } ($log // '')
        =~ /whether the row of post \S+ was stored is unknown \([^)]*\); its files \(([^)]*)\) are kept/g;
    my %files = map { $_ => 1 } media_files();
    my %named;
    for my $row (sql('SELECT imageurl, videourl FROM chatts')) {
        $named{$_} = 1 for map { m{/media/([^/]+)\z} ? $1 : () } grep { defined } @$row;
    }
    my @orphans = grep { !$named{$_} && !$kept{$_} } sort keys %files;
    my @missing = grep { !$files{$_} } sort keys %named;
    my $kept = defined $log ? ' (' . keys(%kept) . ' files of posts of unknown outcome kept)' : '';
    Test::More::ok(!@orphans && !@missing, "$label: media files and rows agree$kept")
        or Test::More::diag("files without a row: @orphans\nrows without a file: @missing");
    return scalar keys %kept;
}

# Pausing the server: pause_pg() SIGSTOPs its processes, resume_pg() continues them. The paused
# pids are kept here so that no way out of a suite leaves PostgreSQL stopped: resume_pg() runs at
# exit, and INT, TERM and HUP become an exit, which runs it (and the suites' own END blocks).
# A client forked while the server is paused inherits the pids: only the process that paused it
# resumes it.
my (@paused, $pauser);
$SIG{$_} = sub { exit 1 } for qw(INT TERM HUP);
sub pause_pg {
    $pauser = $$;
    push @paused, _stop_pg_processes();
}
sub resume_pg {
    kill 'CONT', @paused if @paused && $$ == $pauser;
    @paused = ();
}
END { local ($?, $@); resume_pg() }

# The server's processes (postmaster first).
sub _pg_pids {
    my $dir = $ENV{TEST_NGINX_PG_DIR} or die "TEST_NGINX_PG_DIR is not set\n";
    open(my $fh, '<', "$dir/postmaster.pid") or die "postmaster.pid: $!";
    chomp(my $master = <$fh>);
    my @children = split ' ', `pgrep -P $master`;
    return ($master, @children);
}

# SIGSTOP the server's processes, also one forked while the others were being stopped, and
# wait until the kernel shows them all stopped. Returns their pids.
sub _stop_pg_processes {
    my (%stopped, @pids);
    for (1 .. 20) {
        my @new = grep { !$stopped{$_} } _pg_pids();
        last unless @new;
        kill 'STOP', @new;
        push @pids, @new;
        $stopped{$_} = 1 for @new;
    }
    my $deadline = Time::HiRes::time() + 5;
    for my $pid (@pids) {
        until (_process_state($pid) =~ /^[TtZX]?\z/) {
            die "PostgreSQL process $pid did not stop\n" if Time::HiRes::time() > $deadline;
            Time::HiRes::sleep(0.01);
        }
    }
    return @pids;
}

sub _process_state {
    open my $fh, '<', "/proc/$_[0]/stat" or return '';
    my $stat = <$fh> // '';
    return $stat =~ /^\d+ \(.*\) (\S)/s ? $1 : '';
}

sub _entries {
    my ($dir) = @_;
    opendir(my $dh, $dir) or return ();
    return grep { $_ ne '.' && $_ ne '..' } readdir $dh;
}

1;
