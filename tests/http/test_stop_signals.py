"""``media-mgr serve`` ends the way it started: SIGTERM stops serving, then every component closes
(recordings flushed, events sent, the store closed) before the process exits."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from servers import media_mgr_command, start_server


def test_sigterm_closes_the_service_before_the_process_ends(database_url: str, tmp_path: Path) -> None:
    srv = start_server({"MEDIA_MGR_DATABASE_URL": database_url, "MEDIA_MGR_DATA_DIR": str(tmp_path)},
                       tmp_path / "server.log")  # fmt: skip
    assert srv.stop() == 0
    assert '"service stopped"' in srv.log()


@pytest.mark.timeout(60)
def test_sigterm_while_starting_closes_what_was_opened(database_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "MEDIA_MGR_DATABASE_URL": database_url, "MEDIA_MGR_DATA_DIR": str(tmp_path),
           "MEDIA_MGR_BIND": "127.0.0.1", "MEDIA_MGR_HTTP_PORT": "0", "MEDIA_MGR_SHOUT_PORT": "0"}  # fmt: skip
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [*media_mgr_command(), "serve"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        # The SHOUT server is up, the HTTP server not yet: the service is half open.
        while "listening shout" not in log_path.read_text(errors="replace"):
            assert proc.poll() is None, log_path.read_text(errors="replace")
            time.sleep(0.01)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log_text = log_path.read_text(errors="replace")
    assert '"service stopped"' in log_text
    assert "Traceback" not in log_text
