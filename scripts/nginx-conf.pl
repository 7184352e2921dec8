#!/usr/bin/perl
# nginx-conf.pl: the one way to turn nginx.conf.example into a configuration that runs here
# (make run, the test suites, make bench). It edits the example's directives in place, keeping
# every comment and line, and stops with an error when a directive or argument it was asked to
# change is not in the example: a change of the example is never silently ignored.
#
# Edits (each may be repeated; VALUE and TEXT are nginx text, quotes included if needed):
#   --set NAME VALUE          the arguments of NAME, which must occur exactly once, become VALUE
#   --replace NAME OLD NEW    the argument OLD of every NAME that has it becomes NEW ('' drops it)
#   --append CONTEXT TEXT     TEXT at the end of CONTEXT: main or a block that occurs once
#                             (events, http, server), indented to its depth
#   --append-file CONTEXT F   the same with the contents of file F
#   --block 'NAME ARGS'       print only that block of the result, e.g. 'location /media/'
#   --example FILE            the source (default: nginx.conf.example of this clone)
#   --output FILE             where to write ('-': stdout, the default without --prefix)
# A local stack (make run, bench, t/directives.t) under --prefix DIR: DIR/nginx.conf, logs/,
# tls/ (a self-signed certificate, made once), tmp/ (every temporary file of nginx):
#   --prefix DIR  --conninfo CONNINFO (required)  --module SO (default: build/ of this clone)
#   --media DIR (default DIR/media)  --http-port (8080)  --https-port (8443)
#   --workers N (as the example)  --log-level LEVEL (as the example)
use strict;
use warnings;
use Cwd ();
use FindBin;
use File::Path ();
use Getopt::Long qw(GetOptions);

my $here = Cwd::abs_path("$FindBin::Bin/..");
my (@set, @replace, @append, @append_file, %local);
my ($block, $output, $example) = (undef, undef, "$here/nginx.conf.example");
GetOptions('set=s{2}' => \@set, 'replace=s{3}' => \@replace, 'append=s{2}' => \@append,
           'append-file=s{2}' => \@append_file, 'block=s' => \$block, 'output=s' => \$output,
           'example=s' => \$example,
           map { ("$_=s" => \$local{$_}) } qw(prefix conninfo module media http-port https-port
                                              workers log-level))
    && !@ARGV or die "usage: see the comment at the top of $0\n";

# ---- the tokenizer: the directives of nginx text, with the offsets of their arguments

# parse TEXT SOURCE: the tree of directives { name, start, args => [[text, start, end]...],
# depth, and for a block children and close (the offset of its "}") }. Comments are skipped, as
# nginx does; a quoted argument keeps its quotes. SOURCE names TEXT in errors.
sub parse {
    my ($text, $source) = @_;
    my $top = { name => 'main', children => [], depth => 0, close => length $text };
    my @stack = ($top);
    my @words;
    pos($text) = 0;
    while (pos($text) < length $text) {
        if ($text =~ /\G(?:\s+|#[^\n]*)/gc) {
            next;
        } elsif ($text =~ /\G("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|(?:\$\{[^}]*\}|[^\s;{}])+)/gcs) {
            push @words, [$1, $-[1], $+[1]];
        } elsif ($text =~ /\G([;{}])/gc) {
            my $c = $1;
            my $where = "$source, line " . (1 + (substr($text, 0, $-[1]) =~ tr/\n//));
            if ($c eq '}') {
                die "nginx-conf.pl: $where: unexpected }\n" if @words || @stack == 1;
                $stack[-1]{close} = $-[1];
                pop @stack;
                next;
            }
            die "nginx-conf.pl: $where: $c without a directive\n" unless @words;
            my ($name, @args) = @words;
            my $node = { name => $name->[0], start => $name->[1], args => \@args, depth => scalar @stack };
            push @{ $stack[-1]{children} }, $node;
            if ($c eq '{') { $node->{children} = []; push @stack, $node }
            @words = ();
        } else {
            die "nginx-conf.pl: $source: unexpected character at offset " . pos($text) . "\n";
        }
    }
    die "nginx-conf.pl: $source: a { is never closed, or the last directive has no ;\n"
        if @stack != 1 || @words;
    return $top;
}

sub all_directives {
    my ($node) = @_;
    return map { ($_, all_directives($_)) } @{ $node->{children} // [] };
}

# ---- the edits: [start, end, new text, order], applied from the end of the text

open my $in, '<', $example or die "$example: $!\n";
my $text = do { local $/; <$in> };
my $tree = parse($text, $example);
my @all = all_directives($tree);
my @edits;

sub stale { # WHAT OPTION: the example lacks what an option names
    my ($what, $option) = @_;
    die "nginx-conf.pl: $example $what, which $option needs: the example changed, update the "
        . "caller of nginx-conf.pl (nginx-conf.pl itself for --prefix and its options)\n";
}
sub named { my ($name) = @_; return grep { $_->{name} eq $name } @all }

sub set_directive {
    my ($name, $value, $option) = @_;
    my @found = named($name);
    stale("has " . @found . " '$name' directives, not one", $option) if @found != 1;
    my $args = $found[0]{args};
    stale("has '$name' without arguments", $option) unless @$args;
    push @edits, [$args->[0][1], $args->[-1][2], $value, scalar @edits];
}
sub replace_argument {
    my ($name, $old, $new, $option) = @_;
    my @args = grep { $_->[0] eq $old } map { @{ $_->{args} } } named($name);
    stale("has no '$name' with the argument '$old'", $option) unless @args;
    for my $arg (@args) {
        # An argument dropped takes the blank before it along.
        my $start = $arg->[1];
        $start-- while $new eq '' && substr($text, $start - 1, 1) =~ /[ \t]/;
        push @edits, [$start, $arg->[2], $new, scalar @edits];
    }
}
sub append_to {
    my ($context, $addition, $option) = @_;
    my @found = $context eq 'main' ? ($tree) : grep { $_->{children} } named($context);
    stale("has " . @found . " '$context' blocks, not one", $option) if @found != 1;
    my ($close, $indent) = ($found[0]{close}, '    ' x $found[0]{depth});
    $addition =~ s/^(?=.)/$indent/mg;
    $addition .= "\n" unless $addition =~ /\n\z/;
    # Before the line of the closing "}", or before the "}" of a one-line block.
    my $line_start = rindex($text, "\n", $close - 1) + 1;
    if (substr($text, $line_start, $close - $line_start) =~ /^[ \t]*\z/) {
        push @edits, [$line_start, $line_start, $addition, scalar @edits];
    } else {
        push @edits, [$close, $close, "\n$addition", scalar @edits];
    }
}

# The local stack: its edits, each overridden by a --set of the same directive.
my %set_by_caller = @set;
my $is_local = defined $local{prefix};
if ($is_local) {
    File::Path::make_path($local{prefix});
    my $dir = Cwd::abs_path($local{prefix});   # nginx resolves relative paths from its own prefix
    defined $local{conninfo} or die "nginx-conf.pl: --prefix needs --conninfo\n";
    File::Path::make_path("$dir/logs", "$dir/tls", "$dir/tmp", $local{media} // "$dir/media");
    my $media = Cwd::abs_path($local{media} // "$dir/media");
    chmod 0755, $media;   # the workers, whoever they run as, write it
    if (!-f "$dir/tls/chatterd.crt") {
        # openssl's progress dots go nowhere; an error shows as its exit status.
        open my $stderr, '>&', \*STDERR or die $!;
        open STDERR, '>', '/dev/null' or die $!;
        my $status = system('openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days',
            '365', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
            '-keyout', "$dir/tls/chatterd.key", '-out', "$dir/tls/chatterd.crt");
        open STDERR, '>&', $stderr or die $!;
        $status == 0 or die "nginx-conf.pl: openssl could not make $dir/tls/chatterd.crt\n";
    }
    (my $conninfo = $local{conninfo}) =~ s/(["\\])/\\$1/g;
    my %local_set = (
        load_module => $local{module} // "$here/build/ngx_http_chatterd_module.so",
        error_log => join(' ', "$dir/logs/error.log", $local{'log-level'} // ()),
        pid => "$dir/logs/nginx.pid",
        chatterd_pg => qq{"$conninfo"},
        chatterd_media_root => $media,
        alias => "$media/",
        ssl_certificate => "$dir/tls/chatterd.crt",
        ssl_certificate_key => "$dir/tls/chatterd.key",
        defined $local{workers} ? (worker_processes => $local{workers}) : (),
    );
    for my $name (sort keys %local_set) {
        set_directive($name, $local_set{$name}, "nginx-conf.pl's --prefix (for $name)")
            unless exists $set_by_caller{$name};
    }
    for ([http => 8080], [https => 8443]) {
        my ($kind, $port) = @$_;
        replace_argument('listen', "127.0.0.1:$port",
                         '127.0.0.1:' . ($local{"$kind-port"} // $port), "--$kind-port");
    }
    append_to('http', join('', "# nginx-conf.pl: every temporary file under $dir/tmp\n",
                           map { "${_}_temp_path $dir/tmp/$_;\n" }
                               qw(client_body proxy fastcgi uwsgi scgi)), '--prefix');
    # Started by root, nginx would run its workers as nobody, who cannot write the media directory
    # when the clone lives in a folder only root can enter (/root, mktemp -d): they run as root.
    # Started by another user, every process is that user, who owns the clone (no `user` line:
    # nginx would ignore it with a warning).
    append_to('main', "user root;   # nginx-conf.pl: started by root (see its comment)\n",
              '--prefix') if $> == 0;
}
while (my ($name, $value) = splice @set, 0, 2) { set_directive($name, $value, "--set $name") }
while (my ($name, $old, $new) = splice @replace, 0, 3) {
    replace_argument($name, $old, $new, "--replace $name $old");
}
while (my ($context, $addition) = splice @append, 0, 2) {
    append_to($context, $addition, "--append $context");
}
while (my ($context, $file) = splice @append_file, 0, 2) {
    open my $fh, '<', $file or die "nginx-conf.pl: $file: $!\n";
    append_to($context, do { local $/; <$fh> }, "--append-file $context $file");
}

my $end = length $text;
# Additions at one offset keep their order: the last one is inserted first.
for my $edit (sort { $b->[0] <=> $a->[0] || $b->[1] <=> $a->[1] || $b->[3] <=> $a->[3] } @edits) {
    die "nginx-conf.pl: two edits of the same text at offset $edit->[0]\n" if $edit->[1] > $end;
    substr($text, $edit->[0], $edit->[1] - $edit->[0]) = $edit->[2];
    $end = $edit->[0];
}

# What was added is nginx text too: unbalanced braces stop here rather than in nginx.
my $edited = parse($text, "$example as edited");
if (defined $block) {
    # The block of the edited text: from its directive's name to its "}".
    my ($name, @args) = split ' ', $block;
    my @found = grep { $_->{children} && $_->{name} eq $name
                       && join(' ', map { $_->[0] } @{ $_->{args} }) eq join(' ', @args) }
                all_directives($edited);
    stale("has " . @found . " blocks '$block', not one", "--block '$block'") if @found != 1;
    my ($start, $close) = @{ $found[0] }{qw(start close)};
    $text = substr($text, $start, $close + 1 - $start) . "\n";
}

$output //= $is_local ? "$local{prefix}/nginx.conf" : '-';
my $out = \*STDOUT;
$output eq '-' or open $out, '>', $output or die "nginx-conf.pl: $output: $!\n";
print {$out} $text;
close $out or die "nginx-conf.pl: $output: $!\n";
