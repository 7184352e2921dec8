# The module's directives (README, "Configuration"), checked with `nginx -t` on
# generated configurations: the module loads; every directive accepts its good values in http,
# server and location (inherited downward) and refuses its bad ones with an [emerg] that makes
# nginx refuse to start; "chatterd" needs "chatterd_pg", "chatterd postimages" needs
# "chatterd_media_root" (an existing directory; "" is refused); make run's configuration, made
# from nginx.conf.example by scripts/nginx-conf.pl, passes `nginx -t` with the module loaded into
# /usr/sbin/nginx. Then, on a running nginx: inheritance of chatterd_pg (innermost wins) and the
# 405 answers of each endpoint.
#
# A scenario test (Test::More): whether nginx starts is asserted directly from `nginx -t`.
use strict; use warnings;
use FindBin; BEGIN { push @INC, "$FindBin::Bin/lib" }
use Test::More;
use File::Path ();
use File::Temp ();
use IPC::Open3 ();
use Symbol ();

use Chatterd::ExampleConf ();
use Chatterd::Http qw(http_request build_request);
use Chatterd::Nginx;
use Chatterd::NginxProcess ();

$ENV{TEST_NGINX_PG_CONNINFO} //= 'host=/var/run/postgresql dbname=chatterdb user=chatter';
my $BINARY  = Chatterd::NginxProcess::binary_from_env();
my @MODULES = @{ Chatterd::NginxProcess::load_modules_from_env() };
plan skip_all => 'TEST_NGINX_LOAD_MODULES does not name the chatterd module'
    unless grep { /chatterd/ } @MODULES;

my $prefix = File::Temp::tempdir('chatterd-directives-XXXXXX', TMPDIR => 1, CLEANUP => 1);
File::Path::make_path("$prefix/logs", "$prefix/media", "$prefix/relmedia");
chmod 0755, $prefix, "$prefix/media";
open my $fh, '>', "$prefix/a-file" or die $!;
close $fh;
my $CONNINFO = 'host=/nonexistent/chatterd-test dbname=chatterdb user=chatter';

# Runs `nginx -t` on a configuration; returns (exit status, stdout+stderr).
sub nginx_t {
    my ($conf_text, %opt) = @_;
    my $conf = "$prefix/nginx.conf";
    open my $out, '>', $conf or die "$conf: $!";
    print {$out} $conf_text;
    close $out or die "$conf: $!";
    my @cmd = ($opt{binary} // $BINARY, '-t', '-p', "$prefix/", '-c', $conf);
    my $pid = IPC::Open3::open3(my $in, my $reader, undef, @cmd);
    close $in;
    my $text = do { local $/; <$reader> } // '';
    waitpid $pid, 0;
    return ($? >> 8, $text);
}

# A whole configuration: the module, then http { <http> server { <server> location /t { <location> } } }.
sub conf {
    my (%part) = @_;
    my $modules = join '', map { "load_module $_;\n" } @{ $part{modules} // \@MODULES };
    my $location = defined $part{location} ? "        location /t {\n            $part{location}\n        }\n" : '';
    return <<"CONF";
${modules}error_log logs/error.log;
pid logs/nginx.pid;
events { worker_connections 64; }
http {
    $part{http}
    server {
        listen 127.0.0.1:1;
        $part{server}
$location    }
}
CONF
}

sub accepted {
    my ($name, %part) = @_;
    my ($rc, $out) = nginx_t(conf(map { $_ => $part{$_} // '' } qw(http server location)),
                             %part);
    ok($rc == 0 && $out =~ /test is successful/, "accepted: $name")
        or diag("exit $rc:\n$out");
}

# Refused: nginx -t fails, and an [emerg] line matches $pattern, which names the directive.
sub refused {
    my ($name, $pattern, %part) = @_;
    my ($rc, $out) = nginx_t(conf(map { $_ => $part{$_} // '' } qw(http server location)));
    ok($rc != 0 && $out =~ /test failed/, "refused: $name") or diag("exit $rc:\n$out");
    like($out, qr/\[emerg\][^\n]*$pattern[^\n]* in \Q$prefix\E\/nginx\.conf:\d+$/m,
         "refused: $name: one [emerg] line says why, and where") or diag($out);
}

my $PG = qq{chatterd_pg "$CONNINFO";};

subtest 'the module loads' => sub {
    accepted('load_module alone');
    accepted('every directive at http level, no chatterd location',
             http => qq{$PG chatterd_pg_pool 8; chatterd_pg_queue 10; chatterd_pg_timeout 2s;
                        chatterd_media_root $prefix/media; chatterd_media_url /media/;
                        chatterd_media_max_size 1m; chatterd_media_sweep 1h;
                        chatterd_media_quarantine $prefix/quarantine; chatterd_media_sweep_limit 10;
                        chatterd_media_sweep_timeout 1m;});
    my ($rc, $out) = nginx_t(conf(modules => [], http => $PG, server => '', location => ''));
    ok($rc != 0 && $out =~ /unknown directive "chatterd_pg"/,
       'without load_module the directives are unknown (the module is what defines them)')
        or diag($out);
};

subtest 'chatterd: the four endpoints, in a location only' => sub {
    for my $endpoint (qw(getchatts postchatt getimages)) {
        accepted("chatterd $endpoint", http => $PG, location => "chatterd $endpoint;");
    }
    accepted('chatterd postimages', http => $PG,
             location => "chatterd postimages; chatterd_media_root $prefix/media;");
    accepted('regex locations of nginx.conf.example', http => $PG,
             server => 'location ~ ^/getchatts/?$ { chatterd getchatts; } '
                     . 'location ~ ^/postchatt/?$ { chatterd postchatt; }');
    accepted('chatterd uploads, without a database',
             location => "chatterd uploads; chatterd_media_root $prefix/media;");
    refused('chatterd uploads without a media root',
            qr/"chatterd uploads" needs "chatterd_media_root" to be set/,
            location => 'chatterd uploads;');
    refused('unknown endpoint', qr/unknown chatterd endpoint "getchat"/,
            http => $PG, location => 'chatterd getchat;');
    refused('endpoint name is case-sensitive', qr/unknown chatterd endpoint "GetChatts"/,
            http => $PG, location => 'chatterd GetChatts;');
    refused('no argument', qr/invalid number of arguments in "chatterd" directive/,
            http => $PG, location => 'chatterd;');
    refused('two arguments', qr/invalid number of arguments in "chatterd" directive/,
            http => $PG, location => 'chatterd getchatts postchatt;');
    refused('twice in a location', qr/"chatterd" directive is duplicate/,
            http => $PG, location => 'chatterd getchatts; chatterd getimages;');
    refused('in server', qr/"chatterd" directive is not allowed here/,
            http => $PG, server => 'chatterd getchatts;');
    refused('in http', qr/"chatterd" directive is not allowed here/,
            http => "$PG chatterd getchatts;");
};

subtest 'chatterd_pg: a libpq conninfo or URI, checked by libpq' => sub {
    for my $good ('host=/var/run/postgresql dbname=chatterdb user=chatter',
                  "host=localhost port=5432 dbname=chatterdb user=chatter password='a b' connect_timeout=3",
                  'host=10.0.0.1,10.0.0.2 port=5432,5433 dbname=chatterdb target_session_attrs=read-write',
                  'host=db1,db2 hostaddr=10.0.0.1,10.0.0.2 port=5432,5433 dbname=chatterdb',
                  'host=::1 dbname=chatterdb',
                  'postgresql://chatter@localhost:5432/chatterdb?connect_timeout=3',
                  'postgres:///chatterdb?host=/var/run/postgresql',
                  'dbname=chatterdb') {
        accepted("chatterd_pg \"$good\"", http => qq{chatterd_pg "$good";},
                 location => 'chatterd getchatts;');
    }
    refused('unknown keyword', qr/chatterd_pg[^\n]*invalid connection option "colour"/,
            http => q{chatterd_pg "dbname=chatterdb colour=blue";});
    refused('keyword without "="', qr/chatterd_pg[^\n]*missing "=" after "dbname"/,
            http => q{chatterd_pg "dbname";});
    refused('unterminated quote', qr/chatterd_pg[^\n]*unterminated quoted string/,
            http => q{chatterd_pg "dbname='chatterdb";});
    refused('broken URI', qr/chatterd_pg[^\n]*(?:URI|IPv6)/,
            http => q{chatterd_pg "postgresql://[::1/chatterdb";});
    # A name would be looked up by libpq with a blocking call inside the event loop.
    for my $named (['host=db.example.org dbname=chatterdb', 'db.example.org'],
                   ['host=10.0.0.1,db2 port=5432,5432 dbname=chatterdb', 'db2'],
                   ['host=db1,db2 hostaddr=10.0.0.1, dbname=chatterdb', 'db2'],
                   ['postgresql://chatter@db.example.org/chatterdb', 'db.example.org']) {
        my ($conninfo, $name) = @$named;
        refused("a host name without its address ($conninfo)",
                qr/chatterd_pg: host "\Q$name\E" is a name: libpq would look it up with a blocking call[^\n]*hostaddr=/,
                http => qq{chatterd_pg "$conninfo";});
    }
    refused('no argument', qr/invalid number of arguments in "chatterd_pg" directive/,
            http => 'chatterd_pg;');
    refused('twice at one level', qr/"chatterd_pg" directive is duplicate/,
            http => "$PG $PG");
};

# Numeric directives: [name, good values, bad values with what the [emerg] says].
my @numeric = (
    ['chatterd_pg_pool', [1, 4, 1000],
     [[0, '"chatterd_pg_pool" directive must be between 1 and 1000'],
      [1001, '"chatterd_pg_pool" directive must be between 1 and 1000'],
      [-1, '"chatterd_pg_pool" directive invalid number'],
      ['abc', '"chatterd_pg_pool" directive invalid number'],
      ['1.5', '"chatterd_pg_pool" directive invalid number']]],
    ['chatterd_pg_queue', [0, 1024, 1000000],
     [[1000001, '"chatterd_pg_queue" directive must be between 0 and 1000000'],
      [-1, '"chatterd_pg_queue" directive invalid number'],
      ['many', '"chatterd_pg_queue" directive invalid number']]],
    ['chatterd_pg_timeout', ['1ms', '500ms', '5s', '1m', '1h', '2'],
     [[0, '"chatterd_pg_timeout" directive must be greater than 0'],
      ['0s', '"chatterd_pg_timeout" directive must be greater than 0'],
      ['-1s', '"chatterd_pg_timeout" directive invalid value'],
      ['5x', '"chatterd_pg_timeout" directive invalid value'],
      ['soon', '"chatterd_pg_timeout" directive invalid value']]],
    ['chatterd_pg_backoff_max', ['100ms', '10s', '1m'],
     [[0, '"chatterd_pg_backoff_max" directive must be greater than 0'],
      ['-1s', '"chatterd_pg_backoff_max" directive invalid value'],
      ['later', '"chatterd_pg_backoff_max" directive invalid value']]],
    ['chatterd_media_max_size', [1, '512k', '10m', '1g'],
     [[0, '"chatterd_media_max_size" directive must be greater than 0'],
      ['0k', '"chatterd_media_max_size" directive must be greater than 0'],
      [-1, '"chatterd_media_max_size" directive invalid value'],
      ['10x', '"chatterd_media_max_size" directive invalid value'],
      ['big', '"chatterd_media_max_size" directive invalid value']]],
    ['chatterd_media_sweep_limit', [1, 1000, 100000000],
     [[0, '"chatterd_media_sweep_limit" directive must be between 1 and 100000000'],
      [-1, '"chatterd_media_sweep_limit" directive invalid number'],
      ['all', '"chatterd_media_sweep_limit" directive invalid number']]],
    ['chatterd_media_sweep_timeout', ['1s', '10m', '1h'],
     [[0, '"chatterd_media_sweep_timeout" directive must be greater than 0'],
      ['-1s', '"chatterd_media_sweep_timeout" directive invalid value'],
      ['never', '"chatterd_media_sweep_timeout" directive invalid value']]],
    ['chatterd_upload_expiry', ['1s', '24h', '7d'],
     [[0, '"chatterd_upload_expiry" directive must be greater than 0'],
      ['-1s', '"chatterd_upload_expiry" directive invalid value'],
      ['never', '"chatterd_upload_expiry" directive invalid value']]],
    ['chatterd_body_time', ['off', '1s', '5m'],
     [map { [$_, '"chatterd_body_time" directive takes a time greater than 0, or "off"'] }
      0, '0s', '-1s', 'soon', 'on']],
);

for my $spec (@numeric) {
    my ($directive, $goods, $bads) = @$spec;
    subtest $directive => sub {
        for my $good (@$goods) {
            accepted("$directive $good in http", http => "$PG $directive $good;",
                     location => 'chatterd getchatts;');
            accepted("$directive $good in server", http => $PG, server => "$directive $good;",
                     location => 'chatterd getchatts;');
            accepted("$directive $good in location", http => $PG,
                     location => "chatterd getchatts; $directive $good;");
        }
        for my $bad (@$bads) {
            my ($value, $says) = @$bad;
            refused("$directive $value", qr/\Q$says\E/, http => $PG,
                    location => "chatterd getchatts; $directive $value;");
        }
        refused("$directive twice at one level", qr/"$directive" directive is duplicate/,
                http => "$PG $directive $goods->[0]; $directive $goods->[0];");
        refused("$directive without a value", qr/invalid number of arguments in "$directive"/,
                http => "$PG $directive;");
    };
}

subtest 'chatterd_media_root: an existing directory' => sub {
    for my $context (qw(http server location)) {
        my %part = (http => $PG, location => 'chatterd postimages;');
        $part{$context} .= " chatterd_media_root $prefix/media;";
        accepted("absolute directory in $context", %part);
    }
    accepted('trailing slash', http => $PG,
             location => "chatterd postimages; chatterd_media_root $prefix/media/;");
    accepted('relative to the nginx prefix', http => $PG,
             location => 'chatterd postimages; chatterd_media_root relmedia;');
    refused('missing directory', qr/chatterd_media_root "$prefix\/nowhere" is not a directory/,
            http => $PG, location => "chatterd postimages; chatterd_media_root $prefix/nowhere;");
    refused('a regular file', qr/chatterd_media_root "$prefix\/a-file" is not a directory/,
            http => $PG, location => "chatterd postimages; chatterd_media_root $prefix/a-file;");
    # An empty value would otherwise resolve to the nginx prefix itself (a directory).
    for my $context (qw(http server location)) {
        my %part = (http => $PG, location => 'chatterd postimages;');
        $part{$context} .= ' chatterd_media_root "";';
        refused("empty value in $context", qr/"chatterd_media_root" directive must name a directory/, %part);
    }
    refused("empty value ('') without chatterd postimages", qr/"chatterd_media_root" directive must name a directory/,
            http => "$PG chatterd_media_root '';");
    refused('twice at one level', qr/"chatterd_media_root" directive is duplicate/,
            http => "chatterd_media_root $prefix/media; chatterd_media_root $prefix/media;");
};

subtest 'chatterd_media_quarantine: a directory outside the media root, made by nginx' => sub {
    my $media = "chatterd postimages; chatterd_media_root $prefix/media;";
    for my $context (qw(http server location)) {
        my %part = (http => $PG, location => $media);
        $part{$context} .= " chatterd_media_quarantine $prefix/q-$context;";
        accepted("in $context", %part);
        ok(-d "$prefix/q-$context", "in $context: nginx -t made it");
    }
    accepted('the default, <root>.quarantine', http => $PG, location => $media);
    ok(-d "$prefix/media.quarantine", 'which nginx -t made');
    accepted('not made when no location sweeps', http => "$PG chatterd_media_sweep off;",
             location => "$media chatterd_media_quarantine $prefix/unused;");
    ok(!-e "$prefix/unused", 'and it was not made');
    refused('empty value', qr/"chatterd_media_quarantine" directive must name a directory/,
            http => $PG, location => "$media chatterd_media_quarantine '';");
    refused('twice at one level', qr/"chatterd_media_quarantine" directive is duplicate/,
            http => "$PG chatterd_media_quarantine $prefix/q1; chatterd_media_quarantine $prefix/q1;");
    refused('inside the media root', qr/chatterd_media_quarantine "\Q$prefix\E\/media\/q" is inside chatterd_media_root/,
            http => $PG, location => "$media chatterd_media_quarantine $prefix/media/q;");
    refused('in a missing directory', qr/chatterd_media_quarantine "\Q$prefix\E\/nowhere\/q": its directory cannot be found/,
            http => $PG, location => "$media chatterd_media_quarantine $prefix/nowhere/q;");
    refused('a regular file', qr/chatterd_media_quarantine "\Q$prefix\E\/a-file" is not a directory/,
            http => $PG, location => "$media chatterd_media_quarantine $prefix/a-file;");
};

subtest 'chatterd_media_url: "/..." or an http(s) base' => sub {
    for my $good ('/media/', '/media', '/', 'https://chatter.example.org/media/',
                  'http://127.0.0.1:8080/m') {
        for my $context (qw(http server location)) {
            my %part = (http => $PG,
                        location => "chatterd postimages; chatterd_media_root $prefix/media;");
            $part{$context} .= " chatterd_media_url $good;";
            accepted("chatterd_media_url $good in $context", %part);
        }
    }
    for my $bad ('media/', 'ftp://example.org/media/', 'https:/x', '""') {
        (my $shown = $bad) =~ s/"//g;
        refused("chatterd_media_url $bad",
                qr/chatterd_media_url "\Q$shown\E" must start with "\/", "http:\/\/" or "https:\/\/"/,
                http => $PG, location => "chatterd getchatts; chatterd_media_url $bad;");
    }
    refused('twice at one level', qr/"chatterd_media_url" directive is duplicate/,
            http => 'chatterd_media_url /a/; chatterd_media_url /b/;');
};

subtest 'required settings' => sub {
    refused('chatterd without chatterd_pg anywhere', qr/"chatterd" needs "chatterd_pg" to be set/,
            location => 'chatterd getchatts;');
    refused('chatterd_pg only in another server', qr/"chatterd" needs "chatterd_pg" to be set/,
            http => "server { listen 127.0.0.1:2; $PG }", location => 'chatterd getimages;');
    refused('postimages without chatterd_media_root',
            qr/"chatterd postimages" needs "chatterd_media_root" to be set/,
            http => $PG, location => 'chatterd postimages;');
    accepted('chatterd_pg from http', http => $PG, location => 'chatterd postchatt;');
    accepted('chatterd_pg from server', server => $PG, location => 'chatterd postchatt;');
    accepted('chatterd_media_root from http',
             http => "$PG chatterd_media_root $prefix/media;", location => 'chatterd postimages;');
    accepted('chatterd_media_root from server', http => $PG,
             server => "chatterd_media_root $prefix/media;", location => 'chatterd postimages;');
};

subtest 'nginx.conf.example passes nginx -t with the module in /usr/sbin/nginx' => sub {
    plan skip_all => 'no /usr/sbin/nginx' unless -x '/usr/sbin/nginx';
    plan skip_all => 'no openssl for the example\'s certificate'
        unless system('openssl version >/dev/null 2>&1') == 0;
    # make run's configuration (a local stack under $prefix/example), the module under test.
    my $text = Chatterd::ExampleConf::generate(
        '--prefix', "$prefix/example", '--output', '-', '--module', (grep { /chatterd/ } @MODULES)[0],
        '--conninfo', $ENV{TEST_NGINX_PG_CONNINFO}, '--media', "$prefix/media");
    (my $directives = $text) =~ s/#[^\n]*//g;
    unlike($directives, qr{/var/|/etc/|/run/|/usr/lib/}, 'no system path left in the tested copy');
    # TEST_NGINX_STOCK_BINARY: /usr/sbin/nginx run through a wrapper (make test-asan preloads
    # the ASan runtime the module needs).
    my ($rc, $out) = nginx_t($text, binary => $ENV{TEST_NGINX_STOCK_BINARY} || '/usr/sbin/nginx');
    ok($rc == 0 && $out =~ /test is successful/, 'nginx -t passes') or diag("exit $rc:\n$out");
    unlike($out, qr/\[(?:emerg|alert|crit|error|warn)\]/, 'and says nothing alarming') or diag($out);
};

# ---- on a running nginx ----

my $REAL = $ENV{TEST_NGINX_PG_CONNINFO};
my $DOWN = 'host=/nonexistent/chatterd-test port=5432 dbname=chatterdb user=chatter';

subtest 'chatterd_pg is inherited, the innermost one wins' => sub {
    my $port2 = Chatterd::NginxProcess::free_port();
    my $ng = Chatterd::Nginx->start(
        http_config => <<"HTTP",
chatterd_pg "$DOWN";
server {
    listen 127.0.0.1:$port2;
    chatterd_pg "$REAL";
    location = /server/getchatts { chatterd getchatts; }
    location = /server/down { chatterd getchatts; chatterd_pg "$DOWN"; }
}
HTTP
        config => <<"CONF");
location = /http/getchatts { chatterd getchatts; }
location = /location/getchatts { chatterd getchatts; chatterd_pg "$REAL"; }
location /nested/ {
    chatterd_pg "$REAL";
    location = /nested/getchatts { chatterd getchatts; }
    location = /nested/down { chatterd getchatts; chatterd_pg "$DOWN"; }
}
CONF
    my @want = ([$ng->port, '/http/getchatts' => 503], [$ng->port, '/location/getchatts' => 200],
                [$ng->port, '/nested/getchatts' => 200], [$ng->port, '/nested/down' => 503],
                [$port2, '/server/getchatts' => 200], [$port2, '/server/down' => 503]);
    for my $case (@want) {
        my ($port, $uri, $status) = @$case;
        my $res = http_request($port, build_request(GET => $uri));
        is($res->{status}, $status, "GET $uri: $status") or diag($res->{raw});
        like($res->{body}, $status == 200 ? qr/\A\[.*\]\z/s : qr/\A"Service unavailable"\z/,
             "GET $uri: body");
    }
    $ng->stop;
};

subtest '405 with Allow and a JSON body for every endpoint' => sub {
    my $ng = Chatterd::Nginx->start(
        http_config => qq{chatterd_pg "$REAL";},
        config => Chatterd::ExampleConf::endpoint_locations("chatterd_media_root $prefix/media;") . <<"CONF");
CONF
    my @cases = (
        ['POST', '/getchatts', 'GET, HEAD'], ['PUT', '/getchatts/', 'GET, HEAD'],
        ['DELETE', '/getimages', 'GET, HEAD'], ['POST', '/getimages/', 'GET, HEAD'],
        ['GET', '/postchatt', 'POST'], ['PUT', '/postchatt/', 'POST'],
        ['GET', '/postimages', 'POST'], ['DELETE', '/postimages/', 'POST'],
        ['OPTIONS', '/postimages', 'POST'], ['PATCH', '/getchatts', 'GET, HEAD'],
    );
    for my $case (@cases) {
        my ($method, $uri, $allow) = @$case;
        my $res = http_request($ng->port, build_request($method => $uri, body => 'x' x 10));
        is($res->{status}, 405, "$method $uri: 405");
        is($res->{headers}{allow}, $allow, "$method $uri: Allow: $allow");
        is($res->{headers}{'content-type'}, 'application/json', "$method $uri: JSON");
        is($res->{body}, '"Method not allowed"', "$method $uri: body");
    }
    for my $uri ('/postchatt', '/postimages/') {
        my $res = http_request($ng->port, build_request(HEAD => $uri));
        is($res->{status}, 405, "HEAD $uri: 405");
        is($res->{headers}{allow}, 'POST', "HEAD $uri: Allow: POST");
        is($res->{body}, '', "HEAD $uri: no body");
    }
    unlike($ng->error_log_text, qr/\[(?:alert|crit|emerg)\]/, 'nothing alarming in the error log');
    $ng->stop;
};

done_testing();
