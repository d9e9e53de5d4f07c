"""MAPI over HTTP (`/mapi/emsmdb/`, `/mapi/nspi/`): held answers streamed with PENDING keep-alives.

MS-OXCMAPIHTTP: the answer starts at once (200, chunked, `X-PendingPeriod`), its body is meta-tag
lines: `PROCESSING`, a `PENDING` every pending period while the server works, then `DONE` and the
final headers (`X-ResponseCode`, `X-ElapsedTime`, `X-StartTime`) before the binary payload. A
buffering proxy would hold the PENDING lines back and the client would give up; the simulator
records when it wrote each one, so a test can measure the delay through a proxy.
"""

from __future__ import annotations

import asyncio
import time
from email.utils import formatdate
from typing import TYPE_CHECKING

from aiohttp import web

from gateway.sim.exchange_clients.auth import Caller, answer, authenticate
from gateway.sim.exchange_clients.state import ClientsState

if TYPE_CHECKING:
    from gateway.sim.owa.state import OwaSimState, RequestContext

REQUEST_TYPES = frozenset({"connect", "execute", "disconnect", "notificationwait", "bind", "unbind",
                           "comparemids", "dntomid", "getmatches", "getproplist", "getprops", "getspecialtable",
                           "gettemplateinfo", "modlinkatt", "modprops", "queryrows", "querycolumns",
                           "resolvenames", "resortrestriction", "seekentries", "updatestat", "getmailboxurl",
                           "getaddressbookurl", "ping"})
MAX_MAPI_BODY = 1024 * 1024


async def handle(request: web.Request, owa: OwaSimState, clients: ClientsState, ctx: RequestContext
                 ) -> web.StreamResponse:
    caller = await authenticate(request, owa, clients, ctx, windows=True, basic="mapi" in clients.config.basic_vdirs)
    if not isinstance(caller, Caller):
        return caller
    endpoint = request.path.lower().strip("/").split("/")
    if len(endpoint) < 2 or endpoint[1] not in ("emsmdb", "nspi"):
        return answer(caller, web.Response(status=404, text="404 - File or directory not found."))
    if request.method != "POST":
        return answer(caller, web.Response(text="<html><body>Exchange MAPI/HTTP Connectivity Endpoint</body></html>",
                                           content_type="text/html"))
    request_type = request.headers.get("X-RequestType", "")
    if request_type.lower() not in REQUEST_TYPES:
        return answer(caller, web.Response(status=400, headers={"X-ResponseCode": "7"}, text="Invalid request type"))
    body = await request.content.read(MAX_MAPI_BODY + 1)
    if len(body) > MAX_MAPI_BODY:
        return answer(caller, web.Response(status=413))
    config = clients.config
    hold = config.mapi_notification_hold_s if request_type.lower() == "notificationwait" else config.mapi_execute_hold_s
    started = time.monotonic()
    response = answer(caller, web.StreamResponse(headers={
        "Content-Type": "application/mapi-http",
        "X-RequestType": request_type,
        "X-RequestId": request.headers.get("X-RequestId", ""),
        "X-ClientInfo": request.headers.get("X-ClientInfo", ""),
        "X-ResponseCode": "0",
        "X-PendingPeriod": str(config.mapi_pending_period_ms),
        "X-ExpirationInfo": "900000",
        "X-ServerApplication": "Exchange/15.01.2507.006",
        "Cache-Control": "private",
    }))
    assert isinstance(response, web.StreamResponse)
    response.enable_chunked_encoding()
    await response.prepare(request)
    await response.write(b"PROCESSING\r\n")
    loop = asyncio.get_running_loop()
    period = config.mapi_pending_period_ms / 1000
    deadline = started + hold
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        await asyncio.sleep(min(period, remaining))
        if time.monotonic() < deadline:
            await response.write(b"PENDING\r\n")
            clients.counters.mapi_pending_sent.append(loop.time())
    elapsed_ms = int((time.monotonic() - started) * 1000)
    await response.write(
        b"DONE\r\nX-ResponseCode: 0\r\n"
        + f"X-ElapsedTime: {elapsed_ms}\r\nX-StartTime: {formatdate(usegmt=True)}\r\n\r\n".encode()
        + b"\x00\x00\x00\x00" + len(body).to_bytes(4, "little")
    )
    await response.write_eof()
    return response
