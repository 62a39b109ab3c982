"""schemathesis against the OpenAPI document a real running server serves (issue 11).

Every operation gets a few hundred cases (examples, coverage and fuzzing phases, schema-valid and
schema-invalid data, fixed seed) checked by every schemathesis check, with zero failures allowed.
Afterwards the server still answers, and its open files and memory are back near where they were.

Run: ``pytest tests/fuzz -m slow`` (about 2 to 3 minutes on 2 cores).
"""

from __future__ import annotations

import os
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import Case, GenerationMode
from schemathesis.checks import CheckFunction
from schemathesis.specs.openapi import checks

from servers import RunningServer, rss_kib, start_server
from sounds import tone

pytestmark = pytest.mark.slow

CASES_PER_OPERATION = int(os.environ.get("MEDIA_MGR_FUZZ_CASES", "250"))
SEEDED_CASES = CASES_PER_OPERATION // 2
SEED = 20261130
FD_TOLERANCE = 8
RSS_TOLERANCE_KIB = 48 * 1024

# Operations whose refusals of schema-valid input depend on what the schema cannot say, so the
# positive_data_acceptance check does not apply to them (every other check does):
# the body must be audio the probe accepts (415 otherwise), a Media-Name has its own grammar, and
# "exactly one of" two fields is checked by the model.
CONTENT_RULES = {
    ("POST", "/v1/media"): "uploaded bytes must be WAV or MP3 (415)",
    ("PUT", "/v1/media/{media_id}/content"): "uploaded bytes must be WAV or MP3 (415)",
    ("PUT", "/store/{token}/{name}"): "the token must be one we issued (404), the body audio (415)",
    ("POST", "/store/{token}/{name}"): "the token must be one we issued (404), the body audio (415)",
    ("POST", "/v1/stream-urls"): "a Media-Name has a grammar of its own (400 invalid_media_name)",
    ("POST", "/v1/relays"): "exactly one of mount and media_id (400)",
    ("POST", "/v1/streams/{session}/play"): "exactly one of media_id and media_name (422)",
}


CASES: Counter[str] = Counter()
SECONDS: dict[str, float] = {}
ANSWERED_2XX: Counter[str] = Counter()


def open_files(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def conform(case: Case[Any]) -> None:
    """Send the case and run every check on the answer (see ``CONTENT_RULES`` for the one exception)."""
    key = (case.operation.method.upper(), case.operation.path)
    excluded: list[CheckFunction] = [checks.positive_data_acceptance] if key in CONTENT_RULES else []
    started = time.monotonic()
    try:
        answer = case.call_and_validate(excluded_checks=excluded, timeout=30)
        ANSWERED_2XX[f"{key[0]} {key[1]}"] += 200 <= answer.status_code < 300
    finally:
        label = f"{key[0]} {key[1]}"
        CASES[label] += 1
        SECONDS[label] = SECONDS.get(label, 0.0) + time.monotonic() - started


@pytest.fixture(scope="module")
def fuzzed(
    new_database: Callable[[], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """A server of its own (its own database), so nothing else the test run does disturbs it."""
    data = tmp_path_factory.mktemp("fuzz")
    srv = start_server(
        {"MEDIA_MGR_DATABASE_URL": new_database(), "MEDIA_MGR_DATA_DIR": str(data),
         "MEDIA_MGR_LIMIT_UPLOAD_BYTES": str(1024 * 1024), "MEDIA_MGR_LOG_LEVEL": "warning"},
        data / "server.log",
    )  # fmt: skip
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def baseline(fuzzed: RunningServer) -> tuple[int, int]:
    """Open files and memory once the server has answered each kind of request (warm, before fuzzing)."""
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json", "/v1/media", "/v1/recordings"):
        httpx.get(f"{fuzzed.url}{path}", timeout=10)
    return open_files(fuzzed.proc.pid), rss_kib(fuzzed.proc.pid)


@pytest.fixture(scope="module")
def api_schema(fuzzed: RunningServer, baseline: tuple[int, int]) -> schemathesis.BaseSchema:
    config = schemathesis.Config()
    project = config.projects.default
    project.update(request_timeout=30)
    project.generation.update(
        modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
        max_examples=CASES_PER_OPERATION,
        deterministic=True,
    )
    return schemathesis.openapi.from_url(f"{fuzzed.url}/openapi.json", config=config)


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request: pytest.FixtureRequest) -> None:
    """schemathesis 4's lazy schema renames the test node through ``_nodeid``, gone in pytest 9."""
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@pytest.mark.timeout(900)  # every operation's cases run in this one test (as subtests)
@settings(max_examples=CASES_PER_OPERATION, derandomize=True, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))  # fmt: skip
def test_every_operation_conforms(case: Case[Any]) -> None:
    conform(case)


@pytest.fixture(scope="module")
def seeded_schema(
    fuzzed: RunningServer, baseline: tuple[int, int], tmp_path_factory: pytest.TempPathFactory
) -> schemathesis.BaseSchema:
    """The read operations again, their ids and token fixed to things that exist, so the cases reach
    the code behind the lookup (conversions, ranges, stream URLs) instead of a 404."""
    audio = tone(tmp_path_factory.mktemp("seed") / "seed.wav", seconds=0.5)
    item = httpx.post(f"{fuzzed.url}/v1/media", content=audio.read_bytes(), timeout=30).json()
    rec = httpx.post(f"{fuzzed.url}/v1/recordings", json={"format": "wav"}, timeout=10).json()
    subprocess.run(["curl", "-sS", "-T", str(audio), "-H", "Content-Type: audio/wav", rec["store_url"]],
                   check=True, capture_output=True, timeout=60)  # fmt: skip
    url = httpx.post(f"{fuzzed.url}/v1/stream-urls", json={"media_name": item["media_name"]}, timeout=10)
    _, token, name = urlsplit(url.json()["stream_url"]).path.strip("/").split("/")
    config = schemathesis.Config()
    project = config.projects.default
    project.update(request_timeout=30,
                   parameters={"media_id": item["id"], "recording_id": rec["id"], "token": token, "name": name})  # fmt: skip
    project.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
                              max_examples=SEEDED_CASES, deterministic=True)  # fmt: skip
    return schemathesis.openapi.from_url(f"{fuzzed.url}/openapi.json", config=config)


seeded = schemathesis.pytest.from_fixture("seeded_schema").include(method=["GET", "HEAD"], path_regex="{")


@seeded.parametrize()
@pytest.mark.timeout(600)
@settings(max_examples=SEEDED_CASES, derandomize=True, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))  # fmt: skip
def test_reads_of_things_that_exist_conform(case: Case[Any]) -> None:
    conform(case)


def test_afterwards_the_server_answers_and_gave_back_what_it_took(
    fuzzed: RunningServer, baseline: tuple[int, int], tmp_path: Path
) -> None:
    for label, count in sorted(CASES.items()):
        print(f"{count:5} cases {ANSWERED_2XX[label]:5} 2xx {SECONDS[label]:6.1f} s  {label}")
    print(f"{sum(CASES.values()):5} cases {sum(SECONDS.values()):6.1f} s  in all")
    r = httpx.get(f"{fuzzed.url}/healthz", timeout=10)
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    listing = httpx.get(f"{fuzzed.url}/v1/media", params={"limit": 1}, timeout=10)
    assert listing.status_code == 200 and "items" in listing.json()
    files, rss = baseline
    print(f"open files {files} -> {open_files(fuzzed.proc.pid)}, rss {rss} -> {rss_kib(fuzzed.proc.pid)} KiB")
    assert open_files(fuzzed.proc.pid) <= files + FD_TOLERANCE
    assert rss_kib(fuzzed.proc.pid) <= rss + RSS_TOLERANCE_KIB
    assert fuzzed.proc.poll() is None
