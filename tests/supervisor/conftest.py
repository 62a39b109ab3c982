"""Worker tests reuse the SHOUT peers (tests/shout/shout_peers.py) and the fleet's mod_shout listener
(tests/fleet/fleet_shout.py): those folders go on the path."""

from __future__ import annotations

import sys
from pathlib import Path

SHOUT_TESTS = str(Path(__file__).resolve().parent.parent / "shout")
if SHOUT_TESTS not in sys.path:
    sys.path.append(SHOUT_TESTS)

FLEET_TESTS = str(Path(__file__).resolve().parent.parent / "fleet")
if FLEET_TESTS not in sys.path:
    sys.path.append(FLEET_TESTS)
