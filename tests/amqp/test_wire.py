"""media_req validation and media_resp / media_error shapes (checklist items 2 to 8), with dicts and bytes."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest

from media_mgr.amqp import wire
from media_mgr.amqp.wire import DecodeError, MediaReq, WireError

NODE = "media_mgr@apps1.example.com"
SERVER_ID = "ecallmgr@fs1.example.com-<0.3195.0>-5a0c9e1f"
MEDIA_NAME = "/3a63acb1cc1fbd5fb5fa6b3d39b48b7e/0123456789abcdef0123456789abcdef"
URL = "http://apps1.example.com:24517/single/tok/greeting.mp3"


def ecallmgr_req(**changes: Any) -> dict[str, Any]:
    """A media_req exactly as Erlang ecallmgr sends it (reference 1.7); ``None`` removes a key."""
    body: dict[str, Any] = {
        "App-Name": "ecallmgr",
        "App-Version": "4.0.0",
        "Call-ID": "a8c2e1f0-51a2-4b7c-9d0e-1f2a3b4c5d6e",
        "Event-Category": "media",
        "Event-Name": "media_req",
        "Media-Name": MEDIA_NAME,
        "Msg-ID": "5f1c9a0b2e3d4c6a",
        "Node": "ecallmgr@fs1.example.com",
        "Server-ID": SERVER_ID,
        "Stream-Type": "new",
        "System-Log-ID": "a8c2e1f0-51a2-4b7c-9d0e-1f2a3b4c5d6e",
    }
    body.update(changes)
    return {key: value for key, value in body.items() if value is not None}


# -- decoding (checklist 2) ----------------------------------------------------------------------------


def test_json_body_decodes() -> None:
    body = json.dumps(ecallmgr_req()).encode()
    assert wire.decode_body(body, "application/json", None) == ecallmgr_req()


def test_gzip_body_decodes_when_content_encoding_says_gzip() -> None:
    body = gzip.compress(json.dumps(ecallmgr_req()).encode())
    assert wire.decode_body(body, "application/json", "gzip") == ecallmgr_req()


def test_content_type_parameters_and_case_are_tolerated() -> None:
    assert wire.decode_body(b"{}", "Application/JSON; charset=utf-8", "identity") == {}


@pytest.mark.parametrize(
    ("body", "content_type", "encoding"),
    [
        (b"{}", None, None),
        (b"{}", "application/erlang", None),
        (b"{}", "text/plain", None),
        (b"not json", "application/json", None),
        (b"\xff\xfe", "application/json", None),
        (b"[1, 2]", "application/json", None),
        (b'"text"', "application/json", None),
        (b"{}", "application/json", "gzip"),
        (gzip.compress(b"{}")[:-4], "application/json", "gzip"),
        (b"{}", "application/json", "deflate"),
    ],
)
def test_undecodable_bodies_raise_decode_error(
    body: bytes, content_type: str | None, encoding: str | None
) -> None:
    with pytest.raises(DecodeError):
        wire.decode_body(body, content_type, encoding)


def test_a_gzip_bomb_is_refused_without_inflating_it() -> None:
    bomb = gzip.compress(b"{" + b" " * (5 * 1024 * 1024) + b"}")
    assert len(bomb) < 10_000
    with pytest.raises(DecodeError, match="inflates past"):
        wire.decode_body(bomb, "application/json", "gzip")


def test_an_oversized_plain_body_is_refused() -> None:
    with pytest.raises(DecodeError, match="larger than"):
        wire.decode_body(b"{" + b" " * 100 + b"}", "application/json", None, limit=64)


# -- validation (checklist 3 and 4) --------------------------------------------------------------------


def test_ecallmgr_request_parses() -> None:
    req = wire.parse_media_req(ecallmgr_req())
    assert req == MediaReq(
        media_name=MEDIA_NAME,
        msg_id="5f1c9a0b2e3d4c6a",
        server_id=SERVER_ID,
        app_name="ecallmgr",
        stream_type="new",
        call_id="a8c2e1f0-51a2-4b7c-9d0e-1f2a3b4c5d6e",
    )


def test_tts_request_keeps_its_tts_keys() -> None:
    req = wire.parse_media_req(
        ecallmgr_req(
            **{
                "Media-Name": "tts://9e107d9d372bb6826bd81d3542a419d6",
                "Text": "Hello world",
                "Voice": "female",
                "Language": "en-us",
                "Engine": "ispeech",
                "Format": "mp3",
            }
        )
    )
    assert (req.text, req.voice, req.language, req.engine, req.format) == (
        "Hello world",
        "female",
        "en-us",
        "ispeech",
        "mp3",
    )


def test_missing_stream_type_means_new() -> None:
    assert wire.parse_media_req(ecallmgr_req(**{"Stream-Type": None})).stream_type == "new"


def test_json_null_optional_values_count_as_absent() -> None:
    body = ecallmgr_req()
    body.update({"Stream-Type": None, "Voice": None, "Protocol": None, "Format": None})
    req = wire.parse_media_req(body)
    assert (req.stream_type, req.voice, req.protocol, req.format) == ("new", None, None, None)


@pytest.mark.parametrize(
    ("key", "values"),
    [
        ("Stream-Type", ["new", "extant"]),
        ("Voice", ["male", "female"]),
        ("Format", ["mp3", "wav"]),
        ("Protocol", ["http", "https", "shout", "vlc"]),
    ],
)
def test_allowed_values_are_accepted(key: str, values: list[str]) -> None:
    for value in values:
        wire.parse_media_req(ecallmgr_req(**{key: value}))


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("Stream-Type", "store"),
        ("Stream-Type", "NEW"),
        ("Stream-Type", ""),
        ("Voice", "robot"),
        ("Format", "ogg"),
        ("Protocol", "rtmp"),
        ("Protocol", 1),
        ("Event-Category", "call"),
        ("Event-Name", "media_resp"),
        ("App-Name", ""),
        ("App-Version", 4),
        ("Media-Name", ""),
        ("Media-Name", ["a"]),
    ],
)
def test_invalid_values_raise_wire_error_that_can_still_be_answered(key: str, value: object) -> None:
    with pytest.raises(WireError) as caught:
        wire.parse_media_req(ecallmgr_req(**{key: value}))
    assert caught.value.msg_id == "5f1c9a0b2e3d4c6a"
    assert caught.value.server_id == SERVER_ID
    if key != "Media-Name":
        assert caught.value.media_name == MEDIA_NAME


@pytest.mark.parametrize("key", ["Event-Category", "Event-Name", "App-Name", "App-Version", "Media-Name"])
def test_missing_required_keys_raise_wire_error(key: str) -> None:
    with pytest.raises(WireError, match=key):
        wire.parse_media_req(ecallmgr_req(**{key: None}))


def test_missing_msg_id_cannot_be_answered() -> None:
    with pytest.raises(WireError) as caught:
        wire.parse_media_req(ecallmgr_req(**{"Msg-ID": None}))
    assert caught.value.msg_id is None
    assert caught.value.server_id == SERVER_ID


def test_missing_server_id_is_valid_but_has_nowhere_to_reply() -> None:
    assert wire.parse_media_req(ecallmgr_req(**{"Server-ID": None})).server_id is None


def test_reply_msg_id_is_msg_reply_id_when_the_request_had_one() -> None:
    req = wire.parse_media_req(ecallmgr_req(**{"Msg-Reply-ID": "0011223344556677"}))
    assert req.msg_id == "0011223344556677"
    with pytest.raises(WireError) as caught:
        wire.parse_media_req(ecallmgr_req(**{"Msg-Reply-ID": "0011223344556677", "Voice": "robot"}))
    assert caught.value.msg_id == "0011223344556677"


# -- replies (checklist 4 to 8) ------------------------------------------------------------------------


def test_media_resp_has_exactly_kazoos_envelope() -> None:
    req = wire.parse_media_req(ecallmgr_req())
    assert wire.media_resp(req, URL, NODE) == {
        "App-Name": "media_srv",
        "App-Version": "4.0.0",
        "Event-Category": "media",
        "Event-Name": "media_resp",
        "Media-Name": MEDIA_NAME,
        "Msg-ID": "5f1c9a0b2e3d4c6a",
        "Node": NODE,
        "Stream-URL": URL,
    }


@pytest.mark.parametrize(
    "url",
    ["http://h/x.wav", "shout://h:24517/single/t/x.mp3", "vlc://h/x.mp3", "http://u:p@h:5984/db/id/a.mp3"],
)
def test_media_resp_accepts_the_schemes_kazoo_accepts(url: str) -> None:
    req = wire.parse_media_req(ecallmgr_req())
    assert wire.media_resp(req, url, NODE)["Stream-URL"] == url


@pytest.mark.parametrize("url", ["https://h/x.wav", "", "ftp://h/x", "HTTP://h/x", "/single/t/x.mp3"])
def test_media_resp_refuses_urls_kazoos_resp_v_rejects(url: str) -> None:
    req = wire.parse_media_req(ecallmgr_req())
    with pytest.raises(ValueError, match="Stream-URL"):
        wire.media_resp(req, url, NODE)


def test_media_error_is_kazoo_4x_style() -> None:
    req = wire.parse_media_req(
        ecallmgr_req(**{"Media-Name": "/3a63acb1cc1fbd5fb5fa6b3d39b48b7e/doesnotexist"})
    )
    assert wire.media_error(req, "not_found", NODE) == {
        "App-Name": "media_srv",
        "App-Version": "4.0.0",
        "Error-Code": "other",
        "Error-Msg": "not_found",
        "Event-Category": "media",
        "Event-Name": "media_error",
        "Media-Name": "/3a63acb1cc1fbd5fb5fa6b3d39b48b7e/doesnotexist",
        "Msg-ID": "5f1c9a0b2e3d4c6a",
        "Node": NODE,
    }


@pytest.mark.parametrize("reason", ["not_found", "no_data"])
def test_legacy_error_codes_put_the_reason_in_error_code_without_error_msg(reason: str) -> None:
    req = wire.parse_media_req(ecallmgr_req())
    reply = wire.media_error(req, reason, NODE, legacy_error_codes=True)
    assert reply["Error-Code"] == reason
    assert "Error-Msg" not in reply


def test_legacy_error_codes_keep_other_for_other_reasons() -> None:
    req = wire.parse_media_req(ecallmgr_req())
    reply = wire.media_error(req, "invalid_media_name", NODE, legacy_error_codes=True)
    assert (reply["Error-Code"], reply["Error-Msg"]) == ("other", "invalid_media_name")


def test_media_error_from_a_wire_error_echoes_what_the_request_had() -> None:
    with pytest.raises(WireError) as caught:
        wire.parse_media_req(ecallmgr_req(**{"Stream-Type": "store"}))
    reply = wire.media_error(caught.value, caught.value.reason, NODE)
    assert reply["Event-Name"] == "media_error"
    assert reply["Msg-ID"] == "5f1c9a0b2e3d4c6a"
    assert reply["Media-Name"] == MEDIA_NAME
    assert reply["Error-Code"] == "other"
    assert "Stream-Type" in reply["Error-Msg"]


def test_replies_never_carry_null_or_empty_values() -> None:
    with pytest.raises(WireError) as caught:
        wire.parse_media_req(ecallmgr_req(**{"Media-Name": None}))
    reply = wire.media_error(caught.value, caught.value.reason, "")
    assert "Media-Name" not in reply
    assert "Node" not in reply
    assert all(isinstance(value, str) and value for value in reply.values())


def test_media_error_without_msg_id_is_refused() -> None:
    with pytest.raises(WireError) as caught:
        wire.parse_media_req(ecallmgr_req(**{"Msg-ID": None}))
    with pytest.raises(ValueError, match="Msg-ID"):
        wire.media_error(caught.value, "x", NODE)


def test_encode_keeps_media_name_byte_for_byte() -> None:
    name = "/system_media/fr-ca/message-reçu"
    req = wire.parse_media_req(ecallmgr_req(**{"Media-Name": name}))
    body = wire.encode(wire.media_resp(req, URL, NODE))
    assert name.encode() in body
    assert json.loads(body)["Media-Name"] == name


# -- heartbeats and events -----------------------------------------------------------------------------


def test_advertise_is_a_kapi_nodes_heartbeat_for_media_mgr() -> None:
    message = wire.advertise(NODE, 10_000)
    assert message["Event-Category"] == "nodes"
    assert message["Event-Name"] == "advertise"
    assert message["Expires"] == "10000"
    assert message["Node"] == NODE
    assert message["WhApps"] == {"media_mgr": {}}
    assert message["App-Name"] == "media_srv"
    assert message["App-Version"] == "4.0.0"
    assert len(message["Msg-ID"]) == 32


def test_event_fills_the_envelope_and_drops_nulls() -> None:
    message = wire.event(
        {"Event-Category": "recording", "Event-Name": "complete", "Recording-ID": "r1", "Call-ID": None}, NODE
    )
    assert message["App-Name"] == "media_mgr"
    assert message["Node"] == NODE
    assert message["Recording-ID"] == "r1"
    assert "Call-ID" not in message
    assert message["Msg-ID"]


@pytest.mark.parametrize(
    "body", [{}, {"Event-Category": "recording"}, {"Event-Category": "", "Event-Name": "x"}]
)
def test_event_needs_category_and_name(body: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="Event-"):
        wire.event(body, NODE)


# -- hostile input (issue 11 item 8) -------------------------------------------------------------------


def test_json_nested_past_the_recursion_limit_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="nested"):
        wire.decode_body(b"[" * 50_000, "application/json", None)


@pytest.mark.parametrize("key", ["Media-Name", "Call-ID", "Account-ID", "Text", "Language", "Engine"])
@pytest.mark.parametrize("bad", ["\ud800x", "a\x00b"], ids=["lone-surrogate", "nul"])
def test_text_that_is_no_utf8_or_has_nul_is_a_wire_error_that_can_be_answered(key: str, bad: str) -> None:
    body = json.dumps(ecallmgr_req(**{key: bad})).encode()  # JSON escapes it: valid JSON, no UTF-8
    with pytest.raises(WireError) as caught:
        wire.parse_media_req(wire.decode_body(body, "application/json", None))
    assert caught.value.server_id == SERVER_ID and caught.value.msg_id == "5f1c9a0b2e3d4c6a"
    assert key in caught.value.reason
    reply = json.loads(wire.encode(wire.media_error(caught.value, caught.value.reason, NODE)))
    if key == "Media-Name":
        assert reply["Media-Name"] == bad  # echoed exactly, \u-escaped as it came


def test_a_msg_id_with_a_lone_surrogate_is_echoed_exactly() -> None:
    with pytest.raises(WireError) as caught:
        wire.parse_media_req(ecallmgr_req(**{"Msg-ID": "\udfffid"}))
    body = wire.encode(wire.media_error(caught.value, caught.value.reason, NODE))
    assert body.isascii()
    assert json.loads(body)["Msg-ID"] == "\udfffid"


@pytest.mark.parametrize("server_id", ["q" * 256, "\ud800", "a\x00"], ids=["256-bytes", "surrogate", "nul"])
def test_a_server_id_that_is_no_routing_key_has_nowhere_to_reply(server_id: str) -> None:
    with pytest.raises(WireError) as caught:
        wire.parse_media_req(ecallmgr_req(**{"Server-ID": server_id, "Media-Name": "\ud800"}))
    assert caught.value.server_id is None


def test_an_overlong_media_name_is_refused() -> None:
    with pytest.raises(WireError, match="longer"):
        wire.parse_media_req(ecallmgr_req(**{"Media-Name": "/" + "a" * 5000}))


def test_a_request_with_a_wrong_content_type_still_says_where_to_answer() -> None:
    body = json.dumps(ecallmgr_req()).encode()
    with pytest.raises(DecodeError) as caught:
        wire.decode_body(body, "text/plain", None)
    assert caught.value.body is not None
    refusal = wire.refusal(str(caught.value), caught.value.body)
    assert (refusal.msg_id, refusal.server_id) == ("5f1c9a0b2e3d4c6a", SERVER_ID)
    with pytest.raises(DecodeError) as unreadable:
        wire.decode_body(b"[" * 50_000, "text/plain", None)
    assert unreadable.value.body is None
