"""Structured logs: one JSON object per line on stdout (or a console format for humans).

Every line carries the request id of the request being served (a context variable set by the
edge), so an operator can follow one request through access log, audit events and Monosign calls.
`GATEWAY_LOG_LEVEL` sets the level (`MONOSIGN_DEBUG_MODE=true` means debug); the access log
(`GATEWAY_ACCESS_LOG`) and the audit events are written whatever the level, so that raising it to
warning quietens the gateway without losing a request or a security decision. `MONOSIGN_LOG_PATH`
also writes rotating files into that directory, as the IIS module did.

An event is a `snake_case` name (`log.info("slow_request_headers", message="...", ...)`): the name is
what operators filter and alert on, the human sentence goes in `message` (tests/test_event_names.py).
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
from collections.abc import Mapping, MutableMapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import structlog

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

LOG_FILE_NAME = "monosign-gateway.log"
# Libraries whose info and debug lines would repeat what our own events say, with less care for secrets.
QUIET_LIBRARIES = ("httpx", "httpcore")
_REDACTED = "[redacted]"
# Keys whose values must never reach a log line, whoever passes them by mistake.
SENSITIVE_KEYS = frozenset({
    "password", "passwd", "code", "otp", "secret", "api_secret", "session_id", "cookie",
    "authorization", "csrf_token", "token", "cadata",
})


def _add_request_id(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    request_id = request_id_var.get()
    if request_id is not None and "request_id" not in event:
        event["request_id"] = request_id
    return event


def _redact(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    for key in event.keys() & SENSITIVE_KEYS:
        event[key] = _REDACTED
    return event


class ProcessFields:
    """A formatter processor adding the same fields to every line (`setdefault`: a line's own win).

    A class rather than a closure so the access log can recognise the gateway's own JSON chain and
    write these fields itself (gateway.observability.access)."""

    def __init__(self, fields: Mapping[str, Any]) -> None:
        self.fields = dict(fields)

    def __call__(self, _: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        for key, value in self.fields.items():
            event.setdefault(key, value)
        return event


# Loggers written at info whatever the configured level (GATEWAY_LOG_LEVEL=warning keeps them).
ACCESS_LOGGER = "gateway.access"
AUDIT_LOGGER = "gateway.audit"
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def configure_logging(*, level: str = "info", access_log: bool = True, fmt: str = "json",
                      log_dir: Path | None = None, file_name: str = LOG_FILE_NAME,
                      process_fields: Mapping[str, Any] | None = None) -> None:
    """Configure structlog and the standard library logging once per process.

    `level` is one of `LEVELS`; `access_log=False` drops the access log's lines (one per request).

    Processes sharing `log_dir` (the workers of `GATEWAY_WORKERS`) each need their own `file_name`:
    rotating handlers in several processes would rename (and delete) each other's files.
    `process_fields` go into every line of this process (e.g. `{"worker": 2}`)."""
    root_level = LEVELS[level]
    # Applied by the formatters, so lines that skip structlog's chain (the access log) get them too.
    add_process_fields = ProcessFields(process_fields or {})

    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        _add_request_id,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact,
    ]
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=sys.stdout.isatty())
        if fmt == "console"
        else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info,
                    structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, add_process_fields,
                    structlog.processors.format_exc_info, renderer],
    )
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stdout)]
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        file_handler = logging.handlers.TimedRotatingFileHandler(
            log_dir / file_name, when="midnight", backupCount=14, encoding="utf-8", utc=True
        )
        file_formatter = structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, add_process_fields,
                        structlog.processors.format_exc_info, structlog.processors.JSONRenderer()],
        )
        file_handler.setFormatter(file_formatter)
        handlers.append(file_handler)
    for handler in handlers[:1]:
        handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        old.close()
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(root_level)
    audit = logging.getLogger(AUDIT_LOGGER)
    audit.setLevel(min(root_level, logging.INFO))
    access = logging.getLogger(ACCESS_LOGGER)
    access.setLevel(logging.INFO)
    access.disabled = not access_log
    # aiohttp's own access logger is replaced by ours.
    logging.getLogger("aiohttp.access").disabled = True
    # httpx (the Monosign client) logs every request's full URL at info, the typed user name of
    # `by-username` included; the client's own `monosign_call` event reports each call instead. Their
    # warnings and errors still come through, in debug mode too.
    for library in QUIET_LIBRARIES:
        logging.getLogger(library).setLevel(logging.WARNING)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(name)
    return logger
