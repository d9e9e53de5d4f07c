"""`monosign-gateway sim monosign --listen HOST:PORT`: the Monosign simulator alone."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from gateway.commands.arguments import positive_seconds


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--listen", default="127.0.0.1:9001", metavar="HOST:PORT",
                        help="address to listen on (default 127.0.0.1:9001; port 0 picks a free one)")
    parser.add_argument("--users", type=Path, metavar="FILE",
                        help="users as JSON (see docs/simulators.md); default: the demo users alice, bob, carol, dave")
    parser.add_argument("--api-key", default=None, metavar="K",
                        help="expected MonoSign-AppId (default: $MONOSIGN_API_KEY, else demo-app-id)")
    parser.add_argument("--api-secret", default=None, metavar="S",
                        help="expected MonoSign-AppKey (default: $MONOSIGN_API_SECRET, else demo-app-key)")
    parser.add_argument("--auto-approve", action="store_true", help="approve every push after --auto-approve-delay")
    parser.add_argument("--auto-approve-delay", type=float, default=2.0, metavar="SECONDS")
    parser.add_argument("--push-ttl", type=positive_seconds, default=60.0, metavar="SECONDS",
                        help="seconds a push stays pending before it expires (ExpiresInSeconds, default 60)")
    parser.add_argument("--lock-after", type=int, default=5, metavar="N", help="wrong codes before a lockout")
    parser.add_argument("--lock-seconds", type=positive_seconds, default=300.0, metavar="SECONDS")


def run(args: argparse.Namespace) -> int:
    import asyncio
    import signal

    from gateway.settings import parse_host_port
    from gateway.sim.monosign import DEMO_API_KEY, DEMO_API_SECRET, MonosignSimulator
    from gateway.sim.monosign_state import MonosignSimState
    from gateway.sim.monosign_users import UsersFileError, demo_users, load_users

    try:
        listen = parse_host_port(args.listen)
        users = load_users(args.users) if args.users else demo_users()
        state = MonosignSimState(
            users,
            api_key=args.api_key or os.environ.get("MONOSIGN_API_KEY") or DEMO_API_KEY,
            api_secret=args.api_secret or os.environ.get("MONOSIGN_API_SECRET") or DEMO_API_SECRET,
            push_ttl=args.push_ttl,
            auto_approve=args.auto_approve,
            auto_approve_delay=args.auto_approve_delay,
            lock_after=args.lock_after,
            lock_seconds=args.lock_seconds,
        )
    except (ValueError, UsersFileError) as exc:
        print(f"sim monosign: {exc}", file=sys.stderr)
        return 2

    async def serve() -> int:
        simulator = MonosignSimulator(state)
        try:
            await simulator.start(listen.host, listen.port)
        except OSError as exc:
            print(f"sim monosign: cannot listen on {listen}: {exc.strerror or exc}", file=sys.stderr)
            return 1
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        print(f"Monosign simulator listening on {simulator.url} (control page {simulator.url}/_sim/)", flush=True)
        for user in state.users.values():
            methods = ", ".join(user.mfa_methods)
            assigned = "assigned" if user.assigned else "NOT assigned"
            print(f"  {user.domain}\\{user.user_name} <{user.email}>: {methods}; {assigned}", flush=True)
        await stop.wait()
        await simulator.stop()
        return 0

    return asyncio.run(serve())
