"""The whole service on a real RabbitMQ: ecallmgr asks, media-mgr answers, FreeSWITCH's clients play."""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from amqp_peers import AMQP_URL, Ecallmgr, closed_port
from servers import RunningServer, start_server
from sounds import mp3, pcm, tone

FETCH = Path(__file__).resolve().parents[2] / "scripts" / "fetch_remote_audio.sh"
ENVELOPE = {"App-Name": "media_srv", "App-Version": "4.0.0", "Event-Category": "media"}


@pytest.fixture(scope="module")
def queue_name() -> str:
    return f"test.media_mgr.{secrets.token_hex(4)}"


def amqp_server(database_url: str, data: Path, queue: str, name: str, **env: str) -> RunningServer:
    return start_server({"MEDIA_MGR_DATABASE_URL": database_url, "MEDIA_MGR_DATA_DIR": str(data),
                         "MEDIA_MGR_AMQP_URL": AMQP_URL, "MEDIA_MGR_AMQP_QUEUE_NAME": queue,
                         "MEDIA_MGR_AMQP_NODE": f"media_mgr@{name}", **env}, data.parent / f"{name}.log")  # fmt: skip


def wait_ready(srv: RunningServer, timeout: float = 20) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if httpx.get(f"{srv.url}/readyz").status_code == 200:
            return
        time.sleep(0.1)
    raise AssertionError(f"not ready: {httpx.get(f'{srv.url}/readyz').text}")


@pytest.fixture(scope="module")
def pair(
    database_url: str, tmp_path_factory: pytest.TempPathFactory, queue_name: str
) -> Iterator[list[RunningServer]]:
    """Two instances on one database and one broker queue (competing consumers)."""
    data = tmp_path_factory.mktemp("amqp")
    servers = [amqp_server(database_url, data / n, queue_name, n) for n in ("one", "two")]
    try:
        for srv in servers:
            wait_ready(srv)
        yield servers
    finally:
        for srv in servers:
            srv.stop()


def upload(srv: RunningServer, path: Path, **fields: str) -> dict[str, str]:
    with path.open("rb") as f:
        r = httpx.post(f"{srv.url}/v1/media", files={"file": (path.name, f)}, data=fields, timeout=30)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


PAIR_NODES = ("media_mgr@one", "media_mgr@two")


async def ask(media_name: str, **extra: object) -> tuple[dict[str, object], dict[str, object]]:
    """A request through ``kapps``, as ecallmgr sends it, and the pair's reply. Another service bound
    to the shared broker's ``kapps`` (a bench or another suite running beside this one) answers it
    too: those replies are not the pair's and are passed over."""
    async with Ecallmgr() as ecallmgr:
        request = await ecallmgr.send(media_name, **extra)
        while True:
            reply, message = await ecallmgr.reply(timeout=5)
            if reply.get("Node") in PAIR_NODES:
                break
        assert message.content_type == "application/json"
        assert message.content_encoding in (None, "")
        return request, reply


def test_media_req_gets_a_url_that_plays_sample_exact(pair: list[RunningServer], audio_dir: Path,
                                                      account_id: str) -> None:  # fmt: skip
    wav = tone(audio_dir / "greeting.wav", rate=8000, seconds=2)
    item = upload(pair[0], wav, account_id=account_id)
    request, reply = asyncio.run(ask(item["media_name"]))
    url = reply.pop("Stream-URL")
    node = reply.pop("Node")
    assert node in ("media_mgr@one", "media_mgr@two")
    assert reply == {**ENVELOPE, "Event-Name": "media_resp", "Media-Name": request["Media-Name"],
                     "Msg-ID": request["Msg-ID"]}  # fmt: skip
    assert isinstance(url, str) and url.startswith("http://127.0.0.1:") and "/single/" in url
    out = subprocess.run(["/bin/sh", "-c", f"{FETCH} '{url}' -r 8000 -c 1"], capture_output=True, timeout=60)
    assert np.array_equal(np.frombuffer(out.stdout, dtype="<i2"), pcm(wav))


def test_shout_protocol_gets_an_mp3_url_mpg123_plays(pair: list[RunningServer], audio_dir: Path) -> None:
    song = mp3(audio_dir / "moh.mp3", rate=8000, seconds=2)
    item = upload(pair[1], song)
    _, reply = asyncio.run(ask(item["media_name"], **{"Protocol": "shout", "Stream-Type": "extant"}))
    url = str(reply["Stream-URL"])
    assert url.startswith("shout://") and "/continuous/" in url and url.endswith(".mp3")
    out = subprocess.run(["mpg123", "-q", "-s", "-r", "8000", "-e", "s16", url.replace("shout://", "http://", 1)],
                         capture_output=True, timeout=60)  # fmt: skip
    local = subprocess.run(["mpg123", "-q", "-s", "-r", "8000", "-e", "s16", str(song)], capture_output=True)
    assert out.stdout == local.stdout


def test_prompt_name_resolves_with_language_fallback(pair: list[RunningServer], audio_dir: Path) -> None:
    pid = f"vm-{secrets.token_hex(3)}"
    item = upload(pair[0], tone(audio_dir / "p.wav", seconds=0.5), prompt_id=pid, language="fr")
    _, reply = asyncio.run(ask(f"prompt://system_media/{pid}/fr-ca"))
    assert reply["Event-Name"] == "media_resp"
    assert httpx.head(str(reply["Stream-URL"])).headers["etag"].startswith(f'"{item["id"]}-')


@pytest.mark.parametrize(("media_name", "extra", "message"), [
    ("/0123456789abcdef0123456789abcdef/0123456789abcdef0123456789abcdef", {}, "not_found"),
    ("prompt://system_media/no-such-prompt/en-us", {}, "not_found"),
    ("prompt://", {}, "invalid_media_name"),
    ("tts://9e107d9d372bb6826bd81d3542a419d6", {"Text": "Hello", "Engine": "ispeech"}, "not_found"),
])  # fmt: skip
def test_errors_are_media_error_as_kazoo_4_sends_them(pair: list[RunningServer], media_name: str,
                                                      extra: dict[str, str], message: str) -> None:  # fmt: skip
    request, reply = asyncio.run(ask(media_name, **extra))
    reply.pop("Node")
    assert reply == {**ENVELOPE, "Event-Name": "media_error", "Media-Name": media_name, "Msg-ID": request["Msg-ID"],
                     "Error-Code": "other", "Error-Msg": message}  # fmt: skip


def test_two_instances_answer_each_request_once(
    pair: list[RunningServer], audio_dir: Path, queue_name: str
) -> None:
    item = upload(pair[0], tone(audio_dir / "x.wav", seconds=0.5))

    async def burst() -> list[dict[str, object]]:
        # Straight to the pair's shared queue: through ``kapps`` any other server on the machine's broker
        # (another suite running beside this one) would answer too.
        async with Ecallmgr(exchange="", routing_key=queue_name) as ecallmgr:
            sent = [await ecallmgr.send(item["media_name"]) for _ in range(20)]
            replies = await ecallmgr.replies_for(4.0)
        assert sorted(r["Msg-ID"] for r in replies) == sorted(s["Msg-ID"] for s in sent)
        return replies

    replies = asyncio.run(burst())
    assert {r["Node"] for r in replies} == {"media_mgr@one", "media_mgr@two"}  # both took work
    for reply in replies[:3]:  # a URL issued by either instance plays on the other
        url = str(reply["Stream-URL"])
        for srv in pair:
            other = url.replace(url.split("/")[2], f"127.0.0.1:{srv.port}")
            assert httpx.get(other).status_code == 200


def test_http_serves_while_the_broker_is_away_and_readyz_says_so(database_url: str, tmp_path: Path) -> None:
    port = closed_port()
    srv = start_server({"MEDIA_MGR_DATABASE_URL": database_url, "MEDIA_MGR_DATA_DIR": str(tmp_path),
                        "MEDIA_MGR_AMQP_URL": f"amqp://guest:guest@127.0.0.1:{port}/"}, tmp_path / "log")  # fmt: skip
    try:
        assert httpx.get(f"{srv.url}/v1/media").status_code == 200
        ready = httpx.get(f"{srv.url}/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"] == {"database": True, "broker": False}
    finally:
        srv.stop()


@pytest.mark.slow
def test_the_service_answers_again_after_a_broker_restart(
    database_url: str, tmp_path: Path, audio_dir: Path, queue_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A private RabbitMQ node (tests/private_services.py) is restarted, never the machine's."""
    from private_services import PrivateRabbit

    import amqp_peers

    with PrivateRabbit() as broker:
        monkeypatch.setattr(amqp_peers, "AMQP_URL", broker.url)  # Ecallmgr talks to the private node
        srv = amqp_server(database_url, tmp_path / "one", queue_name, "one", MEDIA_MGR_AMQP_URL=broker.url)
        try:
            wait_ready(srv)
            item = upload(srv, tone(audio_dir / "r.wav", seconds=0.5))
            assert asyncio.run(ask(item["media_name"]))[1]["Event-Name"] == "media_resp"
            broker.stop_app()
            try:
                time.sleep(1)
            finally:
                broker.start_app()
            wait_ready(srv, timeout=30)
            _, reply = asyncio.run(ask(item["media_name"]))
            assert reply["Event-Name"] == "media_resp"
        finally:
            srv.stop()
