"""The access log: one line per request, on the hot path, so it skips the logging machinery's cost.

A structlog call runs its processor chain, the standard library looks up the caller's frame and
builds a `LogRecord`, and structlog's `ProcessorFormatter` copies that record again before
rendering: measured at 40-60 µs per request in the gateway, a quarter of its CPU per request. This
writes the same event (same keys and JSON rendering, same destinations) more directly:

- to a handler whose formatter is the gateway's own JSON chain (`configure_logging`: remove the
  processor metadata, add the process fields, render exceptions, `JSONRenderer()`), the request
  line (`REQUEST_FIELDS`) is rendered here from a fixed template, byte for byte what that chain
  would write, and written to the handler's stream under its lock (rotating file handlers still
  rotate first);
- to another handler that renders JSON with structlog's `ProcessorFormatter`, the event goes
  through that formatter's own processors (so every field they add is there), then the same;
- to any other handler (the `console` format, a test's capture handler, a handler with filters), a
  record is built the way structlog's `wrap_for_formatter` builds one, so it renders as usual.

The template exists because rendering was most of the line's cost: the generic chain (copying the
event, four processors, `json.dumps` building an encoder for every call, `datetime.isoformat`)
takes about 11 µs per line, the template about 3 µs.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import math
import operator
import time
from collections.abc import Callable, Sequence
from json.encoder import encode_basestring_ascii
from typing import Any

import structlog

from gateway.observability.logging import ACCESS_LOGGER, ProcessFields

ACCESS_LOGGER_NAME = ACCESS_LOGGER
ACCESS_EVENT = "request"

_ROTATING = (logging.handlers.RotatingFileHandler, logging.handlers.TimedRotatingFileHandler)
Processor = Callable[[Any, str, Any], Any]
# A JSON string exactly as json.dumps writes one (ensure_ascii, the default).
_json_str = encode_basestring_ascii
# -inf < x < inf: x is finite (NaN compares false). json.dumps writes NaN and Infinity, repr() nan
# and inf: such floats are not for the template.
_INFINITY = math.inf
# The keys of the gateway's request line, in order (gateway.app); other fields are rendered by the chain.
REQUEST_FIELDS = ("client_ip", "method", "path", "query_names", "route_class", "status", "reason", "bytes_in",
                  "bytes_out", "duration_ms", "upstream_ms")


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


def _formatter_processors(handler: logging.Handler) -> Sequence[Processor]:
    formatter = handler.formatter
    assert isinstance(formatter, structlog.stdlib.ProcessorFormatter)
    return tuple(formatter.processors)


def _renders_like_json_dumps(renderer: Processor) -> bool:
    """True when the renderer writes what `json.dumps(event)` writes (no indent, key order kept,
    ASCII only, default separators): checked on a probe rather than on its private settings."""
    probe = {"b": "é \" \\ \n", "a": 1.5, "n": None, "l": ["x"], "i": 7, "t": True}
    try:
        return bool(renderer(None, "info", dict(probe)) == json.dumps(probe))
    except Exception:
        return False


def _own_chain_suffix(processors: Sequence[Processor]) -> str | None:
    """For `configure_logging`'s JSON chain, the JSON text its process fields add after the request
    line's own keys (", " + pairs, or ""); None for any other chain."""
    if len(processors) != 4:
        return None
    meta, fields, exceptions, renderer = processors
    if (meta is not structlog.stdlib.ProcessorFormatter.remove_processors_meta
            or not isinstance(fields, ProcessFields)
            or exceptions is not structlog.processors.format_exc_info
            or not _renders_like_json_dumps(renderer)):
        return None
    taken = {"event", *REQUEST_FIELDS, "request_id", "level", "logger", "timestamp"}
    extra = {key: value for key, value in fields.fields.items() if key not in taken}
    if not extra:
        return ""
    try:
        return ", " + json.dumps(extra)[1:-1]
    except (TypeError, ValueError):
        return None


class UtcStamp:
    """`datetime.now(timezone.utc).isoformat()` with `Z` (structlog's TimeStamper("iso", utc=True)),
    with the formatted second reused while it lasts."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def __call__(self) -> str:
        second, nanoseconds = divmod(time.time_ns(), 1_000_000_000)
        if second != self._second:
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        micro = nanoseconds // 1000
        # isoformat leaves the fraction out when it is zero; so does this.
        return f"{self._prefix}.{micro:06d}Z" if micro else f"{self._prefix}Z"


class AccessLog:
    def __init__(self, name: str = ACCESS_LOGGER_NAME) -> None:
        self._name = name
        self._json_name = _json_str(name)
        self._logger = logging.getLogger(name)
        self._stamp = structlog.processors.TimeStamper(fmt="iso", utc=True)
        self._utc_stamp = UtcStamp()
        self._plan_key: tuple[logging.Handler, ...] = ()  # the handlers the plan was made for
        # (handler, suffix): the gateway's own JSON chain, rendered from the template.
        self._templated: list[tuple[logging.StreamHandler[Any], str]] = []
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
        if len(handlers) == len(self._plan_key) and all(map(operator.is_, handlers, self._plan_key)):
            return
        self._templated, self._direct, self._via_record = [], [], []
        for handler in handlers:
            processors = _json_processors(handler)
            # (_json_processors answers only for stream handlers; the isinstance tells the type checker.)
            if processors is None or not isinstance(handler, logging.StreamHandler):
                self._via_record.append(handler)
                continue
            suffix = _own_chain_suffix(processors)
            if suffix is not None:
                self._templated.append((handler, suffix))
            else:
                self._direct.append((handler, processors))
        self._plan_key = tuple(handlers)

    def write(self, request_id: str, fields: dict[str, Any]) -> None:
        """Log `fields` (plain values, never secrets) as the access line of request `request_id`.

        The gateway's request line has the keys of `REQUEST_FIELDS`, in that order."""
        if not self._logger.isEnabledFor(logging.INFO):
            return
        self._plan()
        record: logging.LogRecord | None = None
        event: dict[str, Any] | None = None
        if self._templated:
            line = self._template_line(request_id, fields)
            for handler, suffix in self._templated:
                if handler.level > logging.INFO:
                    continue
                if line is not None:
                    text = line + suffix + "}"
                else:
                    event = event or self._event(request_id, fields)
                    text = self._render(_formatter_processors(handler), event)
                if isinstance(handler, _ROTATING):  # rotation decides on a record
                    event = event or self._event(request_id, fields)
                    record = record or self._record(event)
                    _emit_rotating(handler, record, text)
                else:
                    _emit_line(handler, text)
        if not self._direct and not self._via_record:
            return
        event = event or self._event(request_id, fields)
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

    def _template_line(self, request_id: str, fields: dict[str, Any]) -> str | None:
        """The request line as the gateway's JSON chain renders it, without its process fields and
        closing brace; None when `fields` are not the request line's (then the chain renders them)."""
        if tuple(fields) != REQUEST_FIELDS:
            return None
        status, bytes_in, bytes_out = fields["status"], fields["bytes_in"], fields["bytes_out"]
        duration_ms, upstream_ms = fields["duration_ms"], fields["upstream_ms"]
        # Numbers as json.dumps writes them: exactly int or finite float (not bool, not NaN).
        if not (type(status) is int and type(bytes_in) is int and type(bytes_out) is int
                and type(duration_ms) is float and -_INFINITY < duration_ms < _INFINITY
                and (upstream_ms is None or (type(upstream_ms) is float and -_INFINITY < upstream_ms < _INFINITY))):
            return None
        path, reason = fields["path"], fields["reason"]
        try:
            return (
                f'{{"event": "request", "client_ip": {_json_str(fields["client_ip"])}, '
                f'"method": {_json_str(fields["method"])}, '
                f'"path": {"null" if path is None else _json_str(path)}, '
                f'"query_names": [{", ".join([_json_str(name) for name in fields["query_names"]])}], '
                f'"route_class": {_json_str(fields["route_class"])}, "status": {status}, '
                f'"reason": {"null" if reason is None else _json_str(reason)}, "bytes_in": {bytes_in}, '
                f'"bytes_out": {bytes_out}, "duration_ms": {duration_ms!r}, '
                f'"upstream_ms": {"null" if upstream_ms is None else repr(upstream_ms)}, '
                f'"request_id": {_json_str(request_id)}, '
                f'"level": "info", "logger": {self._json_name}, "timestamp": "{self._utc_stamp()}"'
            )
        except TypeError:  # a string field that is not a string (a list of non-strings, ...)
            return None

    def _event(self, request_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        event: dict[str, Any] = {"event": ACCESS_EVENT, **fields, "request_id": request_id,
                                 "level": "info", "logger": self._name}
        self._stamp(None, "info", event)
        return event

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
        stream = handler.stream
        stream.write(line + handler.terminator)
        stream.flush()  # what handler.flush() does, without taking the lock held here a second time
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
