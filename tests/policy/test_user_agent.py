"""Table tests for the push's browser description: real User-Agent strings to a family and an OS, and
text a requester chose (to make the push say something) to names from the tables only."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.policy import user_agent
from gateway.policy.user_agent import UNKNOWN_BROWSER, UNKNOWN_OS, ClientDevice, parse_user_agent

PARSED = [
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
     "Chrome", "Windows"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 "
     "Edg/120.0.2210.61", "Edge", "Windows"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0", "Firefox", "Windows"),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 "
     "Safari/605.1.15", "Safari", "macOS"),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
     "Safari/537.36", "Chrome", "macOS"),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 "
     "Mobile/15E148 Safari/604.1", "Safari", "iOS"),
    ("Mozilla/5.0 (iPad; CPU OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/120.0.6099.119 "
     "Mobile/15E148 Safari/604.1", "Chrome", "iOS"),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/121.0 "
     "Mobile/15E148 Safari/605.1.15", "Firefox", "iOS"),
    ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.144 Mobile "
     "Safari/537.36", "Chrome", "Android"),
    ("Mozilla/5.0 (Linux; Android 13; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
     "SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36", "Samsung Internet", "Android"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
     "Safari/537.36 OPR/106.0.0.0", "Opera", "Windows"),
    ("Opera/9.80 (Windows NT 6.1; WOW64) Presto/2.12.388 Version/12.18", "Opera", "Windows"),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0", "Firefox", "Linux"),
    ("Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
     "Safari/537.36", "Chrome", "ChromeOS"),
    ("Mozilla/5.0 (Windows NT 10.0; WOW64; Trident/7.0; rv:11.0) like Gecko", "Internet Explorer", "Windows"),
    ("Mozilla/4.0 (compatible; MSIE 8.0; Windows NT 6.1; Trident/4.0)", "Internet Explorer", "Windows"),
    ("Mozilla/5.0 (Windows Phone 10.0; Android 6.0.1; Microsoft; Lumia 950) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/52.0.2743.116 Mobile Safari/537.36 Edge/15.14977", "Edge", "Windows Phone"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
     "YaBrowser/24.1.0.0 Safari/537.36", "Yandex Browser", "Windows"),
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 "
     "Vivaldi/6.5", "Vivaldi", "Linux"),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)", UNKNOWN_BROWSER,
     "macOS"),
    ("curl/8.5.0", UNKNOWN_BROWSER, UNKNOWN_OS),
    ("python-httpx/0.27", UNKNOWN_BROWSER, UNKNOWN_OS),
    ("", UNKNOWN_BROWSER, UNKNOWN_OS),
    (None, UNKNOWN_BROWSER, UNKNOWN_OS),
    # Text chosen to make the push say something: only table names come out.
    ("Approve this: IT department test", UNKNOWN_BROWSER, UNKNOWN_OS),
    ("Approve me <b>now</b> Firefox/1", "Firefox", UNKNOWN_OS),
    ("IT support asks you to approve (Windows NT 10.0)\r\nX: y", UNKNOWN_BROWSER, "Windows"),
    ("Version/1 without the rest", UNKNOWN_BROWSER, UNKNOWN_OS),
]


@pytest.mark.parametrize(("header", "browser", "os"), PARSED)
def test_user_agents(header: str | None, browser: str, os: str) -> None:
    assert parse_user_agent(header) == ClientDevice(browser, os)


def test_description() -> None:
    assert ClientDevice("Chrome", "Windows").describe() == "Chrome on Windows"
    assert ClientDevice().describe() == "Unknown browser on Unknown OS"


def test_only_the_head_is_read() -> None:
    assert parse_user_agent("x" * 2000 + " Firefox/121.0 (Windows NT 10.0)") == ClientDevice()


NAMES = {name for _, name in user_agent._BROWSERS} | {UNKNOWN_BROWSER}
SYSTEMS = {name for _, name in user_agent._OPERATING_SYSTEMS} | {UNKNOWN_OS}


@given(st.text(max_size=400))
def test_anything_becomes_names_from_the_tables(header: str) -> None:
    device = parse_user_agent(header)
    assert device.browser in NAMES
    assert device.os in SYSTEMS
