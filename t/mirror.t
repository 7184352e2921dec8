# A chatterd location reached as a subrequest (nginx's mirror directive) does not take the main
# request's body: the subrequest is refused (500, one error line naming it), and the main
# request, served by chatterd itself or proxied to it, stores its post once, whole.
use strict; use warnings;
use FindBin; BEGIN { push @INC, "$FindBin::Bin/lib" }
use Test::More;

use Chatterd::Db qw(sql truncate_chatts media_root check_media_consistency);
use Chatterd::Http qw(http_request build_request multipart_body);
use Chatterd::Nginx;
use Chatterd::Upload qw(media image_part);

for my $var (qw(TEST_NGINX_PG_CONNINFO TEST_NGINX_PSQL)) {
    plan skip_all => "$var is not set (run through make test)" unless $ENV{$var};
}
my $MEDIA = media_root();

my $ng = Chatterd::Nginx->start(
    workers     => 1,
    log_level   => 'info',
    http_config => <<CONF,
chatterd_pg "$ENV{TEST_NGINX_PG_CONNINFO}";
chatterd_media_root $MEDIA;
chatterd_media_sweep off;
CONF
    config => <<'CONF');
location = /postchatt  { mirror /mirror/postchatt;  chatterd postchatt; }
location = /postimages { mirror /mirror/postimages; chatterd postimages; }
location = /proxied/postchatt {
    mirror /mirror/postchatt;
    proxy_pass http://127.0.0.1:$server_port/direct/postchatt;
}
location = /direct/postchatt { chatterd postchatt; }
location = /mirror/postchatt  { internal; chatterd postchatt; }
location = /mirror/postimages { internal; chatterd postimages; }
CONF

my %posts = (
    '/postchatt' => sub {
        (body => '{"username":"main","message":"' . ('m' x 200) . '"}',
         headers => ['Content-Type' => 'application/json']);
    },
    '/proxied/postchatt' => sub {
        (body => '{"username":"proxied","message":"' . ('p' x 200) . '"}',
         headers => ['Content-Type' => 'application/json']);
    },
    '/postimages' => sub {
        (body => multipart_body('mirrorB', [name => 'username', value => 'imaged'],
                                [name => 'message', value => 'x' x 200],
                                image_part(media('jpeg', 300_000, 9))),
         headers => ['Content-Type' => 'multipart/form-data; boundary=mirrorB']);
    },
);

for my $uri (sort keys %posts) {
    subtest "mirror of $uri" => sub {
        truncate_chatts();
        $ng->mark_error_log;
        my %request = $posts{$uri}->();
        my $res = http_request($ng->port, build_request(POST => $uri, %request));
        is($res->{status}, 200, 'the main request is stored') or diag($res->{raw});
        my @rows = sql('SELECT username, message FROM chatts');
        is(scalar @rows, 1, 'once');
        is(length($rows[0][1] // ''), 200, 'whole') if @rows;
        ok($ng->wait_for_error_log(
               qr/\[error\].*chatterd: post\w+: "\/mirror\/post\w+" is a subrequest .* main request "\Q$uri\E"/,
               timeout => 10),
           'the mirror subrequest is refused with one error line');
        check_media_consistency("after $uri");
    };
}

$ng->stop;
done_testing();
