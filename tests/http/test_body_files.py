"""The memfd copies that stream bodies are sent from: the same bytes, under their byte bound."""

from __future__ import annotations

import os

from media_mgr.http.body_files import BodyFiles


def read(fd: int, size: int) -> bytes:
    return os.pread(fd, size + 1, 0)


def still_open(fd: int, inode: int) -> bool:
    """Whether ``fd`` still names that file (a closed number may be reused by another)."""
    try:
        return os.fstat(fd).st_ino == inode
    except OSError:
        return False


def test_files_hold_the_bodies_and_stay_under_the_bound() -> None:
    files = BodyFiles(max_bytes=250_000)
    a, b, c = (bytes([n]) * 100_000 for n in (1, 2, 3))
    fa = files.get("a", a)
    assert read(fa, len(a)) == a
    assert files.get("a", a) == fa  # kept: not made again
    fb = files.get("b", b)
    inodes = {fd: os.fstat(fd).st_ino for fd in (fa, fb)}
    files.get("a", a)  # a is now the most recently used: b goes first
    fc = files.get("c", c)
    assert files.bytes == 200_000 and len(files) == 2
    assert read(fa, len(a)) == a and read(fc, len(c)) == c
    assert not still_open(fb, inodes[fb])  # closed when it went
    inodes[fc] = os.fstat(fc).st_ino
    assert files.get("big", b"x" * 250_001) == -1
    files.clear()
    assert files.bytes == 0 and len(files) == 0
    assert not still_open(fa, inodes[fa]) and not still_open(fc, inodes[fc])


def test_a_zero_bound_keeps_nothing() -> None:
    files = BodyFiles(max_bytes=0)
    assert files.get("a", b"abc") == -1
    assert len(files) == 0
