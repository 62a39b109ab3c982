"""Fuzzing media_req through the real broker into a real running server (fixed seed, 600 messages):
exactly what ecallmgr sends, then mutated (bad JSON, deep JSON, wrong types, huge values, lone
surrogates and NUL, missing and extra keys, gzip bodies and bounded gzip bombs, wrong content types
and encodings). Every message that carries a Msg-ID and a Server-ID is answered exactly once; every
other one is dropped with one log line; afterwards a valid media_req still gets a media_resp whose
URL plays sample-exact, the server's open files and memory are back near where they were, and its
log holds no error and no traceback.

Requests go to the server's own queue through the default exchange, and replies come back on this
test's own Server-ID, so runs sharing the broker do not see each other's messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import os
import random
import secrets
import subprocess
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aio_pika
import httpx
import numpy as np
import pytest
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, ExchangeType

from servers import RunningServer, rss_kib, start_server
from sounds import pcm, tone

pytestmark = pytest.mark.timeout(300)

AMQP_URL = os.environ.get("MEDIA_MGR_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
FETCH = Path(__file__).resolve().parents[2] / "scripts" / "fetch_remote_audio.sh"
SEED = 20261130
CASES = 600
BATCH = 50  # under the server queue's x-max-length (100): nothing is dropped by the broker
FD_SLACK = 4
RSS_SLACK_KIB = 16 * 1024
MAX_BODY = 1024 * 1024  # wire.MAX_BODY_BYTES
KEYS = ["App-Name", "App-Version", "Call-ID", "Event-Category", "Event-Name", "Media-Name", "Msg-ID", "Node",
        "Server-ID", "Stream-Type", "System-Log-ID", "Account-ID", "Text", "Voice", "Language", "Format",
        "Protocol", "Engine"]  # fmt: skip
HOSTILE: list[object] = [
    None, True, 0, -1, 2**64, 1.5, 1e308, [], {}, ["x"], {"a": [1, {"b": None}]}, "", " ", "\ud800x",
    "a\x00b", "²", "9" * 4301, "x" * 5000, "/" + "a" * 20_000, "tts://" + "é" * 3000, "prompt://", "http://x",
]  # fmt: skip


@dataclass
class Message:
    body: bytes
    content_type: str | None
    content_encoding: str | None
    reply_to_us: str | None  # the Msg-ID our Server-ID must get back, exactly once
    dropped: bool  # nowhere to reply: one log line, no answer


class MediaReqFuzzer:
    def __init__(self, seed: int, server_id: str, account: str) -> None:
        self.rng = random.Random(seed)
        self.server_id = server_id
        self.account = account

    def ecallmgr(self) -> dict[str, Any]:
        """A media_req exactly as Erlang ecallmgr sends it (reference 1.7)."""
        call_id = f"{self.rng.getrandbits(32):08x}-51a2-4b7c-9d0e-{self.rng.getrandbits(48):012x}"
        return {"App-Name": "ecallmgr", "App-Version": "4.0.0", "Call-ID": call_id, "Event-Category": "media",
                "Event-Name": "media_req", "Media-Name": f"/{self.account}/{self.rng.getrandbits(128):032x}",
                "Msg-ID": f"{self.rng.getrandbits(64):016x}", "Node": "ecallmgr@fs1.example.com",
                "Server-ID": self.server_id, "Stream-Type": "new", "System-Log-ID": call_id}  # fmt: skip

    def cases(self, count: int) -> list[Message]:
        return [self._case() for _ in range(count)]

    def _case(self) -> Message:
        rng, body = self.rng, self.ecallmgr()
        for _ in range(rng.choice([1, 1, 1, 2, 3])):
            key = rng.choice(KEYS)
            match rng.randrange(4):
                case 0:
                    body.pop(key, None)
                case 1:
                    body[f"X-Extra-{rng.randrange(99)}"] = rng.choice(HOSTILE)
                case _:
                    body[key] = rng.choice(HOSTILE)
        if rng.random() < 0.03:
            body.update({f"k{i}": i for i in range(20_000)})  # many keys
        data, readable = json.dumps(body).encode(), True
        match rng.randrange(12):
            case 0:
                data, readable = data[: rng.randrange(len(data))], False
            case 1:
                data, readable = (
                    rng.choice([b"[" * 50_000, b'{"a":' * 30_000, rng.randbytes(200), b""]),
                    False,
                )
            case 2:
                data = data.replace(
                    b'"Msg-ID"', b'"deep": ' + b"[" * 20_000 + b"]" * 20_000 + b', "Msg-ID"', 1
                )
                readable = False  # past the recursion limit: the whole body is unreadable
            case 3:
                data, readable = b'{"pad": "' + b"x" * MAX_BODY + b'", ' + data[1:], False
        content_type: str | None = "application/json"
        encoding: str | None = None
        match rng.randrange(10):
            case 0:
                content_type = rng.choice(
                    ["text/plain", "application/erlang", None, "", "APPLICATION/JSON; x=1"]
                )
            case 1:
                encoding, data = "gzip", gzip.compress(data, mtime=0)
            case 2:  # a bomb: 5 MB of blanks in 5 KB, refused without being inflated
                encoding, readable = "gzip", False
                data = gzip.compress(b"{" + b" " * (5 * MAX_BODY) + b"}", mtime=0)
            case 3:
                encoding, readable = rng.choice(["gzip", "deflate", "br", "x"]), False
                data = rng.choice([data, gzip.compress(data, mtime=0)[:-8]]) if encoding == "gzip" else data
        msg_id, server_id = body.get("Msg-ID"), body.get("Server-ID")
        addressed = (
            isinstance(msg_id, str) and msg_id != "" and isinstance(server_id, str) and server_id != ""
        )
        routable = addressed and _routable(str(server_id))
        ours = readable and routable and server_id == self.server_id
        return Message(
            data, content_type, encoding, str(msg_id) if ours else None, not (readable and routable)
        )


def _routable(server_id: str) -> bool:
    try:
        return len(server_id.encode()) <= 255 and "\x00" not in server_id
    except UnicodeEncodeError:
        return False


@dataclass
class Requester:
    channel: AbstractChannel
    queue: str  # the server's request queue
    server_id: str
    replies: asyncio.Queue[AbstractIncomingMessage]

    async def send(self, message: Message) -> None:
        out = aio_pika.Message(message.body, content_type=message.content_type,
                               content_encoding=message.content_encoding)  # fmt: skip
        await self.channel.default_exchange.publish(out, routing_key=self.queue)

    async def backlog(self) -> int:
        declared = await self.channel.declare_queue(self.queue, passive=True)
        return declared.declaration_result.message_count or 0

    async def drain(self, want: int, timeout: float = 20.0) -> list[dict[str, Any]]:
        """Replies until ``want`` came and the server's queue is empty (or ``timeout``); then a little
        more, so a duplicate answer would show."""
        got: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and (len(got) < want or await self.backlog()):
            try:
                got.append(json.loads((await asyncio.wait_for(self.replies.get(), 0.2)).body))
            except TimeoutError:
                continue
        return got


@pytest.fixture(scope="module")
def fuzzed(
    new_database: Callable[[], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[RunningServer, str, str]]:
    """A server of its own with its own queue and node (the broker is shared with other runs)."""
    data = tmp_path_factory.mktemp("amqp-fuzz")
    run = secrets.token_hex(4)
    queue, node = f"test.fuzz.{run}.media_req", f"media_mgr@fuzz-{run}"
    srv = start_server({"MEDIA_MGR_DATABASE_URL": new_database(), "MEDIA_MGR_DATA_DIR": str(data),
                        "MEDIA_MGR_AMQP_URL": AMQP_URL, "MEDIA_MGR_AMQP_QUEUE_NAME": queue,
                        "MEDIA_MGR_AMQP_NODE": node}, data / "server.log")  # fmt: skip
    deadline = time.monotonic() + 20
    while httpx.get(f"{srv.url}/readyz").status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.1)
    yield srv, queue, node
    srv.stop()


@pytest.fixture
async def requester(fuzzed: tuple[RunningServer, str, str]) -> AsyncIterator[Requester]:
    _srv, queue, _node = fuzzed
    connection = await aio_pika.connect(AMQP_URL, timeout=5)
    async with connection:
        channel = await connection.channel()
        targeted = await channel.declare_exchange(
            "targeted", ExchangeType.DIRECT, durable=False, auto_delete=False
        )
        server_id = f"ecallmgr@fuzz-<0.{secrets.randbelow(30000)}.0>-{secrets.token_hex(4)}"
        own = await channel.declare_queue(f"test.fuzz.ecallmgr.{secrets.token_hex(4)}", exclusive=True)
        await own.bind(targeted, server_id)
        replies: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
        await own.consume(replies.put, no_ack=True)
        yield Requester(channel, queue, server_id, replies)


def srv_env(srv: RunningServer) -> dict[str, str]:
    """The server's environment, as it was started."""
    pairs = Path(f"/proc/{srv.proc.pid}/environ").read_bytes().split(b"\0")
    return dict(p.decode(errors="replace").partition("=")[::2] for p in pairs if p)


def open_fds(pid: int, database_port: int) -> int:
    """Open descriptors but the database pool's sockets: the pool grows with load up to its bound,
    which is no leak (a busy machine made the fuzz open a few more of them than a quiet one)."""
    pool = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[2].rsplit(":", 1)[1], 16) == database_port:
                pool.add(f"socket:[{fields[9]}]")
    fd_dir = Path(f"/proc/{pid}/fd")
    links = []
    for fd in os.listdir(fd_dir):
        with contextlib.suppress(FileNotFoundError):
            links.append(os.readlink(fd_dir / fd))
    return sum(link not in pool for link in links)


def log_entries(srv: RunningServer) -> list[dict[str, Any]]:
    return [json.loads(line) for line in srv.log().splitlines() if line.startswith("{")]


async def run(requester: Requester, cases: list[Message]) -> list[dict[str, Any]]:
    replies = []
    for start in range(0, len(cases), BATCH):
        batch = cases[start : start + BATCH]
        for message in batch:
            await requester.send(message)
        replies += await requester.drain(sum(m.reply_to_us is not None for m in batch))
    return replies


@pytest.mark.slow  # about 25 s with its own server
async def test_malformed_media_req_are_answered_or_dropped_once_and_the_server_goes_on(
    fuzzed: tuple[RunningServer, str, str], requester: Requester, tmp_path: Path
) -> None:
    srv, _queue, node = fuzzed
    account = secrets.token_hex(16)
    await run(requester, MediaReqFuzzer(SEED + 1, requester.server_id, account).cases(60))  # warm up
    database_port = urlsplit(srv_env(srv)["MEDIA_MGR_DATABASE_URL"]).port or 5432
    fds_before, rss_before = open_fds(srv.proc.pid, database_port), rss_kib(srv.proc.pid)
    dropped_before = sum("dropped" in str(e.get("msg")) for e in log_entries(srv))

    cases = MediaReqFuzzer(SEED, requester.server_id, account).cases(CASES)
    kinds = Counter("ours" if m.reply_to_us else "dropped" if m.dropped else "elsewhere" for m in cases)
    assert kinds["ours"] > 200 and kinds["dropped"] > 100, kinds  # every kind well covered
    replies = await run(requester, cases)

    got = Counter(str(r.get("Msg-ID")) for r in replies)
    wanted = Counter(m.reply_to_us for m in cases if m.reply_to_us is not None)
    assert got == wanted, (sorted((wanted - got).items())[:5], sorted((got - wanted).items())[:5])
    assert {r["Node"] for r in replies} == {node}
    assert {r["Event-Name"] for r in replies} <= {"media_error", "media_resp"}
    assert all(r.get("Error-Msg") for r in replies if r["Event-Name"] == "media_error")
    assert "internal_error" not in {r.get("Error-Msg") for r in replies}
    entries = log_entries(srv)
    dropped = sum("dropped" in str(e.get("msg")) for e in entries) - dropped_before
    assert dropped == kinds["dropped"]  # one line each
    # Resources right after the fuzz: the check below uploads (its first probe loads PyAV, a
    # one-time cost that is no leak of the fuzz).
    fds_after, rss_after = open_fds(srv.proc.pid, database_port), rss_kib(srv.proc.pid)

    # Still answering: a valid media_req for real media gets a URL that plays sample-exact.
    wav = tone(tmp_path / "after.wav", rate=8000, seconds=1)
    with wav.open("rb") as f:
        uploaded = httpx.post(
            f"{srv.url}/v1/media", files={"file": ("after.wav", f)}, data={"account_id": account}
        )
    assert uploaded.status_code == 201, uploaded.text
    fuzzer = MediaReqFuzzer(SEED, requester.server_id, account)
    valid = {**fuzzer.ecallmgr(), "Media-Name": uploaded.json()["media_name"]}
    await requester.send(
        Message(json.dumps(valid).encode(), "application/json", None, valid["Msg-ID"], False)
    )
    [reply] = await requester.drain(1)
    assert (reply["Event-Name"], reply["Msg-ID"], reply["Node"]) == ("media_resp", valid["Msg-ID"], node)
    out = subprocess.run(["/bin/sh", "-c", f"{FETCH} '{reply['Stream-URL']}' -r 8000 -c 1"],
                         capture_output=True, timeout=60)  # fmt: skip
    assert np.array_equal(np.frombuffer(out.stdout, dtype="<i2"), pcm(wav))

    assert srv.proc.poll() is None
    assert fds_after <= fds_before + FD_SLACK
    assert rss_after <= rss_before + RSS_SLACK_KIB
    levels = Counter(str(e.get("level")) for e in entries)
    assert levels["error"] == levels["critical"] == 0, [e for e in entries if e.get("level") == "error"][:3]
    assert "Traceback" not in srv.log() and not [e for e in entries if "exc" in e]


def test_the_fuzz_is_the_same_every_run() -> None:
    first, second = (MediaReqFuzzer(SEED, "sid", "a" * 32).cases(50) for _ in range(2))
    assert first == second
