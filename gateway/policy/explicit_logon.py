"""Exchange's explicit-logon path confusion on Autodiscover (ProxyShell, ProxyNotShell), sans-IO.

Exchange's front end treats `/autodiscover/autodiscover.json?@host/<path>…&Email=autodiscover/
autodiscover.json%3F@host` as an explicit logon, cuts the self-reference out of the (decoded) URL
and proxies what is left (`/mapi/nspi`, `/powershell`, `/owa/…`) to the back end (CVE-2021-34473;
with a password alone, CVE-2022-41040). The gateway decides on `/autodiscover/`, an endpoint that
needs no second factor, while Exchange would serve another one: such a request is refused, whatever
Exchange's patch level.

The rule reads the request as IIS, ASP.NET and Exchange may, not as it was sent (`iis_reading`):
percent-encoding and IIS's `%uXXXX`, decoded again while anything changes (Exchange decodes what
IIS already decoded: the exploits' `%3F` is one round, `%253F` two), overlong UTF-8 (two, three or
four bytes), case (with
Unicode's foldings: `ſ` is `S` to .NET's case-insensitive compare), compatibility forms (fullwidth
`＠`, `／`, `．`) and Windows' best fit of other slashes, and backslashes as slashes. ASP.NET's
`Request.Params["Email"]` also reads cookies, so an `Email` cookie is read the same way, and form
bodies: none of these endpoints' clients posts a form (they post XML, JSON, WBXML, MAPI or RPC), so
a url-encoded or multipart body is refused rather than buffered and read.

Refused, on every endpoint that takes a password alone (Autodiscover, EWS, MAPI, RPC, OAB,
ActiveSync: Exchange's explicit-logon handling serves EWS and Autodiscover alike, and no client of
the others sends such a request):

- `autodiscover.json` or `powershell` anywhere in the query or an `Email` cookie;
- the request's own path (`ews/exchange.asmx`) in the query or an `Email` cookie: the self-reference
  that Exchange cuts out;
- an `@` followed anywhere later by a slash in the query or an `Email` cookie (`@evil/mapi/nspi`,
  also across `&`: no client puts a path after an address), or in the path below the vdir
  (`/autodiscover/autodiscover.json;@evil/mapi/nspi`; `…/v1.0/alice@corp.example` stays allowed);
- a query that still changes after `MAX_DECODE_ROUNDS` rounds of decoding (no client encodes
  anything four times).

`+` needs no reading of its own: as a space (ASP.NET's query decoding) or as itself (the URL that
Exchange cuts), it cannot form or break any of these markers.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from gateway.policy.paths import Target

__all__ = ["MAX_DECODE_ROUNDS", "autodiscover_path_confusion", "iis_reading"]

MAX_DECODE_ROUNDS = 4
# First path segments (lower case) of the endpoints that take a password without a second factor.
_PASSWORD_ONLY_APPS = frozenset({"autodiscover", "ews", "mapi", "rpc", "oab", "microsoft-server-activesync"})
_MARKERS = ("autodiscover.json", "powershell")
# Bodies ASP.NET parses into Request.Form (so into Request.Params, where Exchange reads `Email`).
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
_ESCAPE = re.compile(r"%(?:[uU]([0-9A-Fa-f]{4})|([0-9A-Fa-f]{2}))")
# Windows' best fit folds these into ASCII where NFKC does not (NFKC covers the fullwidth forms).
_BEST_FIT = str.maketrans({"\u2215": "/", "\u2044": "/", "\u29f8": "/", "\u29f5": "/", "\u29f9": "/", "\\": "/"})


def autodiscover_path_confusion(target: Target, email_cookies: Iterable[str] = (), content_type: str | None = None
                                ) -> bool:
    """True when a request to Autodiscover (or another endpoint that takes a password alone) has the
    explicit-logon confusion's shape, in its query, its path or the values of its `Email` cookies,
    or carries a body ASP.NET would read as a form (`content_type`: the request's header)."""
    app = target.lower_path[1:].partition("/")[0]
    if app.split(";", 1)[0] not in _PASSWORD_ONLY_APPS:
        return False
    if content_type is not None and content_type.strip().lower().startswith(_FORM_TYPES):
        return True
    path = iis_reading(target.path)
    if path is None or _slash_after_at(path, more=True):
        return True
    own_path = path.strip("/")
    for text in (target.query, *email_cookies):
        if not text:
            continue
        read = iis_reading(text)
        if read is None or any(marker in read for marker in _MARKERS) or _slash_after_at(read, more=False):
            return True
        if "/" in own_path and own_path in read:
            return True
    return False


def _slash_after_at(text: str, *, more: bool) -> bool:
    """An `@` with a `/` somewhere after it (and, with `more`, something after that slash).
    The first `@` decides: any later one has no slash after it that the first lacks. Linear, where
    a regex searched from every `@` would be quadratic in an 8 KiB target full of them."""
    at = text.find("@")
    if at < 0:
        return False
    slash = text.find("/", at)
    return slash >= 0 and (not more or slash + 1 < len(text))


def iis_reading(text: str) -> str | None:
    """`text` as IIS, ASP.NET and Exchange may read it, for matching: decoded (`%XX` as UTF-8,
    overlong forms included, and `%uXXXX`), NFKC, case-folded, best-fit slashes and backslashes as
    `/`, again and again until nothing changes; None when it still changes after MAX_DECODE_ROUNDS
    rounds."""
    for _ in range(MAX_DECODE_ROUNDS + 1):
        read = unicodedata.normalize("NFKC", _decode_once(text)).casefold().translate(_BEST_FIT)
        if read == text:
            return read
        text = read
    return None


def _decode_once(text: str) -> str:
    if "%" not in text:
        return text
    out: list[str] = []
    pending = bytearray()
    position = 0
    for escape in _ESCAPE.finditer(text):
        if escape.start() > position:
            out.append(_utf8(pending))
            pending.clear()
            out.append(text[position:escape.start()])
        if escape.group(1) is not None:
            out.append(_utf8(pending))
            pending.clear()
            out.append(chr(int(escape.group(1), 16)))
        else:
            pending.append(int(escape.group(2), 16))
        position = escape.end()
    out.append(_utf8(pending))
    out.append(text[position:])
    return "".join(out)


# Overlong UTF-8: a code point spelled with more bytes than it needs, in two, three or four bytes
# (`%C0%AF`, `%E0%80%AF` and `%F0%80%80%AF` are all `/` to a decoder that does not check).
_OVERLONG = re.compile(rb"[\xc0\xc1][\x80-\xbf]|\xe0[\x80-\x9f][\x80-\xbf]|\xf0[\x80-\x8f][\x80-\xbf]{2}")


def _shortest_form(found: re.Match[bytes]) -> bytes:
    lead, *continuation = found[0]
    value = lead & (0x1F if len(found[0]) == 2 else 0x0F if len(found[0]) == 3 else 0x07)
    for byte in continuation:
        value = (value << 6) | (byte & 0x3F)
    return chr(value).encode("utf-8", "surrogatepass")


def _utf8(data: bytearray) -> str:
    """UTF-8, with overlong forms read as the character they spell (old IIS did; a marker hidden
    that way must still be found); bytes that are not UTF-8 are read as Latin-1, which keeps every
    ASCII byte what it is."""
    if not data:
        return ""
    raw = _OVERLONG.sub(_shortest_form, bytes(data))
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")
