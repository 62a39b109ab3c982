"""Reading who a peer is, the same way on every edge: its Basic credentials, its address.

HTTP admin, the Kazoo ``/store/`` proxy, the SHOUT server and the audio_stream WebSocket all take
Basic auth and trust loopback clients; one reading keeps them from disagreeing.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress


def basic_credentials(authorization: str) -> tuple[str, str] | None:
    """(user, password) of an ``Authorization: Basic ...`` value; None when absent or unreadable.

    The decoded pair is split at the first colon, as Kazoo and Icecast do.
    """
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"
