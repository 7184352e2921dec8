package Test::Nginx::Socket;

# Fallback for openresty's Test::Nginx::Socket, written for chatterd from
# the documented behaviour of the real module; where our suites depend on
# it (error log per request, init after the start, the default config) its
# behaviour was then checked against the real module's source, none of
# which is copied here.  Only used when no real Test::Nginx is installed:
# our .t files push t/lib at the END of @INC.
#
# It implements the subset of the data-driven format our suites use (see
# the POD at the end for the list of sections, functions and environment
# variables).  Blocks are parsed by Debian's Test::Base; nginx life cycle
# and config generation live in Chatterd::NginxProcess, the HTTP client in
# Chatterd::Http (both shared with the Chatterd::Nginx scenario launcher).

use strict;
use warnings;

# Find Chatterd::* next to this file even when only t/lib/Test/Nginx was
# put on @INC by unusual means.
use File::Spec ();
BEGIN {
    my $lib = File::Spec->rel2abs(__FILE__);
    $lib =~ s{[/\\]Test[/\\]Nginx[/\\]Socket\.pm\z}{};
    push @INC, $lib unless grep { ref $_ eq '' && $_ eq $lib } @INC;
}

use Test::Base -base;    # -base (not -Base): no Spiffy source filter here

use Chatterd::Http ();
use Chatterd::NginxProcess ();
use Cwd ();
use List::Util ();
use Test::Builder ();
use Time::HiRes ();

our $VERSION = '0.01_chatterd';

our @EXPORT = qw(
    run_tests no_shuffle add_block_preprocessor add_response_body_check server_port
);

#---------------------------------------------------------------------------
# Global settings (environment, then the exported setters)
#---------------------------------------------------------------------------

my $ServRoot = Chatterd::NginxProcess::absolute_path(
    $ENV{TEST_NGINX_SERVROOT} || File::Spec->catdir('t', 'servroot'));
my $ServerPort = $ENV{TEST_NGINX_SERVER_PORT} || $ENV{TEST_NGINX_PORT}
              || Chatterd::NginxProcess::free_port();
my $ClientPort = $ENV{TEST_NGINX_CLIENT_PORT} || $ServerPort;

$ENV{TEST_NGINX_SERVER_ROOT} = $ServRoot;
$ENV{TEST_NGINX_SERVER_PORT} //= $ServerPort;
$ENV{TEST_NGINX_HTML_DIR}    //= File::Spec->catdir($ServRoot, 'html');

my $DefaultTimeout = $ENV{TEST_NGINX_TIMEOUT} || 3;
# The real runner's pause before it reads the error log is 3 x TEST_NGINX_SLEEP (lines of the
# log phase are written after the response); the same here.
my $LogPause       = 3 * ($ENV{TEST_NGINX_SLEEP} || 0.015);
my $NoShuffle      = $ENV{TEST_NGINX_NO_SHUFFLE} ? 1 : 0;
my $NoClean        = $ENV{TEST_NGINX_NO_CLEAN} ? 1 : 0;
my $LogLevel       = $ENV{TEST_NGINX_LOG_LEVEL} || 'debug';
my $MasterProcess  = lc($ENV{TEST_NGINX_MASTER_PROCESS} // 'off') eq 'on' ? 1 : 0;
my @BlockPreprocessors;
my @ResponseBodyChecks;

my $Nginx;            # Chatterd::NginxProcess of the current run
my $OwnerPid = $$;    # only this process stops nginx at exit

sub no_shuffle              { $NoShuffle = 1 }
sub add_block_preprocessor  { push @BlockPreprocessors, @_ }
sub add_response_body_check { push @ResponseBodyChecks, @_ }
sub server_port             { $ServerPort }

#---------------------------------------------------------------------------
# Driver
#---------------------------------------------------------------------------

# Run every block: (re)start nginx with the block's config, send its
# request(s), check the response(s) and the error log.
sub run_tests {
    plan('no_plan') unless Test::Builder->new->has_plan;

    my @blocks = eval { blocks() };
    if ($@) {
        fail("$0 - test blocks could not be prepared");
        diag($@);
        return;
    }
    @blocks = List::Util::shuffle(@blocks) unless $NoShuffle;

    $Nginx //= Chatterd::NginxProcess->new(
        servroot => $ServRoot, port => $ServerPort);
    $Nginx->stop;    # one left running by an earlier TEST_NGINX_NO_CLEAN run

    for my $block (@blocks) {
        $_->($block) for @BlockPreprocessors;
        run_block($block);
    }
    _finish();
}

# All the work for one block, in the real runner's order: nginx is
# (re)started with the block's config, the init code runs, then each
# request is sent and its response checked, and after each request the
# error log is checked against the lines written since the previous check
# (for the first request: since nginx started).  So every error_log
# pattern must match a line of EACH request.
sub run_block {
    my ($block) = @_;
    my $name = $block->name;

    return unless _start_nginx($block);
    return unless _run_init($block);

    my @requests = eval { _requests_of($block) };
    if ($@) {
        fail("$name - request is valid");
        diag($@);
        return;
    }
    my $timeout = eval { parse_time(_sv($block, "timeout") // $DefaultTimeout) };
    if ($@) {
        fail("$name - timeout is valid");
        diag($@);
        return;
    }

    my $log_offset = 0;
    for my $idx (0 .. $#requests) {
        my $suffix = @requests > 1 ? " (req $idx)" : '';
        my $ctx = { block => $block, name => $name, idx => $idx, suffix => $suffix };
        my $res = Chatterd::Http::http_request(
            $ClientPort, $requests[$idx], timeout => $timeout);
        _check_response($ctx, $res);

        Time::HiRes::sleep($LogPause);
        my $new_log = $Nginx->read_error_log($log_offset);
        $log_offset += length $new_log;
        _check_error_log($block, $name, [ split /\n/, $new_log ], $suffix);
    }
}

# --- init: Perl code run (in package main) after nginx started, before the
# first request (as the real runner does).
sub _run_init {
    my ($block) = @_;
    my $code = _sv($block, "init");
    return 1 unless defined $code;
    if (ref $code eq 'CODE') {
        return 1 if eval { $code->(); 1 };
    }
    else {
        return 1 if eval "package main; $code; 1";
    }
    fail($block->name . " - init code ran");
    diag($@);
    return 0;
}

# Stop the previous nginx, lay out the server root for this block and
# start nginx.  Bails out on an undefined $TEST_NGINX_* variable; fails
# the block (with nginx's stderr) when nginx does not start.
sub _start_nginx {
    my ($block) = @_;
    my $name = $block->name;

    my %sections;
    for my $section (qw(main_config http_config config)) {
        my $text = eval {
            Chatterd::NginxProcess::expand_env(_sv($block, $section), $section)
        };
        Test::More::BAIL_OUT("$name - $@") if $@;
        $sections{$section} = $text;
    }
    my $user_files = eval { parse_user_files(_sv($block, "user_files")) };
    if ($@) {
        fail("$name - user_files are valid");
        diag($@);
        return 0;
    }

    # Stop the previous block's nginx with the settings it was started with.
    unless ($Nginx->stop) {
        fail("$name - nginx started");
        diag("the previous nginx could not be stopped");
        return 0;
    }
    $Nginx = Chatterd::NginxProcess->new(
        port          => $ServerPort,
        servroot      => $ServRoot,
        log_level     => $LogLevel,
        load_modules  => Chatterd::NginxProcess::load_modules_from_env(),
        master        => $MasterProcess,
        # the real runner's defaults: 64 connections, workers as root when run as root
        worker_connections => 64,
        user          => $> == 0 ? 'root' : undef,
    );
    my $ok = eval {
        $Nginx->prepare(%sections, user_files => $user_files);
        $Nginx->start;
        1;
    };
    return 1 if $ok;
    fail("$name - nginx started");
    diag($@);
    return 0;
}

sub _finish {
    if (!$NoClean && $Nginx) {
        $Nginx->stop;
    }
}

# If the test script dies half-way, still stop nginx.
END {
    if ($$ == $OwnerPid && $Nginx && !$NoClean) {
        local ($?, $@, $!);
        $Nginx->stop;
    }
}

#---------------------------------------------------------------------------
# Building requests
#---------------------------------------------------------------------------

# The block's requests as a list of the bytes each sends.
sub _requests_of {
    my ($block) = @_;
    if (defined(my $raw = _sv($block, "raw_request"))) {
        die "raw_request in packets is not supported by t/lib's runner\n" if ref $raw;
        return ($raw);
    }
    my $request = _sv($block, "request");
    return () unless defined $request;
    my $more_headers = _sv($block, "more_headers");
    my @list = ref $request eq 'ARRAY' ? @$request : ($request);
    # more_headers may be an arrayref too (eval): one entry per request.
    return map {
        die "a request in packets is not supported by t/lib's runner\n" if ref $list[$_];
        build_request($list[$_], _pick($more_headers, $_))
    } 0 .. $#list;
}

# build_request("METHOD URI [HTTP/x.y]\nbody", "Name: value\n...") -> bytes
#
# The first line is the request line (HTTP/1.1 when no protocol is given),
# the rest the body.  Without a Content-Length in more_headers the body is
# whitespace-trimmed, and Content-Length is added when it is not empty
# (and no Transfer-Encoding is given).  Host: localhost and Connection:
# close are added unless given.  more_headers lines get CRLF ends.
sub build_request {
    my ($request, $more_headers) = @_;
    $request =~ s/\A\s+//;
    my ($line, $body) = split /\r?\n/, $request, 2;
    $body //= '';

    my ($method, $uri, $protocol) =
        $line =~ m{^(\S+)\s+(\S+)(?:\s+(HTTP/\S+))?\s*$}
        or die "bad request line '$line' (expected: METHOD URI [HTTP/x.y])\n";
    $protocol //= 'HTTP/1.1';

    my @headers = grep { /\S/ } split /\r?\n/, $more_headers // '';
    my %have;
    for (@headers) {
        die "bad more_headers line '$_' (expected: Name: value)\n"
            unless /^([^:\s]+)\s*:/;
        $have{ lc $1 } = 1;
    }
    unless ($have{'content-length'}) {
        # s/^\s+|\s+$//gs, in two anchored steps (fast on 40 MB bodies)
        $body =~ s/\A\s+//;
        $body =~ s/\s+\z//;
    }

    unshift @headers, 'Host: localhost' unless $have{host};
    push @headers, 'Connection: close' unless $have{connection};
    push @headers, 'Content-Length: ' . length($body)
        if length $body && !$have{'content-length'} && !$have{'transfer-encoding'};

    return "$method $uri $protocol\r\n"
         . join('', map { "$_\r\n" } @headers) . "\r\n" . $body;
}

#---------------------------------------------------------------------------
# Checking responses
#---------------------------------------------------------------------------

sub _check_response {
    my ($ctx, $res) = @_;
    my ($block, $name, $suffix) = @$ctx{qw(block name suffix)};

    if ($res->{timed_out}) {
        fail("$name - client socket timed out$suffix");
        diag("no I/O for the timeout (" . (_sv($block, "timeout") // "${DefaultTimeout}s")
             . "); received so far:\n" . _summary($res->{raw}));
        return unless defined $res->{status};
    }
    elsif ($res->{error} && !defined $res->{status}) {
        fail("$name - request sent and response received$suffix");
        diag($res->{error});
        return;
    }
    if (!defined $res->{status}) {
        fail("$name - response has a status line$suffix");
        diag("received:\n" . _summary($res->{raw}));
        return;
    }

    _check_status($ctx, $res);
    _check_headers($ctx, $res);
    _check_body($ctx, $res);
}

sub _check_status {
    my ($ctx, $res) = @_;
    my ($block, $name, $suffix) = @$ctx{qw(block name suffix)};
    my $expected = _trim(_pick(_sv($block, "error_code"), $ctx->{idx})) // 200;
    is($res->{status}, $expected, "$name - status code ok$suffix");
}

sub _check_headers {
    my ($ctx, $res) = @_;
    my ($block, $name, $suffix, $idx) = @$ctx{qw(block name suffix idx)};

    for my $line (_lines(_pick(_sv($block, "response_headers"), $idx))) {
        if ($line =~ /^\s*!\s*([^:\s]+)\s*$/) {
            ok(!defined $res->{headers}{ lc $1 },
               "$name - header $1 not present$suffix")
                or diag("got: $1: $res->{headers}{lc $1}");
        }
        elsif ($line =~ /^\s*([^:\s]+)\s*:\s*(.*?)\s*$/) {
            my ($key, $expected) = ($1, $2);
            my $got = $res->{headers}{ lc $key };
            if ($expected eq '') {    # "Name:" = absent or empty
                ok(!defined $got || $got eq '', "$name - header $key ok$suffix")
                    or diag("got: $key: $got");
            }
            else {
                is($got, $expected, "$name - header $key ok$suffix");
            }
        }
        else {
            fail("$name - response_headers line '$line' is valid$suffix");
        }
    }

    for my $line (_lines(_pick(_sv($block, "response_headers_like"), $idx))) {
        if ($line =~ /^\s*([^:\s]+)\s*:\s*(.*?)\s*$/) {
            my ($key, $pattern) = ($1, $2);
            my $got = $res->{headers}{ lc $key };
            like($got // '', qr/^(?:$pattern)$/, "$name - header $key like ok$suffix")
                or defined $got or diag("header $key is absent");
        }
        else {
            fail("$name - response_headers_like line '$line' is valid$suffix");
        }
    }
}

sub _check_body {
    my ($ctx, $res) = @_;
    my ($block, $name, $suffix, $idx) = @$ctx{qw(block name suffix idx)};
    my $body = $res->{body} // '';

    if ($res->{incomplete} && !$res->{timed_out} && _body_expected($ctx, $res)) {
        fail("$name - response body is complete$suffix");
        diag($res->{chunked} ? "truncated chunked body"
                             : "got " . length($body) . " of "
                               . ($res->{headers}{'content-length'} // '?') . " bytes");
    }

    if (defined(my $expected = _pick(_sv($block, "response_body"), $idx))) {
        _is_string($body, $expected, "$name - response_body - response is expected$suffix");
    }
    if (defined(my $like = _pick(_sv($block, "response_body_like"), $idx))) {
        like($body, _regex($like, 'sm'),
             "$name - response_body_like - response is expected$suffix");
    }
    if (defined(my $unlike = _pick(_sv($block, "response_body_unlike"), $idx))) {
        unlike($body, _regex($unlike, 'sm'),
               "$name - response_body_unlike - response is expected$suffix");
    }
    for my $check (@ResponseBodyChecks) {
        $check->($block, $body, $idx, 0, 0);    # repetition 0, no dry run
    }
}

# HEAD requests and 1xx/204/304 responses carry no body even when headers
# announce one.
sub _body_expected {
    my ($ctx, $res) = @_;
    return 0 if $res->{status} =~ /^(?:1\d\d|204|304)$/;
    my $request = _sv($ctx->{block}, "request") // _sv($ctx->{block}, "raw_request") // '';
    $request = _pick($request, $ctx->{idx});
    return $request =~ /\A\s*HEAD\s/ ? 0 : 1;
}

sub _is_string {
    my ($got, $expected, $test_name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    if (eval { require Test::LongString; 1 }) {
        Test::LongString::is_string($got, $expected, $test_name);
    }
    else {
        is($got, $expected, $test_name);
    }
}

#---------------------------------------------------------------------------
# Checking the error log
#---------------------------------------------------------------------------

# error_log: every pattern must match one of $lines, the lines written
# since the previous check (one request's); no_error_log: none may.
# Patterns are lines of text (substrings) or, with "eval", an arrayref of
# qr// and strings.
sub _check_error_log {
    my ($block, $name, $lines, $suffix) = @_;

    for my $pattern (_patterns(_sv($block, "error_log"))) {
        my $shown = _shown($pattern);
        my $found = grep { _line_matches($_, $pattern) } @$lines;
        ok($found, "$name - pattern \"$shown\" matches a line in error.log$suffix")
            or diag(_log_summary($lines));
    }
    for my $pattern (_patterns(_sv($block, "no_error_log"))) {
        my $shown = _shown($pattern);
        my ($hit) = grep { _line_matches($_, $pattern) } @$lines;
        ok(!defined $hit,
           "$name - pattern \"$shown\" does not match a line in error.log$suffix")
            or diag("matching line: $hit");
    }
}

# Diagnostics for a missing error-log pattern: the non-debug lines searched
# (at most 30).
sub _log_summary {
    my ($lines) = @_;
    my @shown = grep { /^\d{4}\/\d\d\/\d\d \S+ \[(?!debug\])/ } @$lines;
    splice @shown, 30 if @shown > 30;
    return "searched " . scalar(@$lines) . " error.log lines (since the previous check) in "
         . $Nginx->error_log_path . "; non-debug ones:\n"
         . (@shown ? join('', map { "  $_\n" } @shown) : "  (none)\n");
}

sub _patterns {
    my ($value) = @_;
    return () unless defined $value;
    return ($value) if ref $value eq 'Regexp';
    return @$value if ref $value eq 'ARRAY';
    return grep { length } split /\n/, $value;
}

sub _line_matches {
    my ($line, $pattern) = @_;
    return ref $pattern eq 'Regexp' ? $line =~ $pattern : index($line, $pattern) >= 0;
}

sub _shown {
    my ($pattern) = @_;
    my $text = "$pattern";
    $text =~ s/"/\\"/g;
    return $text;
}

#---------------------------------------------------------------------------
# Section helpers
#---------------------------------------------------------------------------

# "user_files": ">>> name" lines each start a file (">>> dir/name" creates
# dir/); the lines up to the next ">>>" are its content.  With eval, an
# arrayref of [name, content] pairs is accepted too.
sub parse_user_files {
    my ($value) = @_;
    return [] unless defined $value;
    return [ map { [ $_->[0], $_->[1] ] } @$value ] if ref $value eq 'ARRAY';
    my @files;
    for my $line (split /^/, $value) {
        if ($line =~ /^>>> (\S+)\s*$/) {
            push @files, [ $1, '' ];
        }
        elsif (@files) {
            $files[-1][1] .= $line;
        }
        elsif ($line =~ /\S/) {
            die "user_files must start with a '>>> name' line\n";
        }
    }
    return \@files;
}

# "10s", "500ms" or a plain number of seconds -> seconds (the real runner
# knows no other unit).
sub parse_time {
    my ($text) = @_;
    my $t = _trim($text) // '';
    return $1 / 1000 if $t =~ /^(\d+(?:\.\d*)?)\s*ms$/;
    return $1 + 0    if $t =~ /^(\d+(?:\.\d*)?)\s*s?$/;
    die "bad time value '$t' (expected e.g. 3, 10s, 500ms)\n";
}

# A section's value (undef when the block has no such section).  Test::Base
# accessors return an empty list for absent sections, hence the wrapper.
sub _sv {
    my ($block, $section) = @_;
    my $value = $block->$section;
    return $value;
}

# Per-request value: element $idx of an arrayref, else the value itself.
sub _pick {
    my ($value, $idx) = @_;
    return ref $value eq 'ARRAY' ? $value->[$idx] : $value;
}

sub _lines {
    my ($text) = @_;
    return () unless defined $text;
    return grep { /\S/ } split /\r?\n/, $text;
}

sub _regex {
    my ($pattern, $flags) = @_;
    return $pattern if ref $pattern eq 'Regexp';
    return qr/(?$flags)$pattern/ if $flags;
    return qr/$pattern/;
}

sub _trim {
    my ($text) = @_;
    return undef unless defined $text;
    return $text if ref $text;
    $text =~ s/^\s+|\s+$//g;
    return $text;
}

# Up to 200 bytes of what was received, for diagnostics.
sub _summary {
    my ($raw) = @_;
    return "(nothing)" unless defined $raw && length $raw;
    my $text = length $raw > 200 ? substr($raw, 0, 200) . '...' : $raw;
    $text =~ s/\r/\\r/g;
    return $text;
}

#---------------------------------------------------------------------------
# Test::Base filter class: like Test::Base::Filter, but an "eval" section
# whose code dies stops the test file with the error, instead of silently
# using the error message as the section's value.
#---------------------------------------------------------------------------

package Test::Nginx::Socket::Filter;

use Test::Base::Filter ();
our @ISA = ('Test::Base::Filter');

sub eval {
    my ($self, @input) = @_;
    $self->assert_scalar(@input);
    my @return = CORE::eval($input[0]);
    if ($@) {
        my $block = $self->current_block;
        die "eval filter failed in block '"
            . ($block ? $block->name : '?') . "': $@";
    }
    return @return;
}

package Test::Nginx::Socket;

1;

__END__

=head1 NAME

Test::Nginx::Socket - chatterd's clean-room fallback for Test::Nginx::Socket

=head1 SYNOPSIS

As with the real module: C<use Test::Nginx::Socket 'no_plan';>, C<run_tests();>, then the
blocks after C<__DATA__> (t/getchatts.t is one such suite).

=head1 DESCRIPTION

Used only when the real Test::Nginx (openresty) is not installed.  For each
block nginx is stopped, the server root is recreated with the generated
nginx.conf and the user files, nginx is started (C<-p SERVROOT/ -c
conf/nginx.conf>, daemon, single process by default), the block's init code
runs, the requests are sent over a fresh TCP connection each (HTTP/1.1,
C<Connection: close>), and each response is checked; after each request the
error log is checked against the lines written since the previous check
(for the first request: since nginx started), as the real runner does.

=head2 Functions

Only those the suites use: run_tests, no_shuffle (blocks are shuffled
otherwise, like the real one; or set TEST_NGINX_NO_SHUFFLE),
add_block_preprocessor (sub { my ($block) = @_; ... }, may call
$block->set_value), add_response_body_check (sub { my ($block, $body,
$req_idx, $repeated_req_idx, $dry_run) = @_; ... }; $repeated_req_idx and
$dry_run are always 0), server_port; plan / blocks / is / like / ok / ...
(Test::Base and Test::More).

=head2 Sections

=over

=item main_config, http_config, config

Placed in the main context, in http{} and in the server{} of the generated
nginx.conf.  C<$TEST_NGINX_FOO> is replaced by C<$ENV{TEST_NGINX_FOO}>; an
undefined one bails out.

=item init

Perl code run in package main once nginx has started, before the first
request (so it cannot change the block's configuration).

=item user_files

C<< >>> name >> lines each start a file written under html/ (C<< >>>
dir/name >> creates dir/), followed by its content.  With eval, a string in
that format or an arrayref of [name, content] pairs.

=item request, more_headers

C<METHOD URI [HTTP/x.y]> (default HTTP/1.1) then the body.  Without a
Content-Length in more_headers the body is whitespace-trimmed, and
Content-Length is added when it is not empty (and there is no
Transfer-Encoding).  Host: localhost and Connection: close are added
unless given.  C<request eval> may return an arrayref: several requests,
each on its own connection.  more_headers may be an arrayref (eval), one
entry per request.

=item raw_request

Bytes sent as they are (after Test::Base's default filters, so use eval
for CRLFs).

=item error_code

Expected status (200 when neither is given).

=item response_body, response_body_like, response_body_unlike

Exact body (chunked transfer coding decoded) / regex with /sm.

=item response_headers, response_headers_like

C<Name: value> (exact), C<!Name> (absent), C<Name:> (absent or empty);
C<Name: regex> matched against the whole value.

=item error_log, no_error_log

Each line a substring, or with eval a qr// / an arrayref of qr// and
strings; checked after each request (after a pause of 3 x
TEST_NGINX_SLEEP, 0.015 s by default) against the error-log lines written
since the previous check; for the first request, since nginx started.
So in a block of several requests, every error_log pattern must match a
line of each request.

=item timeout

Client timeout between I/O events (C<3>, C<10s>, C<500ms>; default 3 s or
TEST_NGINX_TIMEOUT); a timeout fails the test.

=back

Per-request expectations (error_code, response_body, response_headers, ...)
may be arrayrefs (via eval) when a block sends several requests.

=head2 Environment

TEST_NGINX_BINARY (default: nginx in PATH, then /usr/sbin/nginx),
TEST_NGINX_PORT / TEST_NGINX_SERVER_PORT (default: a port handed out by
Chatterd::Ports; the real runner's is 1984), TEST_NGINX_CLIENT_PORT,
TEST_NGINX_SERVROOT (default t/servroot under the current directory; made
absolute and exported as TEST_NGINX_SERVER_ROOT), TEST_NGINX_LOAD_MODULES
(space-separated .so paths -> load_module lines), TEST_NGINX_LOG_LEVEL
(debug), TEST_NGINX_NO_CLEAN, TEST_NGINX_TIMEOUT, TEST_NGINX_NO_SHUFFLE,
TEST_NGINX_MASTER_PROCESS (on/off), TEST_NGINX_SLEEP.

The generated nginx.conf has the real runner's defaults where a suite could
notice them: worker_connections 64, C<user root> when run as root,
client_max_body_size 30M, keepalive_timeout 68 s.

=head2 Known differences from the real Test::Nginx::Socket

nginx is always restarted for every block (as the real runner does by
default); every request uses its own connection and is read until the
server closes it (a request sent with Connection: keep-alive therefore
waits for the timeout); there is no repeat_each (always 1); a failed init
or nginx start fails the block instead of bailing out (the real runner
retries the start for 30 s, then bails out); an C<eval> section
that dies stops the test file instead of using the error text as the
value; there is no support for the other sections of the real module
(requests in packets, raw_request_middle_delay, error_code_like,
raw_response_headers_like, abort, wait, log_level, ignore_response,
pipelined_requests, grep_error_log, access_log, tcp_listen, curl, http2,
shutdown, must_die, skip_nginx, todo, ...), nor for valgrind/HUP/leak
modes.

=cut
