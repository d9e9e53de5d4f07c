"""Value types for the sub-commands' options (argparse only, so `--help` stays light)."""

from __future__ import annotations

import argparse

# The one statement of where settings come from (gateway.settings reads them in this order):
# docs/configuration.md, `serve --help` and `check --help` all show this text (a test checks the doc).
SETTINGS_PRECEDENCE = """\
Where settings come from, the first place that sets one winning:
  1. the environment: NAME, or NAME_FILE naming a file that holds the value;
  2. the .env file (--env-file): NAME or NAME_FILE;
  3. the `settings:` mapping of GATEWAY_CONFIG_FILE: NAME or NAME_FILE;
  4. the built-in default.
GATEWAY_CONFIG_FILE itself is read from the environment or .env only. Settings
in the file are read at start; a reload applies the file's sites and rules only."""


def positive_seconds(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("expected a number of seconds > 0")
    return value


def describe_settings_sources(parser: argparse.ArgumentParser) -> None:
    """`--help` ends with where settings come from: the one statement docs/configuration.md shows too."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = SETTINGS_PRECEDENCE
