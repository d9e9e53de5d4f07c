"""`monosign-gateway sim owa|monosign`: run one simulator alone, for rehearsals and tests."""

from __future__ import annotations

import argparse
import importlib

# name -> module offering configure(parser) and run(args) -> int
SIMULATORS: dict[str, tuple[str, str]] = {
    "monosign": ("gateway.sim.monosign_cli", "the Monosign API simulator (users, TOTP, push, fault injection)"),
    "owa": ("gateway.sim.owa_cli", "the Exchange OWA/ECP simulator (forms login, sessions, canary, streams)"),
}


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="simulator", metavar="SIMULATOR", required=True)
    for name, (module_name, help_text) in SIMULATORS.items():
        module = importlib.import_module(module_name)
        sim_parser = sub.add_parser(name, help=help_text, description=help_text)
        module.configure(sim_parser)
        sim_parser.set_defaults(_run=module.run)


def run(args: argparse.Namespace) -> int:  # pragma: no cover - replaced by the simulator's run
    raise SystemExit("choose a simulator")
