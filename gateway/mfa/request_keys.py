"""What the MFA flow reads from a request's Cookie header, remembered per exact header.

Two values decide every request on the protected routes: the gateway's session cookie
(`SessionCookie.read`) and the binding hash of the Exchange session the request carries
(`gateway.policy.owa_responses.request_binding`: a SHA-256 over 1.5 KB and more of cadata). A signed-in
browser sends the very same Cookie header on request after request, so both are remembered for the
most recent headers: a hit costs one dictionary lookup (Python's keyed string hash, then an
equality check of the whole header), not the reading and the hashing.

A hit needs a header equal to one read before, byte for byte, and the two values are pure
functions of that header, so a remembered answer is always the answer. The memory is bounded
(`max_entries` headers, least recently used go first; aiohttp caps a header at 8 KB); a client
that sends a different header every time only pushes others out and pays the reading itself.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple

from aiohttp import web

from gateway.mfa.session_cookie import SessionCookie
from gateway.policy.cookies import request_cookies
from gateway.policy.owa_responses import request_binding

DEFAULT_MAX_ENTRIES = 1024


class RequestKeys(NamedTuple):
    session_cookie: str | None  # the gateway cookie's value (None: none, or two that disagree)
    binding: str | None  # request_binding of the request's cookies (None: no exact cadata pair)


class RequestKeyReader:
    def __init__(self, cookie: SessionCookie, *, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self._cookie = cookie
        self._max_entries = max_entries
        self._known: OrderedDict[str, RequestKeys] = OrderedDict()

    def __len__(self) -> int:
        return len(self._known)

    def read(self, request: web.Request) -> RequestKeys:
        headers = request.headers.getall("Cookie", ())
        if len(headers) != 1:  # none, or split over several headers (rare): read them as they are
            return self._read(request)
        header = headers[0]
        known = self._known.get(header)
        if known is not None:
            self._known.move_to_end(header)
            return known
        keys = self._known[header] = self._read(request)
        if len(self._known) > self._max_entries:
            self._known.popitem(last=False)
        return keys

    def _read(self, request: web.Request) -> RequestKeys:
        cookies = request_cookies(request)
        return RequestKeys(self._cookie.read(cookies), request_binding(cookies))
