"""gateway._compat: every private aiohttp name is fenced, present in the locked aiohttp, and missed by name.

When an aiohttp upgrade removes or changes one of them, `verify_internals()` (run by `serve`, `demo` and
`check`) must fail naming that symbol; these tests simulate each removal with monkeypatch.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp.http_parser
import aiohttp.http_writer
import pytest
from aiohttp import web
from aiohttp.client_proto import ResponseHandler
from aiohttp.web_protocol import RequestHandler

from gateway import _compat
from gateway._compat import INTERNALS, AiohttpInternalsChanged, verify_internals

GATEWAY = Path(_compat.__file__).parent


def _server_without_kwargs(monkeypatch: pytest.MonkeyPatch) -> None:
    original = web.Server.__init__

    def init(self: web.Server, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        del self._kwargs

    monkeypatch.setattr(web.Server, "__init__", init)


def _factory_with_other_signature(monkeypatch: pytest.MonkeyPatch) -> None:
    def make_request(self: web.Server, message: Any, payload: Any, protocol: Any, writer: Any) -> None: ...

    monkeypatch.setattr(web.Server, "_make_request", make_request)


def _make_server_not_a_coroutine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(web.AppRunner, "_make_server", lambda self: None)


def _finish_response_with_other_signature(monkeypatch: pytest.MonkeyPatch) -> None:
    async def finish_response(self: RequestHandler, request: Any, resp: Any) -> Any: ...

    monkeypatch.setattr(RequestHandler, "finish_response", finish_response)


def _python_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aiohttp.http_parser, "HttpRequestParser", aiohttp.http_parser.HttpRequestParserPy)


# (the symbol as INTERNALS names it, how an upgrade could take it away)
REMOVALS: list[tuple[str, Callable[[pytest.MonkeyPatch], None]]] = [
    ("aiohttp.http_writer._serialize_headers",
     lambda mp: mp.delattr(aiohttp.http_writer, "_serialize_headers")),
    ("aiohttp.client_proto.ResponseHandler.set_response_params/should_close/read_timeout",
     lambda mp: mp.delattr(ResponseHandler, "set_response_params")),
    ("aiohttp.client_proto.ResponseHandler.set_response_params/should_close/read_timeout",
     lambda mp: mp.delattr(ResponseHandler, "should_close")),
    ("aiohttp.web_protocol.RequestHandler._request_in_progress/_messages/_request_count/_loop",
     lambda mp: mp.delattr(RequestHandler, "_request_in_progress")),
    ("aiohttp.web_protocol.RequestHandler._request_in_progress/_messages/_request_count/_loop",
     lambda mp: mp.delattr(RequestHandler, "_messages")),
    ("aiohttp.web_protocol.RequestHandler._request_in_progress/_messages/_request_count/_loop",
     lambda mp: mp.delattr(RequestHandler, "_request_count")),
    ("aiohttp.web_protocol.RequestHandler.data_received/handle_error/force_close/close",
     lambda mp: mp.delattr(RequestHandler, "handle_error")),
    ("aiohttp.web_protocol.RequestHandler.finish_response(request, resp, start_time)/_close/_force_close",
     lambda mp: mp.delattr(RequestHandler, "finish_response")),
    ("aiohttp.web_protocol.RequestHandler.finish_response(request, resp, start_time)/_close/_force_close",
     _finish_response_with_other_signature),
    ("aiohttp.web.Server._loop/_kwargs", _server_without_kwargs),
    ("aiohttp.web.Server._make_request(message, payload, protocol, writer, task)", _factory_with_other_signature),
    ("aiohttp.web.AppRunner._make_server", _make_server_not_a_coroutine),
    ("aiohttp.web.StreamResponse._send_headers_immediately",
     lambda mp: mp.delattr(web.StreamResponse, "_send_headers_immediately")),
    ("aiohttp._http_parser (the C llhttp request parser)", _python_parser),
]


def test_the_locked_aiohttp_has_every_internal() -> None:
    verify_internals()
    assert all(internal.present() for internal in INTERNALS)


def test_every_internal_says_what_it_is_for_and_what_the_alternative_costs() -> None:
    for internal in INTERNALS:
        assert internal.used_for, internal.symbol
        assert internal.public_alternative, internal.symbol


def test_every_internal_has_a_removal_test() -> None:
    assert {internal.symbol for internal in INTERNALS} == {symbol for symbol, _ in REMOVALS}


@pytest.mark.parametrize(("symbol", "remove"), REMOVALS, ids=[f"{i}-{s.split('(')[0]}" for i, (s, _) in
                                                               enumerate(REMOVALS)])
def test_a_removed_internal_fails_naming_the_symbol(
    monkeypatch: pytest.MonkeyPatch, symbol: str, remove: Callable[[pytest.MonkeyPatch], None]
) -> None:
    remove(monkeypatch)
    with pytest.raises(AiohttpInternalsChanged) as raised:
        verify_internals()
    message = str(raised.value)
    assert symbol in message
    assert "gateway/_compat.py" in message
    # Only that symbol is reported: the others are still there.
    assert sum(internal.symbol in message for internal in INTERNALS) == 1


# An underscore name imported from aiohttp, or an underscore attribute aiohttp owns read off an object.
PRIVATE_IMPORT = re.compile(r"^\s*(?:from\s+aiohttp[\w.]*\s+import\s+[^#\n]*\b_[a-z]\w*|import\s+aiohttp\._)", re.M)
PRIVATE_ATTRIBUTES = ("_request_in_progress", "_messages", "_request_count", "_kwargs", "_make_request",
                      "_send_headers_immediately", "_serialize_headers", "_http_parser", "_force_close",
                      "_task_handler", "_payload_parser", "_keepalive")


def test_only_the_compat_module_reaches_into_aiohttp() -> None:
    offenders = []
    for path in sorted(GATEWAY.rglob("*.py")):
        if path.name == "_compat.py":
            continue
        text = path.read_text(encoding="utf-8")
        relative = path.relative_to(GATEWAY.parent)
        offenders += [f"{relative}: {match.group(0).strip()}" for match in PRIVATE_IMPORT.finditer(text)]
        offenders += [f"{relative}: .{name}" for name in PRIVATE_ATTRIBUTES if re.search(rf"\.{name}\b", text)]
    assert not offenders, "use gateway._compat for aiohttp internals:\n" + "\n".join(offenders)
