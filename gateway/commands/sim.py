"""`monosign-gateway sim owa|monosign|app`: run one simulator alone, for rehearsals and tests."""

from __future__ import annotations

import argparse

from gateway.cli import add_command_parsers

# name -> module offering configure(parser) and run(args) -> int
SIMULATORS: dict[str, tuple[str, str]] = {
    "app": ("gateway.sim.app_cli", "a generic web application (pages, header echo, streams, WebSocket, form login)"),
    "monosign": ("gateway.sim.monosign_cli", "the Monosign API simulator (users, TOTP, push, fault injection)"),
    "owa": ("gateway.sim.owa_cli", "the Exchange OWA/ECP simulator (forms login, sessions, canary, streams)"),
}


def configure(parser: argparse.ArgumentParser) -> None:
    add_command_parsers(parser.add_subparsers(dest="simulator", metavar="SIMULATOR", required=True), SIMULATORS)


def run(args: argparse.Namespace) -> int:  # pragma: no cover - replaced by the simulator's run
    raise SystemExit("choose a simulator")
