"""`monosign-gateway serve`: run the gateway until SIGTERM/SIGINT.

Exit status: 0 after a clean shutdown, 2 when the settings cannot be used (one line per problem on
stderr, never a secret value), 1 when a listener cannot be opened (or, with several workers, when
a worker fails to start or had to be killed at shutdown).

With `GATEWAY_WORKERS` > 1 this process is the supervisor (gateway.workers.supervisor); it starts
each worker as `serve` again, with the hidden `--worker`, `--listen-fd` and `--admin-socket`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.commands.arguments import describe_settings_sources

if TYPE_CHECKING:
    from gateway.settings import Settings


def configure(parser: argparse.ArgumentParser) -> None:
    describe_settings_sources(parser)
    parser.add_argument(
        "--env-file", type=Path, default=Path(".env"), metavar="PATH",
        help="settings file read after the environment (default: .env in the working directory)",
    )
    # Set by the supervisor when it starts a worker (GATEWAY_WORKERS > 1); not for people.
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--listen-fd", type=int, action="append", default=[], help=argparse.SUPPRESS)
    parser.add_argument("--admin-socket", help=argparse.SUPPRESS)


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

    from gateway._compat import AiohttpInternalsChanged, verify_internals
    from gateway.app import CParserMissing, assert_c_parser
    from gateway.observability.logging import LOG_FILE_NAME, configure_logging, get_logger
    from gateway.server import listener_ssl_context, run_gateway

    worker = args.worker
    if worker is not None and (not args.listen_fd or not args.admin_socket):
        print("--worker needs --listen-fd and --admin-socket (the supervisor sets them)", file=sys.stderr)
        return 2
    file_name = LOG_FILE_NAME if worker is None else LOG_FILE_NAME.replace(".log", f".worker-{worker}.log")
    configure_logging(level=settings.log_level.value, access_log=settings.gateway_access_log,
                      fmt=settings.gateway_log_format.value,
                      log_dir=settings.monosign_log_path, file_name=file_name,
                      process_fields={"worker": worker} if worker is not None else None)
    log = get_logger("gateway.serve")
    try:
        assert_c_parser()
        verify_internals()
        listener_ssl_context(settings)  # a certificate that does not load is a settings problem
    except (CParserMissing, AiohttpInternalsChanged) as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except (ssl.SSLError, OSError) as exc:
        print(f"GATEWAY_TLS_CERT_FILE / GATEWAY_TLS_KEY_FILE: cannot load the certificate and key "
              f"({getattr(exc, 'strerror', None) or type(exc).__name__})", file=sys.stderr)
        return 2
    problems = config_file_problems(settings)
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        return 2
    if worker is not None:
        from gateway.workers.worker import run_worker

        return run_worker(settings, index=worker, listen_fds=args.listen_fd, admin_socket=args.admin_socket)
    for warning in settings.plain_http_warnings():
        log.warning("insecure_setting", message=warning)
    try:
        if settings.gateway_workers > 1:
            from gateway.workers.supervisor import run_supervisor

            return run_supervisor(settings, env_file=args.env_file)
        return uvloop.run(run_gateway(settings))
    except OSError as exc:
        log.error("listener_failed", message="cannot open a listener", error=exc.strerror or str(exc))
        return 1


def config_file_problems(settings: Settings) -> list[str]:
    """GATEWAY_CONFIG_FILE's problems, one line each (none without a file): `serve` refuses to start on any."""
    if settings.gateway_config_file is None:
        return []
    from gateway.assembly.sites import check_exchange_site
    from gateway.config.loader import ConfigError, load_config
    from gateway.profiles.portal.first_factors import backend_problems
    from gateway.server import listener_certificates
    from gateway.tls import CertificateError

    try:
        config = load_config(settings.gateway_config_file)
        check_exchange_site(config, settings)
        if problems := backend_problems(config, str(settings.gateway_config_file)):
            raise ConfigError(problems)  # a portal site's first factor cannot be built
        listener_certificates(settings, config)  # every certificate loads
    except ConfigError as exc:
        return [str(problem) for problem in exc.problems]
    except CertificateError as exc:
        return [f"{settings.gateway_config_file}: {exc}"]
    return []
