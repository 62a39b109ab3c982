"""Fault tests reuse the SHOUT peers (tests/shout/shout_peers.py): that folder goes on the path."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from private_services import PrivateRabbit

SHOUT_TESTS = str(Path(__file__).resolve().parent.parent / "shout")
if SHOUT_TESTS not in sys.path:
    sys.path.append(SHOUT_TESTS)


@pytest.fixture(scope="module")
def rabbit() -> Iterator[PrivateRabbit]:
    """A broker of the module's own: Kazoo's exchange names are fixed (``kapps``), and on the machine's
    broker every other test server bound to them would receive (and answer) our requests too."""
    with PrivateRabbit() as node:
        yield node
