"""The demo stack: the gateway, the Exchange (OWA) simulator and the Monosign simulator in one process.

    async with running_demo(DemoPorts(gateway=0, owa=0, monosign=0, admin=0)) as demo:
        demo.gateway_url, demo.monosign_url, demo.monosign.state, demo.owa.state

Everything listens on 127.0.0.1 only. `monosign-gateway demo` prints `banner(demo)` and runs this
until SIGINT or SIGTERM; the browser tests use it directly.

The OWA simulator is configured for a browser talking plain HTTP to 127.0.0.1: its redirects keep
the request's scheme (Exchange would force https), and its cookies do not carry `SameSite=None`
(browsers drop `SameSite=None` cookies that are not `secure`, and `secure` cookies need https).
"""

from __future__ import annotations

import contextlib
import errno
import json
import secrets
import socket
import tempfile
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.config.environment import sites_from_settings
from gateway.identity.users_file import UserRecord, add_user, new_password_hasher
from gateway.server import Gateway
from gateway.settings import Settings, load_settings
from gateway.sim.app.server import AppSimConfig, RunningAppSim, running_app_sim
from gateway.sim.monosign import MonosignSimulator
from gateway.sim.monosign_state import MonosignSimState
from gateway.sim.monosign_users import SimUser as MonosignUser
from gateway.sim.monosign_users import demo_users as monosign_demo_users
from gateway.sim.owa import OwaSimConfig, RunningOwaSim, running_owa_sim
from gateway.sim.owa.config import SimUser as OwaUser

DEMO_HOST = "127.0.0.1"
# The second site's host: a name under `.localhost`, which browsers (and curl) send to 127.0.0.1
# themselves (RFC 6761), so the demo's one listener can tell the two sites apart by Host.
DEMO_APP_HOST = "intranet.localhost"
# In-flight requests (the mailbox's notification stream) get this long to finish on Ctrl-C.
DEMO_SHUTDOWN_GRACE = 2.0


class PortInUse(OSError):
    """A port the demo was told to use is taken; the message names the option to change."""


@dataclass(frozen=True, slots=True)
class DemoPorts:
    """Ports on 127.0.0.1; 0 picks a free one."""

    gateway: int = 8080
    owa: int = 8081
    monosign: int = 8082
    admin: int = 9090


@dataclass(frozen=True, slots=True)
class RunningDemo:
    gateway_url: str
    admin_url: str
    monosign_url: str
    owa: RunningOwaSim
    monosign: MonosignSimulator
    gateway: Gateway
    app: RunningAppSim | None  # the application simulator behind the passthrough site
    app_url: str  # that site's address on the gateway ("" without it)
    owa_users: tuple[OwaUser, ...]
    monosign_users: tuple[MonosignUser, ...]
    notes: tuple[str, ...]  # e.g. "port 8080 was taken; using 41234"


def port_is_free(port: int, host: str = DEMO_HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the listeners do
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise
        return True


def free_port(host: str = DEMO_HOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def choose_port(name: str, wanted: int, *, may_fall_back: bool, option: str) -> tuple[int, str | None]:
    """The port to use for `name`, and a note when it is not the one wanted.

    A port the user chose (`may_fall_back=False`) that is taken is an error naming the option; a
    default port that is taken falls back to a free one, so a second demo still starts."""
    if wanted == 0:
        return free_port(), None
    if port_is_free(wanted):
        return wanted, None
    if not may_fall_back:
        raise PortInUse(errno.EADDRINUSE, f"port {wanted} ({name}) is already in use; choose another with {option}")
    chosen = free_port()
    return chosen, f"port {wanted} ({name}) is in use, so the demo uses {chosen} instead"


def demo_settings(*, gateway_port: int, admin_port: int, upstream_url: str, monosign_url: str,
                  api_key: str, api_secret: str, **overrides: Any) -> Settings:
    """Settings of a gateway on 127.0.0.1 in front of the two simulators (memory store, plain HTTP)."""
    public_url = f"http://{DEMO_HOST}:{gateway_port}"
    values: dict[str, Any] = {
        "monosign_api_url": monosign_url,
        "monosign_api_key": api_key,
        "monosign_api_secret": api_secret,
        "monosign_user_source": None,
        "monosign_user_exceptions": [],
        "monosign_ca_file": None,
        "gateway_listen": f"{DEMO_HOST}:{gateway_port}",
        "gateway_admin_listen": f"{DEMO_HOST}:{admin_port}",
        # Only this origin: the MFA forms refuse posts from any other. `localhost` and `[::1]` with the
        # same port are redirected here (gateway.policy.edge.loopback_aliases), so typing them works.
        "gateway_public_url": public_url,
        "gateway_allowed_hosts": [],
        "gateway_trusted_proxies": [],
        "gateway_upstream_url": upstream_url,
        "gateway_upstream_ca_file": None,
        "gateway_tls_cert_file": None,
        "gateway_tls_key_file": None,
        "gateway_session_store": "memory",
        "gateway_redis_url": None,
        # A key of its own each run (generated): the demo's sessions end with it.
        "gateway_session_secret": None,
        "gateway_session_secret_previous": None,
        "gateway_workers": 1,
        "gateway_fail_mode": "closed",
        "gateway_shutdown_grace": DEMO_SHUTDOWN_GRACE,
    }
    values.update(overrides)
    return load_settings(env_file=None, **values)


def demo_owa_config() -> OwaSimConfig:
    # Plain HTTP to 127.0.0.1: keep the request's scheme in redirects, and no SameSite=None (see above).
    return OwaSimConfig(redirect_scheme="request", samesite_none=False, secure_cookies="auto")


@asynccontextmanager
async def running_demo(ports: DemoPorts = DemoPorts(), *, fixed: Sequence[str] = (), auto_approve: bool = False,
                       auto_approve_delay: float = 2.0, owa_config: OwaSimConfig | None = None,
                       monosign_options: Mapping[str, Any] | None = None,
                       settings_overrides: Mapping[str, Any] | None = None,
                       intranet: bool = True) -> AsyncIterator[RunningDemo]:
    """Start the servers; stop them (gateway first) when the block ends. With `intranet`, the
    gateway also serves a second site from its listener (a configuration file): the application
    simulator at `intranet.localhost`, behind a `portal` site (the gateway's own sign-in, with the
    demo's users in a users file, then Monosign's second factor; /admin denied, /health open), which
    hands the application the user's identity in headers and in a signed assertion.

    `fixed` names the ports (`gateway`, `owa`, `monosign`, `admin`) the user chose explicitly: those
    must be free, the others fall back to a free port."""
    options = {"gateway": "--port", "owa": "--owa-port", "monosign": "--monosign-port", "admin": "--admin-port"}
    notes: list[str] = []
    chosen: dict[str, int] = {}
    for name, option in options.items():
        if getattr(ports, name) == 0:
            # Bound to port 0 when its server starts, so no other socket can take it in between
            # (the gateway's own, which its public URL must name, is picked just before it starts).
            chosen[name] = 0
            continue
        port, note = choose_port(name, getattr(ports, name), may_fall_back=name not in fixed, option=option)
        chosen[name] = port
        if note:
            notes.append(note)

    owa_config = owa_config or demo_owa_config()
    monosign_users = monosign_demo_users()
    # A fresh key pair each run: nothing outside this process needs it.
    api_key, api_secret = f"demo-{secrets.token_hex(8)}", secrets.token_urlsafe(24)
    state = MonosignSimState(monosign_users, api_key=api_key, api_secret=api_secret, auto_approve=auto_approve,
                             auto_approve_delay=auto_approve_delay, **dict(monosign_options or {}))
    monosign = MonosignSimulator(state)
    async with contextlib.AsyncExitStack() as stack:
        await monosign.start(DEMO_HOST, chosen["monosign"])
        stack.push_async_callback(monosign.stop)
        owa = await stack.enter_async_context(running_owa_sim(owa_config, host=DEMO_HOST, port=chosen["owa"]))
        settings = demo_settings(gateway_port=chosen["gateway"] or free_port(), admin_port=chosen["admin"],
                                 upstream_url=owa.base_url, monosign_url=monosign.url, api_key=api_key,
                                 api_secret=api_secret, **dict(settings_overrides or {}))
        app: RunningAppSim | None = None
        app_url = ""
        if intranet:
            app = await stack.enter_async_context(running_app_sim(AppSimConfig(name="Intranet"), host=DEMO_HOST))
            directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="monosign-gateway-demo-")))
            config_file = directory / "gateway.yaml"
            sites = demo_sites(settings, app.base_url, users_file=write_demo_users(directory, owa_config.users),
                               assertion_key=write_assertion_key(directory))
            config_file.write_text(json.dumps(sites, indent=2), encoding="utf-8")
            settings = settings.model_copy(update={"gateway_config_file": config_file})
            app_url = f"http://{DEMO_APP_HOST}:{settings.gateway_listen.port}"
        gateway = Gateway(settings)
        stack.push_async_callback(gateway.stop)
        await gateway.start()
        yield RunningDemo(
            gateway_url=settings.gateway_public_url,
            admin_url=gateway.admin_addresses[0] if gateway.admin_addresses else "",
            monosign_url=monosign.url,
            owa=owa,
            monosign=monosign,
            gateway=gateway,
            app=app,
            app_url=app_url,
            owa_users=owa_config.users,
            monosign_users=monosign_users,
            notes=tuple(notes),
        )


def demo_sites(settings: Settings, app_url: str, *, users_file: Path, assertion_key: Path) -> dict[str, Any]:
    """The demo's configuration file: the environment's Exchange site as it is, and the intranet
    behind the gateway's own sign-in (the `file` first factor, then the second factor)."""
    exchange = sites_from_settings(settings).sites[0]
    return {"sites": [
        {**exchange.model_dump(mode="json", exclude_none=True), "hosts": [DEMO_HOST]},
        {"name": "intranet", "hosts": [DEMO_APP_HOST], "upstream": app_url, "profile": "portal",
         "first_factor": "file", "users_file": str(users_file),
         "assertion": {"enabled": True, "key_file": str(assertion_key)},
         "rules": [{"paths": ["/health"], "methods": ["GET", "HEAD"], "action": "bypass"},
                   {"paths": ["/admin"], "action": "deny"},
                   {"action": "two_factor"}]},
    ]}


def write_demo_users(directory: Path, users: Sequence[OwaUser]) -> Path:
    """A users file with the Exchange simulator's users and passwords (argon2id), so the demo's two
    sites sign in the same people with the same passwords."""
    hasher = new_password_hasher()
    text = ""
    for user in users:
        text = add_user(text, UserRecord(name=user.username, password_hash=hasher.hash(user.password),
                                         display_name=user.display_name, email=user.email or None,
                                         groups=("demo-users",)))
    path = directory / "users.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def write_assertion_key(directory: Path) -> Path:
    """A P-256 key of the demo's own for the signed assertion (new each run, like the session key)."""
    key = ec.generate_private_key(ec.SECP256R1())
    path = directory / "assertion-key.pem"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return path


def second_factor_text(user: MonosignUser | None) -> str:
    """How a demo user passes (or fails) the second factor, in a few words."""
    if user is None:
        return "unknown to Monosign: sign-in refused"
    if not user.assigned:
        return "not assigned to the application: sign-in refused"
    methods = {"Push": "push approval", "Totp": "one-time code"}
    return " or ".join(methods.get(method, method) for method in user.mfa_methods) or "no method: sign-in refused"


def banner(demo: RunningDemo, *, auto_approve: bool) -> str:
    """What the demo prints once it listens: where to go, who to be, and where the second factor comes from."""
    by_name = {user.user_name.casefold(): user for user in demo.monosign_users}
    name_width = max(len(user.username) for user in demo.owa_users) + 2
    password_width = max(len(user.password) for user in demo.owa_users) + 2
    control = f"{demo.monosign_url}/_sim/"
    lines = [
        "Monosign Gateway demo: the gateway in front of an Exchange (OWA) simulator, with a Monosign simulator,",
        f"all on {DEMO_HOST} (nothing here is reachable from other computers).",
        "",
        f"  Open          {demo.gateway_url}/owa/",
        f"  Second factor {control}  (current one-time codes; approve or reject pushes)",
        "",
        f"  {'User':<{name_width}}{'Password':<{password_width}}Second factor",
    ]
    for user in demo.owa_users:
        factor = second_factor_text(by_name.get(user.username.casefold()))
        lines.append(f"  {user.username:<{name_width}}{user.password:<{password_width}}{factor}")
    lines += [
        "",
        "  Users may also sign in as CORP\\alice or alice@corp.example. The passwords are public demo values.",
        ("  Pushes are approved automatically after a short delay (--auto-approve)." if auto_approve else
         f"  To approve a push, press Approve on {control} (or start with --auto-approve)."),
        "",
        *([f"  Intranet      {demo.app_url}/",
           "                a second site on the same gateway: its own sign-in page (the same users and",
           "                passwords), then the second factor; the application shows who the gateway",
           "                says you are (headers and a signed assertion). /admin is denied.", ""]
          if demo.app_url else []),
        f"  Exchange simulator  {demo.owa.base_url}/owa/  (direct, without the gateway: no second factor)",
        f"  Monosign simulator  {demo.monosign_url}",
        f"  Metrics             {demo.admin_url}/metrics",
    ]
    lines += [f"  Note: {note}" for note in demo.notes]
    lines += ["", "Press Ctrl-C to stop."]
    return "\n".join(lines)
