"""``media-mgr serve --workers 2`` on a database of its own: both workers take connections on the one
port, an upload through one plays back through the other, a worker killed mid-recording is started
again and its recording ends ``interrupted`` with its audio, SIGTERM and SIGINT stop everything with
status 0, and a worker that cannot start or a port in use ends the supervisor in one line."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncpg
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from shout_peers import ShoutUrl, content, create_recording, kill, push, wait_state
from supervised import records, request, request_on, start_workers, worker_pids

from servers import RunningServer, media_mgr_command, run_sync, start_server
from sounds import decode, mp3, raw_mp3

BYTES_PER_SECOND = 2000  # 16 kbit/s


@pytest.fixture
def two_workers(new_database: Callable[[], str], tmp_path: Path) -> Iterator[RunningServer]:
    srv, _ = start_workers(new_database(), tmp_path / "srv")
    yield srv
    srv.stop()


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def test_both_workers_take_connections_and_play_what_the_other_stored(
    two_workers: RunningServer, tmp_path: Path
) -> None:
    srv, data = two_workers, tmp_path / "srv"
    pids = worker_pids(srv)
    assert sorted(pids) == [0, 1] and len(set(pids.values())) == 2
    assert all(parent_of(pid) == srv.proc.pid for pid in pids.values())  # the supervisor's children
    for r in records(srv):
        if "worker" in r and r["logger"] != "media_mgr.supervisor":
            assert r["pid"] == pids[r["worker"]]  # every worker line names its worker and its pid
    answered = {request(srv, "GET", "/healthz")[1] for _ in range(40)}
    assert answered == {0, 1}
    applied = [r for r in records(srv) if r["msg"] == "migration applied"]
    assert applied and all("worker" not in r for r in applied)  # by the supervisor, before any worker
    bound = json.loads((data / "serve.json").read_text())  # written once, by the supervisor
    assert (bound["pid"], bound["http_port"]) == (srv.proc.pid, srv.port)

    path = mp3(tmp_path / "up.mp3", seconds=3.0)
    with path.open("rb") as f:
        up, uploader = request(srv, "POST", "/v1/media", files={"file": ("up.mp3", f)})
    assert up.status_code == 201, up.text
    other = 1 - uploader  # the URL signed by one worker plays on the other: one secret
    name = up.json()["media_name"]
    issued = request_on(srv, uploader, "POST", "/v1/stream-urls", json={"media_name": name})
    assert issued.status_code == 200, issued.text
    played = request_on(srv, other, "GET", issued.json()["stream_url"])
    assert played.status_code == 200, played.text
    sent = decode(path.read_bytes())
    assert len(sent) > 8000 and np.array_equal(decode(played.content), sent)


def test_metrics_from_any_worker_count_every_worker_s_requests(two_workers: RunningServer) -> None:
    srv = two_workers
    answered = [request(srv, "GET", "/healthz")[1] for _ in range(30)]
    expected = {str(w): answered.count(w) for w in (0, 1)}
    assert all(expected.values())

    def healthz_counts(text: str) -> dict[str, int]:
        counts = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "media_mgr_http_requests_total" and sample.labels["route"] == "/healthz":
                    counts[sample.labels["worker"]] = int(sample.value)
        return counts

    seen_by: set[int] = set()
    for _ in range(200):  # a scrape of each worker; snapshots are at most a second old
        scrape, by = request(srv, "GET", "/metrics")
        if healthz_counts(scrape.text) == expected:
            seen_by.add(by)
            if seen_by == {0, 1}:
                return
        time.sleep(0.05)
    raise AssertionError(f"never both workers' counts {expected} from each: {healthz_counts(scrape.text)}")


def test_a_worker_killed_mid_recording_is_restarted_and_its_recording_ends_interrupted(
    two_workers: RunningServer, tmp_path: Path
) -> None:
    srv = two_workers
    sent = raw_mp3(tmp_path / "s.mp3", seconds=12.0)
    rec = create_recording(srv)
    source = push(ShoutUrl.parse(rec["shout_url"]), tmp_path / "s.mp3", pace=True)
    try:
        seen = progress(source, 4 * BYTES_PER_SECOND)
        holder = next(r["worker"] for r in records(srv) if r["msg"] == "source connected"
                      and r.get("recording_id") == rec["id"])  # fmt: skip
        victim = worker_pids(srv)[holder]
        killed_at = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        out = source.communicate(timeout=30)[0]
        assert source.returncode == 2 and b"send failed" in out  # libshout: "Socket error"
    finally:
        kill(source)
    done = wait_state(srv, rec["id"], ("complete", "interrupted"), timeout=60)
    assert (done["state"], done["end_reason"]) == ("interrupted", "crash")
    stored = content(srv, rec["id"])
    assert sent.startswith(stored)
    committed_by = max((n for n, t in seen if t <= killed_at - 1.5), default=0)
    assert len(stored) >= committed_by > 0  # at most the last second is lost, as for one process
    died = [r for r in records(srv) if r["msg"] == "worker died"]
    assert [(r["worker"], r["pid"], r["reason"]) for r in died] == [(holder, victim, "killed by SIGKILL")]
    successor = worker_pids(srv)[holder]
    assert successor != victim and parent_of(successor) == srv.proc.pid
    assert request_on(srv, holder, "GET", f"/v1/recordings/{rec['id']}").json()["state"] == "interrupted"


def listening(port: int, pid: int | None = None, state: str = "0A") -> set[int]:
    """Inodes of the sockets listening on ``port`` (only those ``pid`` holds, when given);
    ``state="01"``: the connections accepted on it instead."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == state and int(fields[1].rsplit(":", 1)[1], 16) == port:
                found.add(int(fields[9]))
    if pid is None:
        return found
    held = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                held.add(int(target[8:-1]))
    return found & held


def test_each_worker_listens_on_the_http_port_through_a_socket_of_its_own(two_workers: RunningServer) -> None:
    srv = two_workers
    pids = worker_pids(srv)
    own = {worker: listening(srv.port, pid) for worker, pid in pids.items()}
    assert all(len(inodes) == 1 for inodes in own.values()) and own[0] != own[1], own
    assert listening(srv.port) == own[0] | own[1]  # the supervisor holds the port, listens on none
    os.kill(pids[0], signal.SIGKILL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        successor = worker_pids(srv)[0]
        if successor != pids[0] and listening(srv.port, successor):
            break
        time.sleep(0.05)
    successor_own = listening(srv.port, successor)
    assert successor_own and successor_own.isdisjoint(own[0])
    assert listening(srv.port) == own[1] | successor_own  # the dead worker's queue went with it
    assert {request(srv, "GET", "/healthz")[1] for _ in range(40)} == {0, 1}


def test_each_worker_listens_on_the_audio_stream_port_through_a_socket_of_its_own(
    two_workers: RunningServer,
) -> None:
    """Modules connecting together are spread by the kernel over both workers' queues (one shared
    socket gave the worker awake first most of them: 140 to 143 of 200 sessions)."""
    srv = two_workers
    assert srv.ws_port != srv.port  # the audio_stream listener is on
    pids = worker_pids(srv)
    own = {worker: listening(srv.ws_port, pid) for worker, pid in pids.items()}
    assert all(len(inodes) == 1 for inodes in own.values()) and own[0] != own[1], own
    assert listening(srv.ws_port) == own[0] | own[1]  # the supervisor holds the port, listens on none
    modules = [socket.create_connection(("127.0.0.1", srv.ws_port)) for _ in range(40)]
    try:
        deadline = time.monotonic() + 30
        while True:
            taken = {worker: len(listening(srv.ws_port, pid, state="01")) for worker, pid in pids.items()}
            if sum(taken.values()) == len(modules) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert sum(taken.values()) == len(modules) and min(taken.values()) > 0, taken
    finally:
        for module in modules:
            module.close()


def progress(proc: subprocess.Popen[bytes], until_bytes: int) -> list[tuple[int, float]]:
    """Read the pusher's "sent N T" lines until N reaches ``until_bytes``."""
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == b"open ok"
    seen: list[tuple[int, float]] = []
    while True:
        line = proc.stdout.readline().split()
        assert line and line[0] == b"sent", line
        seen.append((int(line[1]), float(line[2])))
        if seen[-1][0] >= until_bytes:
            return seen


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_sigint_stop_every_worker_with_status_0(
    two_workers: RunningServer, sig: signal.Signals
) -> None:
    srv = two_workers
    pids = worker_pids(srv).values()
    assert srv.stop(sig) == 0
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # reaped by the supervisor, not left behind
    stopped = [int(r["worker"]) for r in records(srv) if r["msg"] == "service stopped"]
    assert sorted(stopped) == [0, 1]  # each worker closed its components
    assert any(r["msg"] == "all workers stopped" for r in records(srv))
    log = srv.log()
    assert "Aborted!" not in log and "Traceback" not in log
    assert all(line.startswith("{") for line in log.splitlines())


def test_ctrl_c_with_one_worker_is_status_0_without_aborted(database_url: str, tmp_path: Path) -> None:
    """``--workers 1`` is the single process of before: no supervisor, no worker fields."""
    srv, _ = start_workers(database_url, tmp_path / "one", workers=1)
    assert srv.stop(signal.SIGINT) == 0
    log = srv.log()
    assert "Aborted!" not in log and '"service stopped"' in log and "media_mgr.supervisor" not in log
    assert not any(r.get("worker") is not None for r in records(srv))  # no worker index anywhere


def serve_once(env: dict[str, str], timeout: float = 90) -> subprocess.CompletedProcess[str]:
    full = {**{k: v for k, v in os.environ.items() if not k.startswith("MEDIA_MGR_")}, **env}
    return subprocess.run([*media_mgr_command(), "serve", "--workers", "2"], env=full, capture_output=True,
                          text=True, timeout=timeout)  # fmt: skip


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if not line.startswith("{")]
    assert len(errors) == 1 and "Traceback" not in done.stderr, done.stderr
    return errors[0]


def test_a_port_in_use_is_one_line_without_a_hang(new_database: Callable[[], str], tmp_path: Path) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        done = serve_once({"MEDIA_MGR_DATABASE_URL": new_database(), "MEDIA_MGR_DATA_DIR": str(tmp_path),
                           "MEDIA_MGR_HTTP_PORT": "0", "MEDIA_MGR_SHOUT_PORT": str(port)})  # fmt: skip
    assert f"127.0.0.1:{port} (set by MEDIA_MGR_SHOUT_PORT)" in one_error_line(done)
    assert "worker started" not in done.stderr


def test_workers_the_database_refuses_end_the_supervisor_in_one_line(
    pg_admin_dsn: str, tmp_path: Path
) -> None:
    """Two workers of two connections each on a role PostgreSQL allows two: one cannot start, again
    and again; the supervisor gives up naming the database's refusal."""
    role = f"mmtest_workers_{os.getpid()}"

    async def sql(*statements: str) -> None:
        conn = await asyncpg.connect(pg_admin_dsn)
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    run_sync(
        sql(f'CREATE ROLE "{role}" LOGIN CONNECTION LIMIT 2', f'CREATE DATABASE "{role}" OWNER "{role}"')
    )
    try:
        base = pg_admin_dsn.split("?")[0].rsplit("/", 1)[0].replace("//postgres@", f"//{role}@")
        done = serve_once({"MEDIA_MGR_DATABASE_URL": f"{base}/{role}", "MEDIA_MGR_DATA_DIR": str(tmp_path),
                           "MEDIA_MGR_HTTP_PORT": "0", "MEDIA_MGR_SHOUT_PORT": "0",
                           "MEDIA_MGR_STORE_POOL_MIN": "2", "MEDIA_MGR_STORE_POOL_MAX": "2"})  # fmt: skip
    finally:
        run_sync(sql(f'DROP DATABASE IF EXISTS "{role}" WITH (FORCE)', f'DROP ROLE IF EXISTS "{role}"'))
    line = one_error_line(done)
    assert "died 3 times" in line and "too many connections" in line, line
    assert "worker restarted" in done.stderr


AS_NOBODY = (
    ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"] if os.geteuid() == 0 else []
)


@pytest.fixture
def embedded_data_dir() -> Iterator[Path]:
    """A data dir the server's user owns (nobody when the tests run as root: the embedded PostgreSQL
    refuses root), removed after."""
    top = Path(tempfile.mkdtemp(prefix="mm-workers-"))
    top.chmod(0o755)
    data = top / "data"
    data.mkdir()
    if AS_NOBODY:
        nobody = pwd.getpwnam("nobody")
        os.chown(data, nobody.pw_uid, nobody.pw_gid)
    yield data
    shutil.rmtree(top, ignore_errors=True)


def nobody_can_start_this_python() -> bool:
    """The supervisor starts its workers with ``sys.executable``; as ``nobody`` that path must be
    reachable (a venv whose interpreter lives under a 0700 /root is not)."""
    probe = "import subprocess, sys; subprocess.run([sys.executable, '-c', ''], check=True)"
    done = subprocess.run([*AS_NOBODY, sys.executable, "-c", probe], capture_output=True, cwd="/")
    return done.returncode == 0


@pytest.mark.slow
def test_two_workers_share_the_embedded_database_the_supervisor_starts(
    embedded_data_dir: Path, tmp_path: Path
) -> None:
    if AS_NOBODY and not nobody_can_start_this_python():
        pytest.skip(f"nobody cannot execute {sys.executable} (its interpreter is out of nobody's reach)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIA_MGR_") and k != "XDG_RUNTIME_DIR"}
    env |= {"MEDIA_MGR_DATA_DIR": str(embedded_data_dir), "MEDIA_MGR_WORKERS": "2"}
    srv = start_server(env, tmp_path / "server.log", timeout=120, prefix=AS_NOBODY)
    try:
        path = mp3(tmp_path / "e.mp3", seconds=2.0)
        with path.open("rb") as f:
            up, uploader = request(srv, "POST", "/v1/media", files={"file": ("e.mp3", f)})
        assert up.status_code == 201, up.text
        got = request_on(srv, 1 - uploader, "GET", f"/v1/media/{up.json()['id']}")
        assert got.json()["sha256"] == up.json()["sha256"]
        applied = [r for r in records(srv) if r["msg"] == "migration applied"]
        assert applied and all("worker" not in r for r in applied)  # by the supervisor, once
    finally:
        assert srv.stop(signal.SIGINT) == 0
    assert not (embedded_data_dir / "pg" / "postmaster.pid").exists()  # stopped with the supervisor
    assert all(line.startswith("{") for line in srv.log().splitlines())


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"


def wait_gone(pids: list[int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not all(gone(pid) for pid in pids):
        assert time.monotonic() < deadline, f"workers {pids} outlived their supervisor"
        time.sleep(0.1)


def test_workers_of_a_killed_supervisor_stop_by_themselves(
    new_database: Callable[[], str], tmp_path: Path
) -> None:
    """SIGKILL leaves the supervisor no word to say: each worker sees its channel close and stops
    cleanly (its components closed), so no orphan keeps the ports or a recording."""
    srv, _ = start_workers(new_database(), tmp_path / "srv")
    pids = list(worker_pids(srv).values())
    srv.proc.kill()
    srv.proc.wait()
    wait_gone(pids, 60)
    stopped = [int(r["worker"]) for r in records(srv) if r["msg"] == "service stopped"]
    assert sorted(stopped) == [0, 1]
    assert len([r for r in records(srv) if r["msg"] == "supervisor gone: stopping"]) == 2


def test_an_orphan_whose_clean_stop_hangs_exits_after_the_grace(
    new_database: Callable[[], str], tmp_path: Path
) -> None:
    """The clean stop needs the database (the instance's row is marked stopped); with that table
    locked it cannot finish, and the worker exits anyway once ``MEDIA_MGR_TIMEOUT_WORKER_STOP`` has
    passed, while the lock is still held."""
    dsn = new_database()
    srv, _ = start_workers(dsn, tmp_path / "srv", MEDIA_MGR_TIMEOUT_WORKER_STOP="2")
    pids = list(worker_pids(srv).values())

    async def hold_then_kill() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            async with conn.transaction():
                await conn.execute("LOCK TABLE instances IN ACCESS EXCLUSIVE MODE")
                srv.proc.kill()
                srv.proc.wait()
                await asyncio.to_thread(wait_gone, pids, 30)
        finally:
            await conn.close()

    run_sync(hold_then_kill())
    forced = [r for r in records(srv) if r["msg"] == "supervisor gone, clean stop past its grace: exiting"]
    assert len(forced) == 2, srv.log()[-3000:]
