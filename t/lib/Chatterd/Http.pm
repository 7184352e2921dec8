package Chatterd::Http;

# Tiny raw-HTTP client helpers for chatterd tests.
#
#   my $res = http_request($port, "GET /t HTTP/1.1\r\nHost: localhost\r\n"
#                               . "Connection: close\r\n\r\n", timeout => 5);
#   $res->{status}              # 200 (undef when no status line arrived)
#   $res->{headers}{'content-type'}
#   $res->{body}                # chunked transfer coding already decoded
#   $res->{raw}                 # every byte received
#
#   my $body = multipart_body('XyZ',
#       [name => 'username', value => 'alice'],
#       [name => 'image', filename => 'chattImage', type => 'image/jpeg',
#        value => $jpeg_bytes, headers => ['X-Extra: 1']]);
#
# The request is sent exactly as given (no header is added).  The client
# reads until the server closes the connection, so send "Connection: close"
# (http_get and build_request do).  Timeouts apply between I/O events: the
# exchange fails when nothing can be sent or received for `timeout`
# seconds.  Test::Nginx::Socket (the fallback runner) uses this module too.

use strict;
use warnings;

use Errno ();
use Exporter 'import';
use IO::Select;
use IO::Socket::INET;
use Time::HiRes ();

our @EXPORT    = qw(http_request http_get multipart_body);
our @EXPORT_OK = qw(build_request parse_http_response decode_chunked);

#---------------------------------------------------------------------------
# Requests
#---------------------------------------------------------------------------

# http_request($port, $request, %options) -> response hashref
#
# $request is the raw request bytes.
# Options: timeout (seconds between I/O events, default 5), host (default
# 127.0.0.1).
#
# Besides the parsed fields (see parse_http_response) the result has
#   timed_out    true when the timeout expired (the response may be partial)
#   error        connect/write/read error text, or undef
#   write_error  set when the server stopped accepting the request bytes
#                (e.g. it answered early and closed); not fatal by itself
#   reset        true when the connection ended with a reset
sub http_request {
    my ($port, $request, %opt) = @_;
    my $timeout = $opt{timeout} // 5;
    my %res = (raw => '', timed_out => 0, error => undef);

    my $sock = IO::Socket::INET->new(
        PeerAddr => $opt{host} // '127.0.0.1',
        PeerPort => $port,
        Proto    => 'tcp',
        Timeout  => $timeout,
    );
    unless ($sock) {
        $res{error} = "connect() to port $port failed: $@";
        return _finish(\%res);
    }
    binmode $sock;
    $sock->blocking(0);
    local $SIG{PIPE} = 'IGNORE';

    my $conn = { sock => $sock, timeout => $timeout, res => \%res, eof => 0 };
    _send($conn, $request);
    _read_to_eof($conn) unless $res{timed_out} || $conn->{eof};
    close $sock;
    return _finish(\%res);
}

# http_get($port, $uri, %options): a GET with Host and Connection: close.
sub http_get {
    my ($port, $uri, %opt) = @_;
    return http_request($port, build_request(GET => $uri), %opt);
}

# build_request($method, $uri, headers => [Name => value, ...],
#               body => $bytes, protocol => 'HTTP/1.1')
# Adds Host: localhost, Connection: close and Content-Length (when there is
# a body) unless given; CRLF line ends.
sub build_request {
    my ($method, $uri, %opt) = @_;
    my @headers = @{ $opt{headers} // [] };
    my %have;
    for (my $i = 0; $i < @headers; $i += 2) {
        $have{ lc $headers[$i] } = 1;
    }
    my $body = $opt{body} // '';
    push @headers, Host => 'localhost' unless $have{host};
    push @headers, Connection => 'close' unless $have{connection};
    push @headers, 'Content-Length' => length $body
        if length $body && !$have{'content-length'} && !$have{'transfer-encoding'};
    my $text = "$method $uri " . ($opt{protocol} // 'HTTP/1.1') . "\r\n";
    while (my ($name, $value) = splice @headers, 0, 2) {
        $text .= "$name: $value\r\n";
    }
    return "$text\r\n$body";
}

# Write the request, reading whatever the server sends meanwhile (it may
# answer early, e.g. 413, and close).  Stops on timeout, EOF or error.
sub _send {
    my ($conn, $data) = @_;
    my $res = $conn->{res};
    my $offset = 0;
    while ($offset < length $data) {
        my ($readable, $writable) = IO::Select->select(
            IO::Select->new($conn->{sock}), IO::Select->new($conn->{sock}),
            undef, $conn->{timeout});
        if (!$readable && !$writable) {
            $res->{timed_out} = 1;
            return;
        }
        if ($readable && @$readable) {
            _read_some($conn);
            return if $conn->{eof};
        }
        next unless $writable && @$writable;
        my $n = syswrite $conn->{sock}, $data, 65536, $offset;
        if (defined $n) {
            $offset += $n;
        }
        elsif (!$!{EAGAIN} && !$!{EWOULDBLOCK} && !$!{EINTR}) {
            $res->{write_error} = "$!";
            return;    # the server stopped reading; go read its answer
        }
    }
}

# Read until EOF, a read error or the timeout.
sub _read_to_eof {
    my ($conn) = @_;
    my $select = IO::Select->new($conn->{sock});
    until ($conn->{eof}) {
        unless ($select->can_read($conn->{timeout})) {
            $conn->{res}{timed_out} = 1;
            return;
        }
        _read_some($conn);
    }
}

# One non-blocking read; sets eof on EOF or on a connection error (a reset
# after the response is the server's business, recorded in {reset}).
sub _read_some {
    my ($conn) = @_;
    my $n = sysread $conn->{sock}, my $buf, 65536;
    if (defined $n) {
        if ($n == 0) { $conn->{eof} = 1 }
        else         { $conn->{res}{raw} .= $buf }
        return;
    }
    return if $!{EAGAIN} || $!{EWOULDBLOCK} || $!{EINTR};
    $conn->{res}{reset} = 1 if $!{ECONNRESET};
    $conn->{res}{error} //= "read failed: $!" unless $!{ECONNRESET};
    $conn->{eof} = 1;
}

sub _finish {
    my ($res) = @_;
    my $parsed = parse_http_response($res->{raw});
    $res->{$_} //= $parsed->{$_} for keys %$parsed;
    return $res;
}

#---------------------------------------------------------------------------
# Responses
#---------------------------------------------------------------------------

# parse_http_response($raw) -> {
#   status,
#   headers     => {lc name => value} (repeated headers joined with ", "),
#   head        => the raw status line and headers,
#   body        => body bytes (chunked transfer coding decoded),
#   chunked     => true when the body was chunked,
#   incomplete  => true when the head or the body is truncated,
# }
# Interim 1xx responses (100 Continue) are skipped.
sub parse_http_response {
    my ($raw) = @_;
    my %r = (status => undef, headers => {}, body => undef, incomplete => 0);
    my $rest = $raw // '';

    while (1) {
        my $end = index $rest, "\r\n\r\n";
        if ($end < 0) {
            _parse_head(\%r, $rest) if length $rest;
            $r{incomplete} = 1;
            return \%r;
        }
        my $head = substr $rest, 0, $end;
        $rest = substr $rest, $end + 4;
        $r{headers} = {};
        _parse_head(\%r, $head);
        $r{head} = "$head\r\n\r\n";
        last unless defined $r{status} && $r{status} =~ /^1\d\d$/ && $r{status} != 101;
    }

    my $te = $r{headers}{'transfer-encoding'} // '';
    if ($te =~ /\bchunked\b/i) {
        my ($body, $complete) = decode_chunked($rest);
        $r{body} = $body;
        $r{chunked} = 1;
        $r{incomplete} = 1 unless $complete;
    }
    else {
        $r{body} = $rest;
        my $length = $r{headers}{'content-length'};
        $r{incomplete} = 1
            if defined $length && $length =~ /^\d+$/ && length($rest) < $length;
    }
    return \%r;
}

sub _parse_head {
    my ($r, $head) = @_;
    my ($status_line, @lines) = split /\r?\n/, $head;
    $r->{status} = $1 if defined $status_line && $status_line =~ m{^HTTP/\d+(?:\.\d+)?\s+(\d{3})\b};
    for my $line (@lines) {
        my ($name, $value) = $line =~ /^([^:\s]+):[ \t]*(.*?)[ \t]*$/ or next;
        my $have = \$r->{headers}{ lc $name };
        $$have = defined $$have ? "$$have, $value" : $value;
    }
}

# decode_chunked($bytes) -> ($body, $complete)
sub decode_chunked {
    my ($data) = @_;
    my ($body, $pos) = ('', 0);
    while (1) {
        my $eol = index $data, "\r\n", $pos;
        return ($body, 0) if $eol < 0;
        my $size_line = substr $data, $pos, $eol - $pos;
        return ($body, 0) unless $size_line =~ /^\s*([0-9a-fA-F]+)/;
        my $size = hex $1;
        $pos = $eol + 2;
        if ($size == 0) {
            # trailer fields, then an empty line
            while (1) {
                my $end = index $data, "\r\n", $pos;
                return ($body, 0) if $end < 0;
                return ($body, 1) if $end == $pos;
                $pos = $end + 2;
            }
        }
        return ($body . substr($data, $pos), 0) if $pos + $size > length $data;
        $body .= substr $data, $pos, $size;
        $pos += $size;
        return ($body, 0) unless substr($data, $pos, 2) eq "\r\n";
        $pos += 2;
    }
}

#---------------------------------------------------------------------------
# multipart/form-data
#---------------------------------------------------------------------------

# multipart_body($boundary, @parts) -> body bytes, CRLF everywhere, ending
# with "--$boundary--\r\n".  Each part is an arrayref of
#   name         form field name (Content-Disposition name="...")
#   filename     optional; adds filename="..."
#   type         optional Content-Type of the part
#   headers      optional extra header lines: ['X-A: 1', ...]
#   value        the part's content (bytes)
sub multipart_body {
    my ($boundary, @parts) = @_;
    my $body = '';
    for my $part (@parts) {
        my %p = @$part;
        $body .= "--$boundary\r\nContent-Disposition: form-data; name=\"" . ($p{name} // '') . '"'
               . (defined $p{filename} ? qq{; filename="$p{filename}"} : '') . "\r\n";
        $body .= "Content-Type: $p{type}\r\n" if defined $p{type};
        $body .= "$_\r\n" for @{ $p{headers} // [] };
        $body .= "\r\n" . ($p{value} // '') . "\r\n";
    }
    return $body . "--$boundary--\r\n";
}

1;
