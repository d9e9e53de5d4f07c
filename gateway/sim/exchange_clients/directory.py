"""Autodiscover, the offline address book (OAB) and remote PowerShell."""

from __future__ import annotations

from typing import TYPE_CHECKING
from xml.sax.saxutils import escape

from aiohttp import web

from gateway.sim.exchange_clients.auth import Caller, answer, authenticate, challenge
from gateway.sim.exchange_clients.state import ClientsState

if TYPE_CHECKING:
    from gateway.sim.owa.state import OwaSimState, RequestContext

RESPONSE_SCHEMA = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
CHUNK = 64 * 1024


def _autodiscover_xml(host: str, display_name: str, smtp: str) -> str:
    host = escape(host)

    def protocol(kind: str, extra: str) -> str:
        return (f"<Protocol><Type>{kind}</Type><Server>{host}</Server><ASUrl>https://{host}/EWS/Exchange.asmx</ASUrl>"
                f"<OABUrl>https://{host}/OAB/</OABUrl>{extra}</Protocol>")

    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006">'
        f'<Response xmlns="{RESPONSE_SCHEMA}"><User><DisplayName>{escape(display_name)}</DisplayName>'
        f"<AutoDiscoverSMTPAddress>{escape(smtp)}</AutoDiscoverSMTPAddress></User>"
        "<Account><AccountType>email</AccountType><Action>settings</Action>"
        + protocol("EXCH", "")
        + protocol("EXPR", "<SSL>On</SSL><AuthPackage>Ntlm</AuthPackage>")
        + f"<Protocol><Type>WEB</Type><Internal><OWAUrl AuthenticationMethod=\"Fba\">https://{host}/owa/</OWAUrl>"
        "</Internal></Protocol></Account></Response></Autodiscover>"
    )


_ERROR_600 = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006">'
    '<Response><Error Time="00:00:00.0000000" Id="2477272013"><ErrorCode>600</ErrorCode>'
    "<Message>Invalid Request</Message><DebugData /></Error></Response></Autodiscover>"
)


async def autodiscover(request: web.Request, owa: OwaSimState, clients: ClientsState, ctx: RequestContext
                       ) -> web.StreamResponse:
    caller = await authenticate(request, owa, clients, ctx, windows=True,
                                basic="autodiscover" in clients.config.basic_vdirs)
    if not isinstance(caller, Caller):
        return caller
    if request.method == "POST":
        await request.content.read(64 * 1024)
        text = _autodiscover_xml(ctx.host, caller.user.display_name, caller.user.smtp)
    else:
        text = _ERROR_600
    return answer(caller, web.Response(text=text, content_type="text/xml", charset="utf-8"))


async def oab(request: web.Request, owa: OwaSimState, clients: ClientsState, ctx: RequestContext
              ) -> web.StreamResponse:
    caller = await authenticate(request, owa, clients, ctx, windows=True, basic="oab" in clients.config.basic_vdirs)
    if not isinstance(caller, Caller):
        return caller
    name = request.path.lower().rsplit("/", 1)[-1]
    if name == "oab.xml":
        text = ('<?xml version="1.0" encoding="utf-8"?><OAB><OAL id="sim" dn="/" name="\\Default Global Address List">'
                '<Full seq="1" ver="32" size="4096" uncompressedsize="8192" SHA="0">sim-full.lzx</Full></OAL></OAB>')
        return answer(caller, web.Response(text=text, content_type="text/xml", charset="utf-8"))
    if not name.endswith(".lzx"):
        return answer(caller, web.Response(status=404, text="404 - File or directory not found."))
    response = answer(caller, web.StreamResponse(headers={"Content-Type": "application/octet-stream"}))
    assert isinstance(response, web.StreamResponse)
    size = clients.config.oab_lzx_size
    response.content_length = size
    await response.prepare(request)
    block = bytes(range(256)) * (CHUNK // 256)
    sent = 0
    while sent < size:
        piece = block[:min(CHUNK, size - sent)]
        await response.write(piece)
        sent += len(piece)
    await response.write_eof()
    return response


async def powershell(request: web.Request, owa: OwaSimState, clients: ClientsState, ctx: RequestContext
                     ) -> web.StreamResponse:
    """Remote PowerShell authenticates with Kerberos only; without a KDC nothing ever passes."""
    return challenge(ctx, windows=False, basic=False, header="Negotiate")
