"""The access log's fast path writes what the logging configuration would have written."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest.mock import patch

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.observability.access import AccessLog, UtcStamp
from gateway.observability.audit import audit
from gateway.observability.logging import configure_logging, get_logger
from tests.logs import root_logging_restored

FIELDS = {"client_ip": "192.0.2.1", "method": "GET", "path": "/owa/auth/x", "query_names": ["a"],
          "route_class": "owa-public", "status": 200, "bytes_out": 12}


@pytest.fixture
def restore_logging() -> Iterator[None]:
    with root_logging_restored():
        yield


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
def test_nothing_when_the_access_log_is_off() -> None:
    configure_logging(access_log=False)  # GATEWAY_ACCESS_LOG=off
    stream = io.StringIO()
    _stdout_handler().setStream(stream)
    AccessLog().write("req-4", FIELDS)
    get_logger("gateway.app").info("still_written")
    assert [json.loads(line)["event"] for line in stream.getvalue().splitlines()] == ["still_written"]


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize(("level", "written"), [
    ("debug", ["debug_line", "info_line", "warning_line", "error_line"]),
    ("info", ["info_line", "warning_line", "error_line"]),
    ("warning", ["warning_line", "error_line"]),
    ("error", ["error_line"]),
])
def test_the_level_spares_access_lines_and_audit_events(level: str, written: list[str]) -> None:
    """GATEWAY_LOG_LEVEL quietens the gateway's own lines; one line per request and every security
    decision are kept at any level."""
    configure_logging(level=level)
    stream = io.StringIO()
    _stdout_handler().setStream(stream)
    log = get_logger("gateway.app")
    log.debug("debug_line")
    log.info("info_line")
    log.warning("warning_line")
    log.error("error_line")
    audit("client_policy", outcome="deny")
    AccessLog().write("req-8", FIELDS)
    events = [json.loads(line)["event"] for line in stream.getvalue().splitlines()]
    assert events == [*written, "client_policy", "request"]


REQUEST_LINE = {"client_ip": "2001:db8::1", "method": "GET", "path": "/owa/auth/x%22y",
                "query_names": ['a"b', "c\\d", "é", "\x7f"], "route_class": "owa-public", "status": 200,
                "reason": None, "bytes_in": 0, "bytes_out": 1024, "duration_ms": 1.5, "upstream_ms": None}


def _chain_line(handler: logging.Handler, line: str) -> str:
    """What the handler's own formatter writes for the same event (same timestamp)."""
    written = json.loads(line)
    event = {"event": "request", **{key: written[key] for key in REQUEST_LINE}, "request_id": written["request_id"],
             "level": "info", "logger": "gateway.access", "timestamp": written["timestamp"]}
    # A record as structlog's wrap_for_formatter makes one.
    record = logging.makeLogRecord({"name": "gateway.access", "levelno": logging.INFO, "levelname": "INFO",
                                    "msg": event, "_logger": logging.getLogger("gateway.access"), "_name": "info"})
    return handler.format(record)


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize("process_fields", [None, {"worker": 3}])
@pytest.mark.parametrize("upstream_ms", [None, 0.25])
def test_the_request_line_template_writes_what_the_chain_writes(
        tmp_path: Path, process_fields: dict[str, int] | None, upstream_ms: float | None) -> None:
    configure_logging(log_dir=tmp_path, process_fields=process_fields)
    stream = io.StringIO()
    _stdout_handler().setStream(stream)
    AccessLog().write("req-5", {**REQUEST_LINE, "upstream_ms": upstream_ms})
    line = stream.getvalue().rstrip("\n")
    assert line == _chain_line(_stdout_handler(), line)
    assert json.loads(line)["upstream_ms"] == upstream_ms
    if process_fields:
        assert json.loads(line)["worker"] == 3
    file_line = next(tmp_path.iterdir()).read_text().rstrip("\n")
    assert file_line == line


@pytest.mark.usefixtures("restore_logging")
def test_values_the_template_does_not_write_go_through_the_chain() -> None:
    configure_logging()
    stream = io.StringIO()
    _stdout_handler().setStream(stream)
    AccessLog().write("req-6", {**REQUEST_LINE, "status": True, "query_names": [1, 2]})
    AccessLog().write("req-7", {**REQUEST_LINE, "duration_ms": float("nan"), "upstream_ms": float("inf")})
    first, second = stream.getvalue().splitlines()
    assert json.loads(first)["status"] is True
    assert json.loads(first)["query_names"] == [1, 2]
    assert '"duration_ms": NaN' in second  # as json.dumps writes it
    assert '"upstream_ms": Infinity' in second


@given(st.integers(min_value=0, max_value=2**62))
def test_utc_stamp_is_isoformat_with_z(nanoseconds: int) -> None:
    stamp = UtcStamp()
    expected = (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=nanoseconds // 1000))
    with patch("gateway.observability.access.time.time_ns", return_value=nanoseconds):
        assert stamp() == expected.isoformat().replace("+00:00", "Z")
        assert stamp() == expected.isoformat().replace("+00:00", "Z")  # the second from the cache
