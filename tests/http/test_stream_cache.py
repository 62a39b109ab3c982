"""The playback cache across two instances on one database: a change made through A is never served
stale by B, which had the item in memory (Kazoo's KAZOO-3218), whatever happens to PostgreSQL.

Each test first makes B keep the item (a stream URL fetched through B twice: record, name and bytes
are then in its memory), then changes it through A, then reads through B; audio is compared by
decoding it. The PostgreSQL restart runs on a private cluster (tests/private_services.py).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from private_services import PrivatePostgres

from servers import RunningServer, start_server
from sounds import pcm, tone

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def start(dsn: str, where: Path) -> RunningServer:
    where.mkdir(parents=True, exist_ok=True)
    return start_server({"MEDIA_MGR_DATABASE_URL": dsn, "MEDIA_MGR_DATA_DIR": str(where)}, where / "log")


@pytest.fixture(scope="module")
def pair(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[RunningServer, RunningServer]]:
    base = tmp_path_factory.mktemp("pair")
    a = start(database_url, base / "a")
    b = start(database_url, base / "b")
    yield a, b
    a.stop()
    b.stop()


def upload(srv: RunningServer, path: Path, account_id: str) -> dict[str, str]:
    r = httpx.post(f"{srv.url}/v1/media", files={"file": (path.name, path.read_bytes())},
                   data={"account_id": account_id}, timeout=30)  # fmt: skip
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def issue(srv: RunningServer, media_name: str) -> httpx.Response:
    return httpx.post(f"{srv.url}/v1/stream-urls", json={"media_name": media_name}, timeout=30)


def on(srv: RunningServer, url: str) -> str:
    """The same URL, fetched through ``srv`` (any instance serves a URL another issued)."""
    return srv.url + "/" + url.split("/", 3)[3]


def fetched_audio(url: str, where: Path) -> np.ndarray:
    r = httpx.get(url, timeout=30)
    assert r.status_code == 200, r.text
    where.write_bytes(r.content)
    return pcm(where)


def kept_by(srv: RunningServer, url: str, expected: bytes) -> None:
    """Fetch twice: the second answer comes from ``srv``'s memory."""
    for _ in range(2):
        r = httpx.get(on(srv, url), timeout=30)
        assert r.status_code == 200 and r.content == expected


def test_replaced_through_a_is_never_served_old_by_b(
    pair: tuple[RunningServer, RunningServer], tmp_path: Path, account_id: str
) -> None:
    a, b = pair
    old, new = tone(tmp_path / "old.wav", freq=440), tone(tmp_path / "new.wav", freq=1000)
    item = upload(a, old, account_id)
    first = issue(b, item["media_name"]).json()["stream_url"]
    kept_by(b, first, old.read_bytes())
    r = httpx.put(f"{a.url}/v1/media/{item['id']}/content", content=new.read_bytes(), timeout=30)
    assert r.status_code == 200 and r.json()["revision"] == 2, r.text
    stale = httpx.get(on(b, first), timeout=30)
    assert stale.status_code == 410 and "replaced" in stale.json()["detail"]
    for issuer in (b, a):  # B's own name lookup, and a URL A issued for the new revision
        url = issue(issuer, item["media_name"]).json()["stream_url"]
        for _ in range(2):
            got = fetched_audio(on(b, url), tmp_path / "got.wav")
            assert np.array_equal(got, pcm(new)) and not np.array_equal(got, pcm(old))


def test_deleted_through_a_is_gone_on_both(
    pair: tuple[RunningServer, RunningServer], tmp_path: Path, account_id: str
) -> None:
    a, b = pair
    wav = tone(tmp_path / "d.wav")
    item = upload(a, wav, account_id)
    url = issue(b, item["media_name"]).json()["stream_url"]
    kept_by(b, url, wav.read_bytes())
    kept_by(a, url, wav.read_bytes())
    assert httpx.delete(f"{a.url}/v1/media/{item['id']}").status_code == 204
    for srv in (a, b):
        r = httpx.get(on(srv, url), timeout=30)
        assert r.status_code in (404, 410) and "deleted" in r.json()["detail"], r.text
        assert issue(srv, item["media_name"]).status_code == 404


def test_a_url_revoked_on_a_is_refused_by_b(
    pair: tuple[RunningServer, RunningServer], tmp_path: Path, account_id: str
) -> None:
    a, b = pair
    wav = tone(tmp_path / "r.wav")
    item = upload(a, wav, account_id)
    url, other = (issue(a, item["media_name"]).json()["stream_url"] for _ in range(2))
    kept_by(b, url, wav.read_bytes())
    r = httpx.post(f"{a.url}/v1/stream-urls/revoke", json={"stream_url": url})
    assert r.status_code == 204
    for srv in (b, a):
        refused = httpx.get(on(srv, url), timeout=30)
        assert refused.status_code == 410 and "revoked" in refused.json()["detail"]
        head = httpx.head(on(srv, url), timeout=30)
        assert head.status_code == 410
    kept_by(b, other, wav.read_bytes())  # only that URL: another for the same item still plays


def test_a_postgresql_restart_drops_what_b_kept(tmp_path: Path, account_id: str) -> None:
    old, new = tone(tmp_path / "old.wav", freq=500), tone(tmp_path / "new.wav", freq=1500)
    with PrivatePostgres() as pg:
        a, b = start(pg.dsn, tmp_path / "a"), start(pg.dsn, tmp_path / "b")
        try:
            item = upload(a, old, account_id)
            url = issue(b, item["media_name"]).json()["stream_url"]
            kept_by(b, url, old.read_bytes())
            pg.restart()
            # A change as soon as the database takes one: B hears it, or it missed it while its
            # listener was away (then it kept nothing), or it listens again later (and drops all).
            deadline = time.monotonic() + 60
            while True:
                r = httpx.put(f"{a.url}/v1/media/{item['id']}/content", content=new.read_bytes(), timeout=30)
                if r.status_code == 200 or time.monotonic() > deadline:
                    break
                assert r.status_code == 503, r.text
                time.sleep(0.05)
            assert r.status_code == 200, r.text
            stale = httpx.get(on(b, url), timeout=30)
            assert stale.status_code in (410, 503), stale.text
            fresh = issue(b, item["media_name"])
            assert fresh.status_code == 200, fresh.text
            got = fetched_audio(on(b, fresh.json()["stream_url"]), tmp_path / "got.wav")
            assert np.array_equal(got, pcm(new))
            # Once B listens again, it keeps and serves the new content from memory.
            while "listening again" not in b.log() and time.monotonic() < deadline:
                time.sleep(0.1)
            assert "listening again" in b.log()
            kept_by(b, fresh.json()["stream_url"], new.read_bytes())
        finally:
            a.stop()
            b.stop()
