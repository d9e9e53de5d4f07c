"""`monosign-gateway demo` (`./dev demo`): the gateway with both simulators, on 127.0.0.1, until Ctrl-C.

Exit status: 0 after SIGINT, SIGTERM or `--exit-after`; 1 when a port cannot be opened; 2 when the
settings are unusable (one line per problem).
"""

from __future__ import annotations

import argparse
import sys

from gateway.commands.arguments import positive_seconds

DEFAULT_PORTS = {"gateway": 8080, "owa": 8081, "monosign": 8082, "admin": 9090}


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError("expected a port between 0 and 65535 (0 picks a free one)")
    return value


def configure(parser: argparse.ArgumentParser) -> None:
    ports = parser.add_argument_group("ports on 127.0.0.1 (0 picks a free one; a taken default falls back to a "
                                      "free port, a taken port you chose is an error)")
    ports.add_argument("--port", type=_port, default=None, metavar="PORT",
                       help=f"the gateway (default {DEFAULT_PORTS['gateway']})")
    ports.add_argument("--owa-port", type=_port, default=None, metavar="PORT",
                       help=f"the Exchange (OWA) simulator (default {DEFAULT_PORTS['owa']})")
    ports.add_argument("--monosign-port", type=_port, default=None, metavar="PORT",
                       help=f"the Monosign simulator and its page /_sim/ (default {DEFAULT_PORTS['monosign']})")
    ports.add_argument("--admin-port", type=_port, default=None, metavar="PORT",
                       help=f"the gateway's metrics and health (default {DEFAULT_PORTS['admin']})")
    parser.add_argument("--auto-approve", action="store_true",
                        help="approve every push automatically after --auto-approve-delay seconds")
    parser.add_argument("--auto-approve-delay", type=float, default=2.0, metavar="SECONDS")
    parser.add_argument("--exit-after", type=positive_seconds, default=None, metavar="SECONDS",
                        help="stop by itself after this many seconds (for scripts and tests)")
    parser.add_argument("--quiet", action="store_true", help="log only warnings and errors")


def run(args: argparse.Namespace) -> int:
    import asyncio
    import contextlib
    import logging
    import signal

    import uvloop

    from gateway._compat import AiohttpInternalsChanged, verify_internals
    from gateway.app import CParserMissing, assert_c_parser
    from gateway.demo import DemoPorts, PortInUse, banner, running_demo
    from gateway.observability.logging import configure_logging
    from gateway.settings import SettingsError

    chosen = {"gateway": args.port, "owa": args.owa_port, "monosign": args.monosign_port, "admin": args.admin_port}
    ports = DemoPorts(**{name: DEFAULT_PORTS[name] if value is None else value for name, value in chosen.items()})
    fixed = tuple(name for name, value in chosen.items() if value is not None)
    configure_logging(fmt="console")
    if args.quiet:
        logging.getLogger().setLevel(logging.WARNING)
    try:
        assert_c_parser()
        verify_internals()
    except (CParserMissing, AiohttpInternalsChanged) as exc:
        print(str(exc), file=sys.stderr)
        return 2

    async def serve() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        try:
            async with running_demo(ports, fixed=fixed, auto_approve=args.auto_approve,
                                    auto_approve_delay=args.auto_approve_delay) as demo:
                print(banner(demo, auto_approve=args.auto_approve), flush=True)
                with contextlib.suppress(TimeoutError):  # --exit-after
                    await asyncio.wait_for(stop.wait(), timeout=args.exit_after)
                print("Stopping the demo ...", flush=True)
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)
        print("Demo stopped.", flush=True)
        return 0

    try:
        return uvloop.run(serve())
    except PortInUse as exc:
        print(f"demo: {exc.strerror}", file=sys.stderr)
        return 1
    except SettingsError as exc:
        for problem in exc.problems:
            print(f"demo: {problem}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"demo: cannot open a listener: {exc.strerror or exc}", file=sys.stderr)
        return 1
