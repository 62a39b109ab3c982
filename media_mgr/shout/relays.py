"""The relays of this process (``POST/GET/DELETE /v1/relays``): started, fed, stopped.

Fan-out to many listeners belongs to Icecast. A relay (relay.py) takes either a live mount of ours,
as one more listener cursor on the mount (attached whenever the mount gets a source, re-attached at
the live edge if Icecast could not keep up), or a stored item played in a loop (music on hold,
transcoded to MP3 once by the variant cache) by a feeder task of the manager's ``TaskSet``.
``async with RelayManager(...)`` stops every relay, its thread and its feeder on exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from media_mgr.config import Settings
from media_mgr.errors import NotFound, Unavailable
from media_mgr.live.mount import Mount
from media_mgr.live.registry import MountRegistry, check_mount
from media_mgr.media.library import MediaLibrary
from media_mgr.media.variants import VariantCache
from media_mgr.shout.relay import Relay, RelaySink
from media_mgr.tasks import TaskSet

log = logging.getLogger("media_mgr.shout.relay")

CHUNK = 4096
MEDIA_RETRY = 5.0  # the item could not be read (deleted, database away): try again after this
THREAD_EXIT_CHECK = 0.005  # a stopping thread that has said it is finished is polled this often until gone

MediaReader = Callable[[str], AsyncIterator[bytes]]
Elsewhere = Callable[[str], Awaitable[Mount | None]]  # another instance's mount, mirrored here


def media_reader(library: MediaLibrary, variants: VariantCache) -> MediaReader:
    """A stored item's bytes as MP3 (transcoded once by the variant cache if it is a WAV)."""

    async def read(media_id: str) -> AsyncIterator[bytes]:
        item = await library.get(media_id)
        content = await variants.content(item, "mp3", None)
        async for piece in variants.read(content):
            yield piece

    return read


@dataclass(frozen=True)
class RelayConfig:
    limit: int = 64  # relays (and so libshout threads) at once
    backoff_max: float = 30.0  # longest wait between reconnects to a lost Icecast
    stop_timeout: float = 5.0  # on exit: each relay's thread gets this long to close its connection

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls(limit=settings.limit_relays, backoff_max=settings.timeout_relay_backoff)


class RelayManager:
    """The ``RelayControl`` of http/recordings.py."""

    def __init__(
        self, config: RelayConfig, registry: MountRegistry, read_media: MediaReader,
        elsewhere: Elsewhere | None = None,
    ) -> None:  # fmt: skip
        self.config = config
        self.registry = registry
        self.read_media = read_media
        self.elsewhere = elsewhere
        self._relays: dict[str, Relay] = {}
        self._looking: set[str] = set()  # relays waiting for another instance's answer
        self._feeders = TaskSet("shout.relays", log, limit=config.limit)
        self._lookups = TaskSet("shout.relay_lookups", log)

    async def __aenter__(self) -> Self:
        self.registry.watch(self._mount_claimed)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.registry.unwatch(self._mount_claimed)
        relays, self._relays = list(self._relays.values()), {}
        await asyncio.gather(*(self._stop(r) for r in relays), return_exceptions=True)
        await self._lookups.stop(self.config.stop_timeout)
        await self._feeders.stop(self.config.stop_timeout)

    async def add(
        self, *, mount: str | None, media_id: str | None, host: str, port: int, target_mount: str, user: str,
        password: str, relay_id: str | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        try:
            importlib.import_module("shout")
        except ImportError:
            raise Unavailable("relays need python-shout: pip install 'kazoo-media-mgr[relay]'") from None
        if len(self._relays) >= self.config.limit:
            raise Unavailable(f"at most {self.config.limit} relays run at once")
        if mount is not None:
            check_mount(mount)
        relay = Relay(
            relay_id or secrets.token_hex(8), mount=mount, media_id=media_id, host=host, port=port,
            target_mount=target_mount, user=user, password=password, backoff_max=self.config.backoff_max,
        )  # fmt: skip
        if media_id is not None:
            first = self.read_media(media_id)
            try:
                head = await anext(first)  # 404 now rather than a relay that never plays
            except StopAsyncIteration:
                raise NotFound(f"media {media_id} has no content") from None
            relay.feeder = self._feeders.spawn(self._loop_media(relay, head, first), name=f"relay {relay.id}")
        self._relays[relay.id] = relay
        relay.start()
        self._attach(relay)
        log.info("relay added", extra=relay.public())
        return relay.public()

    def list(self) -> list[dict[str, Any]]:
        return [r.public() for r in self._relays.values()]

    def ids(self) -> set[str]:
        return set(self._relays)

    def reattach(self) -> None:
        """Attach every live-mount relay that is not listening (its source, here or on another
        instance, may be back); the fleet calls this every second."""
        for relay in list(self._relays.values()):
            self._attach(relay)

    def get(self, relay_id: str) -> dict[str, Any]:
        return self._get(relay_id).public()

    async def remove(self, relay_id: str) -> None:
        relay = self._get(relay_id)
        del self._relays[relay_id]
        await self._stop(relay)

    def _get(self, relay_id: str) -> Relay:
        relay = self._relays.get(relay_id)
        if relay is None:
            raise NotFound(f"no relay {relay_id}")
        return relay

    async def _stop(self, relay: Relay) -> None:
        relay.stop()
        if relay.feeder is not None:
            relay.feeder.cancel()
            await asyncio.gather(relay.feeder, return_exceptions=True)
        self._detach(relay)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.config.stop_timeout):
                await asyncio.shield(relay.finished)
                # ``finished`` is set from inside the thread, which still has to return: wait on the
                # loop (never join there) until it has, so "stopped" means the thread is gone
                while relay.thread.is_alive():  # noqa: ASYNC110 (a thread's end sets no event)
                    await asyncio.sleep(THREAD_EXIT_CHECK)
        if relay.thread.is_alive():
            log.warning("relay thread did not end in time", extra={"relay": relay.id})

    # -- live mounts -------------------------------------------------------------------------------

    def _mount_claimed(self, mount: Mount) -> None:
        """A source took a mount: its relays become listeners of it, from its first frame."""
        for relay in list(self._relays.values()):
            if relay.mount == mount.name:
                self._attach(relay)

    def _attach(self, relay: Relay) -> None:
        if relay.mount is None or self._relays.get(relay.id) is not relay:
            return
        if relay.sink is not None and not relay.sink.closed:
            return
        mount = self.registry.get(relay.mount)
        if mount is None and self.elsewhere is not None and relay.id not in self._looking:
            self._looking.add(relay.id)
            lookup = self._attach_elsewhere(relay, self.elsewhere)
            self._lookups.spawn(lookup, name=f"relay {relay.id} lookup")
            return
        if mount is not None:
            self._attach_to(relay, mount)

    async def _attach_elsewhere(self, relay: Relay, elsewhere: Elsewhere) -> None:
        try:
            mount = await elsewhere(relay.mount or "")
        finally:
            self._looking.discard(relay.id)
        listening = relay.sink is not None and not relay.sink.closed
        if mount is not None and self._relays.get(relay.id) is relay and not listening:
            self._attach_to(relay, mount)

    def _attach_to(self, relay: Relay, mount: Mount) -> None:
        if not mount.live:
            return  # attached when a source claims it

        def closed(reason: str) -> None:
            if reason != "end":  # dropped as too slow: back at the live edge, once publish is done
                asyncio.get_running_loop().call_soon(self._attach, relay)

        relay.sink = RelaySink(relay.handoff, closed)
        relay.cursor = mount.attach(relay.sink)
        relay.source = mount

    def _detach(self, relay: Relay) -> None:
        if relay.cursor is not None and relay.source is not None:
            relay.source.detach(relay.cursor)
        relay.cursor = relay.sink = relay.source = None

    # -- stored items ------------------------------------------------------------------------------

    async def _loop_media(self, relay: Relay, head: bytes, rest: AsyncIterator[bytes]) -> None:
        """Feed a stored item to the relay's thread, over and over, as fast as it takes it."""
        pieces: AsyncIterator[bytes] = rest
        chunk: bytes | None = head
        while True:
            if chunk is not None:
                for i in range(0, len(chunk), CHUNK):
                    if not await relay.handoff.put(chunk[i : i + CHUNK]):
                        return  # the relay stopped
            try:
                chunk = await anext(pieces)
            except StopAsyncIteration:
                pieces, chunk = self.read_media(relay.media_id or ""), None
            except Exception as exc:  # deleted meanwhile, database away: say so, try again later
                relay.last_error = f"{type(exc).__name__}: {exc}"
                log.warning(
                    "relay cannot read its media", extra={"relay": relay.id, "error": relay.last_error}
                )
                await asyncio.sleep(MEDIA_RETRY)
                pieces, chunk = self.read_media(relay.media_id or ""), None
