"""Canonical request targets: one string to decide on, the same string to forward.

Why: a gateway that authorises one spelling of a path and forwards another is bypassed. aiohttp's
``request.path`` is percent-decoded but not dot-normalised, yarl normalises dot segments on its own,
and IIS decodes ``%5c`` to a folder separator, strips trailing dots and spaces and ignores case. So the
raw request-target is either turned into one unambiguous canonical form here, or rejected with a
short, non-leaking reason (shown to the client and logged). Nothing here does I/O.
"""

from __future__ import annotations

import re
import string
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache

__all__ = ["MAX_TARGET_LENGTH", "BadTarget", "Target", "canonicalize"]

MAX_TARGET_LENGTH = 8 * 1024

_UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")
# RFC 3986 pchar without pct-encoded: these may stay literal; other printable ASCII gets encoded.
_LITERAL_PCHAR = _UNRESERVED | frozenset("!$&'()*+,;=:@")
_HEX_DIGITS = frozenset(string.hexdigits)
# Decoded non-ASCII is allowed only for letters, combining marks and decimal digits (names in other
# scripts); punctuation, symbols and separators are where the slash and dot lookalikes live.
_ALLOWED_NON_ASCII_CATEGORIES = frozenset({"Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Nd"})
# Anything outside visible ASCII in the raw target (raw UTF-8, controls, spaces) or a fragment.
_RAW_UNSAFE = re.compile(r"[^\x21-\x7e]|#")
# A segment made only of literal pchar characters is already canonical (the common case).
_PLAIN_SEGMENT = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@]*")


class BadTarget(ValueError):
    """The request-target cannot be canonicalised safely.

    ``reason`` is short and never echoes the target, so it is safe to show and to log.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Target:
    """A canonical origin-form request-target.

    ``path`` is the canonical path; ``query`` is the query without ``?`` (``""`` when none), kept
    byte for byte.
    """

    path: str
    query: str
    # The path lower-cased, for IIS's case-insensitive matching (computed once: every decision reads it).
    lower_path: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "lower_path", self.path.lower())

    @property
    def forward(self) -> str:
        """Exactly the request-target to send upstream."""
        return f"{self.path}?{self.query}" if self.query else self.path


def canonicalize(raw_target: str) -> Target:
    """Canonicalise a raw request-target (aiohttp ``request.raw_path``) or raise :class:`BadTarget`.

    Accepted: origin-form only (``/`` first, not ``//``), at most ``MAX_TARGET_LENGTH`` characters,
    visible ASCII only, no ``#``.

    Path rules, per segment:

    - rejected: ``//``; literal ``\\``; ``%2F`` / ``%5C`` (encoded slash and backslash); ``%25``
      (double encoding); ``%u`` escapes (legacy IIS); malformed escapes; encoded control characters;
      decoded bytes that are not strict UTF-8 (overlong forms such as ``%C0%AE`` included);
    - rejected: a segment that, fully decoded and cut at its first ``;`` (Tomcat-style parameters),
      is made only of dots and spaces (``.``, ``..``, ``..;``, ``%2e.``, ``...``) and any segment ending
      in a dot or a space (Windows strips those, so ``/owa./`` would reach IIS as ``/owa/``);
    - decoded non-ASCII is allowed only for letters, combining marks and decimal digits, and only when
      the segment is stable under NFKC: this rejects C1 controls, format characters and lookalikes
      such as U+FF0F, U+FF3C, U+2215, U+FE68, U+2024 and fullwidth letters, which some servers fold
      into ASCII;
    - escapes of unreserved characters (ALPHA / DIGIT / ``-._~``) are decoded; all other escapes are
      kept with upper-case hex; literal printable ASCII outside RFC 3986 ``pchar`` is percent-encoded.

    The query is kept byte for byte (controls, raw non-ASCII and ``#`` are already rejected above).
    The result is idempotent: ``canonicalize(t.forward) == t``.
    """
    if len(raw_target) > MAX_TARGET_LENGTH:
        raise BadTarget("too long")
    unsafe = _RAW_UNSAFE.search(raw_target)
    if unsafe is not None:
        raise BadTarget(_raw_reason(unsafe.group()))
    if not raw_target.startswith("/") or raw_target.startswith("//"):
        raise BadTarget("not origin-form")
    path, _, query = raw_target.partition("?")
    if len(path) > CACHED_PATH_LENGTH:
        return Target(_canonical_path(path), query)
    without_query = _cached_path_target(path)
    return Target(without_query.path, query) if query else without_query


# A browser asks for the same few hundred paths again and again, and the same raw path always has
# the same canonical form (or the same rejection, which is not cached): remember recent ones. Keyed
# by the exact raw path; bounded in entries and in key length, so varied paths only evict.
CACHED_PATH_LENGTH = 256
CACHED_PATHS = 4096


@lru_cache(maxsize=CACHED_PATHS)
def _cached_path_target(path: str) -> Target:
    return Target(_canonical_path(path), "")


def _canonical_path(path: str) -> str:
    if "//" in path:
        raise BadTarget("double slash")
    segments = path[1:].split("/")
    return "/" + "/".join(_canonical_segment(segment) for segment in segments)


def _raw_reason(char: str) -> str:
    if char == "#":
        return "fragment"
    if char == " ":
        return "whitespace"
    if ord(char) < 0x20 or ord(char) == 0x7F:
        return "control character"
    return "non-ASCII"


def _canonical_segment(segment: str) -> str:
    if _PLAIN_SEGMENT.fullmatch(segment):
        _check_decoded_segment(segment)
        return segment
    canonical: list[str] = []
    decoded = bytearray()
    index = 0
    while index < len(segment):
        char = segment[index]
        if char == "%":
            byte, escape = _parse_escape(segment, index)
            decoded.append(byte)
            canonical.append(chr(byte) if chr(byte) in _UNRESERVED else escape)
            index += 3
            continue
        if char == "\\":
            raise BadTarget("backslash")
        decoded.append(ord(char))
        canonical.append(char if char in _LITERAL_PCHAR else f"%{ord(char):02X}")
        index += 1
    try:
        text = decoded.decode("utf-8")
    except UnicodeDecodeError:
        raise BadTarget("bad UTF-8") from None
    _check_decoded_segment(text)
    return "".join(canonical)


def _parse_escape(segment: str, index: int) -> tuple[int, str]:
    """Return the byte and its normalised ``%XX`` form for the escape at ``segment[index]``."""
    digits = segment[index + 1 : index + 3]
    if digits[:1] in ("u", "U"):
        raise BadTarget("%u encoding")
    if len(digits) != 2 or not all(digit in _HEX_DIGITS for digit in digits):
        raise BadTarget("bad percent-encoding")
    byte = int(digits, 16)
    if byte == 0x2F:
        raise BadTarget("encoded slash")
    if byte == 0x5C:
        raise BadTarget("encoded backslash")
    if byte == 0x25:
        raise BadTarget("double encoding")
    if byte < 0x20 or byte == 0x7F:
        raise BadTarget("control character")
    return byte, "%" + digits.upper()


def _check_decoded_segment(text: str) -> None:
    if not text.isascii():
        for char in text:
            if char.isascii():
                continue
            category = unicodedata.category(char)
            if category == "Cc":
                raise BadTarget("control character")
            if category not in _ALLOWED_NON_ASCII_CATEGORIES:
                raise BadTarget("disallowed character")
        if unicodedata.normalize("NFKC", text) != text:
            raise BadTarget("disallowed character")
    name = text.split(";", 1)[0]
    if "." in name and not name.strip(". "):
        raise BadTarget("dot segment")
    if name.endswith((".", " ")) or text.endswith((".", " ")):
        raise BadTarget("trailing dot or space")
