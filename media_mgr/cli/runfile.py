"""``DATA_DIR/serve.json``: the ports a running ``media-mgr serve`` really bound.

``media-mgr url`` and ``record-url`` issue URLs for the server that will answer them; with port 0 (or
a port given only to ``serve``) only the server knows them. ``serve`` writes the file once both ports
are bound and removes it when it stops; a file left by a killed server names a dead pid and is
ignored.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

NAME = "serve.json"


@dataclass(frozen=True)
class Bound:
    pid: int
    bind: str
    http_port: int
    shout_port: int


def write(data_dir: Path, bind: str, http_port: int, shout_port: int) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    body = {"pid": os.getpid(), "bind": bind, "http_port": http_port, "shout_port": shout_port}
    tmp = data_dir / f".{NAME}.{os.getpid()}"
    tmp.write_text(json.dumps(body) + "\n")
    tmp.replace(data_dir / NAME)


def remove(data_dir: Path) -> None:
    """Remove the file if this process wrote it (another server may have taken the data dir since)."""
    found = read(data_dir)
    if found is not None and found.pid == os.getpid():
        with contextlib.suppress(FileNotFoundError):
            (data_dir / NAME).unlink()


def read(data_dir: Path) -> Bound | None:
    """The running server's ports, or None when no live server wrote them."""
    try:
        body = json.loads((data_dir / NAME).read_text())
        bound = Bound(int(body["pid"]), str(body["bind"]), int(body["http_port"]), int(body["shout_port"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        os.kill(bound.pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, owned by another user
    return bound
