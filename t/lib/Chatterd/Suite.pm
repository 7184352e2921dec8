package Chatterd::Suite;

# What the data-driven endpoint suites (getchatts.t, getimages.t, postchatt.t) share:
#
#   use Chatterd::Suite;
#   Chatterd::Suite::setup(row_length => 4);
#
# - database settings: TEST_NGINX_PG_CONNINFO (a default for runs outside scripts/test.sh),
#   TEST_NGINX_PG_DOWN (every connection attempt fails at once) and TEST_NGINX_PG_NO_TABLE
#   (same server, a database without the chatts table: queries fail with 42P01);
# - blocks without their own http_config/config get chatterd_pg and the routes of
#   nginx.conf.example;
# - a `--- json_rows eval` section, {request index => expected rows}: the body must be a JSON
#   array of row_length-element arrays equal to the expected rows, where the string 'UUID' /
#   'TIME' stands for any uuid / any API timestamp (T, six fraction digits or none);
# - $main::UUID and $main::TIME, the patterns of those two, for the script's eval sections.
#
# It registers through the functions Test::Nginx::Socket exports into the test script, so the
# suites run unchanged under the real Test::Nginx.

use strict;
use warnings;

use JSON::PP ();
use Test::More ();

use Chatterd::ExampleConf;

our $UUID = qr/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/;
our $TIME = qr/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.(?!000000)\d{6})?/;

sub setup {
    my (%opt) = @_;
    my $row_length = $opt{row_length} or die "setup: row_length is required\n";

    $ENV{TEST_NGINX_PG_CONNINFO} //= 'host=/var/run/postgresql dbname=chatterdb user=chatter';
    $ENV{TEST_NGINX_PG_DOWN} = 'host=/nonexistent/chatterd-test port=5432 dbname=chatterdb user=chatter';
    $ENV{TEST_NGINX_PG_NO_TABLE} = "$ENV{TEST_NGINX_PG_CONNINFO} dbname=postgres";

    # For eval sections of the script: qr/\A...$main::UUID.../
    $main::UUID = $UUID;
    $main::TIME = $TIME;
    main::add_block_preprocessor(\&default_configuration);
    main::add_response_body_check(sub { check_json_rows($row_length, @_) });
}

# The routes of nginx.conf.example, as scripts/nginx-conf.pl prints them: made once, when the
# first block asks.
my $routes;
sub default_configuration {
    my ($block) = @_;
    $block->set_value('http_config', qq{chatterd_pg "\$TEST_NGINX_PG_CONNINFO";\n})
        unless defined $block->http_config;
    $routes //= join '', map { Chatterd::ExampleConf::generate('--block', "location ~ ^/$_/?\$") }
                             qw(getchatts postchatt getimages);
    $block->set_value('config', $routes) unless defined $block->config;
}

sub check_json_rows {
    my ($row_length, $block, $body, $idx, $rep, $dry_run) = @_;
    return if $dry_run || !defined $block->json_rows;
    my $expected = $block->json_rows->{$idx} // return;
    my $name = $block->name;
    my $rows = eval { JSON::PP->new->utf8->decode($body) };
    Test::More::ok(ref $rows eq 'ARRAY', "$name - body is a JSON array (req $idx)") or do {
        Test::More::diag($@ || $body);
        return;
    };
    my @bad = grep { ref $_ ne 'ARRAY' || @$_ != $row_length } @$rows;
    Test::More::ok(!@bad, "$name - every row has $row_length elements (req $idx)");
    Test::More::is_deeply([map { [mask_row(@$_)] } @$rows], $expected,
                          "$name - rows as JSON (req $idx)");
}

sub mask_row {
    my @row = @_;
    $row[2] = 'UUID' if defined $row[2] && !ref $row[2] && $row[2] =~ /\A$UUID\z/;
    $row[3] = 'TIME' if defined $row[3] && !ref $row[3] && $row[3] =~ /\A$TIME\z/;
    return @row;
}

1;
