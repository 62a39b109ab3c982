"""The served OpenAPI document says what the server answers (issue 11, item 10), and what the
schemathesis suite (tests/fuzz) found answered 500 is refused as the document says."""

from __future__ import annotations

import secrets
from typing import Any

import httpx
import pytest

from media_mgr.ids import HEX32_PATTERN

from servers import RunningServer

ERROR_REF = "#/components/schemas/ErrorModel"


@pytest.fixture(scope="module")
def document(server: RunningServer) -> dict[str, Any]:
    r = httpx.get(f"{server.url}/openapi.json", timeout=10)
    assert r.status_code == 200
    return r.json()  # type: ignore[no-any-return]


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method, path, op) for path, item in document["paths"].items() for method, op in item.items()]


def test_every_error_status_declares_the_error_body(document: dict[str, Any]) -> None:
    assert "HTTPValidationError" not in document["components"]["schemas"]
    for method, path, op in operations(document):
        for status, response in op["responses"].items():
            if int(status) < 400 or path in ("/readyz",):
                continue
            content = response["content"]
            if "text/html" in content:  # Kazoo's /store/ 401 page
                continue
            assert content["application/json"]["schema"] == {"$ref": ERROR_REF}, (method, path, status)


def test_operations_declare_the_errors_they_answer(document: dict[str, Any]) -> None:
    paths = document["paths"]
    assert {"400", "409", "413", "415", "422", "503"} <= set(paths["/v1/media"]["post"]["responses"])
    assert {"404", "410", "416"} <= set(paths["/single/{token}/{name}"]["get"]["responses"])
    assert {"401", "404", "410", "415"} <= set(paths["/store/{token}/{name}"]["put"]["responses"])
    assert "Retry-After" in paths["/v1/media"]["get"]["responses"]["503"]["headers"]


def test_metrics_are_declared_and_served_as_text(server: RunningServer, document: dict[str, Any]) -> None:
    declared = document["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(declared) == ["text/plain"]
    served = httpx.get(f"{server.url}/metrics", timeout=10)
    assert served.headers["content-type"].startswith("text/plain")


def test_operation_ids_are_unique(document: dict[str, Any]) -> None:
    ids = [op["operationId"] for _, _, op in operations(document)]
    assert len(ids) == len(set(ids))
    paths = document["paths"]
    assert paths["/v1/media/{media_id}/content"]["get"]["operationId"] == "get_content_get"
    assert paths["/v1/media/{media_id}/content"]["head"]["operationId"] == "get_content_head"


@pytest.mark.parametrize(
    ("path", "allow"),
    [
        ("/v1/media/0123456789abcdef0123456789abcdef", "DELETE, GET"),
        ("/v1/media/0123456789abcdef0123456789abcdef/content", "GET, HEAD, PUT"),
        ("/v1/recordings", "GET, POST"),
        ("/v1/relays/x", "DELETE, GET"),
    ],
)
def test_405_names_every_method_of_the_path(server: RunningServer, path: str, allow: str) -> None:
    r = httpx.request("PATCH", f"{server.url}{path}", timeout=10)
    assert r.status_code == 405
    assert r.headers.get_list("allow") == [allow]
    assert r.json()["error"] == "method_not_allowed"


def test_ids_declare_the_32_hex_pattern(server: RunningServer, document: dict[str, Any]) -> None:
    paths = document["paths"]
    params = {p["name"]: p["schema"] for p in paths["/v1/media/{media_id}"]["get"]["parameters"]}
    assert params["media_id"]["pattern"] == HEX32_PATTERN
    listing = {p["name"]: p["schema"] for p in paths["/v1/recordings"]["get"]["parameters"]}
    assert any(s.get("pattern") == HEX32_PATTERN for s in listing["account_id"]["anyOf"])
    body = document["components"]["schemas"]["NewRecordingBody"]["properties"]
    assert any(s.get("pattern") == HEX32_PATTERN for s in body["account_id"]["anyOf"])
    # A value the pattern allows is looked up (404), never refused as malformed (400).
    missing = secrets.token_hex(16)
    assert httpx.get(f"{server.url}/v1/recordings/{missing}", timeout=10).status_code == 404
    assert httpx.get(f"{server.url}/v1/media/{missing}", timeout=10).status_code == 404
    refused = httpx.get(f"{server.url}/v1/recordings", params={"account_id": "NOT-HEX"}, timeout=10)
    assert refused.status_code == 422 and refused.json()["error"] == "invalid_request"


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("GET", "/v1/recordings", {"params": {"offset": str(2**65)}}),
        ("GET", "/v1/media", {"params": {"offset": str(2**65)}}),
        ("POST", "/v1/audio-stream-urls", {"json": {"name": "call\x00"}}),
        ("POST", "/v1/recordings", {"json": {"name": "call\x00"}}),
        ("GET", "/v1/media", {"params": {"name": "a\x00b"}}),
        ("POST", "/v1/audio-stream-urls", {"json": {"name": "call.wav", "channels": True}}),
        ("POST", "/v1/audio-stream-urls", {"json": {"name": "call.wav", "channels": "2"}}),
        ("POST", "/v1/stream-urls", {"json": {"media_name": "/" + "0" * 32 + "/" + "1" * 32, "rate": True}}),
    ],
)  # fmt: skip
def test_what_the_fuzzer_broke_is_refused_as_declared(
    server: RunningServer, method: str, path: str, kwargs: dict[str, Any]
) -> None:
    """Each of these answered 500 (a PostgreSQL error) or was taken against the schema (``true`` for
    an integer that was a ``Literal[1, 2]``: a Literal compares by equality): now a 422."""
    r = httpx.request(method, f"{server.url}{path}", timeout=10, **kwargs)
    assert r.status_code == 422, r.text


def test_revoking_what_is_no_stream_url_of_ours_is_404(server: RunningServer) -> None:
    r = httpx.post(
        f"{server.url}/v1/stream-urls/revoke", json={"stream_url": "http://x/elsewhere"}, timeout=10
    )
    assert r.status_code == 404 and r.json()["error"] == "not_found"
