"""/_sim/*: what reached the simulator, as JSON, for tests and rehearsals.

    GET  /_sim/requests   the request log (oldest first); ?path=/owa/ keeps targets starting with it
    GET  /_sim/counters   tampered cookies, logins per user, requests per path, ...
    POST /_sim/reset      clear log and counters (?sessions=1 also ends every session)

Control requests are not recorded themselves.
"""

from __future__ import annotations

from aiohttp import web

from gateway.sim.owa.responses import method_not_allowed, not_found
from gateway.sim.owa.state import OwaSimState
from gateway.sim.owa.wire import query_param


async def handle(request: web.Request, state: OwaSimState) -> web.StreamResponse:
    if not state.config.control_enabled:
        return not_found()
    name = request.path.lower().removeprefix("/_sim/")
    if name == "requests":
        if request.method != "GET":
            return method_not_allowed()
        prefix = (query_param(request.query_string, "path") or "").lower()
        records = [r.as_json() for r in state.recorder.requests() if r.target.lower().startswith(prefix)]
        return web.json_response({"requests": records})
    if name == "counters":
        if request.method != "GET":
            return method_not_allowed()
        body = state.recorder.counters.as_json()
        body["active_sessions"] = len(state.sessions)
        return web.json_response(body)
    if name == "reset":
        if request.method != "POST":
            return method_not_allowed()
        state.reset(sessions=query_param(request.query_string, "sessions") in ("1", "true"))
        return web.json_response({"reset": True})
    return not_found()
