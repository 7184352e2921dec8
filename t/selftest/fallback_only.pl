# Required (in a BEGIN block, once t/lib is on @INC) by the self-tests of t/lib's runner: skips
# the whole test file when another Test::Nginx::Socket (openresty's, on PERL5LIB or installed)
# comes first in @INC and would be the one loaded.
use strict; use warnings;
use Cwd ();
use File::Basename ();

my ($found) = grep { !ref $_ && -f "$_/Test/Nginx/Socket.pm" } @INC;
my $ours = File::Basename::dirname(__FILE__) . '/../lib/Test/Nginx/Socket.pm';
if (!defined $found || Cwd::abs_path("$found/Test/Nginx/Socket.pm") ne Cwd::abs_path($ours)) {
    require Test::More;
    Test::More::plan(skip_all => "t/lib's runner is not the one loaded ("
                                 . ($found // '(none)') . "/Test/Nginx/Socket.pm)");
}

1;
