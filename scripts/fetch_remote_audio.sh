#!/bin/sh
# Fetch a WAV or MP3 over HTTP and write it to stdout as raw signed 16-bit little-endian PCM,
# for FreeSWITCH's mod_shell_stream:
#
#   playback shell_stream:///usr/local/bin/fetch_remote_audio.sh 'http://host:24517/single/TOKEN/name.wav'
#
# mod_shell_stream runs "<that path> -r <channel rate> -c 1" through /bin/sh and plays stdout.
# Quote the URL in the dialplan: an unquoted & or ; would be taken by the shell.
#
# The download and the conversion go to temporary files first and stdout gets the PCM only when
# both succeeded: on a 404, a dropped connection or undecodable audio, stdout stays empty (silence,
# not noise), the reason goes to stderr and the exit status is non-zero. mod_shell_stream only
# starts playback once this script has exited, so buffering costs no latency.
#
# Options (any order, around the URL): -r RATE (default 8000), -c CHANNELS (default 1).
# Environment: FETCH_CONNECT_TIMEOUT (10 s), FETCH_MAX_TIME (300 s), TMPDIR.

set -eu

me=fetch_remote_audio
die() {
    printf '%s: %s\n' "$me" "$*" >&2
    exit 1
}

url=
rate=8000
channels=1
while [ $# -gt 0 ]; do
    case $1 in
    -r) [ $# -ge 2 ] || die "-r needs a value"; rate=$2; shift 2 ;;
    -c) [ $# -ge 2 ] || die "-c needs a value"; channels=$2; shift 2 ;;
    -*) printf '%s: ignoring unknown option %s\n' "$me" "$1" >&2; shift ;;
    *) [ -z "$url" ] || die "more than one URL given"; url=$1; shift ;;
    esac
done

case $url in
http://* | https://*) ;;
'') die "usage: $me URL [-r RATE] [-c CHANNELS]" ;;
*) die "not an http(s) URL: $url" ;;
esac
case $rate in '' | *[!0-9]* | 0*) die "bad rate: $rate" ;; esac
case $channels in '' | *[!0-9]* | 0*) die "bad channel count: $channels" ;; esac

body=$(mktemp "${TMPDIR:-/tmp}/$me.XXXXXX")
pcm=$(mktemp "${TMPDIR:-/tmp}/$me.XXXXXX")
trap 'rm -f "$body" "$pcm"' EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

content_type=$(
    curl -sSf -L --max-redirs 10 --proto '=http,https' --proto-redir '=http,https' \
        --connect-timeout "${FETCH_CONNECT_TIMEOUT:-10}" --max-time "${FETCH_MAX_TIME:-300}" \
        -o "$body" -w '%{content_type}' --url "$url"
) || die "could not fetch $url"

# What the bytes are: their magic first, then the Content-Type, then the URL's extension.
magic=$(dd if="$body" bs=4 count=1 2>/dev/null | od -An -tx1 | tr -d ' \n')
path=${url%%[?#]*}
case $magic in
52494646*) type=wav ;;        # "RIFF"
494433* | ff[ef]*) type=mp3 ;; # "ID3" tag or an MPEG audio frame sync
'') die "empty body from $url" ;;
*)
    case $content_type in
    audio/mpeg* | audio/mp3* | audio/x-mpeg*) type=mp3 ;;
    audio/wav* | audio/x-wav* | audio/wave* | audio/vnd.wave*) type=wav ;;
    *)
        case $path in
        *.mp3 | *.MP3) type=mp3 ;;
        *.wav | *.WAV) type=wav ;;
        *) die "cannot tell the audio type of $url (Content-Type: ${content_type:-none})" ;;
        esac
        ;;
    esac
    ;;
esac

sox -q -t "$type" "$body" -t raw -r "$rate" -c "$channels" -e signed-integer -b 16 -L "$pcm" \
    || die "could not convert $url ($type) to ${rate} Hz PCM"
[ -s "$pcm" ] || die "no audio in $url (a WAV whose data size is 0?)"
cat "$pcm"
