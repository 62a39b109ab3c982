"""Opening recordings in batches: what is asked while one batch is in the database goes in the next.

When a thousand calls start within a few seconds, each opening its own recording with its own
round trips kept the pool busy and the database behind, and the calls' audio waited. A ``Lane`` has
at most one statement in flight and up to ``limit`` requests in it, so a burst of any size is a few
statements, and the pool stays free for the appends of the calls already running.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, Protocol, TypeVar

from media_mgr.errors import Conflict, InvalidRequest, NotFound
from media_mgr.recording.ingest import Ingest, RecordingEnded, StorageFailed
from media_mgr.recording.meter import PcmFormat
from media_mgr.recording.models import Recording
from media_mgr.store.recordings import Claim, NewOpen, RecordingStore
from media_mgr.tasks import TaskSet

log = logging.getLogger("media_mgr.recording")

T = TypeVar("T")
R = TypeVar("R")


class Lane(Generic[T, R]):
    """``await lane.submit(item)``: its result (or the exception ``run`` gave for it).

    ``run`` takes a batch and answers one result or exception per item, in order; an exception it
    raises goes to every item of the batch. A result whose caller stopped waiting (cancelled) is
    given to ``unwanted`` so that nothing it opened is left behind."""

    def __init__(
        self,
        run: Callable[[list[T]], Awaitable[Sequence[R | Exception]]],
        *,
        unwanted: Callable[[R], None],
        tasks: TaskSet,
        limit: int,
        stopping: Callable[[], Exception],
        name: str,
    ) -> None:
        self._run = run
        self._unwanted = unwanted
        self._tasks = tasks
        self._limit = limit
        self._stopping = stopping
        self._name = name
        self._queue: list[tuple[T, asyncio.Future[R]]] = []
        self._draining = False

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if not self._draining:
            self._draining = True
            try:
                self._tasks.spawn(self._drain(), name=self._name)
            except RuntimeError:
                self._draining = False
                self._queue.remove((item, future))
                raise
        return await future

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue[: self._limit], self._queue[self._limit :]
                try:
                    results = await self._run([item for item, _ in batch])
                except Exception as exc:
                    results = [exc] * len(batch)
                except BaseException:  # cancelled (stopping): nobody is left waiting for nothing
                    for _, future in batch + self._queue:
                        if not future.done():
                            future.set_exception(self._stopping())
                    self._queue = []
                    raise
                for (_, future), result in zip(batch, results, strict=True):
                    if isinstance(result, Exception):
                        if not future.done():
                            future.set_exception(result)
                    elif future.done():  # its caller was cancelled meanwhile
                        self._unwanted(result)
                    else:
                        future.set_result(result)
        finally:
            self._draining = False


OPEN_BATCH = 256  # recordings opened (or claimed) in one statement


class OpenerHost(Protocol):
    """What the opener needs of the recorder."""

    @property
    def store(self) -> RecordingStore: ...

    @property
    def owner(self) -> int: ...

    def started(self, rec: Recording, pcm: PcmFormat | None) -> Ingest: ...

    def unwanted(self, ingest: Ingest) -> None: ...


def _stopping() -> Exception:
    return StorageFailed("the recorder is stopping")


class Opener:
    """The recorder's two lanes: new recordings (``store.open_new``) and claims of pending ones
    (``store.claim``), each answered per item as ``begin`` and ``begin_new`` always answered."""

    def __init__(self, host: OpenerHost, tasks: TaskSet) -> None:
        self.host = host
        self.opens: Lane[tuple[NewOpen, PcmFormat | None], Ingest] = Lane(
            self._open_batch, unwanted=host.unwanted, tasks=tasks, limit=OPEN_BATCH,
            stopping=_stopping, name="recorder.open",
        )  # fmt: skip
        self.claims: Lane[tuple[Claim, PcmFormat | None], Ingest] = Lane(
            self._claim_batch, unwanted=host.unwanted, tasks=tasks, limit=OPEN_BATCH,
            stopping=_stopping, name="recorder.claim",
        )  # fmt: skip

    async def _open_batch(self, items: list[tuple[NewOpen, PcmFormat | None]]) -> list[Ingest | Exception]:
        rows = await self.host.store.open_new(self.host.owner, [item for item, _ in items])
        out: list[Ingest | Exception] = []
        for item, pcm in items:
            row = rows.get(item.recording_id)
            if row is None:
                out.append(Conflict(f"id {item.recording_id} already names a recording or media"))
            else:
                out.append(self.host.started(Recording.of(row), pcm))
        return out

    async def _claim_batch(self, items: list[tuple[Claim, PcmFormat | None]]) -> list[Ingest | Exception]:
        got = await self.host.store.claim(self.host.owner, [claim for claim, _ in items])
        out: list[Ingest | Exception] = []
        for claim, pcm in items:
            row, state, fmt = got[claim.recording_id]
            rid = claim.recording_id
            if row is not None:
                out.append(self.host.started(Recording.of(row), pcm if row.format == "wav" else None))
            elif state is None:
                out.append(NotFound(f"no recording {rid}"))
            elif state == "pending" and fmt == "wav" and pcm is None:
                out.append(InvalidRequest("a WAV recording needs the PCM format of its audio"))
            else:  # still pending in the statement's snapshot: another instance claimed it meanwhile
                now = "recording" if state == "pending" else state
                out.append(RecordingEnded(f"recording {rid} is {now}"))
        return out
