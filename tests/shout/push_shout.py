"""A libshout source as mod_shout configures one (reference section 3.2), run as its own process.

usage: push_shout.py HOST PORT MOUNT USER PASSWORD FILE --pace|--no-pace [--chunk N] [--delay S]
Prints "open ok" once shout_open returned, then "sent N T" lines (bytes so far, CLOCK_MONOTONIC
seconds) so a test knows what had left when; exits 1 (open) or 2 (send) with libshout's error.
"""

from __future__ import annotations

import importlib
import sys
import time
from typing import Any

shout: Any = importlib.import_module("shout")  # python-shout (libshout); no type information


def main() -> int:
    host, port, mount, user, password, path, pace = sys.argv[1:8]
    chunk = int(sys.argv[sys.argv.index("--chunk") + 1]) if "--chunk" in sys.argv else 1024
    s = shout.Shout()
    s.host, s.port, s.user, s.password, s.mount = host, int(port), user, password, mount
    s.protocol, s.format = "http", "mp3"  # mod_shout: SHOUT_PROTOCOL_HTTP, SHOUT_FORMAT_MP3; TLS auto
    s.url, s.description = "http://www.freeswitch.org", "FreeSWITCH mod_shout Broadcasting Module"
    s.audio_info = {"bitrate": "24000"}  # mod_shout hard-codes this
    try:
        s.open()
    except shout.ShoutException as exc:
        print(f"open failed: {exc}", flush=True)
        return 1
    print("open ok", flush=True)
    if "--delay" in sys.argv:  # let a test attach a listener before the audio flows
        time.sleep(float(sys.argv[sys.argv.index("--delay") + 1]))
    sent = 0
    with open(path, "rb") as f:
        while buf := f.read(chunk):
            try:
                s.send(buf)
                if pace == "--pace":
                    s.sync()  # real time, as mod_shout's write thread
            except shout.ShoutException as exc:
                print(f"send failed: {exc}", flush=True)
                return 2
            sent += len(buf)
            print(f"sent {sent} {time.monotonic():.3f}", flush=True)
    s.close()
    print(f"done {sent}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
