"""The sign-in form's token (gateway.policy.signin_csrf): bound to the browser, the site and a time."""

from __future__ import annotations

import pytest

from gateway.policy.signin_csrf import SIGNIN_TOKEN_SECONDS, new_browser_id, signin_token, token_problem

KEY, OLD_KEY, OTHER_KEY = b"k" * 32, b"o" * 32, b"x" * 32
BROWSER = new_browser_id()
NOW = 1_800_000_000.0
GOOD = signin_token(KEY, site="app", browser_id=BROWSER, now=NOW)


@pytest.mark.parametrize(("keys", "site", "browser", "token", "now", "expected"), [
    ((KEY,), "app", BROWSER, GOOD, NOW, None),
    ((KEY,), "app", BROWSER, GOOD, NOW + SIGNIN_TOKEN_SECONDS, None),
    ((OTHER_KEY, KEY), "app", BROWSER, GOOD, NOW, None),  # the previous key during a rotation
    ((KEY,), "app", BROWSER, signin_token(OLD_KEY, site="app", browser_id=BROWSER, now=NOW), NOW, "csrf_token"),
    ((KEY,), "wiki", BROWSER, GOOD, NOW, "csrf_token"),  # another site's form
    ((KEY,), "app", new_browser_id(), GOOD, NOW, "csrf_token"),  # another browser's form
    ((KEY,), "app", None, GOOD, NOW, "no_signin_cookie"),
    ((KEY,), "app", "short", GOOD, NOW, "no_signin_cookie"),
    ((KEY,), "app", BROWSER, None, NOW, "csrf_token"),
    ((KEY,), "app", BROWSER, "", NOW, "csrf_token"),
    ((KEY,), "app", BROWSER, GOOD + "x", NOW, "csrf_token"),
    ((KEY,), "app", BROWSER, GOOD.replace(GOOD.split(".")[0], str(int(NOW) + 1)), NOW, "csrf_token"),
    ((KEY,), "app", BROWSER, GOOD, NOW + SIGNIN_TOKEN_SECONDS + 1, "csrf_token_expired"),
    ((KEY,), "app", BROWSER, GOOD, NOW - 3600, "csrf_token_expired"),  # issued in the future
    ((KEY,), "app", BROWSER, " " + GOOD, NOW, "csrf_token"),
])
def test_token_problem(keys: tuple[bytes, ...], site: str, browser: str | None, token: str | None, now: float,
                       expected: str | None) -> None:
    assert token_problem(keys, site=site, browser_id=browser, token=token, now=now) == expected


def test_browser_ids_are_random() -> None:
    assert len({new_browser_id() for _ in range(100)}) == 100
