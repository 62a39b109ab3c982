"""Per-request stream URLs: issue one for a Media-Name, and open what a URL names.

Kazoo's ``kz_media_url`` (issue) and ``media_proxy_handler`` (open) in one small service. A URL
names one revision of one item in one format; the token is signed with the secret every instance
shares, so any instance serves a URL another issued, and a re-upload never serves stale bytes.

Opening a URL for a known item asks the database nothing: the record, the variant's place, the
revocations and (below ``MediaCache.max_item_bytes``) the bytes themselves come from memory that
notifications keep current (media.cache, media.revoked).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal

from media_mgr.audio.info import AudioFormat
from media_mgr.errors import Gone, InvalidRequest, NotFound
from media_mgr.media import urls
from media_mgr.media.cache import ENTRY_COST, MISS
from media_mgr.media.catalog import Catalog
from media_mgr.media.models import MediaItem
from media_mgr.media.revoked import RevokedNonces
from media_mgr.media.variants import Content, VariantCache
from media_mgr.store.revocations import Revocations
from media_mgr.tts.speech import TtsOptions

VERIFIED_TOKENS = 8192
"""Tokens whose signature was checked, kept so a URL fetched again is not verified again."""

RATES = frozenset({8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000})
STREAM_PATHS: dict[str, urls.StreamType] = {"new": "single", "extant": "continuous"}


@dataclass(frozen=True)
class PlaybackConfig:
    host: str
    http_port: int
    url_ttl: int
    secret: bytes


@dataclass(frozen=True)
class Opened:
    """What a verified URL serves."""

    item: MediaItem
    content: Content
    claims: urls.StreamClaims


def body_key(content: Content) -> tuple[str, str, int, int]:
    """The playback cache's key of a content's whole body (``Playback.body`` keeps it there)."""
    return ("bytes", content.etag, content.blob_id, content.size)


def check_rate(rate: int | None) -> int | None:
    if rate is not None and rate not in RATES:
        raise InvalidRequest(f"rate {rate} is not one of {', '.join(map(str, sorted(RATES)))}")
    return rate


def check_format(fmt: str | None) -> AudioFormat | None:
    if fmt is None or fmt == "":
        return None
    lowered = fmt.lower()
    if lowered not in ("wav", "mp3"):
        raise InvalidRequest(f"format {fmt!r} is neither wav nor mp3")
    return "wav" if lowered == "wav" else "mp3"


class Playback:
    def __init__(
        self,
        catalog: Catalog,
        variants: VariantCache,
        revocations: Revocations,
        config: PlaybackConfig,
        clock: Callable[[], float] = time.time,
        revoked: RevokedNonces | None = None,
    ) -> None:
        self.catalog = catalog
        self.variants = variants
        self.revocations = revocations
        self.revoked = revoked or RevokedNonces(revocations)  # never live unless subscribed
        self.config = config
        self.clock = clock
        self._verified: dict[str, urls.StreamClaims] = {}

    async def stream_url(
        self,
        media_name: str,
        stream_type: Literal["new", "extant"] | None,
        protocol: str | None,
        fmt: str | None,
        rate: int | None = None,
        tts: TtsOptions | None = None,
    ) -> str:
        """The URL answering a media_req (or its REST twin); ``tts``: its Text/Voice/Language/Engine."""
        item = await self.catalog.resolve_name(media_name, tts)
        return self.url_for(item, stream_type, protocol, fmt, rate)

    def stream_url_kept(
        self,
        media_name: str,
        stream_type: Literal["new", "extant"] | None,
        protocol: str | None,
        fmt: str | None,
    ) -> str | None:
        """:meth:`stream_url` when the name resolves from memory (no await), else None: ask that."""
        item = self.catalog.resolve_name_kept(media_name)
        return None if item is None else self.url_for(item, stream_type, protocol, fmt)

    def url_for(
        self,
        item: MediaItem,
        stream_type: Literal["new", "extant"] | None,
        protocol: str | None,
        fmt: str | None,
        rate: int | None = None,
    ) -> str:
        # mod_shout plays MP3 from a shout:// URL; everything else gets http:// in the stored
        # format unless another was asked for (ecallmgr wraps it in http_cache://). Never https.
        shout = (protocol or "").lower() == "shout"
        out: AudioFormat = "mp3" if shout else (check_format(fmt) or item.format)
        path = STREAM_PATHS.get(stream_type or "new")
        if path is None:
            raise InvalidRequest(f"stream type {stream_type!r} is neither new nor extant")
        now = self.clock()
        claims = urls.StreamClaims(
            media_id=item.id,
            revision=item.revision,
            format=out,
            rate=check_rate(rate),
            stream_type=path,
            expires=int(now) + self.config.url_ttl,
        )
        token = urls.issue(self.config.secret, claims, now)
        scheme: urls.Scheme = "shout" if shout else "http"
        return urls.build_stream_url(
            scheme, self.config.host, self.config.http_port, path, token, item.id, out
        )

    async def open(self, token: str, path: str, rate: int | None) -> Opened:
        """Verify a URL's token and find its bytes; 404 unknown, 410 expired/revoked/replaced."""
        claims = self._verify(token)
        if claims.kind != "play" or claims.stream_type != path:
            raise NotFound("unknown stream token")
        revoked = self.revoked.known(claims.nonce)
        item: MediaItem | None
        if revoked is None or not self.catalog.cache.live:
            row, revoked = await self.catalog.store.get_for_playback(claims.media_id, claims.nonce)
            item = MediaItem.of(row) if row is not None else None
        else:
            item = await self.catalog.record(claims.media_id, seen=claims.revision)
        if revoked:
            raise Gone("this stream URL was revoked")
        if item is None:
            raise Gone("the media of this stream URL was deleted")
        if item.revision != claims.revision:
            raise Gone(f"the media was replaced (revision {item.revision}); ask for a new stream URL")
        if rate is not None:
            claims = replace(claims, rate=check_rate(rate))
        return Opened(item, await self._content(item, claims.format, claims.rate), claims)

    def _verify(self, token: str) -> urls.StreamClaims:
        """``urls.verify``, remembered: a token's claims never change, only whether it expired."""
        now = self.clock()
        claims = self._verified.get(token)
        if claims is None:
            claims = urls.verify(self.config.secret, token, now)
            if len(self._verified) >= VERIFIED_TOKENS:
                self._verified.clear()
            self._verified[token] = claims
        elif now >= claims.expires:
            raise Gone("this stream URL has expired; ask for a new one")
        return claims

    async def _content(self, item: MediaItem, fmt: urls.Format, rate: int | None) -> Content:
        """Where the bytes are (a transcoded variant's place is kept in memory once found)."""
        if fmt == item.format and (rate is None or rate == item.sample_rate):
            return await self.variants.content(item, fmt, rate)  # the stored bytes: no query
        cache = self.catalog.cache
        key = ("content", item.id, item.revision, fmt, rate)
        kept = cache.get(key)
        if kept is not MISS:
            return kept  # type: ignore[no-any-return]
        began = cache.begin()
        content = await self.variants.content(item, fmt, rate)
        cache.put(began, key, content, item.id)
        return content

    async def body(self, opened: Opened) -> bytes | None:
        """The whole body from memory (read once, then kept), or None: stream it from the store."""
        cache, content = self.catalog.cache, opened.content
        if not cache.live or content.size > cache.max_item_bytes:
            return None
        key = body_key(content)
        kept = cache.get(key)
        if kept is not MISS:
            return kept  # type: ignore[no-any-return]
        began = cache.begin()
        data = b"".join([piece async for piece in self.variants.read(content)])
        if len(data) != content.size:
            return None  # the store holds other bytes than the record says: stream what it has
        cache.put(began, key, data, opened.item.id, len(data) + ENTRY_COST)
        return data

    async def revoke(self, token: str) -> None:
        """Refuse a URL from now on, everywhere, though it has not expired."""
        claims = urls.verify(self.config.secret, token, self.clock())
        await self.revocations.revoke(claims.nonce, claims.expires)
