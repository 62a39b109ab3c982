"""The TTS cache for real: PostgreSQL, eSpeak NG, two "instances" (services with their own pools)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import replace

import asyncpg
import pytest
from pydantic import ValidationError
from speech_audio import assert_speech, measure, wav_samples

from media_mgr.config import Settings
from media_mgr.errors import InvalidRequest, NotFound, Unavailable
from media_mgr.media.catalog import Catalog
from media_mgr.media.models import MediaItem
from media_mgr.store import migrate
from media_mgr.store.blobs import BlobStore
from media_mgr.store.media import MediaRow, MediaStore
from media_mgr.store.tts_cache import TtsCacheStore
from media_mgr.tts import service as service_module
from media_mgr.tts.engine import TtsEngine, TtsFailed
from media_mgr.tts.espeak import EspeakEngine, find_espeak
from media_mgr.tts.service import TtsConfig, TtsService, build_engines
from media_mgr.tts.speech import Speech, SpeechDefaults, TtsOptions

CONFIG = TtsConfig(
    engines=("espeak",),
    defaults=SpeechDefaults(engine="espeak", voice="male", language="en-us", max_text_chars=1000),
    cache_seconds=3600.0,
    timeout=20.0,
    concurrency=2,
)


class GatedEngine:
    """The real engine, held at a gate until the test opens it; counts calls and overlap."""

    name = "espeak"

    def __init__(self, inner: TtsEngine) -> None:
        self.inner = inner
        self.gate = asyncio.Event()
        self.calls: list[Speech] = []
        self.running = 0
        self.most_at_once = 0
        self.cancelled = 0

    def check(self, speech: Speech) -> None:
        self.inner.check(speech)

    async def synthesize(self, speech: Speech) -> bytes:
        self.calls.append(speech)
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        try:
            await self.gate.wait()
            return await self.inner.synthesize(speech)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.running -= 1

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.fixture(scope="module")
async def tts_dsn(new_database: Callable[[], str]) -> str:
    dsn = new_database()
    conn = await asyncpg.connect(dsn)
    try:
        await migrate.apply(conn, migrate.default_dir())
    finally:
        await conn.close()
    return dsn


@pytest.fixture(scope="module")
def espeak() -> EspeakEngine:
    return EspeakEngine(find_espeak())


Instance = Callable[..., TtsService]


@pytest.fixture
async def instance(tts_dsn: str) -> AsyncIterator[Instance]:
    """``instance(engine, **config)``: a service on its own pool, as another process would have."""
    opened: list[tuple[asyncpg.Pool, TtsService]] = []
    pools = [await asyncpg.create_pool(tts_dsn, min_size=1, max_size=6) for _ in range(2)]

    def make(engine: TtsEngine, pool_index: int = 0, **config: object) -> TtsService:
        pool = pools[pool_index]
        media = MediaStore(pool, BlobStore(pool, 256 * 1024))
        service = TtsService(replace(CONFIG, **config), media, TtsCacheStore(pool), {engine.name: engine})  # type: ignore[arg-type]
        opened.append((pool, service))
        return service

    yield make
    for _, service in opened:
        await service.close()
    for pool in pools:
        await pool.close()


async def audio_of(service: TtsService, item: MediaRow) -> bytes:
    return b"".join([piece async for piece in service.media.blobs.read(item.blob_id)])


async def test_speech_is_stored_as_wav_media_at_the_engines_rate(
    instance: Instance, espeak: EspeakEngine
) -> None:
    service = instance(espeak)
    item = await service.media_for("Hello from media manager")
    assert (MediaItem.of(item).format, item.codec, item.sample_rate, item.channels) == (
        "wav",
        "pcm_s16le",
        22050,
        1,
    )
    assert item.account_id is None and item.name.startswith("tts en-us male: Hello from media manager")
    samples, rate = wav_samples(await audio_of(service, item))
    assert_speech(measure(samples, rate), 0.9, 3.0)
    assert abs(len(samples) * 1000 / rate - item.duration_ms) <= 1


async def test_the_same_text_again_is_a_lookup(instance: Instance, espeak: EspeakEngine) -> None:
    engine = GatedEngine(espeak)
    engine.gate.set()
    service = instance(engine)
    first = await service.media_for("The same words twice")
    again = await service.media_for("", TtsOptions(text="The same words twice", language="en"))
    assert again == first
    assert len(engine.calls) == 1


async def test_concurrent_first_requests_synthesise_once(instance: Instance, espeak: EspeakEngine) -> None:
    engine = GatedEngine(espeak)
    service = instance(engine)
    waiting = [asyncio.create_task(service.media_for("Everyone asks at once")) for _ in range(8)]
    while not engine.calls:
        await asyncio.sleep(0.005)
    engine.gate.set()
    items = await asyncio.gather(*waiting)
    assert len({item.id for item in items}) == 1
    assert len(engine.calls) == 1


async def test_two_instances_asking_at_once_synthesise_once(instance: Instance, espeak: EspeakEngine) -> None:
    engines = [GatedEngine(espeak), GatedEngine(espeak)]
    one, two = instance(engines[0], 0), instance(engines[1], 1)
    first = asyncio.create_task(one.media_for("Two instances, one database"))
    while not engines[0].calls:
        await asyncio.sleep(0.005)
    second = asyncio.create_task(two.media_for("Two instances, one database"))
    await asyncio.sleep(0.2)  # the second instance is now waiting on the key's lock, not synthesising
    assert engines[1].calls == []
    engines[0].gate.set()
    engines[1].gate.set()
    assert (await first) == (await second)
    assert engines[1].calls == []


async def test_second_instance_finds_what_the_first_made(instance: Instance, espeak: EspeakEngine) -> None:
    engines = [GatedEngine(espeak), GatedEngine(espeak)]
    for engine in engines:
        engine.gate.set()
    made = await instance(engines[0], 0).media_for("Made by one, found by two")
    found = await instance(engines[1], 1).media_for("Made by one, found by two")
    assert found == made
    assert [len(e.calls) for e in engines] == [1, 0]


async def test_voice_language_and_text_each_have_their_own_media(
    instance: Instance, espeak: EspeakEngine
) -> None:
    service = instance(espeak)
    items = [
        await service.media_for("Good evening"),
        await service.media_for("Good evening", TtsOptions(voice="female")),
        await service.media_for("Good evening", TtsOptions(language="en-gb")),
        await service.media_for("Good evening!"),
    ]
    assert len({item.id for item in items}) == 4
    assert len({item.sha256 for item in items}) == 4


async def test_an_engine_not_configured_is_not_found_by_name(
    instance: Instance, espeak: EspeakEngine
) -> None:
    service = instance(espeak)
    with pytest.raises(NotFound, match=r"tts engine 'ispeech' is not configured \(configured: espeak\)"):
        await service.media_for("Hello", TtsOptions(engine="ispeech"))
    service.broken["flite"] = "no such engine"
    with pytest.raises(NotFound, match="tts engine 'flite' is configured but unavailable: no such engine"):
        await service.media_for("Hello", TtsOptions(engine="flite"))


async def test_unknown_language_is_a_bad_request(instance: Instance, espeak: EspeakEngine) -> None:
    with pytest.raises(InvalidRequest, match="'xx-xx' is not spoken by engine espeak"):
        await instance(espeak).media_for("Hello", TtsOptions(language="xx"))


async def test_synthesis_over_the_time_limit_fails_and_leaves_nothing(
    instance: Instance, espeak: EspeakEngine
) -> None:
    engine = GatedEngine(espeak)  # never opened: the engine hangs
    service = instance(engine, timeout=0.3)
    with pytest.raises(TtsFailed, match=r"took longer than 0\.3 s"):
        await service.media_for("This takes forever")
    assert engine.cancelled == 1
    assert await service.cache.touch(Speech("espeak", "male", "en-us", "This takes forever").key, 1) is None
    engine.gate.set()
    assert (await service.media_for("This takes forever")).duration_ms > 500  # the next request tries again


async def test_a_caller_giving_up_does_not_stop_the_synthesis(
    instance: Instance, espeak: EspeakEngine
) -> None:
    engine = GatedEngine(espeak)
    service = instance(engine)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(service.media_for("Slow but wanted"), 0.1)  # ecallmgr's 2 s, shortened
    engine.gate.set()
    await service.media_for("Slow but wanted")
    assert len(engine.calls) == 1 and engine.cancelled == 0


async def test_at_most_concurrency_syntheses_run_at_once(instance: Instance, espeak: EspeakEngine) -> None:
    engine = GatedEngine(espeak)
    service = instance(engine, concurrency=2)
    tasks = [asyncio.create_task(service.media_for(f"Sentence number {n}")) for n in range(5)]
    while len(engine.calls) < 2:
        await asyncio.sleep(0.005)
    await asyncio.sleep(0.1)
    assert engine.running == 2
    engine.gate.set()
    await asyncio.gather(*tasks)
    assert engine.most_at_once == 2 and len(engine.calls) == 5


async def test_sweep_deletes_expired_entries_and_their_media(
    instance: Instance, espeak: EspeakEngine
) -> None:
    service = instance(espeak)
    old = await service.media_for("Soon forgotten")
    kept = await service.media_for("Still wanted")
    key = Speech("espeak", "male", "en-us", "Soon forgotten").key
    pool = service.cache._pool
    await pool.execute("UPDATE tts_cache SET expires_at = now() - interval '1 second' WHERE key = $1", key)
    assert await service.sweep() == 1
    assert await service.media.get(old.id) is None
    assert await service.media.get(kept.id) == kept
    assert await pool.fetchval("SELECT count(*) FROM tts_cache WHERE key = $1", key) == 0
    assert (await service.media_for("Soon forgotten")).id != old.id


async def test_each_use_pushes_the_expiry_a_lifetime_ahead(instance: Instance, espeak: EspeakEngine) -> None:
    service = instance(espeak)
    await service.media_for("Used now and then")
    key = Speech("espeak", "male", "en-us", "Used now and then").key
    pool = service.cache._pool
    await pool.execute("UPDATE tts_cache SET expires_at = now() + interval '5 seconds' WHERE key = $1", key)
    await service.media_for("Used now and then")
    left = await pool.fetchval(
        "SELECT extract(epoch FROM expires_at - now()) FROM tts_cache WHERE key = $1", key
    )
    assert 3500 < float(left) <= 3600


async def test_an_entry_whose_media_is_gone_is_made_again(instance: Instance, espeak: EspeakEngine) -> None:
    service = instance(espeak)
    first = await service.media_for("Deleted behind our back")
    await service.media.delete(
        first.id
    )  # e.g. DELETE /v1/media/<id>, or a crash before the media was written
    again = await service.media_for("Deleted behind our back")
    assert again.id != first.id and await service.media.get(again.id) == again


async def test_catalog_resolves_tts_names_through_the_service(
    instance: Instance, espeak: EspeakEngine
) -> None:
    service = instance(espeak)
    catalog = Catalog(service.media, "en-us", service)
    item = await catalog.resolve_name("tts://Welcome to the catalog")
    assert item == await service.media_for("Welcome to the catalog")
    hashed = await catalog.resolve_name(
        "tts://0cc175b9c0f1b6a831c399e269772661", TtsOptions(text="Welcome to the catalog")
    )
    assert hashed == item
    with pytest.raises(NotFound, match="text to speech is off"):
        await Catalog(service.media, "en-us").resolve_name("tts://Hello")


async def test_too_many_texts_waiting_is_unavailable(
    instance: Instance, espeak: EspeakEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service_module, "MAX_PENDING", 2)
    engine = GatedEngine(espeak)
    service = instance(engine, concurrency=1)
    waiting = [asyncio.create_task(service.media_for(f"Queued text {n}")) for n in range(2)]
    while service.pending < 2:  # each looks in the cache (the database) before it waits its turn
        await asyncio.sleep(0.005)
    with pytest.raises(Unavailable, match="2 texts are already waiting"):
        await service.media_for("One too many")
    engine.gate.set()
    await asyncio.gather(*waiting)


def test_settings_build_the_engines_they_name() -> None:
    settings = Settings(tts_engines="espeak, nosuch", tts_voice="female", tts_language="fr-fr")
    config = TtsConfig.from_settings(settings)
    assert config.engines == ("espeak", "nosuch")
    assert (config.defaults.voice, config.defaults.language, config.cache_seconds) == (
        "female",
        "fr-fr",
        3600.0,
    )
    engines, broken = build_engines(config, settings)
    assert list(engines) == ["espeak"] and broken == {"nosuch": "no such engine"}
    with pytest.raises(ValidationError, match="tts_engine 'flite' is not one of tts_engines"):
        Settings(tts_engine="flite")
