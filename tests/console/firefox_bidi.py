"""Debian's firefox-esr under Playwright's WebDriver BiDi driver (``channel="moz-firefox"``).

Playwright follows Firefox's release channel, and asks for BiDi commands that an ESR does not have yet
(``emulation.setMediaFeaturesOverride`` on 153, sent for every new context). Playwright starts the
"browser" named by ``executable_path`` and reads the BiDi address from its output, so this module,
run as that executable, starts firefox-esr with the same arguments and stands between the two on a
loopback WebSocket. Every message passes unchanged, except Firefox's "unknown command" answer to one
of those commands, which becomes an empty success: the override then has no effect (Firefox keeps
its own ``prefers-color-scheme``), and once Debian's ESR knows the command, nothing is changed.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Playwright
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

FIREFOX = "/usr/bin/firefox-esr"
# Commands Playwright sends that firefox-esr 153 answers "unknown command"; made successes, no effect.
MISSING = frozenset({"emulation.setMediaFeaturesOverride"})
LISTENING = re.compile(r"WebDriver BiDi listening on (ws://\S+)")


def launch_firefox(
    driver: Playwright, folder: Path, prefs: dict[str, str | int | bool] | None = None
) -> Browser:
    """Headless firefox-esr through Playwright's BiDi channel; media may play without a gesture."""
    if not Path(FIREFOX).exists():
        pytest.fail(
            "Debian's firefox-esr is not installed (scripts/test installs it: apt-get install firefox-esr)"
        )
    return driver.firefox.launch(
        channel="moz-firefox", executable_path=launcher(folder),
        firefox_user_prefs={"media.autoplay.default": 0, "media.volume_scale": "0.0", **(prefs or {})},
    )  # fmt: skip


def launcher(folder: Path) -> Path:
    """An executable for Playwright's ``executable_path`` that runs this module in this interpreter."""
    script = folder / "firefox-esr-bidi"
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{Path(__file__).resolve()}" "$@"\n')
    script.chmod(0o755)
    return script


async def bridge(client: ServerConnection, upstream_url: str) -> None:
    """Pass every message through; turn Firefox's "unknown command" to a ``MISSING`` one into success."""
    path = client.request.path if client.request is not None else "/session"
    asked: set[int] = set()  # ids of MISSING commands awaiting Firefox's answer
    async with connect(upstream_url + path, max_size=None, ping_interval=None) as firefox:

        async def to_firefox() -> None:
            async for message in client:
                command = json.loads(message)
                if command.get("method") in MISSING:
                    asked.add(command["id"])
                await firefox.send(message)

        async def from_firefox() -> None:
            async for message in firefox:
                if asked:
                    answer = json.loads(message)
                    if answer.get("id") in asked:
                        asked.discard(answer["id"])
                        if answer.get("error") == "unknown command":
                            message = json.dumps({"type": "success", "id": answer["id"], "result": {}})
                await client.send(message)

        _, pending = await asyncio.wait(
            [asyncio.create_task(to_firefox()), asyncio.create_task(from_firefox())],
            return_when=asyncio.FIRST_COMPLETED,
        )
        for task in pending:
            task.cancel()


async def main(args: list[str]) -> int:
    browser = await asyncio.create_subprocess_exec(
        FIREFOX, *args, stdout=None, stderr=asyncio.subprocess.PIPE
    )
    assert browser.stderr is not None
    server = None
    while line := await browser.stderr.readline():
        text = line.decode(errors="replace")
        found = LISTENING.search(text)
        if found and server is None:
            upstream = found.group(1)

            async def handler(client: ServerConnection, upstream: str = upstream) -> None:
                await bridge(client, upstream)

            server = await serve(handler, "127.0.0.1", 0, max_size=None, ping_interval=None)
            port = next(iter(server.sockets)).getsockname()[1]
            text = text.replace(upstream, f"ws://127.0.0.1:{port}")
        sys.stderr.write(text)
        sys.stderr.flush()
    code = await browser.wait()
    if server is not None:
        server.close()
    return code


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
