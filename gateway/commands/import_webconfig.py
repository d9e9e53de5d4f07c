"""`monosign-gateway import-webconfig PATH...`: the IIS module's web.config as gateway settings.

Prints the `.env` lines on stdout (or writes them with `--output`) and every warning on stderr;
`--format docker` writes them for `docker run --env-file` instead (values unquoted).
With `--secrets-dir DIR` the API key and secret go into files in DIR (mode 0600, never overwritten)
and the `.env` names them with `*_FILE`; without it they are written inline.
Exit status: 0 converted (read the warnings), 1 nothing converted or a file could not be written.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

SECRET_FILE_MODE = 0o600
SECRETS_DIR_MODE = 0o700


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths", nargs="+", metavar="PATH", type=Path,
        help="web.config of the owa application (add the ecp one too if the module was installed there)",
    )
    parser.add_argument(
        "--secrets-dir", type=Path, metavar="DIR",
        help="write MONOSIGN_API_KEY and MONOSIGN_API_SECRET into files here (mode 0600) "
        "and refer to them as *_FILE instead of writing them into the .env",
    )
    parser.add_argument(
        "--secrets-mount", metavar="DIR",
        help="the directory the gateway will read those files from, e.g. /run/secrets in a container "
        "(default: the absolute path of --secrets-dir)",
    )
    parser.add_argument(
        "--format", choices=("dotenv", "docker"), default="dotenv", dest="env_format",
        help="dotenv (default): for the gateway's .env, compose env_file: and shells, values quoted where "
        "needed; docker: for `docker run --env-file`, every value as it is, unquoted",
    )
    parser.add_argument(
        "-o", "--output", type=Path, metavar="FILE",
        help="write the .env here (mode 0600, never overwritten) instead of printing it",
    )


def _write_private(path: Path, text: str) -> None:
    """Create a new file readable by its owner only; an existing file is an error, never replaced."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    descriptor = os.open(path, flags, SECRET_FILE_MODE)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from gateway.migration.envfile import EnvFormat, render_env
    from gateway.migration.iis_settings import migrate
    from gateway.migration.webconfig import WebConfig, WebConfigError, parse_webconfig

    if args.secrets_mount is not None and args.secrets_dir is None:
        print("error: --secrets-mount needs --secrets-dir", file=sys.stderr)
        return 1
    configs: list[tuple[str, WebConfig]] = []
    for path in args.paths:
        try:
            configs.append((str(path), parse_webconfig(path.read_bytes())))
        except OSError as exc:
            print(f"error: {path}: cannot read it ({exc.strerror or exc})", file=sys.stderr)
            return 1
        except WebConfigError as exc:
            print(f"error: {path}: {exc}", file=sys.stderr)
            return 1

    migration = migrate(configs)
    if not migration.settings:
        for warning in migration.warnings:
            _warn(warning)
        print("error: no MONOSIGN_* settings found; nothing to convert", file=sys.stderr)
        return 1

    secret_files: dict[str, str] = {}
    if args.secrets_dir is not None:
        secrets = [setting for setting in migration.settings if setting.secret]
        mount = args.secrets_mount or str(args.secrets_dir.resolve())
        try:
            args.secrets_dir.mkdir(mode=SECRETS_DIR_MODE, parents=True, exist_ok=True)
            for setting in secrets:
                file_name = setting.name.lower()
                _write_private(args.secrets_dir / file_name, setting.value)
                secret_files[setting.name] = f"{mount.rstrip('/')}/{file_name}"
        except OSError as exc:
            print(f"error: {args.secrets_dir}: cannot write the secret files ({exc.strerror or exc}); "
                  "an existing file is never replaced", file=sys.stderr)
            return 1

    text, render_warnings = render_env(migration.settings, sources=[label for label, _ in configs],
                                       secret_files=secret_files, env_format=EnvFormat(args.env_format))
    for warning in (*migration.warnings, *render_warnings):
        _warn(warning)
    inline = [setting.name for setting in migration.settings if setting.secret and setting.name not in secret_files]
    if inline:
        _warn(f"{' and '.join(inline)} written into the .env itself; in production prefer --secrets-dir "
              "(secret files read through *_FILE)")
    if args.output is not None:
        try:
            _write_private(args.output, text)
        except OSError as exc:
            print(f"error: {args.output}: cannot write it ({exc.strerror or exc}); "
                  "an existing file is never replaced", file=sys.stderr)
            return 1
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
