"""The access log's `bytes_out` for the answers the gateway makes itself (the MFA page, static files,
error pages, redirects) is the body bytes it wrote, as for relayed answers."""

from __future__ import annotations

from typing import Any

from tests.flow.conftest import FlowEnv
from tests.logs import CapturedLogs, events


def access_lines(captured_logs: CapturedLogs) -> dict[str, dict[str, Any]]:
    """The last access line of each request path."""
    return {line["path"]: line for line in events(captured_logs(), "gateway.access")}


async def test_own_answers_count_the_body_bytes_written(env: FlowEnv, captured_logs: CapturedLogs) -> None:
    browser = env.browser()
    await browser.password("alice")
    mfa = await browser.get("/_gateway/mfa")
    css = await browser.get("/_gateway/static/mfa.css")
    missing = await browser.get("/_gateway/nothing-here")
    plain_error = await browser.get("/no-such-endpoint", navigate=False)
    redirect = await browser.get("/")
    head = await browser.request("HEAD", "/_gateway/static/mfa.js")
    assert (mfa.status, css.status, missing.status, plain_error.status, redirect.status, head.status) == (
        200, 200, 404, 404, 302, 200)
    logged = access_lines(captured_logs)
    for path, page in (("/_gateway/mfa", mfa), ("/_gateway/static/mfa.css", css),
                       ("/_gateway/nothing-here", missing), ("/no-such-endpoint", plain_error)):
        body = page.text.encode()
        assert body
        assert logged[path]["bytes_out"] == len(body), path
        assert logged[path]["status"] == page.status
    assert logged["/"]["bytes_out"] == 0  # a redirect without a body
    assert logged["/_gateway/static/mfa.js"]["bytes_out"] == 0  # HEAD: no body written
