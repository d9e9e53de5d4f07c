"""Header policy for both directions of the proxy: what passes, what is dropped, what is set.

Why: hop-by-hop headers and the names a client lists in ``Connection`` belong to one connection,
not to the upstream (RFC 9110 §7.6.1); forwarding headers (``X-Forwarded-*``, ``Forwarded``) from a
client that is not a trusted proxy are lies about its address; header names with ``_`` are folded
into ``-`` by IIS/CGI-style header maps and so smuggle past a strip list; and IIS/ASP.NET honour
method- and URL-override headers that would make the upstream act on another request than the one
the gateway classified. Pure functions, no I/O.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from functools import lru_cache
from typing import TypeAlias

from multidict import CIMultiDict, CIMultiDictProxy

from gateway.policy.addresses import client_address

__all__ = [
    "ALWAYS_DROPPED",
    "HOP_BY_HOP",
    "UNTRUSTED_DROPPED",
    "client_ip",
    "forwarded_request_headers",
    "forwarding_headers",
    "request_headers_for_upstream",
    "response_headers_for_client",
]

# aiohttp's CIMultiDictProxy, a CIMultiDict or a plain dict; items() yields duplicates of a multidict.
Headers: TypeAlias = Mapping[str, str]
IPNetwork: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network

# RFC 9110 §7.6.1 plus the non-standard Proxy-Connection still sent by old clients (Go's list).
HOP_BY_HOP: frozenset[str] = frozenset(
    {
        "connection",
        "proxy-connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)

# Dropped from every request, trusted peer or not: a load balancer has no reason to send them, and
# IIS/ASP.NET (URL Rewrite, method override) would act on them. `Expect` is answered by the gateway.
# `X-CommonAccessToken` and `X-IsFromCafe` carry what Exchange's front end tells its back end about
# an authenticated user (ProxyShell forged such a token): from a client they are always a lie.
ALWAYS_DROPPED: frozenset[str] = frozenset(
    {
        "expect",
        "x-original-url",
        "x-rewrite-url",
        "x-http-method-override",
        "x-http-method",
        "x-method-override",
        "x-commonaccesstoken",
        "x-isfromcafe",
    }
)

# Claims about the client's address, scheme, host or request identity: kept only from a trusted
# proxy. Every `X-Forwarded-*` name is covered by prefix as well.
UNTRUSTED_DROPPED: frozenset[str] = frozenset(
    {
        "forwarded",
        "x-real-ip",
        "x-request-id",
        "x-original-host",
        "x-host",
    }
)
_FORWARDED_PREFIX = "x-forwarded-"


def request_headers_for_upstream(
    headers: Headers,
    *,
    peer_trusted: bool,
    drop: Collection[str] = (),
) -> CIMultiDict[str]:
    """A filtered copy of the client's request headers for the upstream.

    Removed: hop-by-hop headers and every name listed in any ``Connection`` header; every name that
    contains ``_``; :data:`ALWAYS_DROPPED`; unless ``peer_trusted``, :data:`UNTRUSTED_DROPPED` and all
    ``X-Forwarded-*``; and the extra names in ``drop`` (case-insensitive). ``Host`` is kept (the caller
    decides what the upstream sees). Duplicates and order are preserved.
    """
    kept, _, _ = _filtered(headers, peer_trusted, drop, frozenset())
    return CIMultiDict(kept)


def forwarded_request_headers(
    headers: Headers,
    *,
    peer_trusted: bool,
    client_ip: str,
    proto: str,
    host: str,
    drop: Collection[str] = (),
) -> CIMultiDict[str]:
    """:func:`request_headers_for_upstream` followed by :func:`forwarding_headers`, the same result
    in one pass over the headers (the proxy does both for every request it forwards)."""
    kept, prior_for, prior_forwarded = _filtered(headers, peer_trusted, drop, _SET_BY_GATEWAY)
    kept.extend(_forwarding_pairs(prior_for, prior_forwarded, client_ip=client_ip, proto=proto, host=host))
    return CIMultiDict(kept)


def _filtered(headers: Headers, peer_trusted: bool, drop: Collection[str], set_by_gateway: frozenset[str]
              ) -> tuple[list[tuple[str, str]], list[str], list[str]]:
    """The one filter loop: the headers kept, and (of the names in `set_by_gateway`, which are left
    out) a trusted peer's X-Forwarded-For and Forwarded values, for the chain."""
    removed = _request_removed(peer_trusted, tuple(drop))
    tokens = _connection_tokens(headers)
    if tokens:
        removed = removed | tokens
    kept: list[tuple[str, str]] = []
    prior_for: list[str] = []
    prior_forwarded: list[str] = []
    for name, value in headers.items():
        lowered = name.lower()
        if lowered in removed or "_" in lowered:
            continue
        if lowered in set_by_gateway:
            # Set by the caller; only a trusted peer's chain (X-Forwarded-For, Forwarded) is carried on.
            if peer_trusted and lowered == "x-forwarded-for":
                prior_for.append(value)
            elif peer_trusted and lowered == "forwarded":
                prior_forwarded.append(value)
            continue
        if not peer_trusted and lowered.startswith(_FORWARDED_PREFIX):
            continue
        kept.append((name, value))
    return kept, prior_for, prior_forwarded


@lru_cache(maxsize=64)  # a handful of (trust, drop) combinations, asked on every request
def _request_removed(peer_trusted: bool, drop: tuple[str, ...]) -> frozenset[str]:
    removed = HOP_BY_HOP | ALWAYS_DROPPED | {name.lower() for name in drop}
    return removed if peer_trusted else removed | UNTRUSTED_DROPPED


def response_headers_for_client(headers: Headers) -> CIMultiDict[str]:
    """A copy of the upstream's response headers without hop-by-hop and ``Connection``-listed ones.

    Everything else passes in order, duplicates included (``Set-Cookie``, ``WWW-Authenticate``), as do
    ``Content-Length`` and ``Content-Encoding`` (bodies are forwarded untouched).
    """
    tokens = _connection_tokens(headers)
    # A copy, then the few names to drop removed in place (case-insensitively, order kept): a
    # response carries many headers and few of these.
    result: CIMultiDict[str] = CIMultiDict(headers)
    for name in HOP_BY_HOP | tokens if tokens else HOP_BY_HOP:
        if name in result:
            result.popall(name)
    return result


def _connection_tokens(headers: Headers) -> frozenset[str]:
    if isinstance(headers, CIMultiDictProxy | CIMultiDict):
        values: Iterable[str] = headers.getall("Connection", ())  # case-insensitive, without a loop here
    else:
        values = _header_values(headers, "connection")
    tokens: frozenset[str] = frozenset()
    for value in values:
        tokens = tokens | _listed_names(value) if tokens else _listed_names(value)
    return tokens


@lru_cache(maxsize=256)  # clients send a few values ("keep-alive", "close", "Upgrade"), on every request
def _listed_names(connection_value: str) -> frozenset[str]:
    """The header names one `Connection` value lists, lower-cased, except the hop-by-hop ones
    (removed anyway)."""
    return frozenset(token.strip().lower() for token in connection_value.split(",")) - HOP_BY_HOP - {""}


def forwarding_headers(
    existing: CIMultiDict[str],
    *,
    client_ip: str,
    proto: str,
    host: str,
    peer_trusted: bool,
) -> None:
    """Set the forwarding headers on an upstream request's headers, in place.

    ``client_ip`` is the address of the hop the gateway received the request from, i.e. the TCP
    peer (for an untrusted peer that is the client itself). ``X-Forwarded-For`` becomes exactly that
    address, except that a trusted peer's chain is kept and the address appended to it (several
    ``X-Forwarded-For`` headers are joined in order first). ``X-Forwarded-Proto`` and
    ``X-Forwarded-Host`` are always overwritten with ``proto`` and ``host``: the caller passes the
    gateway's public scheme and host, which is what the upstream must build URLs with, whatever a
    proxy in front claimed. ``Forwarded`` (RFC 7239) follows the same rules as ``X-Forwarded-For``.
    """
    prior_for = existing.popall("X-Forwarded-For", []) if peer_trusted else []
    prior_forwarded = existing.popall("Forwarded", []) if peer_trusted else []
    # Whatever is left (an untrusted peer's claims, underscore spellings) never reaches the upstream.
    for name in _SET_BY_GATEWAY:
        existing.popall(name, None)
    if any("_" in name for name in existing):
        for name in [name for name in existing if name.lower().replace("_", "-") in _SET_BY_GATEWAY]:
            existing.popall(name, None)
    # All four were removed above: adding them sets each exactly once.
    existing.extend(_forwarding_pairs(prior_for, prior_forwarded, client_ip=client_ip, proto=proto, host=host))


def _forwarding_pairs(prior_for: list[str], prior_forwarded: list[str], *, client_ip: str, proto: str, host: str
                      ) -> tuple[tuple[str, str], ...]:
    chain = [entry.strip() for value in prior_for for entry in value.split(",") if entry.strip()]
    element = _forwarded_element(client_ip, proto, host)
    return (
        ("X-Forwarded-For", ", ".join([*chain, client_ip])),
        ("X-Forwarded-Proto", proto),
        ("X-Forwarded-Host", host),
        ("Forwarded", ", ".join([*(value.strip() for value in prior_forwarded if value.strip()), element])),
    )


_SET_BY_GATEWAY = frozenset({"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "forwarded"})


@lru_cache(maxsize=1024)  # called for every forwarded request, with few distinct peers and hosts
def _forwarded_element(client_ip: str, proto: str, host: str) -> str:
    return f"for={_forwarded_node(client_ip)};proto={proto};host={_forwarded_value(host)}"


def _forwarded_node(address: str) -> str:
    # RFC 7239 §6: an IPv6 node is bracketed and, since ':' is not a token character, quoted.
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return _forwarded_value(address)
    if parsed.version == 6:
        return f'"[{parsed}]"'
    return str(parsed)


# RFC 9110 token characters: such a value needs no quotes.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def _forwarded_value(value: str) -> str:
    if _TOKEN.fullmatch(value):
        return value
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def client_ip(peer_ip: str, headers: Headers, trusted: Sequence[IPNetwork]) -> str:
    """The client's address: the TCP peer, unless the peer is a trusted proxy.

    Behind trusted proxies, ``X-Forwarded-For`` (all such headers, in order) is walked from the right,
    skipping trusted addresses; the first untrusted one is the client. When every entry is trusted the
    left-most one is the client (an internal caller). No header, or an entry that is not an IP address,
    falls back to the peer: a trusted proxy never writes garbage, so garbage means the chain is not to
    be believed. The address is returned in its normalised text form.
    """
    peer = _parse_ip(peer_ip)
    if peer is None:
        return peer_ip
    if not _is_trusted(peer, trusted):
        return str(peer)
    chain = [entry.strip() for value in _header_values(headers, "x-forwarded-for") for entry in value.split(",")]
    chain = [entry for entry in chain if entry]
    if not chain:
        return str(peer)
    address = peer
    for entry in reversed(chain):
        parsed = _parse_ip(entry)
        if parsed is None:
            return str(peer)
        address = parsed
        if not _is_trusted(parsed, trusted):
            break
    return str(address)


def _header_values(headers: Headers, lowered_name: str) -> Iterable[str]:
    return [value for name, value in headers.items() if name.lower() == lowered_name]


def _parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """Parse an address as found in X-Forwarded-For: bare, bracketed IPv6, or with a port."""
    candidate = text.strip()
    if candidate.startswith("["):
        candidate = candidate[1:].split("]", 1)[0]
    elif candidate.count(":") == 1:
        candidate = candidate.split(":", 1)[0]
    return client_address(candidate)


def _is_trusted(address: ipaddress.IPv4Address | ipaddress.IPv6Address, trusted: Sequence[IPNetwork]) -> bool:
    return any(address in network for network in trusted)
