"""Shared fixtures: a real PostgreSQL database per test run, real servers, real audio."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import asyncpg
import pytest

from servers import RunningServer, run_sync, start_server

T = TypeVar("T")

# The fast tier (`scripts/test -m "not slow"`) leaves out tests whose call took 1 s or more in a
# measured run (`pytest --durations=0`, the whole suite on 2 shared cores). Tests in these files are
# marked here, so the files need no edit; the others carry `@pytest.mark.slow` themselves.
SLOW_ELSEWHERE = {
    "tests/amqp/test_consumer.py": (
        "test_a_request_unanswered_by_a_stopping_instance_goes_to_another",
        "test_bad_deliveries_are_dropped_and_the_next_request_is_answered",
        "test_broadcast_layout_every_instance_answers",
        "test_shared_queue_two_consumers_answer_each_request_once",
        "test_start_with_the_broker_down_returns_at_once_and_connects_later",
    ),
    "tests/amqp/test_service_amqp.py": (
        "test_http_serves_while_the_broker_is_away_and_readyz_says_so",
        "test_media_req_gets_a_url_that_plays_sample_exact",
        "test_shout_protocol_gets_an_mp3_url_mpg123_plays",
        "test_two_instances_answer_each_request_once",
    ),
    "tests/audio_stream/test_adaptive_lead.py": (
        "test_adaptive_barge_in_is_quicker_than_a_large_fixed_lead",
        "test_adaptive_has_fewer_underruns_than_a_too_small_fixed_lead",
    ),
    "tests/audio_stream/test_binary_playback.py": (
        "test_a_prompt_goes_out_as_the_module_json_and_clear_as_kill_audio",
    ),
    "tests/audio_stream/test_binary_recording.py": (
        "test_no_rate_anywhere_falls_back_to_8_khz",
        "test_rate_from_metadata_that_comes_after_the_audio",
        "test_stereo_keeps_the_caller_left_and_frames_before_the_metadata",
    ),
    "tests/audio_stream/test_stream_bad_input.py": (
        "test_text_that_is_no_event_is_logged_and_the_stream_goes_on",
    ),
    "tests/audio_stream/test_stream_crash.py": ("test_a_crash_mid_call_loses_at_most_a_second",),
    "tests/audio_stream/test_stream_events.py": ("test_stream_events_are_published",),
    "tests/audio_stream/test_stream_playback.py": (
        "test_a_prompt_arrives_paced_and_is_heard_whole",
        "test_checkpoints_are_acknowledged_in_order",
        "test_clear_empties_the_queue_and_cancels_its_checkpoints",
    ),
    "tests/audio_stream/test_voipbit_recording.py": (
        "test_a_reconnect_without_start_is_recorded_from_its_payloads",
        "test_both_tracks_are_stored_as_stereo_inbound_left",
        "test_every_rate_the_module_offers",
        "test_recording_is_the_audio_sent_placed_on_the_media_clock",
    ),
    "tests/http/test_admin_media.py": ("test_oversized_upload_is_413_declared_or_streamed",),
    "tests/http/test_memory.py": ("test_large_upload_and_download_stay_in_bounded_memory",),
    "tests/http/test_playback.py": (
        "test_an_expired_url_is_410",
        "test_icy_metadata_only_when_asked_and_correctly_placed",
        "test_mp3_stored_media_asked_as_wav_at_16k",
        "test_mpg123_and_ffmpeg_decode_the_mp3_url",
        "test_prompt_language_fallback_and_account_override",
        "test_shell_stream_resamples_to_the_channel_rate",
        "test_wav_headers_ranges_etag_and_head",
        "test_wav_stored_media_asked_as_mp3_is_encoded_once_and_cached",
    ),
    "tests/recording/test_ingest.py": ("test_audio_reaches_the_database_within_a_second_without_finishing",),
    "tests/recording/test_record_url_cli.py": ("test_record_url_issues_a_shout_url_any_instance_accepts",),
    "tests/recording/test_store_put.py": ("test_an_oversized_put_gets_413_and_stores_nothing",),
    "tests/shout/test_events.py": ("test_recording_complete_is_published_with_the_recording",),
    "tests/shout/test_faults.py": (
        "test_a_killed_source_leaves_a_complete_recording_of_what_arrived",
        "test_a_recording_url_issued_by_one_instance_is_accepted_by_another",
        "test_server_sigkilled_mid_stream_then_restarted_finds_it_interrupted_with_its_audio",
    ),
    "tests/shout/test_listeners.py": (
        "test_a_listener_that_stops_reading_is_dropped_and_the_source_is_unharmed",
    ),
    "tests/shout/test_protocol.py": (
        "test_a_silent_source_is_ended_after_the_source_timeout",
        "test_second_source_on_a_live_mount_gets_403_and_the_first_is_unharmed",
        "test_silent_connection_gets_408",
        "test_slow_loris_head_is_cut_off_with_408",
    ),
    "tests/shout/test_relay.py": (
        "test_a_live_mount_relayed_to_icecast_is_heard_there",
        "test_a_stored_item_loops_to_icecast_and_the_relay_comes_back_after_icecast_restarts",
    ),
    "tests/shout/test_sources.py": (
        "test_a_listener_hears_the_live_mount_while_it_records",
        "test_ezstream",
        "test_ffmpeg_icecast_output",
        "test_libshout_faster_than_real_time_at_16khz",
        "test_libshout_in_real_time_at_8khz_as_mod_shout_records",
    ),
    "tests/store/test_migrate.py": (
        "test_migrate_command",
        "test_two_servers_migrate_one_empty_database_at_once",
    ),
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    slow = pytest.mark.slow
    for item in items:
        path, _, name = item.nodeid.partition("::")
        if name.split("[")[0] in SLOW_ELSEWHERE.get(path, ()):
            item.add_marker(slow)


LOCAL_PG = os.environ.get("MEDIA_MGR_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def _local_pg_reachable() -> bool:
    async def probe() -> bool:
        try:
            conn = await asyncpg.connect(LOCAL_PG, timeout=3)
        except (OSError, asyncpg.PostgresError, TimeoutError):
            return False
        await conn.close()
        return True

    return run_sync(probe())


@pytest.fixture(scope="session")
def pg_admin_dsn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The machine's PostgreSQL when reachable, else a private one (initdb on a free port) for this run."""
    if _local_pg_reachable():
        yield LOCAL_PG
        return
    from private_services import PrivatePostgres

    with PrivatePostgres(tmp_path_factory.mktemp("pg")) as server:
        yield server.dsn


@pytest.fixture(scope="session")
def new_database(pg_admin_dsn: str) -> Iterator[Callable[[], str]]:
    """Make empty databases named for this run; all are dropped at the end."""
    made: list[str] = []

    def make() -> str:
        name = f"mmtest_{os.getpid()}_{secrets.token_hex(4)}"

        async def create() -> None:
            conn = await asyncpg.connect(pg_admin_dsn)
            await conn.execute(f'CREATE DATABASE "{name}"')
            await conn.close()

        run_sync(create())
        made.append(name)
        base, _, query = pg_admin_dsn.partition("?")
        return f"{base.rsplit('/', 1)[0]}/{name}" + (f"?{query}" if query else "")

    yield make

    async def drop() -> None:
        conn = await asyncpg.connect(pg_admin_dsn)
        for name in made:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()

    run_sync(drop())


@pytest.fixture(scope="session")
def database_url(new_database: Callable[[], str]) -> str:
    """The run's shared database (tests keep apart by using their own account ids)."""
    return new_database()


@pytest.fixture(scope="session")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One real ``media-mgr serve`` for the run: no admin token, so loopback clients are admins."""
    data = tmp_path_factory.mktemp("server")
    srv = start_server(
        {"MEDIA_MGR_DATABASE_URL": database_url, "MEDIA_MGR_DATA_DIR": str(data),
         "MEDIA_MGR_LIMIT_UPLOAD_BYTES": str(8 * 1024 * 1024)},
        data / "server.log",
    )  # fmt: skip
    yield srv
    srv.stop()


@pytest.fixture
def account_id() -> str:
    return secrets.token_hex(16)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database_url)
    yield conn
    await conn.close()


@pytest.fixture
def audio_dir(tmp_path: Path) -> Path:
    path = tmp_path / "audio"
    path.mkdir()
    return path
