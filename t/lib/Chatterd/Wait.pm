package Chatterd::Wait;

# Waiting for a condition, the one way every suite and helper does it:
#
#   use Chatterd::Wait qw(wait_until);
#   ok(wait_until(sub { !upload_files_open() }), 'no file held');     # up to 20 s
#   my $pid = wait_until(sub { read_pid_file() }, 30);                # the condition's value
#   wait_until(sub { !kill 0, $pid }) or die "the server did not exit\n";
#
# It polls the condition (in scalar context) until it is true and returns that value; after
# $seconds it returns the last, false one, with a diag naming the suite's line that waited. The
# bound is an upper one: a true condition returns at once, so it may be generous on a loaded
# machine.

use strict;
use warnings;

use Exporter 'import';
use Test::More ();
use Time::HiRes ();

our @EXPORT_OK = qw(wait_until);

use constant DEFAULT_SECONDS => 20;
use constant POLL_SECONDS    => 0.05;

sub wait_until {
    my ($condition, $seconds) = @_;
    $seconds //= DEFAULT_SECONDS;
    my $deadline = Time::HiRes::time() + $seconds;
    while (1) {
        my $value = $condition->();
        return $value if $value;
        if (Time::HiRes::time() > $deadline) {
            Test::More::diag(_where() . ": still false after $seconds s");
            return $value;
        }
        Time::HiRes::sleep(POLL_SECONDS);
    }
}

# The line of the suite that waited, through the helpers of t/lib that called wait_until.
sub _where {
    my $level = 1;
    $level++ while (caller($level))[0] =~ /^Chatterd::/ && caller($level + 1);
    my (undef, $file, $line) = caller($level);
    return "waited at $file line $line";
}

1;
