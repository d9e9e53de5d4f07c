"""`monosign-gateway serve`: run the gateway until SIGTERM/SIGINT.

Exit status: 0 after a clean shutdown, 2 when the settings cannot be used (one line per problem on
stderr, never a secret value), 1 when a listener cannot be opened.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--env-file", type=Path, default=Path(".env"), metavar="PATH",
        help="settings file read after the environment (default: .env in the working directory)",
    )


def run(args: argparse.Namespace) -> int:
    from gateway.settings import SettingsError, load_settings

    try:
        settings = load_settings(env_file=args.env_file)
    except SettingsError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 2

    import ssl

    import uvloop

    from gateway.app import CParserMissing, assert_c_parser
    from gateway.observability.logging import configure_logging, get_logger
    from gateway.server import listener_ssl_context, run_gateway

    configure_logging(debug=settings.monosign_debug_mode, fmt=settings.gateway_log_format.value,
                      log_dir=settings.monosign_log_path)
    log = get_logger("gateway.serve")
    try:
        assert_c_parser()
        listener_ssl_context(settings)  # a certificate that does not load is a settings problem
    except CParserMissing as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except (ssl.SSLError, OSError) as exc:
        print(f"GATEWAY_TLS_CERT_FILE / GATEWAY_TLS_KEY_FILE: cannot load the certificate and key "
              f"({getattr(exc, 'strerror', None) or type(exc).__name__})", file=sys.stderr)
        return 2
    for warning in settings.plain_http_warnings():
        log.warning(warning)
    try:
        return uvloop.run(run_gateway(settings))
    except OSError as exc:
        log.error("cannot open a listener", error=exc.strerror or str(exc))
        return 1
