"""The request's `Cookie` header, read as one list of RFC 6265 cookie pairs (sans-IO).

Every reader of the header (the gateway's session cookie, the cadata binding, the pairs that go
upstream) must read the very pairs the others read, and so must every parser between the gateway
and Exchange's code (a load balancer, a WAF, IIS, ASP.NET, a future Exchange build). They would
not on a pair that one parser splits or trims and another does not:

- ASP.NET trims each pair with .NET's `String.Trim`, which, with the header decoded in a single-byte
  code page, also removes NBSP (0xA0) and NEL (0x85): `\\xa0cadata=…` is `cadata` to Exchange;
- lenient readers split a value at spaces, tabs or commas (RFC 2109/2965 style), or read a backslash
  or a double quote as the start of an escape: `PBack=0 cadata=EVE` is one pair to a strict reader
  and two to them.

So a pair counts, and travels upstream, only when it is exactly RFC 6265's `cookie-pair` (section
4.2.1): a token name, `=`, and a value of cookie-octets (`%x21 / %x23-2B / %x2D-3A / %x3C-5B /
%x5D-7E`: no space, tab, comma, semicolon, backslash, double quote, control or non-ASCII), or such a
value in double quotes. No reader can find a second pair inside such a pair, nor trim it into
another name. Pairs are separated by `;`; the spaces and tabs around a pair are not part of it
(browsers send `; `, and neither byte can occur inside a pair, so removing them cannot join or
split pairs). The header the gateway forwards is rebuilt from the pairs it read, joined with `; `,
so what goes upstream is exactly what the binding check read and nothing else. Anything else is
dropped (`RequestCookies.dropped` says why), never forwarded: refusing the request instead would
lock a user out of Exchange over a malformed cookie that some other application on the domain set
(OWA's own logon page sets `logondata=…lgn=CORP\\alice`, backslash included).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from enum import StrEnum

from aiohttp import web

__all__ = ["CookieDrop", "RequestCookies", "cookie_name", "parse_cookie_headers", "request_cookies"]

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# RFC 6265 cookie-octet, as bytes for `bytes.translate(None, delete)`: a value is made of them when
# nothing is left once they are deleted (a C loop over the bytes; cadata is a kilobyte and more).
_COOKIE_OCTETS = bytes([0x21, *range(0x23, 0x2C), *range(0x2D, 0x3B), *range(0x3C, 0x5C), *range(0x5D, 0x7F)])
_OCTETS_SEMICOLON_SPACE = _COOKIE_OCTETS + b"; "
_PAIR_SPACE = " \t"
# Inside a dropped piece: a byte outside the grammar, then something a lenient reader would take
# for a pair of its own (`PBack=0 cadata=…`, `x=1,cadata=…`, `\xa0cadata=…`, `a=b\cadata=…`).
_HIDDEN_PAIR = re.compile(r"[^\x21\x23-\x2B\x2D-\x3A\x3C-\x5B\x5D-\x7E][!#$%&'*+\-.^_`|~0-9A-Za-z]+[ \t]*=")


class CookieDrop(StrEnum):
    """Why a piece of the Cookie header is not a pair (the most telling reason first)."""

    HIDDEN_PAIR = "hidden_pair"  # another `name=` inside, after a byte some readers split on
    BAD_NAME = "bad_name"        # the name is not a token (padding, spaces around `=`, non-ASCII)
    BAD_VALUE = "bad_value"      # the value holds a byte outside cookie-octet (`logondata=…CORP\\alice`)
    NO_VALUE = "no_value"        # no `=` at all

    @property
    def audited(self) -> bool:
        """Worth an audit event: the piece is shaped to be read as a pair by someone. A value that
        merely holds a stray byte is what ordinary applications set, on every request."""
        return self in (CookieDrop.HIDDEN_PAIR, CookieDrop.BAD_NAME)


def cookie_name(pair: str) -> str | None:
    """The lower-cased name of one `;`-separated piece of a Cookie header when the piece is a
    cookie-pair (spaces and tabs around it aside), else None: such a piece is no cookie at all."""
    piece = pair.strip(_PAIR_SPACE)
    separator = piece.find("=")
    if separator <= 0 or _TOKEN.fullmatch(piece, 0, separator) is None or not _is_cookie_value(piece[separator + 1:]):
        return None
    return piece[:separator].lower()


def _is_cookie_value(value: str) -> bool:
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        value = value[1:-1]
    return value.isascii() and not value.encode("ascii").translate(None, _COOKIE_OCTETS)


def _drop_reason(piece: str) -> CookieDrop:
    separator = piece.find("=")
    if separator < 0:
        return CookieDrop.NO_VALUE
    if _HIDDEN_PAIR.search(piece) is not None:
        return CookieDrop.HIDDEN_PAIR
    if separator == 0 or _TOKEN.fullmatch(piece, 0, separator) is None:
        return CookieDrop.BAD_NAME
    return CookieDrop.BAD_VALUE


class RequestCookies:
    """A request's `Cookie` header(s), parsed once into its cookie-pairs (see the module's rule).

    A signed-in browser sends a kilobyte and more of cadata* on every request, and three readers
    want it (the gateway's session cookie, the cadata binding, the pairs that go upstream): they
    share this one parse instead of each cutting the header up again, and the header that goes
    upstream is rebuilt from it (`forwarded`).
    """

    __slots__ = ("_pairs", "dropped")

    def __init__(self, cookie_headers: Iterable[str]) -> None:
        pairs: list[tuple[str, str, str]] = []  # (lower-cased name, name as sent, the pair as sent)
        dropped: list[CookieDrop] = []
        for header in cookie_headers:
            # What browsers send: pairs of cookie-octets joined by `; `. One pass over the whole
            # header finds the few other bytes (a backslash in OWA's `logondata`, say); a piece
            # without any of them needs only its name and spaces checked.
            strays: tuple[str, ...] | None = None
            if header.isascii():
                strays = tuple(set(header.encode("ascii").translate(None, _OCTETS_SEMICOLON_SPACE).decode("ascii")))
            for piece in header.split(";"):
                if strays is not None and not (strays and any(stray in piece for stray in strays)):
                    pair = piece[1:] if piece[:1] == " " else piece
                    separator = pair.find("=")
                    if separator > 0 and " " not in pair and _TOKEN.fullmatch(pair, 0, separator) is not None:
                        name = pair[:separator]
                        pairs.append((name.lower(), name, pair))
                        continue
                pair = piece.strip(_PAIR_SPACE)
                if not pair:
                    continue  # `a=1;;b=2`, a trailing `;`: no pair there for anyone
                separator = pair.find("=")  # not partition: the value (often a kilobyte of cadata) is not copied
                if (separator > 0 and _TOKEN.fullmatch(pair, 0, separator) is not None
                        and _is_cookie_value(pair[separator + 1:])):
                    name = pair[:separator]
                    pairs.append((name.lower(), name, pair))
                else:
                    dropped.append(_drop_reason(pair))
        self._pairs = pairs
        self.dropped: tuple[CookieDrop, ...] = tuple(dropped)

    def audit_reason(self) -> str | None:
        """The most telling reason among the dropped pieces that are worth an audit event, if any."""
        if not self.dropped:
            return None
        return next((drop.value for drop in CookieDrop if drop.audited and drop in self.dropped), None)

    def values(self, lower_name: str) -> list[str]:
        """The values of the pairs called `lower_name` (compared lower-cased), in order."""
        return [_value(pair) for key, _, pair in self._pairs if key == lower_name]

    def agreed_value(self, name: str, *, exact: bool = False) -> str | None:
        """The value of the pairs called `name` (compared lower-cased, or exactly with `exact`) when
        they all carry the same one; None when there is none, or when they disagree: which one a
        server would read is not something to guess, and a planted duplicate must never win."""
        field, wanted = (1, name) if exact else (0, name.lower())
        found: str | None = None
        for pair in self._pairs:  # a plain loop: this runs on every request of a signed-in browser
            if pair[field] == wanted:
                value = _value(pair[2])
                if found is None:
                    found = value
                elif found != value:
                    return None
        return found

    def forwarded(self, drop_lower_names: frozenset[str], drop_prefixes: tuple[str, ...] = ()) -> str | None:
        """One `Cookie` header value with every pair except those called `drop_lower_names` or whose
        lower-cased name starts with one of `drop_prefixes`, in order and bytes, joined with `; `;
        None when nothing is left."""
        kept = [pair for key, _, pair in self._pairs
                if key not in drop_lower_names and not (drop_prefixes and key.startswith(drop_prefixes))]
        return "; ".join(kept) if kept else None


def _value(pair: str) -> str:
    return pair[pair.find("=") + 1:]


_REQUEST_KEY = web.RequestKey("request_cookies", RequestCookies)
# Parses remembered per exact Cookie header (least recently used go first). A signed-in browser
# sends the very same kilobytes on request after request, and checking every byte of them against
# the grammar is the costly part of the parse; a `RequestCookies` is a pure function of its header
# and never changes, so one may serve every request that carries that header. A hit costs a
# dictionary lookup (the header's hash, which the session's own key cache computes anyway, and an
# equality check); a client that sends a new header every time only pushes others out.
_PARSED: OrderedDict[str, RequestCookies] = OrderedDict()
PARSED_MAX_ENTRIES = 1024


def parse_cookie_headers(cookie_headers: Sequence[str]) -> RequestCookies:
    """`RequestCookies(cookie_headers)`, remembered for the most recent single headers."""
    if len(cookie_headers) != 1:  # none, or split over several headers (rare): parse them as they are
        return RequestCookies(cookie_headers)
    header = cookie_headers[0]
    cookies = _PARSED.get(header)
    if cookies is not None:
        _PARSED.move_to_end(header)
        return cookies
    cookies = _PARSED[header] = RequestCookies(cookie_headers)
    if len(_PARSED) > PARSED_MAX_ENTRIES:
        _PARSED.popitem(last=False)
    return cookies


def request_cookies(request: web.Request) -> RequestCookies:
    """The request's cookies, parsed on first use and kept on the request for the other readers
    (its headers cannot change: aiohttp hands them out read-only)."""
    cookies = request.get(_REQUEST_KEY)
    if cookies is None:
        cookies = request[_REQUEST_KEY] = parse_cookie_headers(request.headers.getall("Cookie", []))
    return cookies
