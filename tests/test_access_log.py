"""The access log's fast path writes what the logging configuration would have written."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.observability.access import AccessLog
from gateway.observability.logging import configure_logging, get_logger

FIELDS = {"client_ip": "192.0.2.1", "method": "GET", "path": "/owa/auth/x", "query_names": ["a"],
          "route_class": "owa-public", "status": 200, "bytes_out": 12}


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
        if handler not in handlers:
            handler.close()
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def _stdout_handler() -> logging.StreamHandler[io.StringIO]:
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    return handler


@pytest.mark.usefixtures("restore_logging")
def test_json_lines_match_a_structlog_line_and_reach_the_files(tmp_path: Path) -> None:
    configure_logging(log_dir=tmp_path)
    stream = io.StringIO()
    _stdout_handler().setStream(stream)
    AccessLog().write("req-1", FIELDS)
    get_logger("gateway.access").info("request", request_id="req-2", **FIELDS)
    direct, via_structlog = (json.loads(line) for line in stream.getvalue().splitlines())
    assert direct.keys() == via_structlog.keys()
    assert direct["request_id"] == "req-1"
    assert direct["logger"] == "gateway.access"
    assert direct["level"] == "info"
    assert direct["event"] == "request"
    assert {key: direct[key] for key in FIELDS} == FIELDS
    assert direct["timestamp"].endswith("Z")
    file_lines = [json.loads(line) for line in next(tmp_path.iterdir()).read_text().splitlines()]
    assert [line["request_id"] for line in file_lines] == ["req-1", "req-2"]


@pytest.mark.usefixtures("restore_logging")
def test_console_format_and_filtered_handlers_get_ordinary_records() -> None:
    configure_logging(fmt="console")
    stream = io.StringIO()
    _stdout_handler().setStream(stream)
    captured: list[logging.LogRecord] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            captured.append(record)

    capture = Capture()
    capture.addFilter(lambda record: True)
    logging.getLogger().addHandler(capture)
    AccessLog().write("req-3", FIELDS)
    assert "request" in stream.getvalue()
    assert "req-3" in stream.getvalue()
    assert not stream.getvalue().lstrip().startswith("{")
    assert captured
    assert captured[0].msg["request_id"] == "req-3"  # type: ignore[index]


@pytest.mark.usefixtures("restore_logging")
def test_nothing_below_the_level() -> None:
    configure_logging()
    stream = io.StringIO()
    _stdout_handler().setStream(stream)
    logging.getLogger().setLevel(logging.WARNING)
    AccessLog().write("req-4", FIELDS)
    assert stream.getvalue() == ""
