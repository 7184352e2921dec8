package Chatterd::Wait;

# Polling for a condition with a bound, never sleeping in its place:
#   use Chatterd::Wait qw(wait_until);
#   ok(wait_until(sub { -e $file }, 10), 'the file appears');   # seconds, default 20

use strict;
use warnings;

use Exporter 'import';
use Time::HiRes ();

our @EXPORT_OK = qw(wait_until);

sub wait_until {
    my ($cond, $seconds) = @_;
    my $deadline = Time::HiRes::time() + ($seconds // 20);
    until ($cond->()) {
        return 0 if Time::HiRes::time() > $deadline;
        Time::HiRes::sleep(0.05);
    }
    return 1;
}

1;
