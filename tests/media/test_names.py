"""Media-Name grammar (reference 2.2, checklist 10 and 11): every form, and what is refused."""

from __future__ import annotations

import pytest

from media_mgr.errors import InvalidRequest
from media_mgr.media.names import (
    InvalidMediaName,
    MediaIdRef,
    MediaRef,
    PromptRef,
    SystemPromptRef,
    TtsRef,
    account_id_from_db,
    language_keys,
    media_name_for,
    parse_media_name,
)

ACCOUNT = "3a63acb1cc1fbd5fb5fa6b3d39b48b7e"
MEDIA = "0123456789abcdef0123456789abcdef"
ACCOUNT_DB_ENCODED = "account%2F3a%2F63%2Facb1cc1fbd5fb5fa6b3d39b48b7e"
ACCOUNT_DB = "account/3a/63/acb1cc1fbd5fb5fa6b3d39b48b7e"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # /<account_id>/<media_id>, as callflow's kz_media_util:media_path/2 builds it.
        (f"/{ACCOUNT}/{MEDIA}", MediaIdRef(ACCOUNT, MEDIA)),
        (f"/{ACCOUNT.upper()}/{MEDIA}", MediaIdRef(ACCOUNT, MEDIA)),
        (f"{ACCOUNT}/{MEDIA}", MediaIdRef(ACCOUNT, MEDIA)),
        (f"//{ACCOUNT}//{MEDIA}/", MediaIdRef(ACCOUNT, MEDIA)),
        # account db, encoded and unencoded; an attachment name is ignored.
        (f"/{ACCOUNT_DB_ENCODED}/{MEDIA}", MediaIdRef(ACCOUNT, MEDIA)),
        (f"/{ACCOUNT_DB_ENCODED.replace('%2F', '%2f')}/{MEDIA}", MediaIdRef(ACCOUNT, MEDIA)),
        (f"/{ACCOUNT_DB}/{MEDIA}", MediaIdRef(ACCOUNT, MEDIA)),
        (f"/{ACCOUNT_DB}/{MEDIA}/greeting.mp3", MediaIdRef(ACCOUNT, MEDIA)),
        (f"/{ACCOUNT}/{MEDIA}/greeting.mp3", MediaIdRef(ACCOUNT, MEDIA)),
        (f"/{ACCOUNT_DB_ENCODED}/{MEDIA}/greeting%20one.mp3", MediaIdRef(ACCOUNT, MEDIA)),
        # system media: a bare id, or under system_media; non-hex ids are allowed (the store decides).
        (MEDIA, MediaIdRef(None, MEDIA)),
        (f"/{MEDIA}", MediaIdRef(None, MEDIA)),
        ("/system_media/vm-enter_pass", MediaIdRef(None, "vm-enter_pass")),
        ("system_media/some%20prompt", MediaIdRef(None, "some prompt")),
        ("system_media/some+prompt", MediaIdRef(None, "some prompt")),
        # /system_media/<lang>/<prompt_id>: three system segments are always [Lang, Id].
        ("/system_media/en-us/vm-enter_pass", SystemPromptRef("en-us", "vm-enter_pass")),
        ("/system_media/EN-US/vm-enter_pass", SystemPromptRef("en-us", "vm-enter_pass")),
        ("/system_media/fr-ca/hotdesk-logged_in", SystemPromptRef("fr-ca", "hotdesk-logged_in")),
        # kz_media_map paths carry the 3.22 doc id <lang>/<prompt_id> encoded in one segment.
        ("/system_media/en-us%2Fvm-enter_pass", SystemPromptRef("en-us", "vm-enter_pass")),
        # prompt://
        ("prompt://system_media/vm-enter_pass/en-us", PromptRef(None, "vm-enter_pass", "en-us")),
        ("prompt://system_media/vm-enter_pass", PromptRef(None, "vm-enter_pass", None)),
        (f"prompt://{ACCOUNT}/vm-enter_pass/fr-FR", PromptRef(ACCOUNT, "vm-enter_pass", "fr-fr")),
        (f"prompt://{ACCOUNT.upper()}/vm-enter_pass", PromptRef(ACCOUNT, "vm-enter_pass", None)),
        (f"prompt://{ACCOUNT_DB_ENCODED}/vm-enter_pass/en", PromptRef(ACCOUNT, "vm-enter_pass", "en")),
        ("prompt://system_media/vm-enter_pass/en-us/", PromptRef(None, "vm-enter_pass", "en-us")),
        # tts://<id> as 4.x ecallmgr builds it (the words in Text); tts://<text>, raw, as older ones did.
        ("tts://9e107d9d372bb6826bd81d3542a419d6", TtsRef("9e107d9d372bb6826bd81d3542a419d6")),
        ("tts://24/7 support, 50% off", TtsRef("24/7 support, 50% off")),
        ("tts://", TtsRef("")),
    ],
)
def test_media_name_forms_parse_to_their_reference(name: str, expected: MediaRef) -> None:
    assert parse_media_name(name) == expected


@pytest.mark.parametrize(
    "name",
    [
        "",
        "/",
        "///",
        "prompt://",
        "prompt://system_media",
        "prompt://system_media/a/en-us/extra",
        "prompt://not-an-account/vm-enter_pass",
        f"prompt://{ACCOUNT}/a%2Fb",
        "/not-an-account/" + MEDIA,
        f"/{ACCOUNT[:-1]}/{MEDIA}",
        f"/{ACCOUNT}/{MEDIA}/att/extra",
        "/system_media/en-us/a/b",
        "/system_media/en-us%2Fa%2Fb",
        "/system_media/%2Fvm-enter_pass",
        f"/{ACCOUNT}/a%2Fb",
        f"/{ACCOUNT}/a%00b",
        "/system_media/a%0Ab",
        "/system_media/%FF%FE",
        "http://example.com/greeting.mp3",
        "local_stream://moh",
        "x" * 2049,
    ],
)
def test_malformed_names_raise_invalid_media_name(name: str) -> None:
    with pytest.raises(InvalidMediaName):
        parse_media_name(name)


def test_invalid_media_name_is_an_invalid_request_with_kazoos_code() -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_media_name("")
    assert caught.value.code == "invalid_media_name"
    assert caught.value.status == 400


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (ACCOUNT, ACCOUNT),
        (ACCOUNT.upper(), ACCOUNT),
        (ACCOUNT_DB, ACCOUNT),
        (ACCOUNT_DB_ENCODED, ACCOUNT),
        (ACCOUNT_DB.upper(), ACCOUNT),
        ("system_media", None),
        ("account/3a/63/short", None),
        ("account%2F3a%2F63%2Facb1cc1fbd5fb5fa6b3d39b48b7e-201801", None),
    ],
)
def test_account_db_forms_normalise_to_the_raw_id(text: str, expected: str | None) -> None:
    assert account_id_from_db(text) == expected


@pytest.mark.parametrize(
    ("language", "keys"),
    [
        ("en", ["en"]),
        ("en-us", ["en-us", "en"]),
        ("EN-US", ["en-us", "en"]),
        ("en-us_fr-fr", ["en-us_fr-fr", "en-us", "en"]),
        ("abcde_fghij", ["abcde_fghij", "abcde"]),
        ("fra", ["fra"]),
        ("pt-br-x", ["pt-br-x"]),
        ("zh-hans", ["zh-hans"]),
    ],
)
def test_language_keys_match_kz_media_map(language: str, keys: list[str]) -> None:
    assert language_keys(language) == keys


@pytest.mark.parametrize(
    ("record", "name"),
    [
        ((ACCOUNT, MEDIA, None, None), f"/{ACCOUNT}/{MEDIA}"),
        ((ACCOUNT, MEDIA, "vm-enter_pass", "en-us"), f"/{ACCOUNT}/{MEDIA}"),
        ((None, MEDIA, "vm-enter_pass", "en-us"), "/system_media/en-us/vm-enter_pass"),
        ((None, MEDIA, "vm-enter_pass", "FR-CA"), "/system_media/fr-ca/vm-enter_pass"),
        ((None, MEDIA, "vm-enter_pass", None), f"/system_media/{MEDIA}"),
        ((None, MEDIA, None, "en-us"), f"/system_media/{MEDIA}"),
        ((None, "my prompt+1", None, None), "/system_media/my%20prompt%2B1"),
    ],
)
def test_media_name_for_gives_kazoos_canonical_name(
    record: tuple[str | None, str, str | None, str | None], name: str
) -> None:
    assert media_name_for(*record) == name


@pytest.mark.parametrize(
    ("record", "ref"),
    [
        ((ACCOUNT, MEDIA, None, None), MediaIdRef(ACCOUNT, MEDIA)),
        ((None, MEDIA, "vm-enter_pass", "en-us"), SystemPromptRef("en-us", "vm-enter_pass")),
        ((None, MEDIA, None, None), MediaIdRef(None, MEDIA)),
        ((None, "my prompt+1", None, None), MediaIdRef(None, "my prompt+1")),
    ],
)
def test_media_name_for_reads_back_through_the_parser(
    record: tuple[str | None, str, str | None, str | None], ref: MediaRef
) -> None:
    assert parse_media_name(media_name_for(*record)) == ref
