"""Media and recordings share one id space: a caller-chosen id that already names anything (another
account's media, a system prompt, a recording) is refused with 409, and no write under one account
changes another account's or the system's media (issue 11, item 5). Through the real server."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import asyncpg
import httpx

from servers import RunningServer
from sounds import mp3, tone

PUSH = Path(__file__).resolve().parent.parent / "shout" / "push_shout.py"  # libshout, as mod_shout


def upload(srv: RunningServer, path: Path, **fields: str) -> dict[str, Any]:
    with path.open("rb") as f:
        r = httpx.post(f"{srv.url}/v1/media", files={"file": (path.name, f)}, data=fields, timeout=30)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def media(srv: RunningServer, media_id: str) -> dict[str, Any]:
    r = httpx.get(f"{srv.url}/v1/media/{media_id}", timeout=10)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def test_a_recording_may_not_take_another_accounts_media_id(
    server: RunningServer, audio_dir: Path, account_id: str
) -> None:
    other = secrets.token_hex(16)
    theirs = upload(server, tone(audio_dir / "b.wav", seconds=0.3), account_id=other)
    r = httpx.post(f"{server.url}/v1/recordings", json={"id": theirs["id"], "account_id": account_id})
    assert r.status_code == 409, r.text
    assert r.json()["error"] == "conflict"
    assert media(server, theirs["id"]) == theirs


def test_a_recording_may_not_take_a_system_prompts_id(server: RunningServer, audio_dir: Path) -> None:
    prompt = upload(server, tone(audio_dir / "p.wav", seconds=0.3), prompt_id=f"own-{secrets.token_hex(4)}")
    assert prompt["account_id"] is None
    for body in ({"id": prompt["id"]}, {"id": prompt["id"], "account_id": secrets.token_hex(16)}):
        r = httpx.post(f"{server.url}/v1/recordings", json=body)
        assert r.status_code == 409, r.text
    assert media(server, prompt["id"]) == prompt


def test_media_may_not_take_a_recordings_id(server: RunningServer, audio_dir: Path, account_id: str) -> None:
    """Else the recording's close would land on that media (same id)."""
    rec = httpx.post(f"{server.url}/v1/recordings", json={"account_id": account_id}).json()
    with (audio_dir / "x.wav").open("wb") as f:
        f.write(tone(audio_dir / "y.wav", seconds=0.3).read_bytes())
    with (audio_dir / "x.wav").open("rb") as f:
        r = httpx.post(f"{server.url}/v1/media", files={"file": ("x.wav", f)},
                       data={"id": rec["id"], "account_id": secrets.token_hex(16)}, timeout=30)  # fmt: skip
    assert r.status_code == 409, r.text
    assert httpx.get(f"{server.url}/v1/media/{rec['id']}").status_code == 404
    again = httpx.post(f"{server.url}/v1/recordings", json={"id": rec["id"], "account_id": account_id})
    assert again.status_code == 409


async def shared_id(srv: RunningServer, db: asyncpg.Connection, audio_dir: Path, account_id: str
                    ) -> tuple[dict[str, Any], dict[str, Any]]:  # fmt: skip
    """A recording of ``account_id`` and another account's media with the same id, as the old server
    let them be made (the media is moved onto the recording's id, the database allows it)."""
    rec = httpx.post(f"{srv.url}/v1/recordings", json={"account_id": account_id}, timeout=10).json()
    theirs = upload(srv, tone(audio_dir / "b.wav", seconds=0.3), account_id=secrets.token_hex(16))
    await db.execute("UPDATE media SET id = $1 WHERE id = $2", rec["id"], theirs["id"])
    return rec, media(srv, rec["id"])


async def test_a_store_put_never_rewrites_media_it_did_not_make(
    server: RunningServer, db: asyncpg.Connection, audio_dir: Path, account_id: str
) -> None:
    """Storing the recording's file keeps the recording; the other account's media stays as it was."""
    rec, theirs = await shared_id(server, db, audio_dir, account_id)
    call = mp3(audio_dir / "call.mp3", seconds=1.0)
    done = subprocess.run(["curl", "-sS", "-T", str(call), "-H", "Content-Type: audio/mpeg", rec["store_url"]],
                          capture_output=True, timeout=60, check=True)  # fmt: skip
    assert json.loads(done.stdout)["state"] == "complete"
    assert media(server, rec["id"]) == theirs
    got = httpx.get(f"{server.url}/v1/recordings/{rec['id']}/content", timeout=30)
    assert got.content == call.read_bytes()


async def test_a_shout_recording_never_rewrites_media_it_did_not_make(
    server: RunningServer, db: asyncpg.Connection, audio_dir: Path, account_id: str
) -> None:
    """The same for a recording that mod_shout (libshout) pushes and the server finalizes."""
    rec, theirs = await shared_id(server, db, audio_dir, account_id)
    call = mp3(audio_dir / "call.mp3", rate=8000, seconds=1.0)
    url = urlsplit(rec["shout_url"].replace("shout://", "http://"))
    args = [sys.executable, str(PUSH), "127.0.0.1", str(url.port), url.path, unquote(url.username or ""),
            unquote(url.password or ""), str(call), "--no-pace"]  # fmt: skip
    pushed = subprocess.run(args, capture_output=True, timeout=60)
    assert pushed.returncode == 0, pushed.stdout
    deadline = time.monotonic() + 30
    while (state := httpx.get(f"{server.url}/v1/recordings/{rec['id']}").json()["state"]) in (
        "pending",
        "recording",
    ):
        assert time.monotonic() < deadline, state
        time.sleep(0.1)
    assert state == "complete"
    assert media(server, rec["id"]) == theirs
