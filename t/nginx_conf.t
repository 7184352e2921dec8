# scripts/nginx-conf.pl, the generator of every configuration made from nginx.conf.example (make
# run, the suites, make bench): its edits change directives, never comments or quoted text; an
# edit whose directive or argument is missing, or not unique where it must be, stops it with a
# message naming the directive; --block prints one block; --prefix writes a local stack.
# A script test (Test::More) on a small example of its own and on nginx.conf.example.
use strict; use warnings;
use FindBin; BEGIN { push @INC, "$FindBin::Bin/lib" }
use Test::More;
use File::Temp ();
use IPC::Open3 ();

my $GENERATOR = "$FindBin::Bin/../scripts/nginx-conf.pl";
my $dir = File::Temp::tempdir('chatterd-nginx-conf-XXXXXX', TMPDIR => 1, CLEANUP => 1);

# Runs the generator; returns (exit status, stdout, stderr).
sub generate {
    my @options = @_;
    open my $err, '+>', "$dir/stderr" or die $!;
    my $pid = IPC::Open3::open3(my $in, my $out, $err, $GENERATOR, @options);
    close $in;
    my $text = do { local $/; <$out> } // '';
    waitpid $pid, 0;
    seek $err, 0, 0;
    return ($? >> 8, $text, do { local $/; <$err> } // '');
}

my $example = "$dir/example.conf";
open my $fh, '>', $example or die $!;
print {$fh} <<'CONF';
worker_processes auto;  # set me; not this: worker_processes 9;
events { worker_connections 64; }
http {
    log_format x "a;b # not a comment {";
    server {
        listen 127.0.0.1:8080 reuseport;   # production: listen 80 reuseport;
        listen 127.0.0.1:8443 ssl reuseport;
        # listen 127.0.0.1:8080 reuseport;
        location /a/ { alias /srv/a/; }
    }
}
CONF
close $fh;

subtest 'no edit: the example unchanged' => sub {
    my ($rc, $out) = generate('--example', $example);
    is($rc, 0, 'exit 0');
    is($out, do { local (@ARGV, $/) = $example; <> }, 'byte for byte');
};

subtest 'edits change directives, keep comments and quoted text' => sub {
    my ($rc, $out, $err) = generate('--example', $example, '--set', 'worker_processes', '2',
        '--replace', 'listen', '127.0.0.1:8080', '127.0.0.1:18080',
        '--replace', 'listen', 'reuseport', '', '--append', 'events', 'accept_mutex on;',
        '--append', 'server', "location /b/ {\n    return 204;\n}", '--append', 'main', 'user root;');
    is($rc, 0, 'exit 0') or diag($err);
    like($out, qr/^worker_processes 2;  # set me; not this: worker_processes 9;$/m, '--set');
    like($out, qr/^ {8}listen 127\.0\.0\.1:18080;   # production: listen 80 reuseport;$/m,
         '--replace, and an argument dropped with its blank');
    like($out, qr/^ {8}listen 127\.0\.0\.1:8443 ssl;$/m, 'dropped from every listen');
    like($out, qr/^ {8}# listen 127\.0\.0\.1:8080 reuseport;$/m, 'a commented-out directive untouched');
    like($out, qr/^events \{ worker_connections 64; \n {4}accept_mutex on;\n\}$/m,
         '--append into a one-line block');
    like($out, qr/\}\n {8}location \/b\/ \{\n {12}return 204;\n {8}\}\n {4}\}\n\}\nuser root;\n\z/,
         '--append at the end of server, indented, and of main');
    like($out, qr/log_format x "a;b # not a comment \{";/, 'quoted text untouched');
};

subtest 'an edit the example does not allow stops the generator' => sub {
    for my $case (
        [[qw(--set listen x)], qr/2 'listen' directives, not one, which --set listen needs/],
        [[qw(--set access_log off)], qr/0 'access_log' directives, not one/],
        [[qw(--replace listen 127.0.0.1:9 x)], qr/no 'listen' with the argument '127\.0\.0\.1:9'/],
        [[qw(--replace worker_processes 9 1)], qr/no 'worker_processes' with the argument '9'/],
        [[qw(--append stream x;)], qr/0 'stream' blocks, not one/],
        [['--block', 'location /b/'], qr/0 blocks 'location \/b\/', not one/],
    ) {
        my ($options, $message) = @$case;
        my ($rc, $out, $err) = generate('--example', $example, @$options);
        isnt($rc, 0, "@$options: exit status");
        like($err, qr/$message.*update the caller/, "@$options: says why") or diag($err);
        is($out, '', "@$options: prints nothing");
    }
    my ($rc, $out, $err) = generate('--example', $example, '--append', 'http', '}');
    isnt($rc, 0, 'an addition with a stray }: exit status');
    like($err, qr/as edited, line \d+: unexpected \}/, 'and where') or diag($err);
};

subtest '--block: one block of the edited text' => sub {
    my ($rc, $out) = generate('--example', $example, '--set', 'alias', '/tmp/m/', '--block', 'location /a/');
    is($rc, 0, 'exit 0');
    is($out, "location /a/ { alias /tmp/m/; }\n", 'the block alone');
};

subtest '--prefix: a local stack from nginx.conf.example' => sub {
    plan skip_all => 'no openssl' unless system('openssl version >/dev/null 2>&1') == 0;
    my ($rc, undef, $err) = generate('--prefix', "$dir/stack", '--conninfo', 'host=/x dbname="a b"',
        '--http-port', '18080', '--https-port', '18443', '--workers', '2', '--log-level', 'warn');
    is($rc, 0, 'exit 0') or diag($err);
    ok(-s "$dir/stack/tls/chatterd.crt" && -s "$dir/stack/tls/chatterd.key", 'a certificate');
    open my $in, '<', "$dir/stack/nginx.conf" or die "$dir/stack/nginx.conf: $!";
    my $conf = do { local $/; <$in> };
    (my $directives = $conf) =~ s/#[^\n]*//g;
    unlike($directives, qr{/var/|/etc/|/run/|/usr/lib/}, 'no system path left');
    like($conf, qr/^ +chatterd_pg "host=\/x dbname=\\"a b\\"";/m, 'the conninfo, quoted');
    like($conf, qr/^ +listen 127\.0\.0\.1:18080 reuseport;/m, 'the HTTP port');
    like($conf, qr/^ +listen 127\.0\.0\.1:18443 ssl http2 reuseport;/m, 'the HTTPS port');
    like($conf, qr/^worker_processes 2;/m, 'the workers');
    like($conf, qr/^error_log \Q$dir\E\/stack\/logs\/error\.log warn;/m, 'the error log');
    like($conf, qr/^ +client_body_temp_path \Q$dir\E\/stack\/tmp\/client_body;/m, 'temporary files');
    is($conf =~ /^user root;/m ? 1 : 0, $> == 0 ? 1 : 0, 'user root exactly when started by root');
};

done_testing();
