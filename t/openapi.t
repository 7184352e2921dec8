# docs/openapi.yaml against live answers: every endpoint of nginx.conf.example (getchatts,
# postchatt, getimages, postimages, /media/ and the status page; the pages of new rows of
# getchatts and getimages too), its successes and its errors
# (400, 404, 405, 413 from chatterd and from nginx, 415, 416, 422, 503), each answer checked by
# tools/openapi/validate.mjs: swagger-parser validates the document, Ajv (JSON Schema 2020-12)
# each body against the schema the document declares for its path, method, status and
# Content-Type, and the headers it requires. An answer the document does not describe fails.
use strict; use warnings;
use FindBin; BEGIN { push @INC, "$FindBin::Bin/lib" }
use Test::More;
use Encode ();
use File::Temp ();
use JSON::PP ();

use Chatterd::Db qw(truncate_chatts media_root media_files);
use Chatterd::Http qw(http_request build_request multipart_body);
use Chatterd::Nginx;
use Chatterd::NginxProcess;
use Chatterd::Upload qw(media text_part image_part video_part);
use Chatterd::ExampleConf;

for my $var (qw(TEST_NGINX_PG_CONNINFO TEST_NGINX_PSQL)) {
    plan skip_all => "$var is not set (run through make test)" unless $ENV{$var};
}
my $TOOLS    = "$FindBin::Bin/../tools/openapi";
my $DOCUMENT = "$FindBin::Bin/../docs/openapi.yaml";
my $VALIDATE = $ENV{OPENAPI_VALIDATE} // "$TOOLS/validate.mjs";
-d "$TOOLS/node_modules" && `node --version` =~ /^v\d+/
    or BAIL_OUT("node and $TOOLS/node_modules are needed: run scripts/deps.sh (make deps)");

my $MEDIA     = media_root();
my $DEAD_PORT = Chatterd::NginxProcess::free_port();   # nobody listens there
my $MAX_PART  = 4096;                                  # chatterd_media_max_size
my $MAX_BODY  = 64 * 1024;                             # client_max_body_size
my $JSON      = JSON::PP->new->utf8->canonical;   # request bodies: UTF-8 bytes

sub start_nginx {
    my ($conninfo) = @_;
    return Chatterd::Nginx->start(
        workers     => 1,
        master      => 1,
        log_level   => 'info',
        main_config => $> == 0 ? "user root root;\n" : undef,
        http_config => <<CONF,
chatterd_pg "$conninfo";
chatterd_pg_backoff_max 60s;
chatterd_media_root $MEDIA;
chatterd_media_max_size $MAX_PART;
client_max_body_size $MAX_BODY;
CONF
        config => Chatterd::ExampleConf::endpoint_locations()
            . Chatterd::ExampleConf::generate('--set', 'alias', "$MEDIA/", '--block', 'location /media/')
            . "location /status { chatterd_status; }\n",
    );
}

truncate_chatts();
my $ng   = start_nginx($ENV{TEST_NGINX_PG_CONNINFO});
my $down = start_nginx("host=127.0.0.1 port=$DEAD_PORT dbname=chatterdb user=chatter");

my @answers;

# ask(name, nginx, method, target, headers => [...], body => ...): the document's path is the
# target without its query string.
sub ask {
    my ($name, $server, $method, $path, %opt) = @_;
    my $res = http_request($server->port,
        build_request($method, $path, headers => $opt{headers} // [], body => $opt{body}));
    ok(defined $res->{status}, "$name: answered") or diag($res->{error} // 'no status line');
    my $type = $res->{headers}{'content-type'} // '';
    my $body = $res->{body} // '';
    # Text is handed over as text (invalid UTF-8 fails here); media bytes as they are.
    if ($type =~ m{^(application/json|text/)}i) {
        my $text = eval { Encode::decode('UTF-8', $body, Encode::FB_CROAK) };
        ok(defined $text, "$name: the body is UTF-8") or $text = $body;
        $body = $text;
    }
    push @answers, {name => $name, method => $method, path => $path =~ s/\?.*//sr,
                    status => $res->{status} // 0, headers => $res->{headers} // {},
                    body => $body};
    return $res;
}

my $form_type = 'multipart/form-data; boundary=openapiBoundary';
sub form {
    my (@parts) = @_;
    return (headers => ['Content-Type' => $form_type], body => multipart_body('openapiBoundary', @parts));
}
sub json_post { (headers => ['Content-Type' => 'application/json'], body => $JSON->encode($_[0])) }

# ---- successes ---------------------------------------------------------------------------------

is(ask('postchatt 200', $ng, POST => '/postchatt', json_post({username => 'alice', message => 'hi'}))
   ->{status}, 200, 'postchatt stored');
ask('postchatt/ 200', $ng, POST => '/postchatt/', json_post({username => "\x{30b8}\x{30e7}\x{30f3}",
                                                              message => "caf\x{e9}"}));
my $posted = ask('postimages 200', $ng, POST => '/postimages',
    form(text_part(username => 'bob'), text_part(message => 'a photo and a video'),
         image_part(media('jpeg', 3000, 1)), video_part(media('mp4', 3000, 2))));
is($posted->{status}, 200, 'postimages stored');
ask('postimages/ 200 (no media)', $ng, POST => '/postimages/',
    form(text_part(username => 'carol'), text_part(message => '')));
ask('getchatts 200', $ng, GET => '/getchatts');
ask('getchatts/ 200', $ng, GET => '/getchatts/');
ask('getchatts HEAD 200', $ng, HEAD => '/getchatts');
my $rows = ask('getimages 200', $ng, GET => '/getimages');
ask('getimages/ 200', $ng, GET => '/getimages/');
ask('getimages HEAD 200', $ng, HEAD => '/getimages');
for my $listing (qw(getchatts getimages)) {
    my $tag = ask("$listing 200 (for its ETag)", $ng, GET => "/$listing")->{headers}{etag} // '';
    ask("$listing 304", $ng, GET => "/$listing", headers => ['If-None-Match' => $tag]);
    ask("$listing HEAD 304", $ng, HEAD => "/$listing", headers => ['If-None-Match' => $tag]);
    ask("$listing 200 (another ETag)", $ng, GET => "/$listing", headers => ['If-None-Match' => '"x"']);
}
my $page = ask('getimages page 200 (limit)', $ng, GET => '/getimages?limit=2');
my ($next) = ($page->{headers}{link} // '') =~ /\A<([^>]+)>/;
ok($next, 'a page has a Link to the next one') or $next = '/getimages?after=&limit=2';
ask('getimages page 200 (next)', $ng, GET => $next);
ask('getimages/ page 200', $ng, GET => '/getimages/?after=');
ask('getchatts page 200', $ng, GET => '/getchatts?after=&limit=1000');
ask('getchatts page HEAD 200', $ng, HEAD => '/getchatts?limit=1');
ask('status 200', $ng, GET => '/status');
ask('status HEAD 200', $ng, HEAD => '/status');

my ($file) = grep { /\.jpeg\z/ } media_files();
ok($file, 'the posted image is in the media root') or $file = 'missing.jpeg';
ask('media 200', $ng, GET => "/media/$file");
ask('media 206', $ng, GET => "/media/$file", headers => [Range => 'bytes=0-99']);
ask('media 416', $ng, GET => "/media/$file", headers => [Range => 'bytes=999999-']);
ask('media 404', $ng, GET => '/media/nothing-here.jpeg');

# ---- errors ------------------------------------------------------------------------------------

ask('getchatts POST 405', $ng, POST => '/getchatts', body => '{}');
ask('getimages POST 405', $ng, POST => '/getimages', body => '{}');
ask('postchatt GET 405', $ng, GET => '/postchatt');
ask('postimages GET 405', $ng, GET => '/postimages');
ask('status POST 405', $ng, POST => '/status', body => 'x');
ask('postchatt 422 (malformed JSON)', $ng, POST => '/postchatt',
    headers => ['Content-Type' => 'application/json'], body => '{"username": "alice"');
ask('postchatt 422 (missing key)', $ng, POST => '/postchatt', json_post({username => 'alice'}));
ask('postchatt 400 (too long)', $ng, POST => '/postchatt',
    json_post({username => 'alice', message => 'x' x 300}));
ask('postchatt 413 (over 16 KiB)', $ng, POST => '/postchatt',
    json_post({username => 'alice', message => 'x' x 20000}));
ask('postimages 422 (not a form)', $ng, POST => '/postimages', json_post({username => 'a'}));
ask('postimages 422 (no message)', $ng, POST => '/postimages', form(text_part(username => 'dave')));
ask('postimages 400 (too long)', $ng, POST => '/postimages',
    form(text_part(username => 'dave'), text_part(message => 'y' x 256)));
ask('postimages 400 (bad Host)', $ng, POST => '/postimages',
    headers => [Host => 'evil"><script>', 'Content-Type' => $form_type],
    body => multipart_body('openapiBoundary', text_part(username => 'e'), text_part(message => 'm')));
ask('postimages 422 (an unknown upload)', $ng, POST => '/postimages',
    form(text_part(username => 'g'), text_part(message => 'm'),
         text_part(videoupload => '/uploads/' . ('0' x 32))));
ask('postimages 415 (not an image)', $ng, POST => '/postimages',
    form(text_part(username => 'f'), text_part(message => 'm'), image_part('plain text, no image')));
ask('postimages 413 (media part over chatterd_media_max_size)', $ng, POST => '/postimages',
    form(text_part(username => 'g'), text_part(message => 'm'), image_part(media('jpeg', 2 * $MAX_PART, 3))));
ask('postimages 413 (body over client_max_body_size, from nginx)', $ng, POST => '/postimages',
    form(text_part(username => 'h'), text_part(message => 'm'), video_part(media('mp4', 2 * $MAX_BODY, 4))));

ask('getimages page 400 (limit)', $ng, GET => '/getimages?limit=0');
ask('getchatts page 400 (cursor)', $ng, GET => '/getchatts?after=AQUEAQQ');
ask('getchatts/ page 400 (unknown parameter)', $ng, GET => '/getchatts/?limit=1&wait=30');
ask('getimages page HEAD 400', $ng, HEAD => '/getimages?limit=1001');
ask('getchatts 503', $down, GET => '/getchatts');
ask('getimages page 503', $down, GET => '/getimages?limit=5');
ask('getimages 503', $down, GET => '/getimages');
ask('postchatt 503', $down, POST => '/postchatt', json_post({username => 'i', message => 'm'}));
ask('postimages 503', $down, POST => '/postimages',
    form(text_part(username => 'j'), text_part(message => 'm'), image_part(media('jpeg', 2000, 5))));

# Each status asked for above came back, so that each check below is of the case it names.
for my $a (@answers) {
    my ($want) = $a->{name} =~ /\b(\d{3})\b/;
    is($a->{status}, $want, "$a->{name}: status $want");
}

# ---- the document, then every answer against it -------------------------------------------------

my $file_of_answers = File::Temp->new(SUFFIX => '.json');
print $file_of_answers JSON::PP->new->utf8->canonical->encode(\@answers);
close $file_of_answers;
my @lines = `node $VALIDATE $DOCUMENT $file_of_answers 2>&1`;
my $exit = $? >> 8;
my $valid = shift @lines // '';
like($valid, qr/: valid OpenAPI 3\.1\.\d+, \d+ paths$/, 'swagger-parser: the document is valid')
    or diag($valid, @lines);
my %verdict;
for (@lines) {
    chomp;
    $verdict{$2} = $1 eq 'ok' ? '' : ($3 // 'no reason') if /^(ok|not ok) (.+?)(?:: (.*))?$/;
}
for my $a (@answers) {
    ok(defined $verdict{$a->{name}} && $verdict{$a->{name}} eq '', "$a->{name}: matches docs/openapi.yaml")
        or diag($verdict{$a->{name}} // 'no verdict from the validator');
}
is($exit, 0, 'the validator found no mismatch');

$ng->stop;
$down->stop;
truncate_chatts();
done_testing();
