"""The playback cache's rules: a byte bound that holds whatever is put in, nothing kept or served
while not live, a read that raced a change never put back; then a real playback cache (PostgreSQL,
its listener) with many more items than fit, every body right and the bound never passed."""

from __future__ import annotations

import secrets
from pathlib import Path

from live_playback import live_playback

from media_mgr.config import Settings
from media_mgr.media.cache import ENTRY_COST, MISS, NAMES, ByteLru, MediaCache
from media_mgr.media.models import NewMedia
from media_mgr.media.staging import read_file, stage

from sounds import tone


def test_the_byte_bound_holds_with_many_items_of_any_size() -> None:
    lru = ByteLru(1 << 20)
    for n in range(5000):
        size = (n * 7919) % (300 * 1024) + 1
        lru.put(("c", n), b"", size, tag=f"m{n % 50}")
        assert lru.bytes <= lru.max_bytes
    assert 0 < len(lru) < 5000
    assert lru.put("huge", b"", (1 << 20) + 1, tag="x") is False and lru.get("huge") is MISS
    assert lru.bytes == sum(size for _, size, _ in lru._entries.values())


def test_least_recently_used_goes_first_and_a_tag_drops_all_of_one_item() -> None:
    lru = ByteLru(3 * 100)
    for key in "abc":
        lru.put(key, key.upper(), 100, tag="one" if key != "c" else "two")
    assert lru.get("a") == "A"  # now b is the oldest
    lru.put("d", "D", 100, tag="two")
    assert lru.get("b") is MISS and lru.get("a") == "A"
    lru.drop_tag("two")
    assert lru.get("c") is MISS and lru.get("d") is MISS and lru.get("a") == "A"
    assert lru.bytes == 100


def test_nothing_is_kept_or_served_unless_live() -> None:
    cache = MediaCache(1 << 20, 1 << 16)
    cache.put(cache.begin(), "k", "v", "m")
    assert cache.get("k") is MISS and len(cache) == 0
    cache.reset(True)
    cache.put(cache.begin(), "k", "v", "m")
    assert cache.get("k") == "v"
    cache.reset(False)  # the listener lost its connection: notifications may be missed
    assert cache.get("k") is MISS
    cache.reset(True)
    assert cache.get("k") is MISS  # dropped, not resurrected


def test_a_read_that_raced_a_notification_is_not_kept() -> None:
    cache = MediaCache(1 << 20, 1 << 16)
    cache.reset(True)
    began = cache.begin()  # a lookup misses and reads the database...
    cache.changed("m1")  # ...while the row changes and the notification arrives
    cache.put(began, ("record", "m1"), "old row", "m1")
    assert cache.get(("record", "m1")) is MISS
    began = cache.begin()
    cache.put(began, ("record", "m1"), "new row", "m1")
    assert cache.get(("record", "m1")) == "new row"


def test_a_change_drops_the_item_and_every_name_resolution_only() -> None:
    cache = MediaCache(1 << 20, 1 << 16)
    cache.reset(True)
    ids = [secrets.token_hex(16) for _ in range(3)]
    for media_id in ids:
        cache.put(cache.begin(), ("record", media_id), media_id, media_id)
        cache.put(cache.begin(), ("bytes", media_id), b"x" * 1000, media_id, 1000 + ENTRY_COST)
    cache.put(cache.begin(), ("prompt", None, "vm-greeting"), ids[0], NAMES)
    cache.changed(ids[1])
    assert cache.get(("record", ids[1])) is MISS and cache.get(("bytes", ids[1])) is MISS
    assert cache.get(("prompt", None, "vm-greeting")) is MISS
    assert cache.get(("record", ids[0])) == ids[0] and cache.get(("bytes", ids[2])) == b"x" * 1000


async def test_a_real_playback_cache_stays_in_its_bound_and_serves_the_right_bytes(
    database_url: str, server: object, tmp_path: Path
) -> None:
    """Forty 8 kHz prompts of about 16 KiB each through a playback cache bounded at 100 KiB: every body
    is the item's own, and the cache never holds more than its bound (``server`` applied migrations)."""
    settings = Settings(database_url=database_url, data_dir=tmp_path, cache_bytes=100 * 1024,
                        cache_item_bytes=32 * 1024)  # fmt: skip
    account = secrets.token_hex(16)
    async with live_playback(settings) as (playback, library):
        cache = playback.catalog.cache
        items = []
        for n in range(40):
            wav = tone(tmp_path / f"{n}.wav", seconds=1, freq=200 + 20 * n)
            staged = await stage(read_file(wav), tmp_path, 1 << 20)
            items.append((await library.add(NewMedia(account, f"p{n}"), staged), wav.read_bytes()))
        for _ in range(2):
            for item, data in items:
                url = playback.url_for(item, "new", None, None)
                opened = await playback.open(url.split("/")[4], "single", None)
                assert await playback.body(opened) == data
                assert cache.bytes <= cache.max_bytes
        hits = cache.hits  # cycling through more than fits, an LRU keeps missing; the last one is kept
        item, data = items[-1]
        opened = await playback.open(playback.url_for(item, "new", None, None).split("/")[4], "single", None)
        assert await playback.body(opened) == data
        assert cache.hits == hits + 2  # its record and its bytes
