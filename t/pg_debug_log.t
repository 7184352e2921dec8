# The pool's story in a debug error log: every change of a connection's, a call's and the
# database's state is one debug line. A post (its INSERT is prepared first), a read (a COPY),
# then a pool whose port nobody listens on (the database's states).
use strict; use warnings;
use FindBin; BEGIN { push @INC, "$FindBin::Bin/lib" }
use Test::More;

use Chatterd::Http qw(http_get http_request build_request);
use Chatterd::Nginx qw(start_nginx);
use Chatterd::Ports qw(free_port);
use Chatterd::Wait qw(wait_until);

for my $var (qw(TEST_NGINX_PG_CONNINFO)) {
    plan skip_all => "$var is not set (run through make test)" unless $ENV{$var};
}

my $locations = "location = /postchatt { chatterd postchatt; }\n"
              . "location = /getchatts { chatterd getchatts; }\n";
my $ng = start_nginx(log_level => 'debug', http_config => "chatterd_pg_pool 1;\n",
                     config => $locations);
my $post = http_request($ng->port, build_request(POST => '/postchatt',
    body => '{"username":"debuglog","message":"told"}',
    headers => ['Content-Type' => 'application/json']), timeout => 10);
is($post->{status}, 200, 'a post: 200');
is(http_get($ng->port, '/getchatts')->{status}, 200, 'a read: 200');
my $conn = qr/chatterd: postgres connection [0-9A-Fa-fx]+/;
my $call = qr/chatterd: postgres call [0-9A-Fa-fx]+/;
ok(wait_until(sub { $ng->error_log_text =~ /$call running -> outside/ }, 10),
   'the calls are told');
my $log = $ng->error_log_text;
for my $step ('closed -> connecting', 'connecting -> idle', 'idle -> preparing',
              'preparing -> querying', 'querying -> copying', 'copying -> querying',
              'querying -> idle') {
    like($log, qr/\[debug\].*$conn \Q$step\E/, "connection: $step");
}
for my $step ('outside -> waiting', 'waiting -> running', 'running -> outside') {
    like($log, qr/\[debug\].*$call \Q$step\E/, "call: $step");
}
$ng->stop;

my $port = free_port();
$ng = start_nginx(log_level => 'debug', config => $locations,
                  pg => "host=127.0.0.1 port=$port dbname=chatterdb user=chatter");
my $database = qr/chatterd: postgres \(host=127\.0\.0\.1 port=$port [^)]*\) database/;
ok(wait_until(sub {
       http_get($ng->port, '/getchatts');
       $ng->error_log_text =~ /$database backing_off -> probing/;
   }, 15), 'database: backing_off -> probing');
like($ng->error_log_text, qr/\[debug\].*$database reachable -> backing_off/,
     'database: reachable -> backing_off');
$ng->stop;

done_testing();
