"""Background tasks owned by one component: spawned, watched, bounded, stopped by a deadline.

Every long-lived task in the service goes into a :class:`TaskSet`, so none dies unseen (a failure
is logged once, with its traceback, on the owner's logger) and none outlives its owner (``stop``
cancels what is left, waits at most ``timeout``, and reports what would not end).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, Self, TypeVar

T = TypeVar("T")


class TaskLimitReached(RuntimeError):
    """The set already runs its ``limit`` tasks."""


class TaskSet:
    """A named set of tasks; ``async with TaskSet(...)`` stops them on exit."""

    def __init__(self, name: str, logger: logging.Logger, *, limit: int | None = None) -> None:
        self.name = name
        self.log = logger
        self.limit = limit
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False

    def __len__(self) -> int:
        return len(self._tasks)

    def spawn(
        self,
        coro: Coroutine[Any, Any, T],
        *,
        name: str | None = None,
        on_done: Callable[[asyncio.Task[T]], None] | None = None,
    ) -> asyncio.Task[T]:
        """Run ``coro``; a failure other than cancellation is logged once. Refused after ``stop``."""
        if self._closed:
            coro.close()
            raise RuntimeError(f"{self.name}: stopped, no new tasks")
        if self.limit is not None and len(self._tasks) >= self.limit:
            coro.close()
            raise TaskLimitReached(f"{self.name}: {self.limit} tasks already running")
        task = asyncio.get_running_loop().create_task(coro, name=name or f"{self.name}.task")
        self._tasks.add(task)
        task.add_done_callback(self._done)
        if on_done is not None:
            task.add_done_callback(on_done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self.log.error(
                "task failed",
                exc_info=(type(exc), exc, exc.__traceback__),
                extra={"task": task.get_name(), "owner": self.name},
            )

    async def stop(self, timeout: float = 5.0) -> None:
        """Cancel every task and wait up to ``timeout`` for them; log any that would not end."""
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=timeout)
        for task in pending:
            self.log.error("task did not stop in time", extra={"task": task.get_name(), "owner": self.name})

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
