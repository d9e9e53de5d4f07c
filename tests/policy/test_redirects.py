"""Open-redirect corpus and table tests for post-login destinations."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.policy.redirects import MAX_DESTINATION_LENGTH, safe_destination

CORPUS = [
    line.rstrip("\n")
    for line in (Path(__file__).parent.parent / "data" / "open_redirects.txt").read_text("utf-8").splitlines()
    if line.strip()
]
ORIGIN = "https://mail.example.com"
DEFAULT = "/owa/"


def test_corpus_is_large() -> None:
    assert len(CORPUS) >= 100


@pytest.mark.parametrize("line", CORPUS)
@pytest.mark.parametrize("public_origin", [None, ORIGIN])
def test_hostile_destinations_yield_default(line: str, public_origin: str | None) -> None:
    # As oauth2-proxy's test does, also try each line decoded once (safe_destination decodes once more).
    for variant in {line, unquote(line)}:
        assert safe_destination(variant, public_origin=public_origin) == DEFAULT, variant
        assert safe_destination(variant, default="/x/", public_origin=public_origin) == "/x/", variant


CONTROL_VARIANTS = [
    "/\t/evil.example",
    "/\n/evil.example",
    "/\r/evil.example",
    "/\r\n/evil.example",
    "/\v\\evil.example",
    "/\x0c/evil.example",
    "/\x00/evil.example",
    "/owa/\x00",
    "/owa/\x7f",
    "/owa/\x85",
    "/owa/ x",
    "/owa/\u2028",
    "\t/owa/",
    "/owa/\n",
    "/owa/\u3000",
    "/\uff0fevil",
]


@pytest.mark.parametrize("value", CONTROL_VARIANTS)
def test_control_and_whitespace_variants_yield_default(value: str) -> None:
    assert safe_destination(value) == DEFAULT
    assert safe_destination(value, public_origin=ORIGIN) == DEFAULT


BENIGN = [
    "/owa/",
    "/owa/#path=/mail",
    "/owa/#path=/calendar",
    "/owa/?ae=Item&t=IPM.Note",
    "/owa/?ae=Item&a=Open&t=IPM.Note&id=RgAAAA%2bx%3d",
    "/ecp/?rfr=owa",
    "/ecp/?rfr=owa&p=PersonalSettings/Password.aspx",
    "/owa/?path=/mail",
    "/owa/alice@corp.example/",
    "/owa/My%20Folder/",
    "/",
    "/owa",
    "/javascript:alert(1)",
]


@pytest.mark.parametrize("value", BENIGN)
def test_benign_destinations_pass_unchanged(value: str) -> None:
    assert safe_destination(value) == value
    assert safe_destination(value, public_origin=ORIGIN) == value


@pytest.mark.parametrize("value", [None, ""])
def test_missing_destination_yields_default(value: str | None) -> None:
    assert safe_destination(value) == DEFAULT
    assert safe_destination(value, default="/owa/#path=/mail") == "/owa/#path=/mail"


def test_length_bound() -> None:
    at_bound = "/owa/" + "a" * (MAX_DESTINATION_LENGTH - 5)
    assert safe_destination(at_bound) == at_bound
    assert safe_destination(at_bound + "a") == DEFAULT


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://mail.example.com/owa/", "/owa/"),
        ("https://mail.example.com/owa/?ae=Item#path=/mail", "/owa/?ae=Item#path=/mail"),
        ("https://MAIL.Example.com:443/ecp/?rfr=owa", "/ecp/?rfr=owa"),
        ("HTTPS://mail.example.com", "/"),
        ("https://mail.example.com?x=1", "/?x=1"),
        ("https://mail.example.com//evil.example", DEFAULT),
        ("https://mail.example.com/%2f/evil.example", DEFAULT),
        ("https://mail.example.com/\\evil.example", DEFAULT),
        ("https://mail.example.com:99999/owa/", DEFAULT),
        ("https://mail.example.com:x/owa/", DEFAULT),
        ("https://[::1/owa/", DEFAULT),
    ],
)
def test_absolute_url_on_the_public_origin(value: str, expected: str) -> None:
    assert safe_destination(value, public_origin=ORIGIN) == expected
    assert safe_destination(value) == DEFAULT


def test_public_origin_with_explicit_port() -> None:
    origin = "https://mail.example.com:8443/"
    assert safe_destination("https://mail.example.com:8443/owa/", public_origin=origin) == "/owa/"
    assert safe_destination("https://mail.example.com/owa/", public_origin=origin) == DEFAULT
    assert safe_destination("http://mail.example.com:8443/owa/", public_origin=origin) == DEFAULT


def test_unusable_public_origin_accepts_no_absolute_url() -> None:
    assert safe_destination("https://mail.example.com/owa/", public_origin="") == DEFAULT
    assert safe_destination("https://mail.example.com/owa/", public_origin="mail.example.com") == DEFAULT


@given(st.text(max_size=60), st.sampled_from([None, ORIGIN]))
def test_result_is_default_or_a_safe_relative_path(value: str, public_origin: str | None) -> None:
    result = safe_destination(value, public_origin=public_origin)
    if result == DEFAULT:
        return
    assert result.startswith("/")
    assert not result.startswith("//")
    assert "\\" not in result
    assert result.isascii()
    assert all(0x21 <= ord(char) <= 0x7E for char in result)
    assert safe_destination(result) == result


def test_double_encoding_yields_default() -> None:
    assert safe_destination("/owa/?q=100%25") == DEFAULT
    assert safe_destination("/owa/%252e%252e/") == DEFAULT
