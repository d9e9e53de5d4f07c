"""The generic application simulator's routes.

| Route | What it does |
|---|---|
| `GET /` and any other page path | an HTML page naming the path and the identity headers received |
| `GET /_app/echo` (any method) | JSON: method, path, raw query, headers in order, body size |
| `GET /_app/slow?seconds=S&chunks=N` | N chunks spread over S seconds (long responses, drains) |
| `GET /_app/download?size=BYTES` | a generated body of that size, streamed (never held in memory) |
| `POST /_app/upload` | reads the body as it arrives; JSON with its size and SHA-256 |
| `GET /_app/ws` | a WebSocket that echoes text and binary messages |
| `GET /health` | `ok`, for health checks (a `bypass` rule in the demo) |
| `GET /login`, `POST /login`, `GET /logout` | the optional form login (`--require-login`) |

With `require_login`, every page but `/health`, `/login` and `/_app/*` static needs the
application's own session cookie (`appsession`); without one a browser is redirected to `/login`.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import secrets
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import WSMsgType, web
from yarl import URL

SESSION_COOKIE = "appsession"
RECENT_PATHS = 1000
MAX_SLOW_SECONDS = 600.0
MAX_SLOW_CHUNKS = 10_000
MAX_DOWNLOAD = 64 * 1024**3
DOWNLOAD_BLOCK = 64 * 1024
# The identity headers a gateway hands to its upstream (shown on every page, echoed in full by /_app/echo).
IDENTITY_HEADERS = ("Remote-User", "Remote-Email", "Remote-Name", "Remote-Groups", "X-Monosign-Assertion")
OPEN_PATHS = frozenset({"/health", "/login", "/logout"})


@dataclass(frozen=True, slots=True)
class AppSimConfig:
    """`users`: name -> password for the optional form login (plain text: this is a simulator)."""

    name: str = "Intranet"
    require_login: bool = False
    users: Mapping[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class AppSimState:
    config: AppSimConfig
    sessions: dict[str, str] = field(default_factory=dict)  # session id -> user
    requests: int = 0
    # The decoded paths of the latest requests, as the application read them (for tests and rehearsals).
    paths: deque[str] = field(default_factory=lambda: deque(maxlen=RECENT_PATHS))


STATE_KEY = web.AppKey("app_sim_state", AppSimState)


def _state(request: web.Request) -> AppSimState:
    return request.app[STATE_KEY]


def _session_user(request: web.Request) -> str | None:
    session = request.cookies.get(SESSION_COOKIE)
    return _state(request).sessions.get(session) if session else None


def _page(title: str, body: str) -> web.Response:
    document = (
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:system-ui,sans-serif;margin:2rem;max-width:48rem}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:left}"
        "</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )
    return web.Response(text=document, content_type="text/html")


@web.middleware
async def _counted_and_guarded(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    state = _state(request)
    state.requests += 1
    state.paths.append(request.path)
    guarded = (state.config.require_login and request.path not in OPEN_PATHS
               and not request.path.startswith("/_app/"))
    if guarded and _session_user(request) is None:
        if request.method in ("GET", "HEAD"):
            raise web.HTTPFound(URL("/login").with_query(next=request.path_qs))
        raise web.HTTPUnauthorized(text="sign in first\n")
    return await handler(request)


async def page(request: web.Request) -> web.Response:
    state = _state(request)
    rows = "".join(
        f"<tr><th>{html.escape(name)}</th><td>{html.escape(', '.join(request.headers.getall(name, [])) or '-')}"
        "</td></tr>"
        for name in IDENTITY_HEADERS
    )
    user = _session_user(request)
    signed_in = (f"<p>Signed in to the application as <b>{html.escape(user)}</b>. <a href=\"/logout\">Sign out</a></p>"
                 if user else "")
    body = (
        f"<p>You are on <code>{html.escape(request.path)}</code> of {html.escape(state.config.name)}, "
        "an application behind Monosign Gateway.</p>"
        f"{signed_in}<h2>Who the gateway says you are</h2><table>{rows}</table>"
        "<p><a href=\"/_app/echo\">Everything this request carried</a> · <a href=\"/admin/\">Admin area</a>"
        " · <a href=\"/_app/download?size=10485760\">A 10 MiB download</a></p>"
    )
    return _page(state.config.name, body)


async def echo(request: web.Request) -> web.Response:
    size = 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
    document = {
        "method": request.method,
        "path": request.raw_path.split("?", 1)[0],
        "query": request.query_string,
        "headers": [[name.decode("latin-1"), value.decode("latin-1")] for name, value in request.raw_headers],
        "body_bytes": size,
    }
    return web.json_response(document)


def _number(request: web.Request, name: str, default: float, *, limit: float) -> float:
    try:
        value = float(request.query.get(name, default))
    except ValueError:
        raise web.HTTPBadRequest(text=f"{name}: not a number\n") from None
    if not 0 <= value <= limit:
        raise web.HTTPBadRequest(text=f"{name}: out of range\n")
    return value


async def slow(request: web.Request) -> web.StreamResponse:
    seconds = _number(request, "seconds", 10.0, limit=MAX_SLOW_SECONDS)
    chunks = max(1, int(_number(request, "chunks", 10, limit=MAX_SLOW_CHUNKS)))
    response = web.StreamResponse(headers={"Content-Type": "text/plain"})
    await response.prepare(request)
    interval = seconds / max(chunks - 1, 1)
    for index in range(chunks):
        if index:
            await asyncio.sleep(interval)
        await response.write(f"chunk {index + 1} of {chunks}\n".encode())
    await response.write_eof()
    return response


async def download(request: web.Request) -> web.StreamResponse:
    size = int(_number(request, "size", 50 * 1024 * 1024, limit=MAX_DOWNLOAD))
    response = web.StreamResponse(headers={"Content-Type": "application/octet-stream",
                                           "Content-Disposition": 'attachment; filename="download.bin"'})
    response.content_length = size
    await response.prepare(request)
    block = bytes(range(256)) * (DOWNLOAD_BLOCK // 256)
    left = size
    while left > 0:
        piece = block if left >= len(block) else block[:left]
        await response.write(piece)
        left -= len(piece)
    await response.write_eof()
    return response


async def upload(request: web.Request) -> web.Response:
    digest = hashlib.sha256()
    size = 0
    async for chunk in request.content.iter_any():
        digest.update(chunk)
        size += len(chunk)
    return web.json_response({"bytes": size, "sha256": digest.hexdigest()})


async def websocket(request: web.Request) -> web.WebSocketResponse:
    socket = web.WebSocketResponse(heartbeat=None)
    await socket.prepare(request)
    async for message in socket:
        if message.type is WSMsgType.TEXT:
            await socket.send_str(message.data)
        elif message.type is WSMsgType.BINARY:
            await socket.send_bytes(message.data)
    return socket


async def health(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


def _safe_next(value: str | None) -> str:
    """Only a path of this application: never another origin (`//host`, `/\\host`, a scheme)."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return "/"
    return value


async def login_form(request: web.Request) -> web.Response:
    target = html.escape(_safe_next(request.query.get("next")))
    body = (
        "<form method=\"post\" action=\"/login\">"
        f"<input type=\"hidden\" name=\"next\" value=\"{target}\">"
        "<p><label>User name <input name=\"username\" autocomplete=\"username\"></label></p>"
        "<p><label>Password <input name=\"password\" type=\"password\" autocomplete=\"current-password\">"
        "</label></p><p><button type=\"submit\">Sign in</button></p></form>"
    )
    return _page(f"Sign in to {_state(request).config.name}", body)


async def login(request: web.Request) -> web.StreamResponse:
    state = _state(request)
    form = await request.post()
    user, password = str(form.get("username", "")), str(form.get("password", ""))
    expected = state.config.users.get(user)
    if expected is None or not secrets.compare_digest(expected.encode(), password.encode()):
        return web.Response(status=401, text="wrong user name or password\n")
    session = secrets.token_urlsafe(24)
    state.sessions[session] = user
    response = _see_other(_safe_next(str(form.get("next", "/"))))
    response.set_cookie(SESSION_COOKIE, session, httponly=True, samesite="Lax", path="/")
    return response


def _see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


async def logout(request: web.Request) -> web.StreamResponse:
    session = request.cookies.get(SESSION_COOKIE)
    if session:
        _state(request).sessions.pop(session, None)
    response = _see_other("/login")
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


def build_app(config: AppSimConfig | None = None) -> web.Application:
    app = web.Application(client_max_size=1024 * 1024, middlewares=[_counted_and_guarded])
    app[STATE_KEY] = AppSimState(config or AppSimConfig())
    app.router.add_route("*", "/_app/echo", echo)
    app.router.add_get("/_app/slow", slow)
    app.router.add_get("/_app/download", download)
    app.router.add_post("/_app/upload", upload)
    app.router.add_get("/_app/ws", websocket)
    app.router.add_get("/health", health)
    app.router.add_get("/login", login_form)
    app.router.add_post("/login", login)
    app.router.add_get("/logout", logout)
    app.router.add_get("/{tail:.*}", page)
    return app


@dataclass(frozen=True, slots=True)
class RunningAppSim:
    base_url: str
    port: int
    state: AppSimState


@asynccontextmanager
async def running_app_sim(config: AppSimConfig | None = None, *, host: str = "127.0.0.1",
                          port: int = 0) -> AsyncIterator[RunningAppSim]:
    """Run the simulator on host:port (0 = a free port) for the duration of the block."""
    app = build_app(config)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = int(runner.addresses[0][1])
        shown = f"[{host}]" if ":" in host else host
        yield RunningAppSim(base_url=f"http://{shown}:{bound}", port=bound, state=app[STATE_KEY])
    finally:
        await runner.cleanup()

