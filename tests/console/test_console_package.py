"""The console ships inside the package: every static file in the wheel, served from there."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import pytest

import media_mgr.console

from servers import RunningServer

STATIC = Path(media_mgr.console.__file__).parent / "static"
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_wheel_carries_every_console_file(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    names = zipfile.ZipFile(next(tmp_path.glob("*.whl"))).namelist()
    shipped = sorted(Path(n).name for n in names if n.startswith("media_mgr/console/static/"))
    assert shipped == sorted(p.name for p in STATIC.iterdir()) and "index.html" in shipped


@pytest.mark.slow
def test_every_file_is_served_with_its_type_and_revalidated(console_server: RunningServer) -> None:
    types = {".html": "text/html", ".css": "text/css", ".js": "text/javascript"}
    for path in STATIC.iterdir():
        url = f"{console_server.url}/console/" + ("" if path.name == "index.html" else path.name)
        answer = httpx.get(url)
        assert answer.status_code == 200, path.name
        assert answer.content == path.read_bytes()
        assert answer.headers["content-type"].startswith(types[path.suffix])
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert httpx.get(url, headers={"if-none-match": answer.headers["etag"]}).status_code == 304
    assert httpx.get(f"{console_server.url}/console/nothing.js").status_code == 404
    assert httpx.get(f"{console_server.url}/console/..%2fapp.py").status_code == 404
    bare = httpx.get(f"{console_server.url}/console")
    assert (bare.status_code, bare.headers["location"]) == (307, "/console/")
