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
# wait_until: polls a condition every 50 ms; false after $seconds (default 15).

use strict;
use warnings;

use Exporter 'import';
use Time::HiRes ();

use Chatterd::Db qw(media_root);
use Chatterd::Nginx;

our @EXPORT_OK = qw(start_sweeping_nginx wait_until);

sub start_sweeping_nginx {
    my (%opt) = @_;
    my $media    = media_root();
    my $conninfo = $opt{conninfo} // $ENV{TEST_NGINX_PG_CONNINFO};
    my $extra    = $opt{http} // '';
    return Chatterd::Nginx->start(
        workers     => 1,
        master      => 1,
        log_level   => 'info',
        main_config => $> == 0 ? "user root root;\n" : undef,
        http_config => <<CONF,
chatterd_pg "$conninfo";
chatterd_pg_timeout 1s;
chatterd_media_root $media;
chatterd_media_sweep 2s;
$extra
CONF
        config => <<CONF,
location ~ ^/postimages/?\$ { chatterd postimages; }
location ~ ^/getimages/?\$  { chatterd getimages; }
location = /status         { chatterd_status; }
location /media/           { alias $media/; }
CONF
    );
}

sub wait_until {
    my ($cond, $seconds) = @_;
    my $deadline = Time::HiRes::time() + ($seconds // 15);
    until ($cond->()) {
        return 0 if Time::HiRes::time() > $deadline;
        Time::HiRes::sleep(0.05);
    }
    return 1;
}

1;
