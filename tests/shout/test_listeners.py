"""Live listeners on the wire: one that stops reading is dropped (and counted), never the source."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import httpx
from shout_peers import ShoutUrl, content, create_recording, push, start_shout_server, wait_state

from sounds import raw_mp3


def test_a_listener_that_stops_reading_is_dropped_and_the_source_is_unharmed(database_url: str,
                                                                             tmp_path: Path) -> None:  # fmt: skip
    srv, port = start_shout_server(database_url, tmp_path / "srv", MEDIA_MGR_SHOUT_QUEUE_BYTES="16384",
                                   MEDIA_MGR_SHOUT_BURST_BYTES="0", MEDIA_MGR_TIMEOUT_SHOUT_LISTENER="2")  # fmt: skip
    stuck = socket.socket()
    try:
        # ~8 MB pushed at once: more than the kernel's socket buffers, the transport's and the queue hold.
        sent = raw_mp3(tmp_path / "one.mp3", rate=44100, seconds=60.0, bitrate="128k") * 8
        (tmp_path / "big.mp3").write_bytes(sent)
        rec = create_recording(srv)
        url = ShoutUrl.parse(rec["shout_url"])
        source = push(url, tmp_path / "big.mp3", pace=False, extra=["--delay", "1", "--chunk", "65536"])
        assert source.stdout is not None and source.stdout.readline().strip() == b"open ok"
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stuck.connect(("127.0.0.1", port))
        stuck.sendall(f"GET {url.mount} HTTP/1.0\r\n\r\n".encode())
        assert stuck.recv(12) == b"HTTP/1.0 200"  # ...and then it reads nothing more
        out, _ = source.communicate(timeout=60)  # the source pushes its megabyte as fast as it likes
        assert source.returncode == 0, out
        done = wait_state(srv, rec["id"], ("complete", "interrupted"))
        assert done["state"] == "complete" and content(srv, rec["id"]) == sent
        metrics = httpx.get(f"{srv.url}/metrics", timeout=10).text
        dropped = re.search(r"^media_mgr_shout_listeners_dropped_total (\S+)$", metrics, re.M)
        assert dropped and float(dropped.group(1)) == 1.0
    finally:
        stuck.close()
        srv.stop()
