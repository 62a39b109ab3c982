"""Mount name -> live ``Mount``: one source per mount, claimed and released."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from media_mgr.errors import Forbidden, InvalidRequest
from media_mgr.live.mount import Mount

log = logging.getLogger("media_mgr.live")
_MOUNT = re.compile(r"/[A-Za-z0-9._~!$&'()*+,;=:@%/-]{1,255}")


class MountInUse(Forbidden):
    """A source is already live on this mount (Icecast answers 403 too)."""


def check_mount(name: str) -> str:
    """A mount is an absolute path without query: ``/<recording id>.mp3``, ``/moh.mp3`` ..."""
    if not _MOUNT.fullmatch(name) or "/../" in f"{name}/" or "//" in name:
        raise InvalidRequest(f"{name!r} is not a mount name (an absolute path such as /live.mp3)")
    return name


class MountRegistry:
    def __init__(self, *, queue_bytes: int, burst_bytes: int) -> None:
        self.queue_bytes = queue_bytes
        self.burst_bytes = burst_bytes
        self._mounts: dict[str, Mount] = {}
        self._watchers: list[Callable[[Mount], None]] = []
        self._release_watchers: list[Callable[[Mount], None]] = []

    def watch(self, claimed: Callable[[Mount], None]) -> None:
        """Call ``claimed(mount)`` whenever a source claims a mount (relays attach to it then)."""
        self._watchers.append(claimed)

    def unwatch(self, claimed: Callable[[Mount], None]) -> None:
        self._watchers.remove(claimed)

    def watch_release(self, released: Callable[[Mount], None]) -> None:
        """Call ``released(mount)`` whenever a source lets its mount go (the fleet forgets it then)."""
        self._release_watchers.append(released)

    def unwatch_release(self, released: Callable[[Mount], None]) -> None:
        self._release_watchers.remove(released)

    def claim(self, name: str) -> Mount:
        if name in self._mounts:
            raise MountInUse(f"mount {name} already has a source")
        mount = Mount(check_mount(name), queue_bytes=self.queue_bytes, burst_bytes=self.burst_bytes)
        self._mounts[name] = mount
        for claimed in list(self._watchers):
            try:
                claimed(mount)
            except Exception:  # a watcher's fault must not cost the source its mount
                log.exception("mount watcher failed", extra={"mount": name})
        return mount

    def release(self, mount: Mount) -> None:
        """The source ended: listeners' streams end, the name is free again."""
        if self._mounts.get(mount.name) is mount:
            del self._mounts[mount.name]
        mount.end()
        for released in list(self._release_watchers):
            try:
                released(mount)
            except Exception:
                log.exception("mount watcher failed", extra={"mount": mount.name})

    def get(self, name: str) -> Mount | None:
        return self._mounts.get(name)

    def mounts(self) -> list[Mount]:
        return list(self._mounts.values())

    def __len__(self) -> int:
        return len(self._mounts)

    def snapshot(self) -> list[dict[str, Any]]:
        return [m.public() for m in self._mounts.values()]
