"""The access log: one line per request, on the hot path, so it skips the logging machinery's cost.

A structlog call runs its processor chain, the standard library looks up the caller's frame and
builds a `LogRecord`, and structlog's `ProcessorFormatter` copies that record again before
rendering: measured at 40-60 µs per request in the gateway, a quarter of its CPU per request. This
writes the same event (same keys and JSON rendering, same destinations) more directly:

- to a handler that renders JSON with structlog's `ProcessorFormatter` (stdout in the default
  `json` format, and the `MONOSIGN_LOG_PATH` files), the event goes through that formatter's own
  processors (so every field they add is there) and the line is written to the handler's stream
  under its lock (rotating file handlers still rotate first);
- to any other handler (the `console` format, a test's capture handler, a handler with filters), a
  record is built the way structlog's `wrap_for_formatter` builds one, so it renders as usual.
"""

from __future__ import annotations

import logging
import logging.handlers
from collections.abc import Callable, Sequence
from typing import Any

import structlog

ACCESS_LOGGER_NAME = "gateway.access"
ACCESS_EVENT = "request"

_ROTATING = (logging.handlers.RotatingFileHandler, logging.handlers.TimedRotatingFileHandler)
Processor = Callable[[Any, str, Any], Any]


def _json_processors(handler: logging.Handler) -> Sequence[Processor] | None:
    """The processors of a plain stream handler's structlog formatter, when they end in JSON."""
    if not isinstance(handler, logging.StreamHandler) or handler.filters:
        return None
    formatter = handler.formatter
    if not isinstance(formatter, structlog.stdlib.ProcessorFormatter) or not formatter.processors:
        return None
    if not isinstance(formatter.processors[-1], structlog.processors.JSONRenderer):
        return None
    return tuple(formatter.processors)


class AccessLog:
    def __init__(self, name: str = ACCESS_LOGGER_NAME) -> None:
        self._name = name
        self._logger = logging.getLogger(name)
        self._stamp = structlog.processors.TimeStamper(fmt="iso", utc=True)
        self._plan_key: tuple[int, ...] | None = None
        self._direct: list[tuple[logging.StreamHandler[Any], Sequence[Processor]]] = []
        self._via_record: list[logging.Handler] = []

    def _handlers(self) -> list[logging.Handler]:
        """The handlers a record of this logger reaches (as Logger.callHandlers walks them)."""
        handlers: list[logging.Handler] = []
        logger: logging.Logger | None = self._logger
        while logger is not None:
            handlers.extend(logger.handlers)
            logger = logger.parent if logger.propagate else None
        return handlers

    def _plan(self) -> None:
        handlers = self._handlers()
        key = tuple(id(handler) for handler in handlers)
        if key == self._plan_key:
            return
        self._direct, self._via_record = [], []
        for handler in handlers:
            processors = _json_processors(handler)
            if processors is not None:
                self._direct.append((handler, processors))  # type: ignore[arg-type]
            else:
                self._via_record.append(handler)
        self._plan_key = key

    def write(self, request_id: str, fields: dict[str, Any]) -> None:
        """Log `fields` (plain values, never secrets) as the access line of request `request_id`."""
        logger = self._logger
        if not logger.isEnabledFor(logging.INFO):
            return
        self._plan()
        event: dict[str, Any] = {"event": ACCESS_EVENT, **fields, "request_id": request_id,
                                 "level": "info", "logger": self._name}
        self._stamp(None, "info", event)
        record: logging.LogRecord | None = None
        for handler, processors in self._direct:
            if handler.level > logging.INFO:
                continue
            line = self._render(processors, event)
            if isinstance(handler, _ROTATING):
                record = record or self._record(event)
                _emit_rotating(handler, record, line)
            else:
                _emit_line(handler, line)
        for other in self._via_record:
            if other.level <= logging.INFO:
                record = record or self._record(event)
                other.handle(record)

    def _render(self, processors: Sequence[Processor], event: dict[str, Any]) -> str:
        # As ProcessorFormatter.format does for a structlog event, minus copying a LogRecord.
        rendered: Any = {**event, "_record": None, "_from_structlog": True}
        for processor in processors:
            rendered = processor(self._logger, "info", rendered)
        return str(rendered)

    def _record(self, event: dict[str, Any]) -> logging.LogRecord:
        record = self._logger.makeRecord(self._name, logging.INFO, __file__, 0, event, (), None)
        # What structlog's wrap_for_formatter attaches: ProcessorFormatter then renders the dict as is.
        record._logger = self._logger
        record._name = "info"
        return record


def _emit_line(handler: logging.StreamHandler[Any], line: str) -> None:
    handler.acquire()
    try:
        handler.stream.write(line + handler.terminator)
        handler.flush()
    except Exception:
        handler.handleError(logging.makeLogRecord({"msg": "access log line could not be written"}))
    finally:
        handler.release()


def _emit_rotating(handler: logging.handlers.RotatingFileHandler | logging.handlers.TimedRotatingFileHandler,
                   record: logging.LogRecord, line: str) -> None:
    handler.acquire()
    try:
        if handler.shouldRollover(record):
            handler.doRollover()
        if handler.stream is None:  # FileHandler(delay=True), or just rotated
            handler.stream = handler._open()
        handler.stream.write(line + handler.terminator)
        handler.flush()
    except Exception:
        handler.handleError(record)
    finally:
        handler.release()
