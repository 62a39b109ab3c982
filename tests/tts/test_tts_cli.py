"""``media-mgr url tts://...``: the CLI's Media-Name path speaks too."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from servers import media_mgr_command


def test_cli_url_for_a_tts_name(database_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "MEDIA_MGR_DATABASE_URL": database_url, "MEDIA_MGR_DATA_DIR": str(tmp_path)}
    done = subprocess.run([*media_mgr_command(), "url", "tts://Hello from the command line", "--format", "mp3"],
                          env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("http://") and done.stdout.strip().endswith(".mp3")
    bad = subprocess.run([*media_mgr_command(), "url", "tts://Hello", "--format", "wav"],
                         env={**env, "MEDIA_MGR_TTS_LANGUAGE": "xx-xx"}, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert bad.returncode != 0 and "'xx-xx' is not spoken by engine espeak" in bad.stderr
