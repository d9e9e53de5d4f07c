"""`monosign-gateway sim app --listen HOST:PORT`: the generic application simulator alone."""

from __future__ import annotations

import argparse
import sys


def _user(text: str) -> tuple[str, str]:
    name, sep, password = text.partition(":")
    if not sep or not name or not password:
        raise argparse.ArgumentTypeError("expected NAME:PASSWORD")
    return name, password


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--listen", default="127.0.0.1:8090", metavar="HOST:PORT",
                        help="address to listen on (default 127.0.0.1:8090; port 0 picks a free one)")
    parser.add_argument("--name", default="Intranet", help="the application's name on its pages")
    parser.add_argument("--require-login", action="store_true",
                        help="pages need the application's own form login (users from --user, else the demo users)")
    parser.add_argument("--user", type=_user, action="append", default=[], metavar="NAME:PASSWORD",
                        help="a user of the form login (repeatable)")


def run(args: argparse.Namespace) -> int:
    import asyncio
    import signal

    from gateway.settings import parse_host_port
    from gateway.sim.app import AppSimConfig, running_app_sim
    from gateway.sim.owa import demo_users

    try:
        listen = parse_host_port(args.listen)
    except ValueError as exc:
        print(f"sim app: {exc}", file=sys.stderr)
        return 2
    users = dict(args.user) or {user.username: user.password for user in demo_users()}
    config = AppSimConfig(name=args.name, require_login=args.require_login, users=users)

    async def serve() -> int:
        try:
            async with running_app_sim(config, host=listen.host, port=listen.port) as sim:
                stop = asyncio.Event()
                loop = asyncio.get_running_loop()
                for signum in (signal.SIGINT, signal.SIGTERM):
                    loop.add_signal_handler(signum, stop.set)
                login = "with its own form login" if config.require_login else "without a login of its own"
                print(f"Application simulator listening on {sim.base_url}/ ({login})", flush=True)
                await stop.wait()
        except OSError as exc:
            print(f"sim app: cannot listen on {listen}: {exc.strerror or exc}", file=sys.stderr)
            return 1
        return 0

    return asyncio.run(serve())
