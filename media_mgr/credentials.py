"""Reading who a peer is, the same way on every edge: its credentials and its address.

HTTP admin, the Kazoo ``/store/`` proxy, the SHOUT server and the audio_stream WebSocket all take
Basic or Bearer credentials and trust loopback (or configured) networks; one reading keeps them
from disagreeing. Secrets are compared in constant time, always through :func:`same_secret`.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


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


def bearer_token(authorization: str) -> str | None:
    """The token of an ``Authorization: Bearer ...`` value; None when absent or another scheme."""
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def same_secret(given: str, expected: str) -> bool:
    """Constant-time comparison, so a wrong guess takes as long as a nearly right one."""
    return hmac.compare_digest(given.encode(), expected.encode())


def parse_networks(text: str) -> tuple[Network, ...]:
    """Comma-separated CIDRs (``127.0.0.0/24,10.0.0.0/8``); raises ValueError naming the bad part."""
    networks: list[Network] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise ValueError(f"not a CIDR network: {part!r}") from None
    return tuple(networks)


def in_networks(host: str | None, networks: Iterable[Network]) -> bool:
    if not host:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(address in network for network in networks)


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"
