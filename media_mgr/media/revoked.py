"""Which stream URLs were revoked, known in memory so a fetch asks the database nothing.

The set of revoked nonces not yet expired is loaded once the listener is live and kept current by
``media_mgr_revoked`` notifications; while it is not loaded (listener away, loading, or more
revocations than ``limit``), each check asks the database, as before. Revocations are rare (an
operator's act), and rows go once their token would have expired anyway, so the set stays small.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from media_mgr.store.errors import StoreUnavailable
from media_mgr.store.revocations import Revocations

log = logging.getLogger("media_mgr.media")

DEFAULT_LIMIT = 100_000


class RevokedNonces:
    def __init__(
        self, store: Revocations, limit: int = DEFAULT_LIMIT, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.limit = limit
        self.clock = clock
        self.live = False
        self.loaded = False
        self.generation = 0
        self._nonces: dict[bytes, int] = {}
        self._too_many = False
        self._loading: asyncio.Task[None] | None = None

    def known(self, nonce: bytes) -> bool | None:
        """Whether the nonce was revoked, or None when only the database knows (then ask it)."""
        if self.loaded:
            return nonce in self._nonces
        if self.live and not self._too_many and self._loading is None:
            self._loading = asyncio.get_running_loop().create_task(self._load(), name="revocations.load")
        return None

    def revoked(self, payload: str) -> None:
        """A notification: ``<nonce hex> <expires>``."""
        try:
            hex_nonce, expires = payload.split()
            nonce, until = bytes.fromhex(hex_nonce), int(expires)
        except ValueError:
            log.warning("revocation notification not understood; asking the database from now on")
            self._forget(too_many=True)
            return
        self._nonces[nonce] = until
        if len(self._nonces) > self.limit:
            now = self.clock()
            self._nonces = {n: e for n, e in self._nonces.items() if e > now}
            if len(self._nonces) > self.limit:
                self._forget(too_many=True)

    def reset(self, live: bool) -> None:
        """The listener connected or lost its connection: what was known may be incomplete."""
        self.live = live
        self._forget(too_many=False)

    def _forget(self, *, too_many: bool) -> None:
        self.generation += 1
        self.loaded = False
        self._too_many = too_many
        self._nonces = {}
        if self._loading is not None:
            self._loading.cancel()
            self._loading = None

    async def _load(self) -> None:
        began = self.generation
        try:
            rows = await self.store.active(self.limit)
        except StoreUnavailable:
            if began == self.generation:
                self._loading = None  # try again at the next check
            return
        if began != self.generation:
            return  # forgotten meanwhile (which cancelled this load, or cleared it)
        self._loading = None
        if rows is None:
            self._too_many = True
            return
        for nonce, expires in rows:
            self._nonces.setdefault(nonce, expires)
        self.loaded = True
