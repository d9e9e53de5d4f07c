"""`monosign-gateway` (also `python -m gateway`): one console script, one sub-command per job.

Each sub-command lives in `gateway/commands/<name>.py` and offers `configure(parser)` and
`run(args) -> int`. Command modules keep their top-level imports light, so `--help` stays fast and
a command only pays for what it uses.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Mapping, Sequence

from gateway import __version__

# name -> (module, one-line help). Order is the order shown in --help.
COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("gateway.commands.serve", "run the gateway"),
    "demo": ("gateway.commands.demo", "the gateway with the OWA and Monosign simulators on 127.0.0.1, to try it"),
    "import-webconfig": ("gateway.commands.import_webconfig", "turn the IIS module's web.config into .env lines"),
    "sim": ("gateway.commands.sim", "run one simulator alone (owa or monosign)"),
    "check": ("gateway.commands.check", "validate the settings, reach Monosign and the upstream, explain failures"),
    "explain": ("gateway.commands.explain", "say which site and which rule decide a request, and why"),
    "users": ("gateway.commands.users", "manage the users file of the portal's `file` first factor (users add)"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="monosign-gateway",
        description="Monosign second factor for Outlook on the web, as a reverse proxy.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    add_command_parsers(parser.add_subparsers(dest="command", metavar="COMMAND", required=True), COMMANDS)
    return parser


def add_command_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser],
                        registry: Mapping[str, tuple[str, str]]) -> None:
    """One sub-parser per registry entry (name -> (module, help)); its module's `run` is kept as `_run`."""
    for name, (module_name, help_text) in registry.items():
        module = importlib.import_module(module_name)
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        module.configure(command_parser)
        command_parser.set_defaults(_run=module.run)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result: int = args._run(args)
    except KeyboardInterrupt:
        return 130
    return result


if __name__ == "__main__":
    sys.exit(main())
