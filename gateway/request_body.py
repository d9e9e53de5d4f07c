"""Read the few request bodies the gateway itself needs (the logon form, the MFA forms), bounded.

Everything else streams; these are read whole, so their size is capped here (a body over the limit
is not read further) and their time by the caller, so that a body trickled in slowly cannot hold its
connection open for as long as the client likes.
"""

from __future__ import annotations

from aiohttp import web

_READ_CHUNK = 8192


async def read_bounded(request: web.Request, limit: int) -> bytes | None:
    """The request body, or None when it is (or announces to be) longer than `limit` bytes.

    Callers bound the time with `asyncio.timeout` (GATEWAY_HEADER_TIMEOUT, as long as the head had).
    """
    if request.content_length is not None and request.content_length > limit:
        return None
    body = bytearray()
    async for chunk in request.content.iter_chunked(_READ_CHUNK):
        body.extend(chunk)
        if len(body) > limit:
            return None
    return bytes(body)
