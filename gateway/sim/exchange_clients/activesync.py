"""ActiveSync (`/Microsoft-Server-ActiveSync`): Basic only, `OPTIONS` discovery, `Ping` held for its heartbeat.

`Ping` (MS-ASCMD 2.2.1.13) asks the server to hold the answer up to `HeartbeatInterval` seconds
unless something changes; nothing changes here, so the answer comes when the heartbeat (capped by
`activesync_max_heartbeat_s`) is over: status 1, "no changes". A Ping without a body reuses the
device's last heartbeat. `activesync_provision_required` makes every command but `Provision`
answer 449 (Retry With: the device must provision first).
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from aiohttp import web

from gateway.policy.clients import activesync_device
from gateway.sim.exchange_clients.auth import Caller, authenticate
from gateway.sim.exchange_clients.state import ClientsState

if TYPE_CHECKING:
    from gateway.sim.owa.state import OwaSimState, RequestContext

PROTOCOL_VERSIONS = "2.5,12.0,12.1,14.0,14.1,16.0,16.1"
PROTOCOL_COMMANDS = ("Sync,SendMail,SmartForward,SmartReply,GetAttachment,GetHierarchy,CreateCollection,"
                     "DeleteCollection,MoveCollection,FolderSync,FolderCreate,FolderDelete,FolderUpdate,MoveItems,"
                     "GetItemEstimate,MeetingResponse,Search,Settings,Ping,ItemOperations,Provision,"
                     "ResolveRecipients,ValidateCert,Find")
WBXML_TYPE = "application/vnd.ms-sync.wbxml"
MAX_COMMAND_BODY = 256 * 1024

# WBXML (WAP-192) as ActiveSync uses it: code page 13 is Ping.
_SWITCH_PAGE, _END, _STR_I = 0x00, 0x01, 0x03
_PING_PAGE = 13
_HEARTBEAT_TAG = 0x08
_CONTENT = 0x40
# Ping answer: WBXML 1.3, UTF-8, code page 13, <Ping><Status>1</Status></Ping>.
PING_NO_CHANGES = bytes([0x03, 0x01, 0x6A, 0x00, _SWITCH_PAGE, _PING_PAGE, 0x45, 0x47, _STR_I]) + b"1\x00" + bytes(
    [_END, _END])


def ping_heartbeat(body: bytes) -> float | None:
    """The `HeartbeatInterval` of a WBXML Ping request, or None (empty, or not found)."""
    if len(body) < 4:
        return None
    position = 4  # version, public id, charset, string table length 0
    page = 0
    while position < len(body):
        token = body[position]
        if token == _SWITCH_PAGE and position + 1 < len(body):
            page = body[position + 1]
            position += 2
            continue
        if page == _PING_PAGE and token == (_HEARTBEAT_TAG | _CONTENT) and position + 1 < len(body) \
                and body[position + 1] == _STR_I:
            end = body.find(b"\x00", position + 2)
            text = body[position + 2:end] if end > 0 else b""
            return float(text) if text.isdigit() else None
        position += 1
    return None


def ping_request(heartbeat: int) -> bytes:
    """A WBXML Ping request with this heartbeat (and one Email folder): what a phone sends."""
    return (bytes([0x03, 0x01, 0x6A, 0x00, _SWITCH_PAGE, _PING_PAGE, 0x45, 0x48, _STR_I]) + str(heartbeat).encode()
            + bytes([0x00, _END, 0x49, 0x4A, 0x4B, _STR_I]) + b"1\x00" + bytes([_END, 0x4C, _STR_I])
            + b"Email\x00" + bytes([_END, _END, _END, _END]))


async def handle(request: web.Request, owa: OwaSimState, clients: ClientsState, ctx: RequestContext
                 ) -> web.StreamResponse:
    caller = await authenticate(request, owa, clients, ctx, windows=False, basic=True)
    if not isinstance(caller, Caller):
        return caller
    base_headers = {"MS-Server-ActiveSync": "15.1", "Cache-Control": "private"}
    if request.method == "OPTIONS":
        return web.Response(headers={**base_headers, "MS-ASProtocolVersions": PROTOCOL_VERSIONS,
                                     "MS-ASProtocolCommands": PROTOCOL_COMMANDS, "Allow": "OPTIONS,POST",
                                     "Public": "OPTIONS,POST"})
    if request.method != "POST":
        return web.Response(status=405, headers=base_headers)
    device = activesync_device(request.query_string)
    command = (device.command or "").lower()
    body = await request.content.read(MAX_COMMAND_BODY + 1)
    if len(body) > MAX_COMMAND_BODY:
        return web.Response(status=413, headers=base_headers)
    config = clients.config
    if config.activesync_provision_required and command != "provision":
        return web.Response(status=449, reason="Retry With", headers=base_headers)
    if command != "ping":
        return web.Response(headers=base_headers, body=b"", content_type=WBXML_TYPE)
    device_key = f"{caller.user.username}/{device.device_id}"
    requested = ping_heartbeat(body)
    if requested is not None:
        clients.heartbeats[device_key] = requested
    heartbeat = requested or clients.heartbeats.get(device_key) or config.activesync_default_heartbeat_s
    held = min(heartbeat, config.activesync_max_heartbeat_s)
    started = time.monotonic()
    await asyncio.sleep(held)
    clients.counters.activesync_pings.append((device.device_id, device.device_type, time.monotonic() - started))
    return web.Response(headers=base_headers, body=PING_NO_CHANGES, content_type=WBXML_TYPE)
