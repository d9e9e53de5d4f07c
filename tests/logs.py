"""The product's own log lines, captured for tests that check what is (and is not) logged.

    def test_x(captured_logs: CapturedLogs) -> None:          # the fixture (tests/conftest.py loads it)
        ...
        assert events(captured_logs(), "gateway.audit")[-1]["event"] == "refused"

    with capturing_logs() as read: ...                         # or the context manager itself

Logging is configured as `serve` does it (JSON, here at debug level) and the root logger is put
back afterwards, so a test sees exactly the lines an operator would.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from gateway.observability.logging import ACCESS_LOGGER, AUDIT_LOGGER, configure_logging

CapturedLogs = Callable[[], list[str]]


@contextmanager
def root_logging_restored() -> Iterator[None]:
    """Put the root logger's handlers and level back afterwards; handlers added meanwhile are closed."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    # configure_logging also sets these (GATEWAY_ACCESS_LOG, the audit events' level).
    named = [logging.getLogger(name) for name in (ACCESS_LOGGER, AUDIT_LOGGER)]
    saved_named = [(logger.level, logger.disabled) for logger in named]
    try:
        yield
    finally:
        for logger, (level, disabled) in zip(named, saved_named, strict=True):
            logger.setLevel(level)
            logger.disabled = disabled
        for handler in root.handlers[:]:
            root.removeHandler(handler)
            if handler not in saved_handlers:
                handler.close()
        for handler in saved_handlers:
            root.addHandler(handler)
        root.setLevel(saved_level)


@contextmanager
def capturing_logs() -> Iterator[CapturedLogs]:
    """Every log line the product writes (JSON, debug level), as text, read when called."""
    with root_logging_restored():
        configure_logging(level="debug", fmt="json")
        buffer = io.StringIO()
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler):
                handler.setStream(buffer)

        def read() -> list[str]:
            return [line for line in buffer.getvalue().splitlines() if line.strip()]

        yield read


@pytest.fixture
def captured_logs() -> Iterator[CapturedLogs]:
    with capturing_logs() as read:
        yield read


def events(lines: list[str], logger: str | None = None) -> list[dict[str, Any]]:
    """The JSON objects among `lines`, optionally only those of one logger (e.g. "gateway.audit")."""
    parsed = []
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if logger is None or event.get("logger") == logger:
            parsed.append(event)
    return parsed
