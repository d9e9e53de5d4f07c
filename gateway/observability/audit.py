"""Audit events: one JSON line per security decision, on the `gateway.audit` logger.

Why a separate logger: operators ship audit events to a SIEM and keep them longer than access
logs, so they must be easy to route (logger name) and to filter (`audit: true`). The request id is
added by the logging setup, and the usual redaction applies (no password, code or session id
can reach an audit line, whoever passes one by mistake).
"""

from __future__ import annotations

from typing import Any

from gateway.observability.logging import AUDIT_LOGGER, get_logger

__all__ = ["audit"]

_audit_log = get_logger(AUDIT_LOGGER)


def audit(event: str, **fields: Any) -> None:
    """Record one security decision: `event` names it (e.g. `client_policy`), `fields` describe it."""
    _audit_log.info(event, audit=True, **fields)
