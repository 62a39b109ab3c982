"""The live sessions, how a reconnecting socket finds its own, and the URLs refused for a while.

A reconnect is recognised by what the module repeats: voipbit reuses the URL and puts ``stream_id``
in every ``media``; an ixwebsocket-era amigniter build re-sends its metadata first on the same URL.
A voipbit session still attached but silent for ``TAKEOVER_SILENCE`` is taken over (its old socket
died without a close); a live one is not, because two calls may share a URL and a ``stream_id``.
Closing a voipbit socket only makes it reconnect within a second (A1.8), so a stream closed for bad
input has its URL refused for a while: the module gives up after four refused attempts.
"""

from __future__ import annotations

from collections.abc import Iterator

from media_mgr.audio_stream.session import Session, SessionState
from media_mgr.errors import Conflict, NotFound

TAKEOVER_SILENCE = 1.0
REFUSED_LIMIT = 10_000  # remembered URLs; the oldest go first


class Registry:
    def __init__(self) -> None:
        self._by_id: dict[str, Session] = {}
        self._refused: dict[str, float] = {}

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[Session]:
        return iter(list(self._by_id.values()))

    def add(self, session: Session) -> None:
        self._by_id[session.id] = session

    def get(self, session_id: str) -> Session | None:
        return self._by_id.get(session_id)

    def remove(self, session: Session) -> None:
        if self._by_id.get(session.id) is session:
            del self._by_id[session.id]

    def rejoin(
        self, key: str, now: float, *, metadata: str | None = None, takeover: bool = False
    ) -> Session | None:
        """The session a new socket with ``key`` continues, if any (the most recently active)."""
        found: list[Session] = []
        for s in self._by_id.values():
            if s.key != key or s.ending:
                continue
            if metadata is not None and (s.metadata is None or s.metadata.text != metadata):
                continue
            if s.state is SessionState.DETACHED or (takeover and now - s.last_arrival >= TAKEOVER_SILENCE):
                found.append(s)
        return max(found, key=lambda s: s.last_arrival, default=None)

    def find(self, ref: str) -> Session:
        """A session by its id, or by a ``stream_id`` / ``call_id`` that names only one live session."""
        if ref in self._by_id:
            return self._by_id[ref]
        matches = [s for s in self._by_id.values() if ref in (s.stream_id, s.call_id)]
        if not matches:
            raise NotFound(f"no live audio stream {ref!r}")
        if len(matches) > 1:
            raise Conflict(
                f"{len(matches)} live streams match {ref!r}; use a session_id from GET /v1/streams"
            )
        return matches[0]

    def detached_since(self, before: float) -> list[Session]:
        return [
            s
            for s in self._by_id.values()
            if s.state is SessionState.DETACHED and s.detached_at is not None and s.detached_at <= before
        ]

    def refuse(self, url: str, until: float) -> None:
        self._refused.pop(url, None)
        self._refused[url] = until
        while len(self._refused) > REFUSED_LIMIT:
            del self._refused[next(iter(self._refused))]

    def refused(self, url: str, now: float) -> bool:
        until = self._refused.get(url)
        if until is None:
            return False
        if until <= now:
            del self._refused[url]
            return False
        return True
