"""Every log event the gateway writes is named in `snake_case`; a sentence for humans goes in `message`.

Operators filter, count and alert on `event` (docs/observability.md#logs): a name must be the same for
every line of its kind, so it is a literal `snake_case` string (or a variable holding one, such as the
audit helper's parameter), never a sentence, an f-string or a formatted value. Scans every logger
call and audit call in gateway/.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GATEWAY = ROOT / "gateway"
EVENT_NAME = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")
LOG_METHODS = frozenset({"debug", "info", "warning", "warn", "error", "exception", "critical", "fatal", "msg"})
AUDIT_FUNCTIONS = frozenset({"audit"})


def _receiver_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _is_logger(name: str | None) -> bool:
    return name is not None and (name.endswith("log") or name.endswith("logger"))


def event_arguments(tree: ast.AST) -> Iterator[tuple[int, ast.expr | None]]:
    """(line, first argument) of every logger call (`log.info(...)`, `self._log.warning(...)`) and
    audit call (`audit(...)`, `flow.audit(...)`)."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        logger_call = isinstance(func, ast.Attribute) and func.attr in LOG_METHODS and _is_logger(
            _receiver_name(func.value))
        audit_call = _receiver_name(func) in AUDIT_FUNCTIONS
        if logger_call or audit_call:
            yield node.lineno, node.args[0] if node.args else None


def problem(argument: ast.expr | None) -> str | None:
    """Why this first argument is not an event name, or None."""
    if argument is None:
        return "no event name"
    if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
        return None if EVENT_NAME.fullmatch(argument.value) else f"{argument.value!r} is not snake_case"
    if isinstance(argument, ast.Name | ast.Attribute | ast.Subscript):
        return None  # a name held in a variable (the audit helper's `event`): checked where it is a literal
    return f"a computed event name ({type(argument).__name__})"


def violations(source: str, name: str = "<test>") -> list[str]:
    found = []
    for line, argument in event_arguments(ast.parse(source)):
        reason = problem(argument)
        if reason is not None:
            found.append(f"{name}:{line}: {reason}")
    return found


def test_every_event_in_gateway_is_snake_case() -> None:
    found = []
    calls = 0
    for path in sorted(GATEWAY.rglob("*.py")):
        source = path.read_text()
        calls += sum(1 for _ in event_arguments(ast.parse(source)))
        found.extend(violations(source, str(path.relative_to(ROOT))))
    assert calls > 50, "the scan found too few logger calls: its patterns are wrong"
    assert found == []


@pytest.mark.parametrize(("source", "ok"), [
    ('log.info("gateway_started", version=v)', True),
    ('log.info("slow_request_headers", message="client too slow sending request headers")', True),
    ('self._log.warning("monosign_call", outcome=o)', True),
    ('_audit_log.info(event, audit=True)', True),
    ('flow.audit("session_ended", ctx, record)', True),
    ('audit(AUDIT_EVENT, outcome="deny")', True),
    ('log.info("gateway started")', False),
    ('log.error("worker exited during start-up")', False),
    ('log.info("Gateway_Started")', False),
    ('log.debug("pinned-connection-closed")', False),
    ('log.info(f"worker {index} exited")', False),
    ('log.info("worker %s exited" % index)', False),
    ('log.warning("a {} b".format(x))', False),
    ('logger.info("two words")', False),
    ('audit("push sent", ctx)', False),
    ('log.exception()', False),
    ('log.info("_leading")', False),
    ('log.info("trailing_")', False),
    ('log.info("double__underscore")', False),
    ('print("not a logger call at all")', True),
    ('sim_state.info("not a logger: its receiver is no logger")', True),
])
def test_the_rule(source: str, ok: bool) -> None:
    assert (violations(source) == []) is ok
