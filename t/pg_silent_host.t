# Failover past a silent host. chatterd's conninfo names two hosts with connect_timeout=2 and
# target_session_attrs=read-write; the first is a listening socket whose accept queue is full
# (listen backlog 0 and a connection never accepted), so the kernel drops every further SYN, as
# for a machine that is down or behind a firewall; the second is the test PostgreSQL. libpq
# ignores connect_timeout in a non-blocking connect and would wait for the first host until the
# kernel gives up: chatterd gives each host its own deadline and then tries the next.
# Asserted: every post is answered 200 and stored, and the database is never taken for down.
use strict; use warnings;
use FindBin; BEGIN { push @INC, "$FindBin::Bin/lib" }
use Test::More;
use IO::Select;
use IO::Socket::INET;
use Socket qw(PF_INET SOCK_STREAM SOL_SOCKET SO_REUSEADDR INADDR_LOOPBACK pack_sockaddr_in
              unpack_sockaddr_in);
use Time::HiRes ();

use Chatterd::Db qw(sql_value truncate_chatts);
use Chatterd::Http qw(http_request build_request);
use Chatterd::Nginx;

for my $var (qw(TEST_NGINX_PG_PORT TEST_NGINX_PSQL)) {
    plan skip_all => "$var is not set (run through make test)" unless $ENV{$var};
}

# A listening socket with a backlog of 0 whose one queued connection is never accepted.
socket(my $silent, PF_INET, SOCK_STREAM, 0) or die "socket: $!";
setsockopt($silent, SOL_SOCKET, SO_REUSEADDR, 1) or die "setsockopt: $!";
bind($silent, pack_sockaddr_in(0, INADDR_LOOPBACK)) or die "bind: $!";
listen($silent, 0) or die "listen: $!";
my ($silent_port) = unpack_sockaddr_in(getsockname($silent));
my @fillers = map { IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $silent_port,
                                          Proto => 'tcp', Blocking => 0) } 1 .. 2;

# Silent: a further connect does not complete within a second.
my $probe = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $silent_port, Proto => 'tcp',
                                  Blocking => 0) or die "connect: $!";
my $answered = IO::Select->new($probe)->can_write(1) && defined getpeername($probe);
ok(!$answered, "port $silent_port is silent: a connect gets no answer");
close $probe;

my $conninfo = "host=127.0.0.1,127.0.0.1 port=$silent_port,$ENV{TEST_NGINX_PG_PORT} dbname=chatterdb "
             . 'user=chatter password=chattchatt connect_timeout=2 target_session_attrs=read-write';
truncate_chatts();
my $ng = Chatterd::Nginx->start(
    log_level   => 'info',
    http_config => qq{chatterd_pg "$conninfo";\nchatterd_pg_pool 2;\n},
    config      => "location = /postchatt { chatterd postchatt; }\n",
);

my $posts = 6;
my @statuses = map {
    my $res = http_request($ng->port, build_request(POST => '/postchatt',
        body => qq({"username":"silent","message":"post $_"}),
        headers => ['Content-Type' => 'application/json']), timeout => 10);
    $res->{status} // 'none';
} 1 .. $posts;
is_deeply(\@statuses, [(200) x $posts], "every post 200 (@statuses)");
is(sql_value(q{SELECT count(*) FROM chatts WHERE username = 'silent'}), $posts, 'every post stored');
my $log = $ng->error_log_text;
unlike($log, qr/cannot be reached|\[alert\]|\[crit\]|\[emerg\]/,
       'the database was never taken for down');
$ng->stop;
close $_ for grep { defined } @fillers;
close $silent;

done_testing();
