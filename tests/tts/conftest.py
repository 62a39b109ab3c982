"""The AMQP tests' requester (shaped like Erlang ecallmgr) is shared from tests/amqp."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "amqp"))
