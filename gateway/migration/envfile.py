"""Write settings as `.env` lines that read back the same in the gateway and in a POSIX shell.

The gateway reads `.env` with python-dotenv; operators also `source` such files, hand them to
compose's `env_file:` or to `docker run --env-file`. A value made only of characters none of them
treats specially (URLs, GUIDs, host names) is written bare, which all of them read alike, Docker's
literal `--env-file` included. Anything else is quoted: single quotes when python-dotenv and a shell
both read it back unchanged, double quotes (with `\\` and `\"` escapes) when that works for both, and
refused otherwise: a wrong value here would be a silent misconfiguration.

`docker run --env-file` reads a file of its own kind: each line `NAME=value`, the value taken
literally to the end of the line, quotes included. `EnvFormat.DOCKER` writes that: every value as
it is, unquoted, and refuses only what no line can carry (a line break or another control character).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum

from gateway.migration.iis_settings import STILL_TO_SET, EnvSetting

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Bare in a shell assignment, in python-dotenv and in Docker's --env-file: no quotes, spaces, `#`,
# `$`, backslashes, `~` (expanded in shell assignments), or anything outside ASCII.
_BARE = re.compile(r"[A-Za-z0-9_./:@%+,=-]+")


class EnvFormat(StrEnum):
    DOTENV = "dotenv"  # the gateway's .env, compose's env_file:, a shell's `. ./.env`
    DOCKER = "docker"  # `docker run --env-file`: values literal, unquoted


def docker_env_value(value: str) -> str | None:
    """The value as a `docker run --env-file` line carries it (as it is), or None when no line can:
    Docker splits the file at line breaks, drops a carriage return, and a NUL cannot be in the environment."""
    return None if _CONTROL.search(value) else value


def quote_env_value(value: str) -> str | None:
    """The value quoted for both python-dotenv and POSIX shells, or None when no quoting serves both."""
    # Line breaks and control characters cannot be written on one line; python-dotenv expands
    # ${NAME} even inside single quotes, so such a value would change when read back.
    if _CONTROL.search(value) or "${" in value:
        return None
    if _BARE.fullmatch(value):
        return value
    # Single quotes: literal in a shell; python-dotenv only decodes \\ and \' inside them.
    if "'" not in value and "\\\\" not in value and not value.endswith("\\"):
        return f"'{value}'"
    # Double quotes: a shell would expand $ and `, python-dotenv would keep their escapes.
    if "$" not in value and "`" not in value:
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    return None


def render_env(
    settings: Sequence[EnvSetting],
    *,
    sources: Iterable[str],
    secret_files: Mapping[str, str] | None = None,
    env_format: EnvFormat = EnvFormat.DOTENV,
) -> tuple[str, list[str]]:
    """The `.env` text and the warnings about values that could not be written.

    `secret_files` maps a secret setting's name to the path the gateway will read it from: it is
    written as `NAME_FILE=path`. Without an entry the secret is written inline.
    """
    secret_files = secret_files or {}
    warnings: list[str] = []
    docker = env_format is EnvFormat.DOCKER
    encode = docker_env_value if docker else quote_env_value
    lines = [
        "# Monosign Gateway settings, converted from the IIS module's web.config by",
        f"# `monosign-gateway import-webconfig{' --format docker' if docker else ''}` ({', '.join(sources)}).",
        "# Every other setting has a safe default; see docs/configuration.md.",
        "",
    ]
    inline = [setting.value for setting in settings if setting.name not in secret_files]
    if docker:
        lines += [
            "# For `docker run --env-file`: every value is written as it is, without quotes. Not for the",
            "# gateway's .env, compose `env_file:` or a shell, which would read quotes and $ differently.",
        ]
    elif any(quote_env_value(value) not in (value, None) for value in inline):
        lines += [
            "# Quoted values lose their quotes in this file, in compose `env_file:` and in shells;",
            "# `docker run --env-file` keeps them: for it, run again with --format docker.",
        ]
    if secret_files:
        lines += [
            "# NAME_FILE lines name a file holding the secret (read from the environment or this .env).",
        ]
    for setting in settings:
        name, value = setting.name, setting.value
        if setting.secret and name in secret_files:
            name, value = f"{name}_FILE", secret_files[name]
        quoted = encode(value)
        if quoted is None:
            # Never echo the value: it may be a secret, and it cannot be shown safely anyway.
            warnings.append(
                (f"{name}: the value has a line break or another control character, which no "
                 "`docker run --env-file` line can carry; set it by hand" if docker else
                 f"{name}: the value has characters no .env quoting reads back unchanged "
                 "(a line break, ${...}, or a quote or backslash together with $ or `); set it by hand")
                + (" or use --secrets-dir" if setting.secret else "")
            )
            lines.append(f"# {name}=  (set by hand, see the warning)")
            continue
        if setting.note:
            lines.append(f"# {setting.note}")
        lines.append(f"{'# ' if setting.disabled else ''}{name}={quoted}")
    lines += ["", "# Still to set: the gateway's own settings (web.config has nothing to derive them from)."]
    for name, example, meaning in STILL_TO_SET:
        lines.append(f"# {meaning}")
        lines.append(f"# {name}={example}")
    return "\n".join(lines) + "\n", warnings
