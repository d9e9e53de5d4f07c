"""Value types for the sub-commands' options (argparse only, so `--help` stays light)."""

from __future__ import annotations

import argparse


def positive_seconds(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("expected a number of seconds > 0")
    return value
