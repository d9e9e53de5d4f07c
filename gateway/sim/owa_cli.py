"""`monosign-gateway sim owa --listen HOST:PORT`: the Exchange OWA/ECP simulator alone.

Top-level imports stay light (argparse only); the simulator is imported when the command runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.commands.arguments import positive_seconds

if TYPE_CHECKING:
    from gateway.sim.owa.config import OwaSimConfig


def _status(text: str) -> int:
    value = int(text)
    if not 100 <= value <= 599:
        raise argparse.ArgumentTypeError("expected an HTTP status code")
    return value


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--listen", default="127.0.0.1:8443", metavar="HOST:PORT",
                        help="address to listen on (default 127.0.0.1:8443; port 0 picks a free one)")
    tls = parser.add_argument_group("TLS (default: plain HTTP)")
    tls.add_argument("--tls-cert", type=Path, metavar="FILE", help="server certificate chain (PEM)")
    tls.add_argument("--tls-key", type=Path, metavar="FILE", help="its private key (PEM)")
    tls.add_argument("--self-signed", action="store_true",
                     help="make a throwaway CA and certificate; the CA's path is printed for clients to trust")
    tls.add_argument("--ca-out", type=Path, metavar="FILE",
                     help="with --self-signed: write the CA certificate here (default: a new temporary directory)")
    parser.add_argument("--host", default="mail.corp.example", metavar="NAME",
                        help="the mail host name: certificate name with --self-signed, and the host used "
                             "when a request has no Host header (default mail.corp.example)")
    parser.add_argument("--users", type=Path, metavar="FILE",
                        help="users as JSON (see docs/simulators.md); default: the demo users alice, bob, carol, dave")
    parser.add_argument("--build", default=None, metavar="VERSION", help="Exchange build shown (default 15.1.2507.6)")
    parser.add_argument("--public-timeout", type=positive_seconds, default=900.0, metavar="SECONDS",
                        help="session timeout on a public computer (Exchange: 900)")
    parser.add_argument("--private-timeout", type=positive_seconds, default=28800.0, metavar="SECONDS",
                        help="session timeout on a private computer, flags & 4 (Exchange: 28800)")
    parser.add_argument("--notification-interval", type=positive_seconds, default=5.0, metavar="SECONDS",
                        help="ev.owa2 sends a chunk this often (default 5)")
    parser.add_argument("--notification-hold", type=positive_seconds, default=60.0, metavar="SECONDS",
                        help="ev.owa2 keeps the response open this long (default 60)")
    parser.add_argument("--attachment-size", type=int, default=50 * 1024 * 1024, metavar="BYTES",
                        help="size of GetFileAttachment downloads without ?size= (default 50 MiB)")
    knobs = parser.add_argument_group("behaviour the Exchange notes mark as unverified")
    knobs.add_argument("--canary-failure-status", type=_status, default=449, metavar="CODE",
                       help="status for service.svc with a missing or wrong X-OWA-CANARY (default 449)")
    knobs.add_argument("--root-redirect", action="store_true", help="GET / redirects to /owa/ (IIS default: no)")
    knobs.add_argument("--vdir-redirect-status", type=int, choices=(301, 302), default=301,
                       help="status of GET /owa -> /owa/ (default 301)")
    knobs.add_argument("--no-samesite-none", action="store_true", help="never append ;SameSite=None to cookie paths")
    knobs.add_argument("--no-host-match", action="store_true",
                       help="accept an auth.owa destination whose host differs from Host")
    knobs.add_argument("--redirect-scheme", choices=("https", "request"), default="https",
                       help="logon redirects use https (Exchange) or the scheme the request came in on")
    knobs.add_argument("--secure-cookies", choices=("auto", "always", "never"), default="auto",
                       help="the secure cookie attribute: auto = when the request came over TLS")
    knobs.add_argument("--language-selection", action="store_true",
                       help="a user's first start page redirects to languageselection.aspx")
    knobs.add_argument("--service-error", action="store_true",
                       help="service.svc and downloads answer 302 to errorFE.aspx?httpCode=500")
    parser.add_argument("--no-control", action="store_true", help="disable /_sim/requests, /_sim/counters, /_sim/reset")
    clients = parser.add_argument_group("non-browser endpoints (EWS, MAPI, RPC, OAB, Autodiscover, ActiveSync)")
    clients.add_argument("--activesync-max-heartbeat", type=positive_seconds, default=3540.0, metavar="SECONDS",
                         help="longest a Ping is held (Exchange: 3540)")
    clients.add_argument("--activesync-449", action="store_true",
                         help="answer every ActiveSync command but Provision with 449 (provision first)")
    clients.add_argument("--mapi-pending-period", type=positive_seconds, default=30.0, metavar="SECONDS",
                         help="a MAPI PENDING keep-alive this often (Exchange: 30)")
    clients.add_argument("--mapi-notification-hold", type=positive_seconds, default=300.0, metavar="SECONDS",
                         help="how long a MAPI NotificationWait is held (default 300)")
    clients.add_argument("--basic-vdirs", default="rpc,autodiscover", metavar="LIST",
                         help="virtual directories that offer Basic next to NTLM (default rpc,autodiscover)")


def _config_from_args(args: argparse.Namespace) -> OwaSimConfig:
    from gateway.sim.exchange_clients.config import ExchangeClientsConfig
    from gateway.sim.owa.config import DEFAULT_BUILD, OwaSimConfig, demo_users, load_users_file

    return OwaSimConfig(
        users=load_users_file(args.users) if args.users else demo_users(),
        default_host=args.host,
        build=args.build or DEFAULT_BUILD,
        public_timeout_s=args.public_timeout,
        private_timeout_s=args.private_timeout,
        notification_interval_s=args.notification_interval,
        notification_hold_s=args.notification_hold,
        attachment_size=args.attachment_size,
        canary_failure_status=args.canary_failure_status,
        root_redirect=args.root_redirect,
        vdir_redirect_status=args.vdir_redirect_status,
        samesite_none=not args.no_samesite_none,
        require_host_match=not args.no_host_match,
        redirect_scheme=args.redirect_scheme,
        secure_cookies=args.secure_cookies,
        language_selection=args.language_selection,
        service_error=args.service_error,
        control_enabled=not args.no_control,
        exchange_clients=ExchangeClientsConfig(
            activesync_max_heartbeat_s=args.activesync_max_heartbeat,
            activesync_provision_required=args.activesync_449,
            mapi_pending_period_ms=int(args.mapi_pending_period * 1000),
            mapi_notification_hold_s=args.mapi_notification_hold,
            basic_vdirs=frozenset(v.strip().lower() for v in args.basic_vdirs.split(",") if v.strip()),
        ),
    )


def run(args: argparse.Namespace) -> int:
    import asyncio
    import shutil
    import signal
    import ssl
    import tempfile

    import uvloop

    from gateway.settings import parse_host_port
    from gateway.sim.owa.app import attach_sni_recorder, build_app, running_owa_sim, server_ssl_context
    from gateway.sim.owa.config import UsersFileError

    if args.self_signed and (args.tls_cert or args.tls_key):
        print("sim owa: choose --self-signed or --tls-cert/--tls-key, not both", file=sys.stderr)
        return 2
    if bool(args.tls_cert) != bool(args.tls_key):
        print("sim owa: --tls-cert and --tls-key go together", file=sys.stderr)
        return 2
    try:
        listen = parse_host_port(args.listen)
        config = _config_from_args(args)
    except (ValueError, UsersFileError) as exc:
        print(f"sim owa: {exc}", file=sys.stderr)
        return 2
    app = build_app(config)

    ssl_context: ssl.SSLContext | None = None
    ca_path: Path | None = None
    temp_dir: str | None = None
    try:
        if args.tls_cert:
            ssl_context = server_ssl_context(app, str(args.tls_cert), str(args.tls_key))
        elif args.self_signed:
            import trustme

            authority = trustme.CA(organization_name="Monosign Gateway OWA simulator (throwaway)")
            names = {"localhost", "127.0.0.1", "::1", args.host}
            if listen.host not in ("0.0.0.0", "::", ""):
                names.add(listen.host)
            certificate = authority.issue_cert(*sorted(names))
            ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            certificate.configure_cert(ssl_context)
            attach_sni_recorder(app, ssl_context)
            if args.ca_out:
                ca_path = args.ca_out
            else:
                temp_dir = tempfile.mkdtemp(prefix="owa-sim-")
                ca_path = Path(temp_dir) / "owa-sim-ca.pem"
            authority.cert_pem.write_to_path(str(ca_path))
    except (OSError, ssl.SSLError) as exc:
        print(f"sim owa: TLS setup failed: {exc}", file=sys.stderr)
        return 1

    async def serve() -> int:
        try:
            async with running_owa_sim(host=listen.host, port=listen.port, ssl_context=ssl_context, app=app) as sim:
                stop = asyncio.Event()
                loop = asyncio.get_running_loop()
                for signum in (signal.SIGINT, signal.SIGTERM):
                    loop.add_signal_handler(signum, stop.set)
                print(f"OWA simulator listening on {sim.base_url}/owa/ (control: {sim.base_url}/_sim/counters)",
                      flush=True)
                if ca_path is not None:
                    print(f"CA certificate: {ca_path}", flush=True)
                for user in config.users:
                    print(f"  {user.windows_name} / {user.principal_name}: {user.display_name}", flush=True)
                await stop.wait()
        except OSError as exc:
            print(f"sim owa: cannot listen on {listen}: {exc.strerror or exc}", file=sys.stderr)
            return 1
        return 0

    try:
        return uvloop.run(serve())
    finally:
        if temp_dir is not None:
            shutil.rmtree(temp_dir, ignore_errors=True)
