"""Outlook Anywhere's extension methods (`RPC_IN_DATA`, `RPC_OUT_DATA`) past aiohttp's strict parser.

aiohttp's C parser (llhttp) knows a fixed list of methods and answers 400 to anything else, which
is right for every request except RPC over HTTP. Switching the whole server to a lenient parser
would re-open the smuggling bugs the C parser closed, so instead:

1. The first bytes of each connection decide its mode. A connection that starts with
   `RPC_IN_DATA ` or `RPC_OUT_DATA ` is an extension connection; any other is a plain one, and
   its bytes go to llhttp untouched for its whole life (one attribute check per read).
2. On an extension connection every request goes through `ExtensionFramer` first: a small,
   stricter-than-llhttp head check that accepts only those two methods, only on `/rpc/…`, only
   HTTP/1.1, only `Content-Length` framing (no `Transfer-Encoding`, no `Upgrade`), CRLF line
   endings, token header names, no control characters. The method token is then replaced by one
   llhttp knows (`PLACEHOLDER_METHOD`) and the head handed to llhttp, which parses it again with
   all its own checks. Both parsers agree on where each request ends: the framer only counts
   `Content-Length` body bytes, and llhttp accepts nothing the framer did not.
3. The request factory puts the original method back before the application sees the request.

Anything the framer refuses is replaced by bytes llhttp is certain to refuse, so the client gets
aiohttp's ordinary 400 (after any response it is still owed) and the connection is closed.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable
from typing import Any

from aiohttp import web

from gateway._compat import RequestHandler, new_connection_handler, wrap_server
from gateway.observability.logging import get_logger
from gateway.policy.paths import BadTarget, canonicalize

__all__ = [
    "EXTENSION_METHODS",
    "PLACEHOLDER_METHOD",
    "ExtensionFramer",
    "ExtensionMethodsMixin",
    "ExtensionMethodsRequestHandler",
    "ExtensionMethodsRunner",
    "ExtensionMethodsServer",
    "first_bytes_decision",
    "restoring_extension_methods",
]

log = get_logger("gateway.extension_methods")

EXTENSION_METHODS = frozenset({"RPC_IN_DATA", "RPC_OUT_DATA"})
# A method llhttp parses like any other and that nothing at an Exchange front end uses (SVN's
# MKACTIVITY); on extension connections it only ever stands in for the two methods above.
PLACEHOLDER_METHOD = "MKACTIVITY"
# Bytes llhttp refuses as a request line ("invalid method"): how a framer refusal becomes a 400.
POISON = b"\x00\r\n\r\n"
# The largest request head the framer buffers; llhttp enforces the per-line limits afterwards.
MAX_HEAD_BYTES = 64 * 1024
MAX_CONTENT_LENGTH_DIGITS = 18

_PREFIXES = tuple(f"{method} ".encode() for method in sorted(EXTENSION_METHODS))
_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_TARGET = re.compile(rb"/[\x21-\x7e]*")
_FORBIDDEN_VALUE_BYTES = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_CONNECTION_APP = "rpc"


class ExtensionFramingError(ValueError):
    """A request on an extension connection that the framer refuses; the message is for the log."""


def first_bytes_decision(data: bytes) -> bool | None:
    """True: an extension connection; False: a plain one; None: too few bytes to tell."""
    for prefix in _PREFIXES:
        if data.startswith(prefix):
            return True
    if any(prefix.startswith(data) for prefix in _PREFIXES):
        return None
    return False


def _check_head(head: bytes) -> tuple[str, bytes, int]:
    """Validate one request head (ending in CRLF CRLF): (method, head for llhttp, body length)."""
    lines = head[:-4].split(b"\r\n")
    if any(b"\n" in line or b"\r" in line for line in lines):
        raise ExtensionFramingError("bare CR or LF in the request head")
    parts = lines[0].split(b" ")
    if len(parts) != 3:
        raise ExtensionFramingError("malformed request line")
    method_bytes, target, version = parts
    method = method_bytes.decode("ascii", "replace")
    if method not in EXTENSION_METHODS:
        raise ExtensionFramingError("only RPC_IN_DATA and RPC_OUT_DATA on this connection")
    if version != b"HTTP/1.1":
        raise ExtensionFramingError("extension methods need HTTP/1.1")
    if _TARGET.fullmatch(target) is None:
        raise ExtensionFramingError("request target is not a path")
    try:
        canonical = canonicalize(target.decode("ascii"))
    except BadTarget:
        raise ExtensionFramingError("request target refused by canonicalisation") from None
    if canonical.lower_path[1:].split("/", 1)[0] != _CONNECTION_APP or "/" not in canonical.lower_path[1:]:
        raise ExtensionFramingError("extension methods only under /rpc/")
    lengths: list[bytes] = []
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or _TOKEN.fullmatch(name) is None:
            raise ExtensionFramingError("malformed header line")
        if _FORBIDDEN_VALUE_BYTES.search(value):
            raise ExtensionFramingError("control character in a header value")
        lowered = name.lower()
        value = value.strip(b" \t")
        if lowered == b"content-length":
            lengths.append(value)
        elif lowered in (b"transfer-encoding", b"upgrade"):
            raise ExtensionFramingError(f"{lowered.decode()} not allowed with extension methods")
        elif lowered == b"connection" and b"upgrade" in value.lower():
            raise ExtensionFramingError("connection upgrade not allowed with extension methods")
    if len(lengths) != 1:
        raise ExtensionFramingError("exactly one Content-Length required")
    length = lengths[0]
    if not length.isdigit() or not length.isascii() or len(length) > MAX_CONTENT_LENGTH_DIGITS:
        raise ExtensionFramingError("malformed Content-Length")
    return method, PLACEHOLDER_METHOD.encode() + head[len(method_bytes):], int(length)


class ExtensionFramer:
    """Sans-IO framing of one extension connection: bytes in, llhttp-ready bytes and methods out."""

    def __init__(self, *, max_head_bytes: int = MAX_HEAD_BYTES) -> None:
        self._max_head = max_head_bytes
        self._head = bytearray()
        self._body_left = 0
        self.failed = False

    def feed(self, data: bytes) -> tuple[bytes, list[str], ExtensionFramingError | None]:
        """Bytes for llhttp, the original method of each head among them, and a refusal if any.

        After a refusal the framer is `failed` and passes nothing more; the bytes returned with
        the refusal are the complete requests that came before it in `data`.
        """
        if self.failed:
            return b"", [], None
        out: list[bytes] = []
        methods: list[str] = []
        view = memoryview(data)
        while view:
            if self._body_left:
                take = min(self._body_left, len(view))
                out.append(bytes(view[:take]))
                view = view[take:]
                self._body_left -= take
                continue
            start = max(0, len(self._head) - 3)
            self._head += view
            view = view[len(view):]
            end = self._head.find(b"\r\n\r\n", start)
            if end < 0:
                if len(self._head) > self._max_head:
                    return self._fail(out, methods, ExtensionFramingError("request head too large"))
                break
            head = bytes(self._head[:end + 4])
            view = memoryview(bytes(self._head[end + 4:]))
            self._head.clear()
            if len(head) > self._max_head:
                return self._fail(out, methods, ExtensionFramingError("request head too large"))
            try:
                method, rewritten, self._body_left = _check_head(head)
            except ExtensionFramingError as exc:
                return self._fail(out, methods, exc)
            out.append(rewritten)
            methods.append(method)
        return b"".join(out), methods, None

    def _fail(self, out: list[bytes], methods: list[str], error: ExtensionFramingError
              ) -> tuple[bytes, list[str], ExtensionFramingError]:
        self.failed = True
        self._head.clear()
        return b"".join(out), methods, error


_UNDECIDED, _PLAIN, _EXTENSION = 0, 1, 2


class ExtensionMethodsMixin(RequestHandler):
    """Put before aiohttp's `RequestHandler` in a protocol class's bases (see the module docstring).

    Pair it with `restoring_extension_methods` around the server's request factory.
    """

    _ext_mode: int = _UNDECIDED
    _ext_pending: bytes = b""
    _ext_framer: ExtensionFramer | None = None
    _ext_methods: deque[str] | None = None

    def data_received(self, data: bytes) -> None:
        mode = self._ext_mode
        if mode == _PLAIN or not data:
            super().data_received(data)
            return
        if mode == _UNDECIDED:
            data = self._ext_pending + data
            decision = first_bytes_decision(data)
            if decision is None:
                self._ext_pending = data
                return
            self._ext_pending = b""
            if not decision:
                self._ext_mode = _PLAIN
                super().data_received(data)
                return
            self._ext_mode = _EXTENSION
            self._ext_framer = ExtensionFramer()
            self._ext_methods = deque()
        assert self._ext_framer is not None
        assert self._ext_methods is not None
        out, methods, error = self._ext_framer.feed(data)
        self._ext_methods.extend(methods)
        if out:
            super().data_received(out)
        if error is not None:
            log.info("extension_method_refused", message="extension-method request refused", reason=str(error))
            # Fed on its own: llhttp drops the requests parsed in the same call as an error.
            super().data_received(POISON)

    def pop_extension_method(self) -> str | None:
        """The original method of the next request parsed on this connection (extension mode only)."""
        if self._ext_methods:
            return self._ext_methods.popleft()
        return None


RequestFactory = Callable[..., web.BaseRequest]


def restoring_extension_methods(factory: RequestFactory) -> RequestFactory:
    """Wrap a server's request factory so extension connections' requests get their method back."""

    def make_request(message: Any, payload: Any, protocol: Any, writer: Any, task: Any) -> web.BaseRequest:
        if isinstance(protocol, ExtensionMethodsMixin) and getattr(message, "method", None) == PLACEHOLDER_METHOD:
            original = protocol.pop_extension_method()
            if original is not None:
                message = message._replace(method=original)
        return factory(message, payload, protocol, writer, task)

    return make_request


class ExtensionMethodsRequestHandler(ExtensionMethodsMixin, RequestHandler):
    """aiohttp's connection protocol with extension-method connections."""


class ExtensionMethodsServer(web.Server):
    """A `web.Server` whose connections accept Outlook Anywhere's methods (for the simulator)."""

    def __init__(self, handler: Any, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.request_factory = restoring_extension_methods(self.request_factory)

    def __call__(self) -> RequestHandler:
        return new_connection_handler(ExtensionMethodsRequestHandler, self)


class ExtensionMethodsRunner(web.AppRunner):
    """An `AppRunner` serving its application through an `ExtensionMethodsServer`."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        return wrap_server(ExtensionMethodsServer, server)
