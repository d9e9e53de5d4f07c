"""Table and property tests for request-target canonicalisation."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.policy.paths import CACHED_PATH_LENGTH, MAX_TARGET_LENGTH, BadTarget, Target, canonicalize

HOSTILE: list[tuple[str, str]] = [
    # dot segments, literal and encoded, every case and mix
    ("/owa/../ecp/", "dot segment"),
    ("/owa/./auth/logon.aspx", "dot segment"),
    ("/owa/%2e%2e/ecp/", "dot segment"),
    ("/owa/%2E%2E/ecp/", "dot segment"),
    ("/owa/%2e%2E/ecp/", "dot segment"),
    ("/owa/.%2e/ecp/", "dot segment"),
    ("/owa/%2e./ecp/", "dot segment"),
    ("/owa/%2e/auth/", "dot segment"),
    ("/owa/auth/..", "dot segment"),
    ("/owa/auth/.", "dot segment"),
    ("/owa/auth/..;/x", "dot segment"),
    ("/owa/auth/..;jsessionid=1/x", "dot segment"),
    ("/owa/auth/..%3b/x", "dot segment"),
    ("/owa/auth/..%3B/x", "dot segment"),
    ("/owa/auth/.%3b/x", "dot segment"),
    ("/owa/auth/.../x", "dot segment"),
    ("/owa/auth/..%20/x", "dot segment"),
    ("/..", "dot segment"),
    # Windows strips trailing dots and spaces from names
    ("/owa./", "trailing dot or space"),
    ("/ecp%20/", "trailing dot or space"),
    ("/owa/auth./logon.aspx", "trailing dot or space"),
    # slashes
    ("//evil.example/x", "not origin-form"),
    ("/owa//ecp/", "double slash"),
    ("/owa/auth//", "double slash"),
    ("/owa%2fauth/x", "encoded slash"),
    ("/owa%2Fauth/x", "encoded slash"),
    ("/owa/auth/..%2f..%2fecp", "encoded slash"),
    ("/owa/auth/%5c..%5cx", "encoded backslash"),
    ("/owa/auth/%5C", "encoded backslash"),
    ("/owa/auth/\\..\\x", "backslash"),
    ("/owa\\ecp", "backslash"),
    # double and legacy encodings, malformed escapes
    ("/owa/auth%252f..%252fx", "double encoding"),
    ("/owa/%252e%252e/ecp", "double encoding"),
    ("/owa/%u002e%u002e/x", "%u encoding"),
    ("/owa/%U002E/x", "%u encoding"),
    ("/owa/%zz/x", "bad percent-encoding"),
    ("/owa/%2", "bad percent-encoding"),
    ("/owa/%", "bad percent-encoding"),
    ("/owa/%g0", "bad percent-encoding"),
    # NUL and control characters, raw and encoded, C1 once decoded
    ("/owa/auth/x%00.js", "control character"),
    ("/owa/auth/x%0d%0aSet-Cookie:x", "control character"),
    ("/owa/auth/x%09", "control character"),
    ("/owa/auth/x%7f", "control character"),
    ("/owa/auth/x%C2%85", "control character"),
    ("/owa/auth/x%C2%9B", "control character"),
    ("/owa/auth/x\x00.js", "control character"),
    ("/owa/\tauth", "control character"),
    ("/owa/\x7f", "control character"),
    ("/owa/auth x", "whitespace"),
    # bad UTF-8 and overlong lookalikes
    ("/owa/%C0%AE%C0%AE/ecp", "bad UTF-8"),
    ("/owa/%C0%AF", "bad UTF-8"),
    ("/owa/%E0%80%AF", "bad UTF-8"),
    ("/owa/%ED%A0%80", "bad UTF-8"),
    ("/owa/%FF", "bad UTF-8"),
    ("/owa/%C3", "bad UTF-8"),
    ("/owa/%C3a", "bad UTF-8"),
    # fullwidth and other lookalikes, decoded
    ("/owa/%EF%BC%8Fevil", "disallowed character"),  # U+FF0F fullwidth solidus
    ("/owa/%EF%BC%BCevil", "disallowed character"),  # U+FF3C fullwidth reverse solidus
    ("/owa/%E2%88%95evil", "disallowed character"),  # U+2215 division slash
    ("/owa/%EF%B9%A8evil", "disallowed character"),  # U+FE68 small reverse solidus
    ("/owa/%E2%80%A4%E2%80%A4/ecp", "disallowed character"),  # U+2024 one dot leader
    ("/owa/%EF%BC%8E%EF%BC%8E/ecp", "disallowed character"),  # U+FF0E fullwidth full stop
    ("/%EF%BD%8F%EF%BD%97%EF%BD%81/", "disallowed character"),  # fullwidth "owa" letters fold to ASCII
    ("/owa/%E2%80%8B", "disallowed character"),  # zero-width space
    ("/owa/%C2%A0", "disallowed character"),  # no-break space
    ("/owa/e%CC%81", "disallowed character"),  # decomposed é is not NFKC-stable
    # raw non-ASCII
    ("/owa/／evil", "non-ASCII"),
    ("/owa/é", "non-ASCII"),
    ("/owa/?q=é", "non-ASCII"),
    # fragments, forms, length
    ("/owa/#/../ecp", "fragment"),
    ("/owa/?x=1#frag", "fragment"),
    ("http://evil.example/owa/", "not origin-form"),
    ("evil.example:443", "not origin-form"),
    ("*", "not origin-form"),
    ("", "not origin-form"),
    ("/owa/?a=\x01", "control character"),
    ("/" + "a" * MAX_TARGET_LENGTH, "too long"),
]

BENIGN: list[tuple[str, Target]] = [
    ("/", Target("/", "")),
    ("/owa", Target("/owa", "")),
    ("/owa/", Target("/owa/", "")),
    (
        "/owa/auth/logon.aspx?url=https%3a%2f%2fmail.example%2fowa%2f&reason=0",
        Target("/owa/auth/logon.aspx", "url=https%3a%2f%2fmail.example%2fowa%2f&reason=0"),
    ),
    (
        "/owa/auth/15.2.1118/themes/resources/favicon.ico",
        Target("/owa/auth/15.2.1118/themes/resources/favicon.ico", ""),
    ),
    (
        "/owa/service.svc?action=GetFolder&EP=1&ID=-1&AC=1",
        Target("/owa/service.svc", "action=GetFolder&EP=1&ID=-1&AC=1"),
    ),
    (
        "/Microsoft-Server-ActiveSync?Cmd=Ping&User=x&DeviceId=y&DeviceType=z",
        Target("/Microsoft-Server-ActiveSync", "Cmd=Ping&User=x&DeviceId=y&DeviceType=z"),
    ),
    ("/owa/alice@corp.example/", Target("/owa/alice@corp.example/", "")),
    ("/owa/My%20Files/report%20q1.pdf", Target("/owa/My%20Files/report%20q1.pdf", "")),
    ("/owa/%7euser/%41bc", Target("/owa/~user/Abc", "")),  # unreserved escapes decoded
    ("/owa/a%3bb/%3f%23", Target("/owa/a%3Bb/%3F%23", "")),  # other escapes upper-cased, kept
    ("/owa/a|b^c", Target("/owa/a%7Cb%5Ec", "")),  # non-pchar ASCII encoded
    ("/owa/caf%C3%A9/%E6%97%A5%E6%9C%AC", Target("/owa/caf%C3%A9/%E6%97%A5%E6%9C%AC", "")),
    ("/owa/.well-known/x", Target("/owa/.well-known/x", "")),
    ("/owa/a..b/x.y", Target("/owa/a..b/x.y", "")),
    ("/owa/?", Target("/owa/", "")),
    ("/owa/?a=1?b=/../", Target("/owa/", "a=1?b=/../")),
    ("/owa/;x=1", Target("/owa/;x=1", "")),
    ("/EWS/Exchange.asmx", Target("/EWS/Exchange.asmx", "")),
    (
        "/autodiscover/autodiscover.json?@evil.example/mapi/nspi",
        Target("/autodiscover/autodiscover.json", "@evil.example/mapi/nspi"),
    ),
]


@pytest.mark.parametrize(("raw", "reason"), HOSTILE)
def test_hostile_targets_are_rejected_with_reason(raw: str, reason: str) -> None:
    with pytest.raises(BadTarget) as excinfo:
        canonicalize(raw)
    assert excinfo.value.reason == reason
    assert str(excinfo.value) == reason


def test_hostile_table_is_large() -> None:
    assert len(HOSTILE) >= 40


@pytest.mark.parametrize(("raw", "expected"), BENIGN)
def test_benign_targets_canonicalise(raw: str, expected: Target) -> None:
    target = canonicalize(raw)
    assert target == expected
    assert canonicalize(target.forward) == target


def test_forward_and_lower_path() -> None:
    target = canonicalize("/OWA/Auth/LOGON.ASPX?Replace=1")
    assert target.forward == "/OWA/Auth/LOGON.ASPX?Replace=1"
    assert target.lower_path == "/owa/auth/logon.aspx"
    assert canonicalize("/owa/").forward == "/owa/"


def test_reason_never_echoes_the_target() -> None:
    with pytest.raises(BadTarget) as excinfo:
        canonicalize("/owa/secret-token-123/%2e%2e/")
    assert "secret" not in str(excinfo.value)


def test_target_at_the_length_bound_is_accepted() -> None:
    raw = "/" + "a" * (MAX_TARGET_LENGTH - 1)
    assert canonicalize(raw).path == raw


# Properties -----------------------------------------------------------------------------------------

_PIECES = st.sampled_from(
    [
        "/",
        "//",
        ".",
        "..",
        "%2e",
        "%2E",
        "%2f",
        "%5c",
        "%25",
        "%u002e",
        "%00",
        "%0a",
        "%7f",
        "%20",
        "%3b",
        ";",
        "?",
        "#",
        "\\",
        "%C0%AE",
        "%C3%A9",
        "%EF%BC%8F",
        "%e2%80%a4",
        "%41",
        "%7e",
        "%zz",
        "%",
        "owa",
        "auth",
        "a",
        "Z",
        "~",
        "-",
        "_",
        "@",
        ":",
        "|",
        "=",
        "&",
        " ",
        "\t",
        "é",
        "％",
    ]
)
_TARGETS = st.one_of(
    st.lists(_PIECES, max_size=12).map("".join),
    st.lists(_PIECES, max_size=12).map(lambda pieces: "/" + "".join(pieces)),
    st.text(max_size=40),
    st.text(max_size=40).map(lambda text: "/" + text),
)


def _canonical_or_none(raw: str) -> Target | None:
    try:
        return canonicalize(raw)
    except BadTarget:
        return None


@given(_TARGETS)
def test_only_bad_target_is_raised_and_result_is_idempotent(raw: str) -> None:
    target = _canonical_or_none(raw)
    if target is not None:
        assert canonicalize(target.forward) == target


@given(_TARGETS)
def test_canonical_path_has_no_ambiguity(raw: str) -> None:
    target = _canonical_or_none(raw)
    if target is None:
        return
    path = target.path
    assert path.startswith("/")
    assert "//" not in path
    assert "\\" not in path
    assert all(0x21 <= ord(char) <= 0x7E for char in target.forward)
    for segment in path.split("/"):
        assert segment.split(";", 1)[0] not in (".", "..")
    lowered = path.lower()
    for forbidden in ("%2f", "%5c", "%25", "%00", "%2e"):
        assert forbidden not in lowered


@given(_TARGETS)
def test_a_repeated_target_gets_the_same_answer(raw: str) -> None:
    # The second call may be answered from the cache of recent paths: same target, same rejection.
    first, second = _canonical_or_none(raw), _canonical_or_none(raw)
    assert first == second
    if first is not None:
        assert second is not None
        assert (first.lower_path, first.forward) == (second.lower_path, second.forward)


@pytest.mark.parametrize("length", [CACHED_PATH_LENGTH - 10, CACHED_PATH_LENGTH + 10])
def test_paths_on_both_sides_of_the_cache_bound(length: int) -> None:
    prefix = "/owa/" + "a" * (length - len("/owa/"))
    for _ in range(2):
        assert canonicalize(prefix + "/%41b?x=1") == Target(prefix + "/Ab", "x=1")
        with pytest.raises(BadTarget, match="dot segment"):
            canonicalize(prefix + "/%2e%2e/secret")
