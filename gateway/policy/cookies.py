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

__all__ = ["cookie_name"]

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
