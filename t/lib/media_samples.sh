#!/bin/bash
# t/media_metadata.t's samples, made at test time into OUTDIR: tiny images and clips, tagged with
# exiftool the way phones tag them. Needs imagemagick (its HEIC/AVIF/WebP delegates come with it),
# ffmpeg (libx264) and libimage-exiftool-perl: scripts/deps.sh installs them.
#   t/lib/media_samples.sh OUTDIR
set -euo pipefail
[ $# = 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
mkdir -p "$1"
cd "$1"
phone=(-GPSLatitude=48.8566 -GPSLatitudeRef=N -GPSLongitude=2.3522 -GPSLongitudeRef=E
       -GPSAltitude=35 -Make=Apple -Model=iPhone-15 -SerialNumber=F17XJ3ABC123
       -LensSerialNumber=LS998 -Software=17.1 "-DateTimeOriginal=2024:05:01 10:00:00")
tag() { exiftool -q -q -overwrite_original "$@"; }   # -q -q: not its minor warnings
convert -size 96x64 gradient:red-blue -quality 90 photo.jpg
tag "${phone[@]}" -Orientation#=6 -XMP:GPSLatitude=48.8566 -XMP:GPSLongitude=2.3522 \
    -IPTC:City=Paris "-Comment=1 Main Street" photo.jpg
convert -size 96x64 gradient:red-blue -quality 90 clean.jpg   # nothing to strip
convert -size 96x64 gradient:green-yellow photo.png
tag "${phone[@]}" "-PNG:Comment=1 Main Street, Paris" -XMP:City=Paris photo.png
convert -size 96x64 gradient:red-blue -quality 80 photo.webp
tag "${phone[@]}" -XMP:City=Paris photo.webp
convert -size 96x64 gradient:red-blue photo.heic
tag "${phone[@]}" -XMP:City=Paris photo.heic
convert -size 96x64 gradient:red-blue photo.avif
tag "${phone[@]}" photo.avif
convert -size 32x32 gradient:red-blue photo.gif
tag "-Comment=1 Main Street" -XMP:City=Paris -XMP:GPSLatitude=48.8566 photo.gif
clip() { ffmpeg -v error -y -f lavfi -i testsrc=size=64x48:rate=10 -t 1 -c:v libx264 -pix_fmt yuv420p "$@"; }
clip -movflags +faststart clip.mp4   # moov before mdat (Android)
tag "-UserData:GPSCoordinates=48.8566 N, 2.3522 E" -UserData:Make=samsung -UserData:Model=SM-S918B \
    -XMP:City=Paris -XMP-exif:GPSLatitude=48.8566 clip.mp4   # XMP in a top-level uuid box
clip clip.mov                        # moov after mdat (iPhone)
tag "-Keys:GPSCoordinates=48.8566 N, 2.3522 E" -Keys:Make=Apple "-Keys:Model=iPhone 15" \
    -Keys:Software=17.1 "-Keys:CreationDate=2024:05:01 10:00:00+02:00" clip.mov
