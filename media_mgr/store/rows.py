"""Plain row values the store hands back, equal by their columns.

The domain wraps a row in its own class (``MediaItem``, ``Recording``) that only adds behaviour,
so a row and the item made from it are equal: comparing what the store holds with what the
domain returned keeps working.
"""

from __future__ import annotations

import dataclasses
from typing import Any


class Row:
    """Mix into a ``@dataclass(frozen=True, eq=False)``; subclasses stay ``eq=False`` too."""

    def _columns(self) -> tuple[Any, ...]:
        return tuple(getattr(self, f.name) for f in dataclasses.fields(self))  # type: ignore[arg-type]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Row):
            return NotImplemented
        return self._columns() == other._columns()

    def __hash__(self) -> int:
        return hash(self._columns())
