"""A Monosign simulator: the API contract of docs/monosign-api.md over real HTTP, plus a control API.

    async with MonosignSimulator(MonosignSimState(demo_users(), api_key=..., api_secret=...)) as sim:
        sim.url            # http://127.0.0.1:PORT, for MONOSIGN_API_URL
        sim.state          # users, pushes, faults, calls (see monosign_state.py)

The API answers under the contract's paths. `/_sim/` is for tests and demos: a small auto-refreshing
page (current codes, pending pushes with Approve/Reject) and JSON endpoints to approve or reject
pushes, switch auto-approval, read a user's current code, inject and clear faults, and list calls.
It has no authentication: bind it to loopback only.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import socket
from types import TracebackType
from typing import Any

from aiohttp import web

from gateway.monosign.contract import HEADER_APP_ID, HEADER_APP_KEY, ApiPaths
from gateway.sim.monosign_state import ControlError, FaultMode, MonosignSimState, NumberMismatch, SimAnswer, SimPush

DEMO_API_KEY = "demo-app-id"
DEMO_API_SECRET = "demo-app-key"  # noqa: S105 - the simulator's public demo key, never a real one
MAX_REFUSE_SECONDS = 600.0
DEFAULT_REFUSE_SECONDS = 10.0
BAD_GATEWAY_PAGE = ("<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1>"
                    "<p>The proxy server received an invalid response from an upstream server.</p></body></html>")
SERVER_ERROR_PAGE = ("<html><head><title>Runtime Error</title></head><body><h1>Server Error in '/' Application."
                     "</h1></body></html>")

_simulator_key: web.AppKey[MonosignSimulator] = web.AppKey("monosign_simulator")


class MonosignSimulator:
    def __init__(self, state: MonosignSimState, *, paths: ApiPaths | None = None) -> None:
        self.state = state
        self.paths = paths or ApiPaths()
        self.app = self._build_app()
        self._runner: web.AppRunner | None = None
        self._listener: asyncio.Server | None = None
        self._host = "127.0.0.1"
        self._port = 0
        self._in_flight = 0
        self._stopping = asyncio.Event()
        self._reopen_task: asyncio.Task[None] | None = None

    # --- Lifecycle ---------------------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        self._host = host
        await self._listen(port)

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._port}"

    @property
    def listening(self) -> bool:
        return self._listener is not None

    async def stop(self) -> None:
        self._stopping.set()
        if self._reopen_task is not None:
            self._reopen_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reopen_task
        self._close_listener()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> MonosignSimulator:
        if self._runner is None:
            await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    async def _listen(self, port: int) -> None:
        if self._runner is None or self._runner.server is None:
            raise RuntimeError("start() the simulator first")
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            # Reopening after a "refuse" fault must get the same port back despite TIME_WAIT.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self._host, port))
        except OSError:
            sock.close()
            raise
        self._port = sock.getsockname()[1]
        loop = asyncio.get_running_loop()
        self._listener = await loop.create_server(self._runner.server, sock=sock, backlog=512)

    def _close_listener(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    # --- Faults --------------------------------------------------------------------------------------
    async def set_faults(self, mode: FaultMode, *, delay: float = 0.0, duration: float | None = None,
                         keep: web.BaseRequest | None = None) -> None:
        """Switch the fault mode. `refuse` closes the listener for `duration` seconds (reopened after)."""
        await self.clear_faults()
        self.state.faults.mode = mode
        self.state.faults.delay = delay
        if mode is FaultMode.REFUSE:
            self._close_listener()
            self._cut_connections(keep)
            if duration is not None:
                self._reopen_task = asyncio.create_task(self._reopen_after(duration))

    async def clear_faults(self) -> None:
        if self._reopen_task is not None:
            self._reopen_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reopen_task
            self._reopen_task = None
        self.state.faults.mode = FaultMode.NONE
        self.state.faults.delay = 0.0
        if self._listener is None and self._runner is not None and not self._stopping.is_set():
            await self._listen(self._port)

    async def _reopen_after(self, duration: float) -> None:
        await asyncio.sleep(duration)
        self._reopen_task = None
        await self.clear_faults()

    def _cut_connections(self, keep: web.BaseRequest | None) -> None:
        if self._runner is None or self._runner.server is None:
            return
        keep_transport = keep.transport if keep is not None else None
        for handler in self._runner.server.connections:
            if handler.transport is not None and handler.transport is not keep_transport:
                handler.transport.abort()

    # --- HTTP --------------------------------------------------------------------------------------------
    def _build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._api_faults])
        app[_simulator_key] = self
        push_status_route = self.paths.push_status  # "{request_id}" is aiohttp's own placeholder syntax
        app.router.add_get(self.paths.user_lookup, self._lookup)
        app.router.add_post(self.paths.push_start, self._start_push)
        app.router.add_get(push_status_route, self._push_status)
        app.router.add_post(self.paths.verify, self._verify)
        control = [
            ("GET", "/_sim/", self._page),
            ("GET", "/_sim", self._page),
            ("GET", "/_sim/state", self._state),
            ("GET", "/_sim/users/{name}/code", self._code),
            ("POST", "/_sim/users/{name}/unlock", self._unlock),
            ("POST", "/_sim/users/{name}/push/{verdict:approve|reject}", self._answer_latest),
            ("GET", "/_sim/pushes", self._pushes),
            ("POST", "/_sim/pushes/{request_id}/{verdict:approve|reject}", self._answer_push),
            ("POST", "/_sim/auto-approve", self._auto_approve),
            ("GET", "/_sim/faults", self._faults),
            ("POST", "/_sim/faults", self._set_faults),
            ("DELETE", "/_sim/faults", self._clear_faults),
            ("GET", "/_sim/calls", self._calls),
            ("DELETE", "/_sim/calls", self._clear_calls),
            ("GET", "/_sim/stats", self._stats),
            ("DELETE", "/_sim/stats", self._clear_stats),
        ]
        for method, path, handler in control:
            app.router.add_route(method, path, handler)
        return app

    @web.middleware
    async def _api_faults(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path.startswith("/_sim"):
            response: web.StreamResponse = await handler(request)
            return response
        state = self.state
        if self._runner is not None and self._runner.server is not None:
            state.max_connections_seen = max(state.max_connections_seen, len(self._runner.server.connections))
        self._in_flight += 1
        state.max_in_flight_seen = max(state.max_in_flight_seen, self._in_flight)
        try:
            if state.faults.mode in (FaultMode.REFUSE, FaultMode.RESET):
                state.record_call(method=request.method, path=request.path, operation="fault", user=None,
                                  answer=None, http_status=0, authorized=False)
                if request.transport is not None:
                    request.transport.abort()
                raise web.HTTPServiceUnavailable()  # never delivered: the connection is already gone
            if state.faults.delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), timeout=state.faults.delay)
            if state.faults.mode is FaultMode.HTML_502:
                state.record_call(method=request.method, path=request.path, operation="fault", user=None,
                                  answer=None, http_status=502, authorized=False)
                return web.Response(status=502, text=BAD_GATEWAY_PAGE, content_type="text/html")
            if state.faults.mode is FaultMode.HTML_500:
                state.record_call(method=request.method, path=request.path, operation="fault", user=None,
                                  answer=None, http_status=500, authorized=False)
                return web.Response(status=500, text=SERVER_ERROR_PAGE, content_type="text/html")
            if state.faults.mode is FaultMode.GARBAGE:
                state.record_call(method=request.method, path=request.path, operation="fault", user=None,
                                  answer=None, http_status=200, authorized=False)
                return web.Response(status=200, body=b'{"Success": tr\x00ue, "Co', content_type="application/json")
            response = await handler(request)
            return response
        finally:
            self._in_flight -= 1

    def _gate(self, request: web.Request) -> tuple[bool, SimAnswer | None]:
        """(authorized, an answer that pre-empts the operation: wrong key pair or a forced code)."""
        authorized = self.state.authorized(request.headers.get(HEADER_APP_ID), request.headers.get(HEADER_APP_KEY))
        if not authorized:
            return False, self.state.invalid_key()
        return True, self.state.forced_answer()

    def _reply(self, request: web.Request, operation: str, user: str | None, answer: SimAnswer,
               authorized: bool) -> web.Response:
        self.state.record_call(method=request.method, path=request.path, operation=operation, user=user,
                               answer=answer, http_status=answer.http_status, authorized=authorized)
        return web.json_response(answer.envelope(), status=answer.http_status, headers=answer.headers)

    @staticmethod
    async def _json_body(request: web.Request) -> dict[str, Any] | None:
        try:
            body = json.loads(await request.read())
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    async def _lookup(self, request: web.Request) -> web.Response:
        user_name = request.query.get("userName")
        authorized, answer = self._gate(request)
        if answer is None:
            answer = self.state.lookup(user_name, request.query.get("source"))
        return self._reply(request, "lookup_user", user_name, answer, authorized)

    async def _start_push(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        user_id = body.get("UserId") if body else None
        authorized, answer = self._gate(request)
        if answer is None:
            answer = self.state.start_push(body) if body is not None else self.state.bad_request("a JSON object")
        return self._reply(request, "start_push", user_id if isinstance(user_id, str) else None, answer, authorized)

    async def _push_status(self, request: web.Request) -> web.Response:
        request_id = request.match_info["request_id"]
        authorized, answer = self._gate(request)
        push = self.state.pushes.get(request_id)
        if answer is None:
            answer = self.state.push_status(request_id)
        return self._reply(request, "push_status", push.user_id if push else None, answer, authorized)

    async def _verify(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        user_id = body.get("UserId") if body else None
        authorized, answer = self._gate(request)
        if answer is None:
            answer = self.state.verify(body) if body is not None else self.state.bad_request("a JSON object")
        return self._reply(request, "verify_code", user_id if isinstance(user_id, str) else None, answer, authorized)

    # --- Control API ---------------------------------------------------------------------------------------
    @staticmethod
    def _is_form(request: web.Request) -> bool:
        return request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data")

    @staticmethod
    async def _control_body(request: web.Request) -> dict[str, Any]:
        if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            return dict(await request.post())
        if not request.can_read_body:
            return {}
        try:
            body = json.loads(await request.read())
        except ValueError:
            raise web.HTTPBadRequest(text='{"error": "expected a JSON object"}',
                                     content_type="application/json") from None
        if not isinstance(body, dict):
            raise web.HTTPBadRequest(text='{"error": "expected a JSON object"}', content_type="application/json")
        return body

    @staticmethod
    def _error(status: int, message: str) -> web.Response:
        return web.json_response({"error": message}, status=status)

    def _push_json(self, push: SimPush) -> dict[str, Any]:
        user = self.state.users.get(push.user_id)
        return {"request_id": push.request_id, "user": user.user_name if user else None, "status": push.status.value,
                "client_ip": push.client_ip, "user_agent": push.user_agent, "application": push.application,
                "number_matching": push.number_challenge is not None,
                "expires_in": max(0.0, round(push.expires_at - self.state.clock(), 1))}

    def _users_json(self) -> list[dict[str, Any]]:
        now = self.state.clock()
        listed = []
        for user in self.state.users.values():
            code, valid_for = self.state.current_code(user.id)
            until = self.state.locked_until.get(user.id, 0.0)
            listed.append({
                "id": user.id, "user_name": user.user_name, "email": user.email, "display_name": user.display_name,
                "domain": user.domain, "source": user.source, "mfa_methods": list(user.mfa_methods),
                "assigned": user.assigned, "code": code, "code_valid_for": valid_for,
                "locked_for": max(0, round(until - now)),
            })
        return listed

    async def _state(self, request: web.Request) -> web.Response:
        return web.json_response({
            "users": self._users_json(),
            "pending_pushes": [self._push_json(push) for push in self.state.pending_pushes()],
            "auto_approve": {"enabled": self.state.auto_approve, "delay": self.state.auto_approve_delay},
            "push_ttl": self.state.push_ttl,
            "faults": self.state.faults.as_json(),
        })

    async def _code(self, request: web.Request) -> web.Response:
        try:
            code, valid_for = self.state.current_code(request.match_info["name"])
        except ControlError as exc:
            return self._error(404, str(exc))
        return web.json_response({"code": code, "valid_for": valid_for})

    async def _unlock(self, request: web.Request) -> web.Response:
        try:
            self.state.unlock(request.match_info["name"])
        except ControlError as exc:
            return self._error(404, str(exc))
        return web.json_response({"unlocked": True})

    def _push_answered(self, request: web.Request, push: SimPush) -> web.Response:
        if self._is_form(request):
            raise web.HTTPSeeOther("/_sim/")
        return web.json_response(self._push_json(push))

    async def _answer_push(self, request: web.Request) -> web.Response:
        approve = request.match_info["verdict"] == "approve"
        number = await self._number(request)
        try:
            push = self.state.answer_push(request.match_info["request_id"], approve, number)
        except NumberMismatch as exc:
            return self._error(422, str(exc))
        except ControlError as exc:
            return self._error(409 if "already" in str(exc) else 404, str(exc))
        return self._push_answered(request, push)

    async def _answer_latest(self, request: web.Request) -> web.Response:
        approve = request.match_info["verdict"] == "approve"
        number = await self._number(request)
        try:
            push = self.state.answer_latest_push(request.match_info["name"], approve, number)
        except NumberMismatch as exc:
            return self._error(422, str(exc))
        except ControlError as exc:
            return self._error(404, str(exc))
        return self._push_answered(request, push)

    async def _number(self, request: web.Request) -> str | None:
        """The number an approval enters (number matching): `number` in the form or JSON body."""
        number = (await self._control_body(request)).get("number")
        return str(number).strip() if number not in (None, "") else None

    async def _pushes(self, request: web.Request) -> web.Response:
        pushes = [self.state.current_push(request_id) for request_id in list(self.state.pushes)]
        return web.json_response([self._push_json(push) for push in pushes if push is not None])

    async def _auto_approve(self, request: web.Request) -> web.Response:
        body = await self._control_body(request)
        enabled = body.get("enabled", True)
        if isinstance(enabled, str):
            enabled = enabled.lower() in ("1", "true", "on", "yes")
        delay = body.get("delay")
        try:
            delay_value = None if delay in (None, "") else float(delay)
        except (TypeError, ValueError):
            return self._error(400, "delay: expected seconds")
        if not isinstance(enabled, bool) or (delay_value is not None and not 0 <= delay_value <= 3600):
            return self._error(400, "expected {\"enabled\": true|false, \"delay\": seconds between 0 and 3600}")
        self.state.set_auto_approve(enabled, delay_value)
        if self._is_form(request):
            raise web.HTTPSeeOther("/_sim/")
        return web.json_response({"enabled": self.state.auto_approve, "delay": self.state.auto_approve_delay})

    async def _faults(self, request: web.Request) -> web.Response:
        return web.json_response(self.state.faults.as_json())

    async def _set_faults(self, request: web.Request) -> web.StreamResponse:
        body = await self._control_body(request)
        try:
            mode = FaultMode(body.get("mode", "none"))
            delay = float(body.get("delay") or 0.0)
            duration = float(DEFAULT_REFUSE_SECONDS if body.get("duration") in (None, "") else body["duration"])
        except (TypeError, ValueError):
            modes = ", ".join(mode.value for mode in FaultMode)
            return self._error(400, f"expected {{\"mode\": one of {modes}, \"delay\": seconds, \"duration\": seconds}}")
        if not 0 <= delay <= 3600 or not 0 < duration <= MAX_REFUSE_SECONDS or (mode is FaultMode.SLOW and not delay):
            return self._error(400, f"delay must be 0..3600 seconds (more than 0 for slow), duration more than 0 "
                                    f"and at most {MAX_REFUSE_SECONDS:g} seconds")
        await self.set_faults(mode, delay=delay, duration=duration, keep=request)
        answer = web.json_response({**self.state.faults.as_json(),
                                    **({"reopens_in": duration} if mode is FaultMode.REFUSE else {})})
        if mode is FaultMode.REFUSE:
            answer.force_close()
        return answer

    async def _clear_faults(self, request: web.Request) -> web.Response:
        await self.clear_faults()
        return web.json_response(self.state.faults.as_json())

    async def _calls(self, request: web.Request) -> web.Response:
        return web.json_response(list(self.state.calls))

    async def _clear_calls(self, request: web.Request) -> web.Response:
        self.state.calls.clear()
        return web.json_response([])

    def _stats_json(self) -> dict[str, int]:
        return {"max_connections": self.state.max_connections_seen, "max_in_flight": self.state.max_in_flight_seen,
                "calls": len(self.state.calls)}

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response(self._stats_json())

    async def _clear_stats(self, request: web.Request) -> web.Response:
        self.state.max_connections_seen = 0
        self.state.max_in_flight_seen = 0
        return web.json_response(self._stats_json())

    async def _page(self, request: web.Request) -> web.Response:
        return web.Response(text=render_page(self), content_type="text/html",
                            headers={"Cache-Control": "no-store"})


def render_page(sim: MonosignSimulator) -> str:
    """The human page: users with their current codes, pending pushes with Approve / Reject."""
    esc = html.escape
    rows = []
    for user in sim._users_json():
        status = "assigned" if user["assigned"] else "NOT assigned (code 22)"
        locked = f" · locked {user['locked_for']}s" if user["locked_for"] else ""
        code = esc(user["code"]) if "Totp" in user["mfa_methods"] else "–"
        rows.append(
            f"<tr><td>{esc(user['domain'])}\\{esc(user['user_name'])}<br><small>{esc(user['email'])}</small></td>"
            f"<td>{esc(', '.join(user['mfa_methods']))}</td><td>{status}{locked}</td>"
            f"<td class=code>{code}</td><td>{user['code_valid_for']}s</td></tr>"
        )
    pushes = []
    for push in sim.state.pending_pushes():
        data = sim._push_json(push)
        rid = esc(push.request_id)
        # Number matching: like the app, the page asks for the number the sign-in page shows.
        number_field = ("<label>Number on the sign-in page <input name=number required size=2 maxlength=2 "
                        "inputmode=numeric pattern='[0-9]{2}'></label> " if push.number_challenge else "")
        pushes.append(
            f"<tr><td>{esc(data['user'] or '?')}</td><td>{esc(push.client_ip)}</td>"
            f"<td>{esc(push.application)}<br><small>{esc(push.user_agent)}</small></td>"
            f"<td>{data['expires_in']:.0f}s</td><td>"
            f"<form method=post action='/_sim/pushes/{rid}/approve'>{number_field}"
            f"<button class=ok>Approve</button></form> "
            f"<form method=post action='/_sim/pushes/{rid}/reject'><button class=no>Reject</button></form></td></tr>"
        )
    no_pushes = "<tr><td colspan=5>No pending push.</td></tr>"
    # No refresh while a push asks for its number: it would clear the field being typed in.
    asks_number = any(push.number_challenge for push in sim.state.pending_pushes())
    refresh = "" if asks_number else "<meta http-equiv=refresh content=2>"
    auto = sim.state.auto_approve
    faults = sim.state.faults
    return f"""<!doctype html>
<html lang=en><head><meta charset=utf-8>{refresh}
<title>Monosign simulator</title>
<style>
body{{font-family:system-ui,sans-serif;margin:2em;color:#222}} table{{border-collapse:collapse;margin-bottom:2em}}
td,th{{border-bottom:1px solid #ddd;padding:.4em .8em;text-align:left}} .code{{font:1.4em monospace}}
form{{display:inline}} button{{padding:.3em 1em}} .ok{{background:#2a7}} .no{{background:#d54}}
</style></head><body>
<h1>Monosign simulator</h1>
<p>API at <code>{esc(sim.url)}</code> · auto-approve: <b>{"on" if auto else "off"}</b>
· fault: <b>{esc(faults.mode.value)}</b>{f" · delay {faults.delay:g}s" if faults.delay else ""}</p>
<h2>Pending pushes</h2>
<table><tr><th>User</th><th>Client IP</th><th>Application</th><th>Expires in</th><th></th></tr>
{"".join(pushes) or no_pushes}</table>
<h2>Users</h2>
<table><tr><th>User</th><th>Methods</th><th>Application</th><th>Current code</th><th>Valid for</th></tr>
{"".join(rows)}</table>
<form method=post action="/_sim/auto-approve"><input type=hidden name=enabled value="{"false" if auto else "true"}">
<button>Turn auto-approve {"off" if auto else "on"}</button></form>
</body></html>
"""
