"""Kazoo's 32-hex ids (media, accounts, recordings): one pattern for every edge and the domain."""

from __future__ import annotations

import re
import secrets
from typing import Final

HEX32: Final = r"[0-9a-f]{32}"
"""The bare fragment, for patterns that embed an id (a mount path, a URL)."""

HEX32_PATTERN: Final = rf"^{HEX32}$"
"""For pydantic ``Field(pattern=...)`` and OpenAPI: the same rule the domain checks."""

_HEX32: Final = re.compile(HEX32)


def is_hex32(value: str) -> bool:
    return _HEX32.fullmatch(value) is not None


def new_id() -> str:
    return secrets.token_hex(16)
