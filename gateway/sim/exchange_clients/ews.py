"""EWS (`/EWS/Exchange.asmx`): enough SOAP for a real client to open a mailbox and list its inbox.

Operations: GetFolder (distinguished folders and folder ids), FindItem (the messages of the
user's mailbox, with paging), GetItem; anything else is a SOAP error answer
`ErrorInvalidOperation`, which clients report cleanly. `GET /EWS/Services.wsdl` returns a small
WSDL; a GET on the endpoint itself the IIS "you have created a service" page. Authentication is
Windows (NTLM/Negotiate, per connection), plus Basic when the knob says so.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from xml.etree.ElementTree import Element  # the type only; parsing uses defusedxml
from xml.sax.saxutils import escape

from aiohttp import web
from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException

from gateway.sim.exchange_clients.auth import Caller, answer, authenticate
from gateway.sim.exchange_clients.state import ClientsState

if TYPE_CHECKING:
    from gateway.sim.owa.config import SimMessage, SimUser
    from gateway.sim.owa.state import OwaSimState, RequestContext

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
MESSAGES = "http://schemas.microsoft.com/exchange/services/2006/messages"
TYPES = "http://schemas.microsoft.com/exchange/services/2006/types"
MAX_SOAP_BYTES = 1024 * 1024

FOLDERS: dict[str, tuple[str, str]] = {  # distinguished id -> (display name, folder class)
    "root": ("Top of Information Store", "IPF.Note"),
    "msgfolderroot": ("Top of Information Store", "IPF.Note"),
    "inbox": ("Inbox", "IPF.Note"),
    "sentitems": ("Sent Items", "IPF.Note"),
    "deleteditems": ("Deleted Items", "IPF.Note"),
    "drafts": ("Drafts", "IPF.Note"),
    "outbox": ("Outbox", "IPF.Note"),
    "junkemail": ("Junk Email", "IPF.Note"),
    "calendar": ("Calendar", "IPF.Appointment"),
    "contacts": ("Contacts", "IPF.Contact"),
    "tasks": ("Tasks", "IPF.Task"),
    "notes": ("Notes", "IPF.StickyNote"),
}
# Received times of the demo messages: newest first, a few hours apart, on a fixed day.
_EPOCH = datetime(2026, 3, 2, 9, 14, tzinfo=UTC)


def _q(namespace: str, name: str) -> str:
    return f"{{{namespace}}}{name}"


def _opaque(*parts: str) -> str:
    return base64.b64encode(hashlib.sha256("\x00".join(parts).encode()).digest()).decode()


def folder_id(user: SimUser, name: str) -> str:
    return _opaque("folder", user.smtp.lower(), name)


def item_id(user: SimUser, index: int) -> str:
    return _opaque("item", user.smtp.lower(), str(index))


def _envelope(operation: str, items: str) -> str:
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<s:Envelope xmlns:s="{SOAP}"><s:Header>'
        f'<h:ServerVersionInfo MajorVersion="15" MinorVersion="1" MajorBuildNumber="2507" MinorBuildNumber="6" '
        f'Version="V2017_07_11" xmlns:h="{TYPES}" xmlns="{TYPES}" '
        'xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"/>'
        '</s:Header><s:Body>'
        f'<m:{operation}Response xmlns:m="{MESSAGES}" xmlns:t="{TYPES}"><m:ResponseMessages>{items}'
        f'</m:ResponseMessages></m:{operation}Response></s:Body></s:Envelope>'
    )


def _error(operation: str, code: str, text: str) -> str:
    return (f'<m:{operation}ResponseMessage ResponseClass="Error"><m:MessageText>{escape(text)}</m:MessageText>'
            f'<m:ResponseCode>{code}</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey>'
            f'</m:{operation}ResponseMessage>')


def _folder_xml(user: SimUser, name: str) -> str:
    display, folder_class = FOLDERS[name]
    count = len(user.messages) if name == "inbox" else 0
    children = len(FOLDERS) - 2 if name in ("root", "msgfolderroot") else 0
    return (
        f'<t:Folder><t:FolderId Id="{folder_id(user, name)}" ChangeKey="AQAAAA=="/>'
        f'<t:ParentFolderId Id="{folder_id(user, "root")}" ChangeKey="AQAAAA=="/>'
        f'<t:FolderClass>{folder_class}</t:FolderClass><t:DisplayName>{escape(display)}</t:DisplayName>'
        f'<t:TotalCount>{count}</t:TotalCount><t:ChildFolderCount>{children}</t:ChildFolderCount>'
        '<t:EffectiveRights><t:CreateAssociated>true</t:CreateAssociated><t:CreateContents>true</t:CreateContents>'
        '<t:CreateHierarchy>true</t:CreateHierarchy><t:Delete>true</t:Delete><t:Modify>true</t:Modify>'
        '<t:Read>true</t:Read><t:ViewPrivateItems>true</t:ViewPrivateItems></t:EffectiveRights>'
        f'<t:UnreadCount>{count}</t:UnreadCount></t:Folder>'
    )


def _mailbox_of(element: Element | None, caller: SimUser, owa: OwaSimState) -> SimUser | None:
    """The mailbox a folder id names (the caller's own, or one they may open as a delegate)."""
    if element is None:
        return caller
    address = element.findtext(_q(TYPES, "EmailAddress"))
    if not address or address.lower() == caller.smtp.lower():
        return caller
    if address.lower() in (other.lower() for other in caller.delegate_of):
        return owa.users.mailbox(address)
    return None


def _folders_named(request_body: Element, caller: SimUser, owa: OwaSimState) -> list[tuple[SimUser, str] | None]:
    found: list[tuple[SimUser, str] | None] = []
    for element in request_body.iter():
        if element.tag == _q(TYPES, "DistinguishedFolderId"):
            name = (element.get("Id") or "").lower()
            mailbox = _mailbox_of(element.find(_q(TYPES, "Mailbox")), caller, owa)
            found.append((mailbox, name) if mailbox is not None and name in FOLDERS else None)
        elif element.tag == _q(TYPES, "FolderId"):
            wanted = element.get("Id") or ""
            matches = [(user, name) for user in (caller, *(owa.users.mailbox(d) for d in caller.delegate_of))
                       if user is not None for name in FOLDERS if folder_id(user, name) == wanted]
            found.append(matches[0] if matches else None)
    return found


def get_folder(body: Element, caller: SimUser, owa: OwaSimState) -> str:
    messages = []
    for named in _folders_named(body, caller, owa):
        if named is None:
            messages.append(_error("GetFolder", "ErrorFolderNotFound", "The specified folder could not be found."))
            continue
        user, name = named
        messages.append('<m:GetFolderResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode>'
                        f'<m:Folders>{_folder_xml(user, name)}</m:Folders></m:GetFolderResponseMessage>')
    return _envelope("GetFolder", "".join(messages))


def _message_xml(user: SimUser, index: int, message: SimMessage) -> str:
    received = (_EPOCH - timedelta(hours=5 * index)).strftime("%Y-%m-%dT%H:%M:%SZ")
    sender = escape(message.sender)
    address = escape(message.sender.lower().replace(" ", ".") + "@corp.example")
    return (
        f'<t:Message><t:ItemId Id="{item_id(user, index)}" ChangeKey="CQAAAA=="/>'
        f'<t:ParentFolderId Id="{folder_id(user, "inbox")}" ChangeKey="AQAAAA=="/>'
        f'<t:ItemClass>IPM.Note</t:ItemClass><t:Subject>{escape(message.subject)}</t:Subject>'
        '<t:Sensitivity>Normal</t:Sensitivity>'
        f'<t:DateTimeReceived>{received}</t:DateTimeReceived><t:Size>{512 + len(message.preview)}</t:Size>'
        '<t:Importance>Normal</t:Importance><t:IsSubmitted>false</t:IsSubmitted><t:IsDraft>false</t:IsDraft>'
        '<t:IsFromMe>false</t:IsFromMe><t:IsResend>false</t:IsResend><t:IsUnmodified>true</t:IsUnmodified>'
        f'<t:DateTimeSent>{received}</t:DateTimeSent><t:DateTimeCreated>{received}</t:DateTimeCreated>'
        '<t:HasAttachments>false</t:HasAttachments><t:Culture>en-US</t:Culture>'
        f'<t:Preview>{escape(message.preview)}</t:Preview>'
        f'<t:From><t:Mailbox><t:Name>{sender}</t:Name><t:EmailAddress>{address}</t:EmailAddress>'
        '<t:RoutingType>SMTP</t:RoutingType><t:MailboxType>OneOff</t:MailboxType></t:Mailbox></t:From>'
        '<t:IsReadReceiptRequested>false</t:IsReadReceiptRequested><t:IsRead>false</t:IsRead>'
        '</t:Message>'
    )


def find_item(body: Element, caller: SimUser, owa: OwaSimState) -> str:
    named = _folders_named(body.find(f".//{_q(MESSAGES, 'ParentFolderIds')}") or body, caller, owa)
    if not named or named[0] is None:
        return _envelope("FindItem", _error("FindItem", "ErrorFolderNotFound",
                                            "The specified folder could not be found."))
    user, name = named[0]
    messages = list(enumerate(user.messages)) if name == "inbox" else []
    view = body.find(f".//{_q(MESSAGES, 'IndexedPageItemView')}")
    offset = int(view.get("Offset", "0")) if view is not None else 0
    limit = int(view.get("MaxEntriesReturned", "1000")) if view is not None else 1000
    page = messages[offset:offset + limit]
    last = offset + len(page) >= len(messages)
    items = "".join(_message_xml(user, index, message) for index, message in page)
    return _envelope("FindItem", (
        '<m:FindItemResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode>'
        f'<m:RootFolder IndexedPagingOffset="{offset + len(page)}" TotalItemsInView="{len(messages)}" '
        f'IncludesLastItemInRange="{"true" if last else "false"}"><t:Items>{items}</t:Items></m:RootFolder>'
        '</m:FindItemResponseMessage>'))


def get_item(body: Element, caller: SimUser, owa: OwaSimState) -> str:
    mailboxes = [caller, *(m for m in (owa.users.mailbox(d) for d in caller.delegate_of) if m is not None)]
    known = {item_id(user, index): (user, index, message) for user in mailboxes
             for index, message in enumerate(user.messages)}
    answers = []
    for element in body.iter(_q(TYPES, "ItemId")):
        found = known.get(element.get("Id") or "")
        if found is None:
            answers.append(_error("GetItem", "ErrorItemNotFound", "The specified object was not found in the store."))
            continue
        answers.append('<m:GetItemResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode>'
                       f'<m:Items>{_message_xml(*found)}</m:Items></m:GetItemResponseMessage>')
    return _envelope("GetItem", "".join(answers))


OPERATIONS: dict[str, Callable[[Element, SimUser, OwaSimState], str]] = {
    "GetFolder": get_folder, "FindItem": find_item, "GetItem": get_item,
}

WSDL = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<wsdl:definitions xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/" '
    f'xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/" targetNamespace="{MESSAGES}">'
    '<wsdl:service name="ExchangeServices"><wsdl:port name="ExchangeServicePort" binding="tns:ExchangeServiceBinding">'
    '<soap:address location="https://{host}/EWS/Exchange.asmx"/></wsdl:port></wsdl:service></wsdl:definitions>'
)


async def handle(request: web.Request, owa: OwaSimState, clients: ClientsState, ctx: RequestContext
                 ) -> web.StreamResponse:
    basic = "ews" in clients.config.basic_vdirs
    caller = await authenticate(request, owa, clients, ctx, windows=True, basic=basic)
    if not isinstance(caller, Caller):
        return caller
    page = request.path.lower().rstrip("/").rsplit("/", 1)[-1]
    if request.method in ("GET", "HEAD"):
        if page == "services.wsdl":
            return answer(caller, web.Response(text=WSDL.replace("{host}", escape(ctx.host)), content_type="text/xml"))
        if page == "exchange.asmx":
            return answer(caller, web.Response(text="<html><body>You have created a service.</body></html>",
                                               content_type="text/html"))
        return answer(caller, web.Response(status=404, text="404 - File or directory not found."))
    if request.method != "POST" or page != "exchange.asmx":
        return answer(caller, web.Response(status=405, text="405 - Method not allowed."))
    body = await request.content.read(MAX_SOAP_BYTES + 1)
    if len(body) > MAX_SOAP_BYTES:
        return answer(caller, web.Response(status=413, text="Request entity too large"))
    try:
        envelope = ElementTree.fromstring(body)
    except (ElementTree.ParseError, DefusedXmlException):
        return answer(caller, web.Response(status=400, text="Bad Request"))
    soap_body = envelope.find(_q(SOAP, "Body"))
    operation = soap_body[0] if soap_body is not None and len(soap_body) else None
    name = operation.tag.rpartition("}")[2] if operation is not None else ""
    clients.counters.ews_operations.append(name)
    handler = OPERATIONS.get(name)
    if operation is None or handler is None:
        text = _envelope(name or "Unknown", _error(name or "Unknown", "ErrorInvalidOperation",
                                                   "The operation is not supported by this server."))
    else:
        text = handler(operation, caller.user, owa)
    return answer(caller, web.Response(text=text, content_type="text/xml", charset="utf-8"))
