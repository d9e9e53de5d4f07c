"""Cookie names as the gateway and Exchange must both read them (sans-IO).

The binding check reads `cadata` and `cadataKey` from the request's `Cookie` header, and Exchange
then reads the same header; the two must agree on which pair is which. They would not on names
padded with characters that one side trims and the other keeps: ASP.NET trims each pair with .NET's
`String.Trim`, which, with the header decoded in a single-byte code page, also removes NBSP (0xA0)
and NEL (0x85), so a pair sent as `\\xa0cadata=…` is `cadata` to Exchange (the first one wins) and
an unknown name to a reader that trims only spaces. So a pair counts, and travels upstream, only
when its name is an RFC 9110 token once spaces and tabs around it are removed: then every reader
trims it the same way, and the gateway drops the rest before anything goes upstream.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from aiohttp import web

__all__ = ["RequestCookies", "cookie_name", "request_cookies"]

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def cookie_name(pair: str) -> str | None:
    """The lower-cased name of one `name=value` piece of a Cookie header, or None when it has none
    that every reader agrees on (no `=`, or a name that is not a token)."""
    separator = pair.find("=")  # not partition: the value (often a kilobyte of cadata) is not copied
    if separator < 0:
        return None
    name = pair[:separator].strip(" \t")
    if _TOKEN.fullmatch(name) is None:
        return None
    return name.lower()


class RequestCookies:
    """A request's `Cookie` header(s), split once into the pairs every reader agrees on.

    A signed-in browser sends a kilobyte and more of cadata* on every request, and three readers
    want it (the gateway's session cookie, the cadata binding, the pairs that go upstream): they
    share this one split instead of each cutting the header up again. Only pairs with a token name
    (`cookie_name`) are kept, so what the gateway reads and what it forwards are the same pairs.
    """

    __slots__ = ("_pairs",)

    def __init__(self, cookie_headers: Iterable[str]) -> None:
        pairs: list[tuple[str, str, str]] = []  # (lower-cased name, name as sent, the pair as sent)
        for header in cookie_headers:
            for pair in header.split(";"):
                separator = pair.find("=")  # the value (often a kilobyte of cadata) is not copied
                if separator < 0:
                    continue
                name = pair[:separator].strip(" \t")
                if _TOKEN.fullmatch(name) is not None:
                    pairs.append((name.lower(), name, pair))
        self._pairs = pairs

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

    def forwarded(self, drop_lower_names: frozenset[str]) -> str | None:
        """One `Cookie` header value with every pair not called `drop_lower_names`, in order and
        bytes (each trimmed of the whitespace around it); None when nothing is left."""
        kept = [pair.strip() for key, _, pair in self._pairs if key not in drop_lower_names]
        return "; ".join(kept) if kept else None


def _value(pair: str) -> str:
    return pair[pair.find("=") + 1:].strip()


_REQUEST_KEY = web.RequestKey("request_cookies", RequestCookies)




def request_cookies(request: web.Request) -> RequestCookies:
    """The request's cookies, split on first use and kept on the request for the other readers
    (its headers cannot change: aiohttp hands them out read-only)."""
    cookies = request.get(_REQUEST_KEY)
    if cookies is None:
        cookies = request[_REQUEST_KEY] = RequestCookies(request.headers.getall("Cookie", []))
    return cookies
