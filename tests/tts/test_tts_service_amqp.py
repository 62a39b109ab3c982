"""tts:// end to end: ecallmgr's media_req on a real RabbitMQ, two real instances on one database,
the audio fetched as mod_shell_stream fetches it, decoded and checked for speech."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from speech_audio import assert_speech, measure
from test_service_amqp import amqp_server, wait_ready

from amqp_peers import Ecallmgr
from servers import RunningServer

FETCH = Path(__file__).resolve().parents[2] / "scripts" / "fetch_remote_audio.sh"
# Node names of this module's instances: other services on the same broker (other test runs) bind
# kapps/media_req too and answer as well, so replies are told apart by Node, as ecallmgr counts them.
NODES = {name: f"media_mgr@tts-{name}-{secrets.token_hex(3)}" for name in ("one", "two")}


@pytest.fixture(scope="module")
def pair(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[RunningServer]]:
    """Two instances on one database and one broker queue, as a fleet runs them."""
    data = tmp_path_factory.mktemp("tts")
    queue = f"test.media_mgr.tts.{secrets.token_hex(4)}"
    with contextlib.ExitStack() as running:
        servers = []
        for name, node in NODES.items():
            servers.append(amqp_server(database_url, data / name, queue, name, MEDIA_MGR_AMQP_NODE=node))
            running.callback(servers[-1].stop)
        for srv in servers:
            wait_ready(srv)
        yield servers


async def ask(media_name: str, **extra: object) -> tuple[dict[str, object], float]:
    async with Ecallmgr() as ecallmgr:
        started = time.perf_counter()
        await ecallmgr.send(media_name, **extra)
        while True:
            reply, _ = await ecallmgr.reply(timeout=5)
            if reply.get("Node") in NODES.values():
                return reply, time.perf_counter() - started


def fetch(url: str, rate: int = 8000) -> np.ndarray:
    """What mod_shell_stream plays: the script's raw s16le output."""
    out = subprocess.run(
        ["/bin/sh", "-c", f"{FETCH} '{url}' -r {rate} -c 1"], capture_output=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return np.frombuffer(out.stdout, dtype="<i2")


def media_id_of(url: object) -> str:
    return str(url).rsplit("/", 1)[1].split(".")[0]


def test_media_req_for_tts_text_gets_a_url_that_plays_speech(pair: list[RunningServer]) -> None:
    reply, took = asyncio.run(ask("tts://Hello from media manager"))
    assert reply["Event-Name"] == "media_resp", reply
    assert reply["Media-Name"] == "tts://Hello from media manager"
    url = str(reply["Stream-URL"])
    assert url.startswith("http://127.0.0.1:") and "/single/" in url and url.endswith(".wav")
    assert_speech(measure(fetch(url), 8000), 0.9, 3.0)
    again, took_again = asyncio.run(ask("tts://Hello from media manager"))
    assert again["Event-Name"] == "media_resp", again
    assert media_id_of(again["Stream-URL"]) == media_id_of(url)  # the same media, whichever instance answered
    print(f"\nmedia_req tts: first {took * 1000:.0f} ms, again {took_again * 1000:.0f} ms")


def test_kazoo_4_request_with_text_voice_and_a_second_language(pair: list[RunningServer]) -> None:
    """4.x ecallmgr: the name is tts://md5(Text/Voice/Language), the words travel in Text."""
    text, voice, language = "Bonjour, bienvenue chez nous. Merci de patienter.", "female", "fr"
    name = "tts://" + hashlib.md5(f"{text}/{voice}/{language}".encode()).hexdigest()
    reply, _ = asyncio.run(
        ask(name, Text=text, Voice=voice, Language=language, Engine="espeak", Format="wav")
    )
    assert reply["Event-Name"] == "media_resp", reply
    french = fetch(str(reply["Stream-URL"]), 16000)
    assert_speech(measure(french, 16000), 2.0, 8.0)
    english, _ = asyncio.run(ask(name, Text="Hello, welcome. Thank you for holding.", Voice=voice))
    assert media_id_of(english["Stream-URL"]) != media_id_of(reply["Stream-URL"])


def test_mp3_for_mod_shout_is_a_variant_of_the_same_speech(pair: list[RunningServer]) -> None:
    reply, _ = asyncio.run(ask("tts://Please hold the line", Protocol="shout", Format="mp3"))
    url = str(reply["Stream-URL"])
    assert url.startswith("shout://") and url.endswith(".mp3")
    out = subprocess.run(["mpg123", "-q", "-s", "-r", "8000", "-m", "-e", "s16", url.replace("shout://", "http://", 1)],
                         capture_output=True, timeout=60)  # fmt: skip
    assert_speech(measure(np.frombuffer(out.stdout, dtype="<i2"), 8000), 0.8, 3.5)


def test_second_request_on_the_other_instance_is_a_cache_hit(pair: list[RunningServer]) -> None:
    text = f"Order number {secrets.randbelow(10**6)} is ready"
    urls = []
    for srv in pair:  # one synthesises, then the other is asked
        r = httpx.post(f"{srv.url}/v1/stream-urls", json={"media_name": f"tts://{text}"}, timeout=10)
        assert r.status_code == 200, r.text
        urls.append(r.json()["stream_url"])
    assert media_id_of(urls[0]) == media_id_of(urls[1])
    synthesised = [line for srv in pair for line in srv.log().splitlines() if "tts synthesised" in line
                   and media_id_of(urls[0]) in line]  # fmt: skip
    assert len(synthesised) == 1 and synthesised[0] in pair[0].log()  # made by the first, found by the second


@pytest.mark.parametrize(("name", "extra", "message"), [
    ("tts://", {}, "tts text is empty"),
    ("tts://x", {"Text": "   "}, "tts text is empty"),
    ("tts://9e107d9d372bb6826bd81d3542a419d6", {}, "tts://<32 hex> is Kazoo's hash of the words: send them in Text"),
    ("tts://" + "a" * 1001, {}, "tts text is 1001 characters; at most 1000 are spoken"),
    ("tts://Hello\u0007 world", {}, "tts text contains control characters"),
    ("tts://x", {"Text": "Hello\x1b[2J"}, "tts text contains control characters"),
    ("tts://Hello", {"Voice": "robot"}, "Voice must be one of male, female, not 'robot'"),
    ("tts://Hello", {"Language": "xx"}, "tts language 'xx-xx' is not spoken by engine espeak"),
    ("tts://Hello", {"Language": "en; rm -rf /"}, "tts language 'en; rm -rf /' is not a language tag such as en-us or fr"),
    ("tts://Hello", {"Engine": "ispeech"}, "not_found"),
])  # fmt: skip
def test_bad_tts_requests_get_media_error(pair: list[RunningServer], name: str, extra: dict[str, str],
                                          message: str) -> None:  # fmt: skip
    reply, _ = asyncio.run(ask(name, **extra))
    assert reply["Event-Name"] == "media_error", reply
    assert (reply["Error-Code"], reply["Error-Msg"]) == ("other", message)


@pytest.mark.parametrize(("body", "status", "error"), [
    ({"media_name": "tts://"}, 400, "invalid_request"),
    ({"media_name": "tts://" + "a" * 1001}, 400, "invalid_request"),
    ({"media_name": "tts://x", "text": "bell\u0007"}, 400, "invalid_request"),
    ({"media_name": "tts://Hello", "voice": "robot"}, 400, "invalid_request"),
    ({"media_name": "tts://Hello", "language": "xx"}, 400, "tts_unsupported"),
    ({"media_name": "tts://Hello", "engine": "ispeech"}, 404, "not_found"),
])  # fmt: skip
def test_bad_tts_requests_on_rest_say_what_is_wrong(pair: list[RunningServer], body: dict[str, str], status: int,
                                                    error: str) -> None:  # fmt: skip
    r = httpx.post(f"{pair[0].url}/v1/stream-urls", json=body, timeout=10)
    assert (r.status_code, r.json()["error"]) == (status, error), r.text
    assert r.json()["detail"]


def test_long_text_is_answered_and_measured(pair: list[RunningServer]) -> None:
    text = ("Your call is important to us. All of our agents are busy helping other customers. " * 12)[:1000]
    reply, took = asyncio.run(ask(f"tts://{text}", Voice="female"))
    assert reply["Event-Name"] == "media_resp", reply
    assert_speech(measure(fetch(str(reply["Stream-URL"])), 8000), 40.0, 120.0)
    print(f"\nmedia_req tts, {len(text)} characters: {took * 1000:.0f} ms")
