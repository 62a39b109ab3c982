"""A recording is stored while the call goes on: a server killed mid-call loses at most a second,
and another instance closes the recording as interrupted with the audio it has."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from audio_stream_checks import LOOP_LAG_TOLERATED, assert_same_audio, issue_url, recorded_pcm, recording
from audio_stream_client import Talk, VoipbitModule

from servers import start_server

pytestmark = pytest.mark.timeout(120)


async def test_a_crash_mid_call_loses_at_most_a_second(
    new_database: Callable[[], str], tmp_path: Path
) -> None:
    env = {
        "MEDIA_MGR_DATABASE_URL": new_database(),
        "MEDIA_MGR_DATA_DIR": str(tmp_path),
        **LOOP_LAG_TOLERATED,
    }
    first = start_server(env, tmp_path / "first.log")
    try:
        url, recording_id = await issue_url(first)
        audio = (np.random.default_rng(5).standard_normal(8000 * 10) * 3000).astype(np.int16)
        module = VoipbitModule(url, {"inbound": audio}, stream_id="crash")
        await module.start()
        await module.run(Talk(3.0))
        first.stop(signal.SIGKILL)
        sent = module.expected("inbound")
    finally:
        first.stop(signal.SIGKILL)
    second = start_server(env, tmp_path / "second.log")
    try:
        rec = await recording(second, recording_id, timeout=30)
        assert rec["state"] == "interrupted" and rec["end_reason"] == "crash"
        got, rate = await recorded_pcm(second, recording_id)
        assert rate == 8000
        assert len(got) >= len(sent) - rate, f"{len(sent) - len(got)} samples lost"
        assert_same_audio(got[:, 0], sent[: len(got)], "what survived")
    finally:
        second.stop()
