package Chatterd::Sweep;

# What the media sweep's suites (media_sweep.t, media_sweep_commits.t) share:
#
#   use Chatterd::Sweep qw(start_sweeping_nginx wait_until);
#   my $ng = start_sweeping_nginx(conninfo => $conninfo, http => 'chatterd_media_sweep_limit 5;');
#   ok(wait_until(sub { !-e $file }, 20), 'the file goes');
#
# start_sweeping_nginx: one worker under a master (the sweep runs in worker 0), info log, the
# media root of Chatterd::Db, a sweep every 2 s over a chatterd_pg_timeout of 1 s; postimages,
# getimages, the status page and /media/ (nginx's static module on the root).
# wait_until: Chatterd::Wait's, re-exported.

use strict;
use warnings;

use Exporter 'import';

use Chatterd::Db qw(media_root);
use Chatterd::Nginx;
use Chatterd::Wait qw(wait_until);

our @EXPORT_OK = qw(start_sweeping_nginx wait_until);

sub start_sweeping_nginx {
    my (%opt) = @_;
    my $media = media_root();
    return Chatterd::Nginx::start_nginx(
        workers     => 1,
        pg          => $opt{conninfo},
        media_root  => $media,
        http_config => "chatterd_pg_timeout 1s;\nchatterd_media_sweep 2s;\n" . ($opt{http} // ''),
        config      => <<CONF,
location ~ ^/postimages/?\$ { chatterd postimages; }
location ~ ^/getimages/?\$  { chatterd getimages; }
location = /status         { chatterd_status; }
location /media/           { alias $media/; }
CONF
    );
}

1;
