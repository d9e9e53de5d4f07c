"""Every private aiohttp name the gateway relies on, in one place.

aiohttp's public API covers applications; a proxy that must stay lean and strict needs a few of its
internals as well. They are all reached through this module, each listed in `INTERNALS` with what it
is used for and what the public alternative would cost, so that:

- `pyproject.toml` pins aiohttp below its next minor version (internals may change in any minor);
- `verify_internals()` (run by `serve`, `check` and the test suite) fails with the symbol's name when
  an aiohttp upgrade removes or changes one, instead of a confusing AttributeError mid-request;
- an upgrade is one file to review: read `INTERNALS`, run `tests/test_compat.py`, re-lock.

Nothing else in the gateway may import an underscore name from aiohttp, or read an underscore attribute
of an aiohttp object (tests/test_compat.py enforces it).
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
from aiohttp import web
from aiohttp.client_proto import ResponseHandler
from aiohttp.http_writer import _serialize_headers
from aiohttp.web_protocol import RequestHandler

__all__ = [
    "INTERNALS",
    "AiohttpInternalsChanged",
    "Internal",
    "RequestHandler",
    "ResponseHandler",
    "c_parser_loaded",
    "handler_busy",
    "handler_loop",
    "handler_request_count",
    "new_connection_handler",
    "send_head_with_first_write",
    "serialize_headers",
    "verify_internals",
    "wrap_server",
]

ServerT = TypeVar("ServerT", bound=web.Server)
HandlerT = TypeVar("HandlerT", bound=RequestHandler)

C_PARSER_MODULE = "aiohttp._http_parser"

# aiohttp's C header serialiser: refuses CR/LF in names and values, and is several times faster than
# formatting the head in Python. Used for every request head sent upstream (gateway.proxy.upstream).
serialize_headers: Callable[[str, Any], bytes] = _serialize_headers


class AiohttpInternalsChanged(RuntimeError):
    """The installed aiohttp no longer has an internal the gateway relies on."""


@dataclass(frozen=True, slots=True)
class Internal:
    """One private aiohttp name: where it is, why the gateway needs it, and how to tell it is still there."""

    symbol: str
    used_for: str
    public_alternative: str
    present: Callable[[], bool]


def _module_has(module: str, name: str, *, callable_: bool = True) -> Callable[[], bool]:
    def present() -> bool:
        try:
            value = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            return False
        return callable(value) if callable_ else True

    return present


def _class_has(owner: Callable[[], type], *names: str) -> Callable[[], bool]:
    def present() -> bool:
        cls = owner()
        return all(hasattr(cls, name) for name in names)

    return present


def _server_attributes_present() -> bool:
    """`web.Server` keeps its loop and the protocol's keyword arguments as `_loop` and `_kwargs`."""

    loop = asyncio.new_event_loop()  # not run: only handed to the constructor, which keeps it
    try:
        server = web.Server(_never_called, loop=loop, probe=True)
    finally:
        loop.close()
    return getattr(server, "_loop", None) is loop and getattr(server, "_kwargs", None) == {"probe": True}


async def _never_called(request: web.BaseRequest) -> web.StreamResponse:  # pragma: no cover
    raise AssertionError("only constructed to inspect its attributes")


def _make_server_present() -> bool:
    hook = getattr(web.AppRunner, "_make_server", None)
    return hook is not None and inspect.iscoroutinefunction(hook)


def _request_factory_signature_present() -> bool:
    factory = getattr(web.Server, "_make_request", None)
    if factory is None:
        return False
    return list(inspect.signature(factory).parameters) == ["self", "message", "payload", "protocol", "writer", "task"]


def _drain_hooks_present() -> bool:
    """`finish_response(request, resp, start_time)` is where an answer is completed; the connection reads
    on (bodies included) unless `close()`/`force_close()` set `_close`/`_force_close`."""
    finish = getattr(RequestHandler, "finish_response", None)
    if finish is None or not inspect.iscoroutinefunction(finish):
        return False
    if list(inspect.signature(finish).parameters) != ["self", "request", "resp", "start_time"]:
        return False
    return "_force_close" in RequestHandler.__slots__ and "_close" in RequestHandler.__slots__


def _c_parser_present() -> bool:
    from aiohttp.http_parser import HttpRequestParser

    return HttpRequestParser.__module__ == C_PARSER_MODULE


INTERNALS: tuple[Internal, ...] = (
    Internal(
        "aiohttp.http_writer._serialize_headers",
        "serialises the request head sent upstream, refusing CR/LF (gateway.proxy.upstream)",
        "format the head in Python with our own CR/LF check: about 3x the CPU of the head on every request",
        _module_has("aiohttp.http_writer", "_serialize_headers"),
    ),
    Internal(
        "aiohttp.client_proto.ResponseHandler.set_response_params/should_close/read_timeout",
        "the lean upstream client's protocol: aiohttp's C response parser, flow control and read timeout "
        "(gateway.proxy.upstream.UpstreamProtocol)",
        "aiohttp.ClientSession: about as much CPU per request as the rest of the gateway together",
        _class_has(lambda: ResponseHandler, "set_response_params", "should_close", "read_timeout"),
    ),
    Internal(
        "aiohttp.web_protocol.RequestHandler._request_in_progress/_messages/_request_count/_loop",
        "tells whether a client connection is between requests (header timeout, closing an idle client "
        "connection whose pinned upstream connection closed: gateway.server, gateway.proxy.client_connection)",
        "none: aiohttp exposes no connection state; a timer per request would cost more and miss pipelining",
        _class_has(lambda: RequestHandler, "_request_in_progress", "_messages", "_request_count", "_loop"),
    ),
    Internal(
        "aiohttp.web_protocol.RequestHandler.data_received/handle_error/force_close/close",
        "the connection protocol the gateway subclasses: header deadline, extension-method framing, "
        "quiet answers to malformed requests (gateway.server, gateway.proxy.extension_methods)",
        "a server of our own on asyncio.Protocol, re-implementing aiohttp's keep-alive and pipelining",
        _class_has(lambda: RequestHandler, "data_received", "handle_error", "force_close", "close"),
    ),
    Internal(
        "aiohttp.web_protocol.RequestHandler.finish_response(request, resp, start_time)/_close/_force_close",
        "the shutdown drain (gateway.server): an answer finished during the drain gets `Connection: close`, "
        "and accepted requests keep their bodies flowing because the drain never calls "
        "RequestHandler.shutdown()/close() (they set _force_close/_close, after which data_received drops bytes)",
        "aiohttp's BaseRunner.cleanup(): every upload in flight at SIGTERM lost, and twice the grace period",
        _drain_hooks_present,
    ),
    Internal(
        "aiohttp.web.Server._loop/_kwargs",
        "re-creates aiohttp's protocol factory with the gateway's connection protocol (wrap_server)",
        "none short of copying web.Server's constructor arguments by hand, which break silently",
        _server_attributes_present,
    ),
    Internal(
        "aiohttp.web.Server._make_request(message, payload, protocol, writer, task)",
        "the request factory wrapped to route every request target and restore extension methods",
        "none: aiohttp's public API cannot see a request before routing",
        _request_factory_signature_present,
    ),
    Internal(
        "aiohttp.web.AppRunner._make_server",
        "the hook where the gateway's and the simulator's runners put their own protocol factory",
        "run web.Server by hand (sockets, sites, shutdown): more code than the hook it replaces",
        _make_server_present,
    ),
    Internal(
        "aiohttp.web.StreamResponse._send_headers_immediately",
        "keeps a relayed answer's head for the first body write: one socket write for a small answer",
        "two writes per answer (head, then body): measurably more syscalls and packets",
        _class_has(lambda: web.StreamResponse, "_send_headers_immediately"),
    ),
    Internal(
        "aiohttp._http_parser (the C llhttp request parser)",
        "the gateway refuses to start on the pure-Python parser, where most request smuggling CVEs were",
        "none: this is a safety check, not an optimisation",
        _c_parser_present,
    ),
)


def verify_internals() -> None:
    """Raise `AiohttpInternalsChanged` naming every internal the installed aiohttp lacks."""
    missing = [internal for internal in INTERNALS if not internal.present()]
    if missing:
        lines = "; ".join(f"{internal.symbol} (used for: {internal.used_for})" for internal in missing)
        raise AiohttpInternalsChanged(
            f"aiohttp {aiohttp.__version__} lacks internals the gateway relies on: {lines}. "
            "Install the locked aiohttp (./dev setup), or adapt gateway/_compat.py to this version."
        )


def c_parser_loaded() -> bool:
    return _c_parser_present()


def handler_busy(protocol: RequestHandler) -> bool:
    """Whether a client connection has a request running or parsed and queued."""
    return bool(protocol._request_in_progress or protocol._messages)


def handler_request_count(protocol: RequestHandler) -> int:
    """How many requests the connection has parsed so far."""
    return protocol._request_count


def handler_loop(protocol: RequestHandler) -> asyncio.AbstractEventLoop:
    loop: asyncio.AbstractEventLoop = protocol._loop
    return loop


def wrap_server(cls: type[ServerT], server: web.Server, **extra: Any) -> ServerT:
    """A `cls` protocol factory with the same handler, request factory and options as `server`."""
    return cls(
        server.request_handler,
        request_factory=server.request_factory,
        handler_cancellation=server.handler_cancellation,
        loop=server._loop,
        **extra,
        **server._kwargs,
    )


def new_connection_handler(cls: type[HandlerT], server: web.Server, **extra: Any) -> HandlerT:
    """A connection protocol of class `cls` for `server`, as `web.Server.__call__` makes one."""
    return cls(server, loop=server._loop, **extra, **server._kwargs)


def send_head_with_first_write(response: web.StreamResponse, keep: bool) -> None:
    """Hold a response's serialised head back for its first body write (aiohttp's `web.Response` does)."""
    response._send_headers_immediately = not keep
