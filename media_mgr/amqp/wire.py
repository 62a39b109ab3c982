"""Kazoo media API shapes: validate ``media_req`` in, build ``media_resp`` / ``media_error`` out.

Pure (no I/O), so every rule of the wire-compat checklist (reference section 8, items 2 to 8) is testable
with dicts and bytes alone. Outgoing messages carry exactly Kazoo's envelope and never a null or empty
value: Kazoo's builder strips them, and a requester's validator may choke on them.
"""

from __future__ import annotations

import json
import secrets
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeAlias, cast

import orjson

from media_mgr import __version__

APP_NAME: Final = "media_srv"
APP_VERSION: Final = "4.0.0"
CONTENT_TYPE: Final = "application/json"
MAX_BODY_BYTES: Final = 1024 * 1024

StreamType: TypeAlias = Literal["new", "extant"]
Reply: TypeAlias = dict[str, str]

STREAM_TYPES: Final = ("new", "extant")
VOICES: Final = ("male", "female")
FORMATS: Final = ("mp3", "wav")
PROTOCOLS: Final = ("http", "https", "shout", "vlc")
STREAM_URL_SCHEMES: Final = ("http://", "shout://", "vlc://")
KAZOO_ERROR_CODES: Final = ("not_found", "no_data")
# The request's strings that reach the resolver, the database or the log.
TEXT_KEYS: Final = ("Media-Name", "Msg-ID", "Msg-Reply-ID", "App-Name", "App-Version", "Call-ID",
                    "Account-ID", "Text", "Language", "Engine")  # fmt: skip
MAX_MEDIA_NAME: Final = 4096
# Built once: ``json.dumps`` with any non-default argument builds a new encoder on every call.
_UTF8_JSON: Final = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_ASCII_JSON: Final = json.JSONEncoder(separators=(",", ":"))


class DecodeError(ValueError):
    """The AMQP body cannot be read as a Kazoo JSON message; the consumer logs and drops it, unless
    ``body`` (a JSON object read despite a wrong content type) says where to send a media_error."""

    def __init__(self, reason: str, body: Mapping[str, Any] | None = None) -> None:
        super().__init__(reason)
        self.body = body


class WireError(ValueError):
    """A media_req that breaks checklist item 3; carries what a ``media_error`` reply still needs.

    Kazoo correlates on Msg-ID and routes on Server-ID: when either is None, nobody would hear an answer.
    """

    def __init__(self, reason: str, msg_id: str | None, media_name: str | None, server_id: str | None):
        super().__init__(reason)
        self.reason = reason
        self.msg_id = msg_id
        self.media_name = media_name
        self.server_id = server_id


@dataclass(frozen=True)
class MediaReq:
    """A valid media_req. ``msg_id`` is the one the reply must carry (Msg-Reply-ID if there was one)."""

    media_name: str
    msg_id: str
    server_id: str | None
    app_name: str
    stream_type: StreamType = "new"
    protocol: str | None = None
    format: str | None = None
    call_id: str | None = None
    account_id: str | None = None
    text: str | None = None
    voice: str | None = None
    language: str | None = None
    engine: str | None = None


def decode_body(
    body: bytes, content_type: str | None, content_encoding: str | None, *, limit: int = MAX_BODY_BYTES
) -> dict[str, Any]:
    """AMQP body -> JSON object. Only ``application/json``; gzip when the encoding says so (checklist 2)."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type != CONTENT_TYPE:
        reason = f"content type {str(content_type)[:60]!r} is not {CONTENT_TYPE}"
        try:
            readable = decode_body(body, CONTENT_TYPE, content_encoding, limit=limit)
        except DecodeError:
            raise DecodeError(reason) from None
        raise DecodeError(reason, readable)
    encoding = (content_encoding or "").strip().lower()
    if encoding == "gzip":
        body = _gunzip(body, limit)
    elif encoding not in ("", "identity"):
        raise DecodeError(f"content encoding {content_encoding!r} is not supported")
    if len(body) > limit:
        raise DecodeError(f"body is larger than {limit} bytes")
    try:
        # orjson reads every request Kazoo sends, several times faster; what it refuses (a lone
        # surrogate, an integer past 64 bits, NaN, or no JSON at all) json decides, as it always did.
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        value = _json_loads(body)
    if not isinstance(value, dict):
        raise DecodeError("body is not a JSON object")
    return cast(dict[str, Any], value)


def _json_loads(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise DecodeError(f"body is not JSON: {exc}") from None
    except RecursionError:
        raise DecodeError("body is JSON nested too deep to read") from None


def _gunzip(body: bytes, limit: int) -> bytes:
    """Decompress at most ``limit`` bytes, so a small gzip bomb cannot fill memory."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise DecodeError(f"body is not gzip: {exc}") from None
    if len(out) > limit:
        raise DecodeError(f"gzip body inflates past {limit} bytes")
    if not inflater.eof:
        raise DecodeError("gzip body is truncated")
    return out


def refusal(reason: str, body: Mapping[str, Any]) -> WireError:
    """A request refused before validation, with whatever of its reply address it carries."""
    return WireError(
        reason, _text(body, "Msg-Reply-ID") or _text(body, "Msg-ID"), _text(body, "Media-Name"),
        _routing_key(_text(body, "Server-ID")),
    )  # fmt: skip


def encode(message: Mapping[str, Any]) -> bytes:
    """JSON as Kazoo's encoder writes it: compact, UTF-8 (so Media-Name comes back byte for byte).

    A string with a lone surrogate (a request may carry ``"\\ud800"``: valid JSON, no UTF-8) is
    written with ``\\u`` escapes instead, as it came: the reply still echoes it exactly.
    """
    try:
        return orjson.dumps(message)  # the same compact UTF-8, in a fraction of the time
    except TypeError:
        pass  # a lone surrogate, an integer past 64 bits: json's way below
    text = _UTF8_JSON.encode(message)
    try:
        return text.encode()
    except UnicodeEncodeError:
        return _ASCII_JSON.encode(message).encode()


def parse_media_req(body: Mapping[str, Any]) -> MediaReq:
    """Validate a decoded media_req (checklist item 3, ``kapi_media:req_v/1``); raises ``WireError``."""
    msg_id = _text(body, "Msg-ID")
    reply_id = _text(body, "Msg-Reply-ID") or msg_id
    media_name = _text(body, "Media-Name")
    server_id = _routing_key(_text(body, "Server-ID"))

    def fail(reason: str) -> WireError:
        return WireError(reason, reply_id, media_name, server_id)

    for key in TEXT_KEYS:
        if (value := _text(body, key)) is not None and not _valid_text(value):
            raise fail(f"{key} is not valid text (a lone surrogate or a NUL)")
    if media_name is not None and len(media_name) > MAX_MEDIA_NAME:
        raise fail(f"Media-Name is longer than {MAX_MEDIA_NAME} characters")

    if body.get("Event-Category") != "media" or body.get("Event-Name") != "media_req":
        raise fail("not a media_req: Event-Category must be media and Event-Name media_req")
    for key in ("App-Name", "App-Version"):
        if _text(body, key) is None:
            raise fail(f"{key} must be a non-empty string")
    if msg_id is None or reply_id is None:
        raise fail("Msg-ID must be a non-empty string")
    if media_name is None:
        raise fail("Media-Name must be a non-empty string")
    stream_type = _choice(body, "Stream-Type", STREAM_TYPES, fail)
    protocol = _choice(body, "Protocol", PROTOCOLS, fail)
    fmt = _choice(body, "Format", FORMATS, fail)
    voice = _choice(body, "Voice", VOICES, fail)
    return MediaReq(
        media_name=media_name,
        msg_id=reply_id,
        server_id=server_id,
        app_name=str(body["App-Name"]),
        stream_type=cast(StreamType, stream_type or "new"),
        protocol=protocol,
        format=fmt,
        call_id=_text(body, "Call-ID"),
        account_id=_text(body, "Account-ID"),
        text=_text(body, "Text"),
        voice=voice,
        language=_text(body, "Language"),
        engine=_text(body, "Engine"),
    )


def _valid_text(value: str) -> bool:
    """UTF-8 encodable (no lone surrogate) and without NUL, which PostgreSQL text refuses."""
    if value.isascii():  # a flag CPython keeps on every str: no surrogate, nothing to encode
        return "\x00" not in value
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return "\x00" not in value


def _routing_key(server_id: str | None) -> str | None:
    """The Server-ID if a reply can be routed to it: an AMQP short string (at most 255 UTF-8 bytes)."""
    if server_id is None or not _valid_text(server_id):
        return None
    if len(server_id) > 255 if server_id.isascii() else len(server_id.encode()) > 255:
        return None
    return server_id


def _text(body: Mapping[str, Any], key: str) -> str | None:
    value = body.get(key)
    return value if isinstance(value, str) and value else None


def _choice(
    body: Mapping[str, Any], key: str, allowed: tuple[str, ...], fail: Callable[[str], WireError]
) -> str | None:
    """Kazoo checks allowed values only when the key is present; JSON null counts as absent."""
    value = body.get(key)
    if value is None:
        return None
    if value not in allowed:
        raise fail(f"{key} must be one of {', '.join(allowed)}, not {value!r}")
    return cast(str, value)


def media_resp(req: MediaReq, stream_url: str, node: str, app_version: str = APP_VERSION) -> Reply:
    """The success reply (checklist 5 and 6). An https:// URL is refused: Kazoo's resp_v rejects it."""
    if not stream_url.startswith(STREAM_URL_SCHEMES):
        raise ValueError(f"Stream-URL must start with {', '.join(STREAM_URL_SCHEMES)}: {stream_url!r}")
    return _envelope(
        "media_resp",
        node,
        app_version,
        {"Media-Name": req.media_name, "Msg-ID": req.msg_id, "Stream-URL": stream_url},
    )


def media_error(
    req: MediaReq | WireError,
    reason: str,
    node: str,
    *,
    legacy_error_codes: bool = False,
    app_version: str = APP_VERSION,
) -> Reply:
    """The error reply (checklist 8): 4.x sends Error-Code ``other`` and the reason as Error-Msg.

    ``legacy_error_codes`` speaks like 2011/2012: Error-Code ``not_found``/``no_data`` and no Error-Msg.
    """
    if req.msg_id is None:
        raise ValueError("a media_error needs the request's Msg-ID")
    if legacy_error_codes and reason in KAZOO_ERROR_CODES:
        error = {"Error-Code": reason}
    else:
        error = {"Error-Code": "other", "Error-Msg": reason}
    fields = {"Media-Name": req.media_name, "Msg-ID": req.msg_id, **error}
    return _envelope("media_error", node, app_version, fields)


def advertise(node: str, expires_ms: int, app_version: str = APP_VERSION) -> dict[str, Any]:
    """A ``nodes``/``advertise`` heartbeat (kapi_nodes) naming the kapp ``media_mgr`` (checklist 23).

    ecallmgr counts the nodes advertising ``media_mgr`` to know how many answers to wait for. Expires is
    in milliseconds, sent as a string like kz_nodes does; the receiver allows 25 % more before expiry.
    """
    return {
        "App-Name": APP_NAME,
        "App-Version": app_version,
        "Event-Category": "nodes",
        "Event-Name": "advertise",
        "Expires": str(expires_ms),
        "Msg-ID": secrets.token_hex(16),
        "Node": node,
        "WhApps": {"media_mgr": {}},
    }


def event(body: Mapping[str, Any], node: str) -> dict[str, Any]:
    """One of the service's own events, in the same envelope style; None values are dropped.

    The caller names the event (Event-Category, Event-Name); App-Name, App-Version, Node and a fresh
    Msg-ID are filled in unless given.
    """
    for key in ("Event-Category", "Event-Name"):
        if not isinstance(body.get(key), str) or not body[key]:
            raise ValueError(f"an event needs a non-empty {key}")
    message = {
        "App-Name": "media_mgr",
        "App-Version": __version__,
        "Msg-ID": secrets.token_hex(16),
        "Node": node,
        **body,
    }
    return {key: value for key, value in message.items() if value is not None}


def _envelope(event_name: str, node: str, app_version: str, fields: Mapping[str, str | None]) -> Reply:
    message = {
        "App-Name": APP_NAME,
        "App-Version": app_version,
        "Event-Category": "media",
        "Event-Name": event_name,
        "Node": node,
        **fields,
    }
    return {key: value for key, value in message.items() if value}


def correlation_id(body: Mapping[str, Any]) -> str | None:
    """The id that ties our log lines to the call: Call-ID, else the request's Msg-ID."""
    for key in ("Call-ID", "Msg-ID"):
        value = body.get(key)
        if isinstance(value, str) and value:
            return value
    return None
