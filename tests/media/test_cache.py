"""The playback cache's rules, without a server: a byte bound that holds whatever is put in, nothing
kept or served while not live, and a read that raced a change never put back."""

from __future__ import annotations

import secrets

from media_mgr.media.cache import ENTRY_COST, MISS, NAMES, ByteLru, MediaCache


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
