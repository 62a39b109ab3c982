"""What playback and name lookups keep in memory: media records, small contents, revocations.

Everything here is a copy of PostgreSQL, trusted only while it cannot be stale. Every change to a
media record sends ``NOTIFY media_mgr_media, '<id>'`` in the transaction that makes it (store.media),
and every revocation ``NOTIFY media_mgr_revoked`` (store.revocations); each instance's
:class:`~media_mgr.store.notify.Listener` hears them within milliseconds of the commit and drops
what they name. While the listener is not connected nothing is served from memory (notifications
may be missed then), and when it listens again everything is dropped: a replaced or deleted item
is never served stale by an instance that kept a copy (Kazoo's KAZOO-3218).

A lookup that missed reads the database and stores what it read only if no notification or reset
arrived meanwhile (the *generation* it began with is still current), so a read that raced a change
cannot put the old row back after the notification dropped it.

Memory is bounded by bytes: contents count their length, every other entry a fixed estimate; the
least recently used entries go first.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Any, Final

ENTRY_COST: Final = 1024
"""Bytes counted for an entry that is not content (a record, a name, a variant's place): generous."""
NAMES: Final = "\x00names"
"""Tag of name resolutions (``prompt://``): any change to any record may change one, all go."""


class _Miss:
    def __repr__(self) -> str:
        return "MISS"


MISS: Final[Any] = _Miss()


class ByteLru:
    """A least-recently-used map whose entries' sizes never sum above ``max_bytes``.

    Each entry carries a tag (a media id) so everything about one item goes in one call.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._entries: OrderedDict[Hashable, tuple[Any, int, str]] = OrderedDict()
        self._tags: dict[str, set[Hashable]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable) -> Any:
        entry = self._entries.get(key)
        if entry is None:
            return MISS
        self._entries.move_to_end(key)
        return entry[0]

    def put(self, key: Hashable, value: Any, size: int, tag: str) -> bool:
        """Keep ``value``; False if it alone is larger than the whole bound (nothing is kept)."""
        self._remove(key)
        if size > self.max_bytes:
            return False
        self._entries[key] = (value, size, tag)
        self._tags.setdefault(tag, set()).add(key)
        self.bytes += size
        while self.bytes > self.max_bytes:
            self._remove(next(iter(self._entries)))
        return True

    def drop_tag(self, tag: str) -> None:
        for key in self._tags.pop(tag, ()):
            entry = self._entries.pop(key, None)
            if entry is not None:
                self.bytes -= entry[1]

    def clear(self) -> None:
        self._entries.clear()
        self._tags.clear()
        self.bytes = 0

    def _remove(self, key: Hashable) -> None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        self.bytes -= entry[1]
        keys = self._tags.get(entry[2])
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._tags[entry[2]]


class MediaCache:
    """Records, name resolutions and small contents, dropped by ``media_mgr_media`` notifications.

    Subscribe :meth:`changed` and :meth:`reset` to the listener; until ``reset(True)`` (or after
    ``reset(False)``) every lookup misses and nothing is stored.
    """

    def __init__(self, max_bytes: int, max_item_bytes: int) -> None:
        self.max_item_bytes = min(max_item_bytes, max_bytes)
        self.live = False
        self.generation = 0
        self.hits = 0
        self.misses = 0
        self._lru = ByteLru(max_bytes)

    @property
    def bytes(self) -> int:
        return self._lru.bytes

    @property
    def max_bytes(self) -> int:
        return self._lru.max_bytes

    def __len__(self) -> int:
        return len(self._lru)

    def get(self, key: Hashable) -> Any:
        """The value kept for ``key``, or ``MISS``."""
        if not self.live:
            return MISS
        value = self._lru.get(key)
        if value is MISS:
            self.misses += 1
        else:
            self.hits += 1
        return value

    def begin(self) -> int:
        """Take before reading the database; hand to :meth:`put` with what was read."""
        return self.generation

    def put(self, began: int, key: Hashable, value: Any, tag: str, size: int = ENTRY_COST) -> None:
        """Keep what was read, unless something changed (or the listener went) since ``began``."""
        if self.live and began == self.generation:
            self._lru.put(key, value, size, tag)

    def changed(self, media_id: str) -> None:
        """A notification: this record changed or went (and with it, maybe, any name resolution)."""
        self.generation += 1
        self._lru.drop_tag(media_id)
        self._lru.drop_tag(NAMES)

    def reset(self, live: bool) -> None:
        """The listener connected (``True``) or lost its connection: drop everything either way."""
        self.generation += 1
        self._lru.clear()
        self.live = live
