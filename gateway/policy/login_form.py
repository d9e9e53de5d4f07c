"""Read the username from Exchange's forms-login POST (`/owa/auth.owa`, `/owa/auth/owaauth.dll`), sans-IO.

The gateway must learn who is signing in from the very bytes Exchange will read, so this parser is
strict where a lenient one could be made to disagree with Exchange (request desynchronisation:
the gateway sees `alice`, Exchange signs in `bob`):

- The body must be `application/x-www-form-urlencoded`, with no parameter other than
  `charset=utf-8`. Exchange treats a missing Content-Type as url-encoded; we refuse it instead,
  because nothing a browser sends lacks it and guessing is how parsers drift apart.
- The body is decoded the way ASP.NET's form decoder (`HttpValueCollection.FillFromEncodedBytes`
  with `HttpUtility.UrlDecode`) does: split on `&`, split each field on its first `=`, then in names
  and values `+` is a space and `%XX` a byte; bytes are UTF-8. So `%2B` is a literal `+`, and
  `user%6Eame` *is* the `username` field. ASP.NET also decodes `%uXXXX` and leaves malformed `%`
  sequences as they are; we refuse both, as no browser produces them.
- Field names are compared case-insensitively (ASP.NET's form collection is), and a field that
  Exchange reads (or that carries a credential) may appear only once: ASP.NET would join repeated
  values with commas (`alice,bob`).
- Credentials in the query string are refused: `Request[...]` in ASP.NET also looks there.

The password is decoded only to check its encoding; it is never kept, returned or put in an error.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import unquote_to_bytes

# The caller reads at most this many body bytes (413 beyond); an Exchange logon form is < 1 KiB.
MAX_LOGIN_BODY = 16 * 1024
# Longest username accepted (a UPN is at most a few hundred characters in practice).
MAX_USERNAME_LENGTH = 256

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
# Fields that must not repeat: those Exchange reads, plus every field that carries a credential.
# Upper case, as ASP.NET compares names (see `aspnet_key`).
SINGLE_FIELDS = frozenset({"USERNAME", "PASSWORD", "DESTINATION", "FLAGS", "FORCEDOWNLEVEL", "PASSWORDTEXT", "ISUTF8"})
# Keys whose presence in the query string means credentials in a URL (logged by every proxy on the way).
CREDENTIAL_QUERY_KEYS = frozenset({"USERNAME", "PASSWORD", "PASSWORDTEXT"})

# A `%` not followed by two hex digits: malformed, or ASP.NET's `%uXXXX` (`u` is not a hex digit).
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
# Unicode categories refused in a username: controls, invisible format characters (bidi overrides,
# zero-width characters) and line/paragraph separators. They make `alice` and `alice\u200b` look alike.
_REFUSED_USERNAME_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})


class RefusalReason(StrEnum):
    CONTENT_TYPE = "content_type"  # not url-encoded UTF-8 (multipart, JSON, other charset, missing)
    TOO_LARGE = "too_large"  # over MAX_LOGIN_BODY: the caller answers 413
    MALFORMED = "malformed"  # a field without "=", bad percent-encoding, bad UTF-8
    DUPLICATE_FIELD = "duplicate_field"
    CREDENTIALS_IN_QUERY = "credentials_in_query"
    MISSING_USERNAME = "missing_username"
    BAD_USERNAME = "bad_username"  # control or invisible characters, or too long


class LoginFormRefused(Exception):
    """The login POST cannot be read exactly as Exchange would read it; answer 400 (413 for TOO_LARGE)."""

    def __init__(self, reason: RefusalReason, field: str | None = None) -> None:
        # Only the reason and a field *name* (never a value) go into the message and the logs.
        super().__init__(reason.value if field is None else f"{reason.value}: {field}")
        self.reason = reason
        self.field = field


@dataclass(frozen=True, slots=True)
class LoginForm:
    username: str  # exactly as typed (decoded), not normalised: see gateway.policy.users
    destination: str | None  # as posted; validate it before redirecting anywhere
    flags: int  # Exchange's `flags`: bit 4 = private computer; a non-number reads as 0, as in Exchange


def parse_login_form(content_type: str | None, body: bytes, query: str) -> LoginForm:
    """Return the username (and destination, flags) of a login POST, or raise LoginFormRefused."""
    if len(body) > MAX_LOGIN_BODY:
        raise LoginFormRefused(RefusalReason.TOO_LARGE)
    if not is_form_content_type(content_type):
        raise LoginFormRefused(RefusalReason.CONTENT_TYPE)
    credential_key = credentials_in_query(query)
    if credential_key is not None:
        raise LoginFormRefused(RefusalReason.CREDENTIALS_IN_QUERY, credential_key)

    fields: dict[str, str] = {}
    for name, value in _decode_fields(body):
        key = aspnet_key(name)
        if key in SINGLE_FIELDS:
            if key in fields:
                raise LoginFormRefused(RefusalReason.DUPLICATE_FIELD, key.lower())
            # The password is decoded (to refuse bad encodings) but not kept.
            fields[key] = "" if key in ("PASSWORD", "PASSWORDTEXT") else value

    username = fields.get("USERNAME")
    return LoginForm(username=_checked_username(username), destination=fields.get("DESTINATION"),
                     flags=_exchange_int(fields.get("FLAGS")))


# Exchange's expired-password page (`/owa/auth/expiredpassword.aspx`): the account is the form's
# `username`, proven by `oldPwd`; `newPwd` and `conf` carry the new one.
PASSWORD_CHANGE_FIELDS = frozenset({"USERNAME", "OLDPWD", "NEWPWD", "CONF", "DESTINATION"})
PASSWORD_CHANGE_SECRETS = frozenset({"OLDPWD", "NEWPWD", "CONF"})
PASSWORD_CHANGE_QUERY_KEYS = CREDENTIAL_QUERY_KEYS | PASSWORD_CHANGE_SECRETS


def parse_password_change_form(content_type: str | None, body: bytes, query: str) -> str:
    """The `username` of a password-change POST, read by the login form's rules (the same strict
    decoding, no repeated field Exchange reads, no credential in the query), or LoginFormRefused.
    The passwords are decoded only to refuse what Exchange would read differently; never kept."""
    if len(body) > MAX_LOGIN_BODY:
        raise LoginFormRefused(RefusalReason.TOO_LARGE)
    if not is_form_content_type(content_type):
        raise LoginFormRefused(RefusalReason.CONTENT_TYPE)
    credential_key = credentials_in_query(query, PASSWORD_CHANGE_QUERY_KEYS)
    if credential_key is not None:
        raise LoginFormRefused(RefusalReason.CREDENTIALS_IN_QUERY, credential_key)
    seen: set[str] = set()
    username: str | None = None
    for name, value in _decode_fields(body):
        key = aspnet_key(name)
        if key in PASSWORD_CHANGE_FIELDS:
            if key in seen:
                raise LoginFormRefused(RefusalReason.DUPLICATE_FIELD, key.lower())
            seen.add(key)
            if key == "USERNAME":
                username = value
    return _checked_username(username)


def _checked_username(username: str | None) -> str:
    if username is None or not username.strip():
        raise LoginFormRefused(RefusalReason.MISSING_USERNAME)
    if len(username) > MAX_USERNAME_LENGTH or any(
        unicodedata.category(char) in _REFUSED_USERNAME_CATEGORIES for char in username
    ):
        raise LoginFormRefused(RefusalReason.BAD_USERNAME)
    return username


def aspnet_key(name: str) -> str:
    """A field name as ASP.NET's case-insensitive collections compare it (`OrdinalIgnoreCase`).

    That is a character-by-character upper-casing, so `uſername` (long s) is `USERNAME` to Exchange,
    while `paßword` is not `PASSWORD` (Python's `upper()` would expand `ß` to `SS`).
    """
    return "".join(upper if len(upper := char.upper()) == 1 else char for char in name)


def is_form_content_type(content_type: str | None) -> bool:
    """`application/x-www-form-urlencoded`, optionally with `charset=utf-8` and nothing else."""
    if content_type is None:
        return False
    media_type, *parameters = content_type.split(";")
    if media_type.strip().lower() != FORM_CONTENT_TYPE:
        return False
    if parameters and not parameters[-1].strip():
        parameters.pop()  # a trailing ";" is harmless
    for parameter in parameters:
        name, sep, value = parameter.partition("=")
        if not sep or name.strip().lower() != "charset":
            return False
        if value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            return False
    return True


def credentials_in_query(query: str, keys: frozenset[str] = CREDENTIAL_QUERY_KEYS) -> str | None:
    """The first of `keys` in the query string (decoded as ASP.NET would), or None."""
    for piece in query.split("&"):
        key = aspnet_key(_lenient_decode(piece.partition("=")[0]))
        if key in keys:
            return key.lower()
    return None


def _decode_fields(body: bytes) -> list[tuple[str, str]]:
    """Decode a url-encoded body as ASP.NET does, refusing whatever it would read differently."""
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError:
        text = None  # raw non-ASCII bytes: a browser percent-encodes them
    if text is None:
        raise LoginFormRefused(RefusalReason.MALFORMED)
    fields: list[tuple[str, str]] = []
    for piece in text.split("&"):
        if not piece:
            continue  # `a=1&&b=2` or a trailing `&`: ASP.NET adds an unnamed empty value, ignored by all
        name, sep, value = piece.partition("=")
        if not sep:
            raise LoginFormRefused(RefusalReason.MALFORMED)
        decoded_name, decoded_value = _strict_decode(name), _strict_decode(value)
        if decoded_name is None or decoded_value is None:
            raise LoginFormRefused(RefusalReason.MALFORMED)
        fields.append((decoded_name, decoded_value))
    return fields


def _strict_decode(text: str) -> str | None:
    """`+` → space, `%XX` → byte, UTF-8; None for `%uXXXX`, a stray `%`, or bytes that are not UTF-8."""
    if _BAD_ESCAPE.search(text):
        return None
    try:
        return unquote_to_bytes(text.replace("+", " ")).decode("utf-8")
    except UnicodeDecodeError:
        return None  # returned rather than raised here, so no exception carries the undecodable bytes


def _lenient_decode(text: str) -> str:
    """ASP.NET's own decoder, leniency included, for spotting keys in the query string.

    One pass, like `HttpUtility.UrlDecode`: `+` is a space, `%XX` a byte, `%uXXXX` a character, and a
    `%` that starts neither is kept literally. Bytes are UTF-8 (undecodable ones become U+FFFD).
    """
    out: list[str] = []
    pending = bytearray()
    i, length = 0, len(text)
    while i < length:
        char = text[i]
        if char == "%" and text[i + 1:i + 2] in ("u", "U") and _is_hex(text[i + 2:i + 6], 4):
            out.append(pending.decode("utf-8", "replace"))
            pending.clear()
            out.append(chr(int(text[i + 2:i + 6], 16)))
            i += 6
            continue
        if char == "%" and _is_hex(text[i + 1:i + 3], 2):
            pending.append(int(text[i + 1:i + 3], 16))
            i += 3
            continue
        pending.extend(b" " if char == "+" else char.encode("utf-8", "surrogatepass"))
        i += 1
    out.append(pending.decode("utf-8", "replace"))
    return "".join(out)


def _is_hex(text: str, length: int) -> bool:
    return len(text) == length and all(char in "0123456789abcdefABCDEF" for char in text)


def _exchange_int(value: str | None) -> int:
    """Exchange parses `flags` as an int and reads anything else as 0."""
    if value is None:
        return 0
    text = value.strip()
    if not re.fullmatch(r"[+-]?[0-9]{1,9}", text):
        return 0
    return int(text)
