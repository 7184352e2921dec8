package Chatterd::Pg;

# A PostgreSQL cluster of a suite's own, for the suites that kill, pause or restart theirs (the
# shared one of scripts/test.sh serves the others), on a port Chatterd::Ports hands out:
#
#   my $pg = Chatterd::Pg->new("$ENV{TEST_NGINX_PG_DIR}-outage");
#   $pg->start;                  # scripts/pg.sh start: initdb once, role chatter, database
#                                # chatterdb, schema.sql; again after a stop or a crash
#   $pg->stop;                   # a fast shutdown
#   $pg->conninfo                # over its unix socket, as chatterd connects
#   $pg->tcp_conninfo            # over 127.0.0.1, with chatter's password
#   $pg->use_for_db;             # Chatterd::Db (sql, truncate_chatts, pause_pg) works on it
#   $pg->admin_value($sql, $db)  # as the superuser (whom connection limits do not stop): the
#                                # first column of the first row
#   $pg->postmaster_pid
#
# new($dir, port => $port) names a cluster made otherwise (a standby), on its socket "$dir.socket".

use strict;
use warnings;

use File::Basename ();

use Chatterd::Ports ();

my $PG_SH = File::Basename::dirname(__FILE__) . '/../../../scripts/pg.sh';

sub new {
    my ($class, $dir, %opt) = @_;
    return bless { dir => $dir, port => $opt{port} // Chatterd::Ports::free_port() }, $class;
}

sub dir        { $_[0]{dir} }
sub port       { $_[0]{port} }
sub socket_dir { "$_[0]{dir}.socket" }

sub start { _pg_sh('start', $_[0]{dir}, $_[0]{port}) }
sub stop  { _pg_sh('stop', $_[0]{dir}) }

sub conninfo {
    my ($self) = @_;
    return "host=" . $self->socket_dir . " port=$self->{port} dbname=chatterdb user=chatter";
}

sub tcp_conninfo {
    my ($self) = @_;
    return "host=127.0.0.1 port=$self->{port} dbname=chatterdb user=chatter password=chattchatt";
}

sub use_for_db {
    my ($self) = @_;
    $ENV{TEST_NGINX_PG_DIR} = $self->{dir};
    $ENV{TEST_NGINX_PSQL}   = "$PG_SH psql $self->{dir} $self->{port}";
}

sub admin_value {
    my ($self, $statement, $db) = @_;
    open(my $fh, '-|', 'psql', '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1',
         '-h', $self->socket_dir, '-p', $self->{port}, '-U', 'postgres', '-d', $db // 'postgres',
         '-c', $statement)
        or die "psql: $!";
    local $/;
    my $out = <$fh> // '';
    close $fh or die "psql failed on $self->{dir} for: $statement\n";
    return (split /\n/, $out)[0];
}

sub postmaster_pid {
    my ($self) = @_;
    open(my $fh, '<', "$self->{dir}/postmaster.pid") or return undef;
    my $pid = <$fh> // '';
    return $pid =~ /^(\d+)$/ ? $1 : undef;
}

sub _pg_sh {
    my @args = @_;
    system($PG_SH, @args) == 0 or die "scripts/pg.sh @args failed\n";
}

1;
