"""The media_req handler: every resolver outcome becomes exactly one Kazoo reply, never an exception."""

from __future__ import annotations

import asyncio
import dataclasses
import logging

import pytest

from media_mgr.amqp import wire
from media_mgr.amqp.media_req import MediaReqHandler
from media_mgr.amqp.wire import MediaReq, StreamType
from media_mgr.errors import Gone, InvalidRequest, NoData, NotFound, Unavailable
from media_mgr.media.names import InvalidMediaName, TtsRef, parse_media_name
from media_mgr.tts.speech import TtsOptions

NODE = "media_mgr@apps1.example.com"
URL = "http://apps1.example.com:24517/single/tok/greeting.wav"


def request(
    media_name: str = "/3a63acb1cc1fbd5fb5fa6b3d39b48b7e/0123456789abcdef0123456789abcdef",
) -> MediaReq:
    return MediaReq(
        media_name=media_name,
        msg_id="5f1c9a0b2e3d4c6a",
        server_id="ecallmgr@fs1.example.com-<0.3195.0>-5a0c9e1f",
        app_name="ecallmgr",
        stream_type="extant",
        protocol="shout",
        format="mp3",
        call_id="a8c2e1f0",
    )


class RaisingResolver:
    """Answers every name with the same outcome: a URL, or an exception to raise."""

    def __init__(self, outcome: str | BaseException, delay: float = 0.0) -> None:
        self.outcome = outcome
        self.tts: TtsOptions | None = None
        self.delay = delay
        self.calls: list[tuple[str, StreamType, str | None, str | None]] = []

    async def stream_url(
        self,
        media_name: str,
        stream_type: StreamType,
        protocol: str | None,
        fmt: str | None,
        *,
        tts: TtsOptions | None = None,
    ) -> str:
        self.calls.append((media_name, stream_type, protocol, fmt))
        self.tts = tts
        await asyncio.sleep(self.delay)
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome


class ParsingResolver:
    """Like the real one will: parse first (InvalidMediaName), TTS not built yet (not_found)."""

    async def stream_url(
        self, media_name: str, stream_type: StreamType, protocol: str | None, fmt: str | None, **_: object
    ) -> str:
        if isinstance(parse_media_name(media_name), TtsRef):
            raise NotFound("tts is not available")
        return URL


async def test_resolved_name_gets_media_resp_with_the_url() -> None:
    resolver = RaisingResolver(URL)
    reply = await MediaReqHandler(resolver, node=NODE).handle(request())
    assert reply == wire.media_resp(request(), URL, NODE)
    assert resolver.calls == [(request().media_name, "extant", "shout", "mp3")]


async def test_tts_keys_reach_the_resolver() -> None:
    resolver = RaisingResolver(URL)
    req = dataclasses.replace(request("tts://9e107d9d372bb6826bd81d3542a419d6"), text="Hello world",
                              voice="female", language="fr", engine="espeak")  # fmt: skip
    await MediaReqHandler(resolver, node=NODE).handle(req)
    assert resolver.tts == TtsOptions("Hello world", "female", "fr", "espeak")


@pytest.mark.parametrize(
    ("exc", "error_msg"),
    [
        (NotFound("no such media"), "not_found"),
        (NoData("no content"), "no_data"),
        (InvalidMediaName("bad"), "invalid_media_name"),
        (InvalidRequest("Protocol https is not served"), "Protocol https is not served"),
        (InvalidRequest(""), "invalid_request"),
        (InvalidRequest("x" * 500), "x" * 200),
        (Gone("deleted"), "gone"),
        (Unavailable("database down"), "unavailable"),
    ],
)
async def test_domain_errors_become_media_error_with_their_reason(exc: Exception, error_msg: str) -> None:
    reply = await MediaReqHandler(RaisingResolver(exc), node=NODE).handle(request())
    assert reply == wire.media_error(request(), error_msg, NODE)


@pytest.mark.parametrize("exc", [RuntimeError("bug"), KeyError("x"), OSError("disk")])
async def test_our_own_faults_are_internal_error_never_not_found(
    exc: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="media_mgr.amqp"):
        reply = await MediaReqHandler(RaisingResolver(exc), node=NODE).handle(request())
    assert reply["Error-Code"] == "other"
    assert reply["Error-Msg"] == "internal_error"
    assert any(record.exc_info for record in caplog.records)


async def test_an_https_url_from_the_resolver_is_an_internal_error_not_a_bad_reply() -> None:
    reply = await MediaReqHandler(RaisingResolver("https://h/x.wav"), node=NODE).handle(request())
    assert (reply["Event-Name"], reply["Error-Msg"]) == ("media_error", "internal_error")


async def test_a_slow_resolver_is_answered_with_timeout_before_ecallmgr_gives_up() -> None:
    handler = MediaReqHandler(RaisingResolver(URL, delay=5.0), node=NODE, timeout=0.05)
    reply = await asyncio.wait_for(handler.handle(request()), 1.0)
    assert (reply["Event-Name"], reply["Error-Msg"]) == ("media_error", "timeout")


async def test_a_deadline_sooner_than_the_timeout_gives_no_answer_instead_of_timeout() -> None:
    """Past ecallmgr's wait, silence: a ``timeout`` error then would reach a collector that moved on."""
    handler = MediaReqHandler(RaisingResolver(URL, delay=5.0), node=NODE, timeout=1.0)
    deadline = asyncio.get_running_loop().time() + 0.05
    assert await asyncio.wait_for(handler.handle(request(), deadline), 1.0) is None


async def test_a_deadline_later_than_the_timeout_still_gets_the_timeout_error() -> None:
    handler = MediaReqHandler(RaisingResolver(URL, delay=5.0), node=NODE, timeout=0.05)
    deadline = asyncio.get_running_loop().time() + 10.0
    reply = await asyncio.wait_for(handler.handle(request(), deadline), 1.0)
    assert reply is not None
    assert (reply["Event-Name"], reply["Error-Msg"]) == ("media_error", "timeout")


async def test_an_answer_ready_before_the_deadline_is_given() -> None:
    handler = MediaReqHandler(RaisingResolver(URL), node=NODE)
    reply = await handler.handle(request(), asyncio.get_running_loop().time() + 2.0)
    assert reply is not None
    assert reply["Stream-URL"] == URL


async def test_legacy_error_codes_are_passed_through() -> None:
    handler = MediaReqHandler(RaisingResolver(NotFound("x")), node=NODE, legacy_error_codes=True)
    reply = await handler.handle(request())
    assert reply["Error-Code"] == "not_found"
    assert "Error-Msg" not in reply


@pytest.mark.parametrize(
    ("name", "error_msg"),
    [("tts://9e107d9d372bb6826bd81d3542a419d6", "not_found"), ("prompt://nowhere", "invalid_media_name")],
)
async def test_tts_and_malformed_names_through_a_parsing_resolver(name: str, error_msg: str) -> None:
    reply = await MediaReqHandler(ParsingResolver(), node=NODE).handle(request(name))
    assert reply["Error-Msg"] == error_msg
    assert reply["Media-Name"] == name


def test_reject_answers_an_invalid_request_with_its_reason() -> None:
    err = wire.WireError("Stream-Type must be one of: new, extant", "5f1c9a0b2e3d4c6a", "/a/b", "srv")
    reply = MediaReqHandler(RaisingResolver(URL), node=NODE).reject(err)
    assert reply == wire.media_error(err, err.reason, NODE)
