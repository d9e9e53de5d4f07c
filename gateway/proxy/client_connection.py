"""Hooks on the client's TCP connection: run something when it closes; close it after a response.

NTLM and Negotiate authenticate a connection, so state that belongs to one client connection (its
pinned upstream connection) must end exactly when that connection ends. aiohttp tells its server
protocol (`RequestHandler.connection_lost`), not the application; `CloseHooksMixin` passes it on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway._compat import RequestHandler, handler_busy
from gateway.observability.logging import get_logger

__all__ = ["CloseHooksMixin", "add_close_hook", "close_after_response"]

log = get_logger("gateway.client_connection")


class CloseHooksMixin(RequestHandler):
    """Put before aiohttp's `RequestHandler` in a protocol class's bases (its own base, so the
    calls to it type-check)."""

    _close_hooks: list[Callable[[], None]] | None = None

    def add_close_hook(self, hook: Callable[[], None]) -> None:
        if self._close_hooks is None:
            self._close_hooks = []
        self._close_hooks.append(hook)

    def connection_lost(self, exc: BaseException | None) -> None:
        super().connection_lost(exc)
        hooks, self._close_hooks = self._close_hooks, None
        for hook in hooks or ():
            try:
                hook()
            except Exception:  # one failing hook must not keep the others from running
                log.exception("connection close hook failed")


def add_close_hook(protocol: Any, hook: Callable[[], None]) -> bool:
    """Register `hook` for when the client connection closes; False when the protocol has no hooks."""
    if isinstance(protocol, CloseHooksMixin):
        protocol.add_close_hook(hook)
        return True
    return False


def close_after_response(protocol: Any) -> None:
    """Close the client connection once the response in progress (if any) is sent.

    aiohttp's `close()` only takes effect when a request ends, so an idle connection is closed now.
    """
    if protocol is None or getattr(protocol, "transport", None) is None:
        return
    if isinstance(protocol, RequestHandler) and handler_busy(protocol):
        protocol.close()
    else:
        protocol.force_close()
