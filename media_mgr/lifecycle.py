"""The shape of a component the composition root enters: ``start()`` on entry, ``stop()`` on exit."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class Component:
    """``async with Thing(...) as thing`` starts it and, however the block ends, stops it.

    ``stop`` must finish what ``start`` began (tasks stopped by a deadline, data flushed, events
    sent), so the composition root can leave components in reverse order and trust each is done.
    """

    async def start(self) -> None:
        """Begin work; the default has nothing to start."""

    async def stop(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
