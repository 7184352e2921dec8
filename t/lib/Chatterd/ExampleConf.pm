package Chatterd::ExampleConf;

# nginx.conf.example as a suite uses it: what scripts/nginx-conf.pl prints for the options given
# (its top comment lists them), e.g.
#   Chatterd::ExampleConf::generate('--set', 'alias', "$media/", '--block', 'location /media/')
# The generator stops when the example no longer has what an option edits, and so does the suite
# (its message, on stderr, names the directive). endpoint_locations() gives the example's
# locations of the four endpoints, bare.

use strict;
use warnings;

use Cwd ();
use File::Basename ();

my $GENERATOR = Cwd::abs_path(File::Basename::dirname(__FILE__) . '/../../../scripts/nginx-conf.pl');

sub generate {
    my @options = @_;
    open my $fh, '-|', $GENERATOR, @options or die "$GENERATOR: $!\n";
    my $text = do { local $/; <$fh> };
    close $fh or die "scripts/nginx-conf.pl @options: exit " . ($? >> 8) . "\n";
    return $text;
}

# The four endpoints at the paths of nginx.conf.example, each location with nothing else in it
# but $postimages for postimages: the rest a scenario test sets at http level.
sub endpoint_locations {
    my ($postimages) = @_;
    my %extra = (postimages => defined $postimages ? " $postimages" : '');
    return join '', map { "location ~ ^/$_/?\$ { chatterd $_;" . ($extra{$_} // '') . " }\n" }
                    qw(getchatts postchatt getimages postimages);
}

1;
