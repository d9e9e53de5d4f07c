"""What a push may say about the browser that asked for it: a browser family and an operating system.

Why: the push's context is shown to the user on their phone, who decides on it. The raw
`User-Agent` is whatever the requester typed: "Approve: this is your IT department's test", or a
copy of the user's own browser. So the gateway never sends it; it sends only names from the fixed
tables below ("Chrome on Windows"), and "Unknown" for anything else. Pure, no I/O; table-tested.
"""

from __future__ import annotations

from typing import NamedTuple

UNKNOWN_BROWSER = "Unknown browser"
UNKNOWN_OS = "Unknown OS"
# Only the head of the header is read: the markers sit in its first few hundred characters.
_READ_CHARACTERS = 1024

# (marker, family), first match wins: the order matters, as most browsers also carry the markers
# of the ones they descend from (Edge and Opera say "Chrome/", Chrome says "Safari/").
_BROWSERS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("edg/", "edga/", "edgios/", "edge/"), "Edge"),
    (("opr/", "opt/", "opera"), "Opera"),
    (("samsungbrowser/",), "Samsung Internet"),
    (("yabrowser/",), "Yandex Browser"),
    (("vivaldi/",), "Vivaldi"),
    (("firefox/", "fxios/"), "Firefox"),
    (("chrome/", "crios/", "chromium/"), "Chrome"),
    (("msie ", "trident/"), "Internet Explorer"),
    (("version/",), "Safari"),  # Safari says "Version/17.1 ... Safari/605"; checked after Chrome
)
_OPERATING_SYSTEMS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("windows phone",), "Windows Phone"),
    (("windows nt", "windows 10", "win64", "win32"), "Windows"),
    (("iphone", "ipad", "ipod"), "iOS"),  # before macOS: iOS says "like Mac OS X"
    (("android",), "Android"),  # before Linux: Android says "Linux"
    (("cros ",), "ChromeOS"),
    (("macintosh", "mac os x"), "macOS"),
    (("linux", "x11"), "Linux"),
)


class ClientDevice(NamedTuple):
    """A browser family and an operating system, each a name from this module's tables."""

    browser: str = UNKNOWN_BROWSER
    os: str = UNKNOWN_OS

    def describe(self) -> str:
        return f"{self.browser} on {self.os}"


def _first_match(text: str, table: tuple[tuple[tuple[str, ...], str], ...], default: str) -> str:
    for markers, name in table:
        if any(marker in text for marker in markers):
            return name
    return default


def parse_user_agent(user_agent: str | None) -> ClientDevice:
    """The browser family and operating system a `User-Agent` names, or "Unknown" for either."""
    text = (user_agent or "")[:_READ_CHARACTERS].lower()
    browser = _first_match(text, _BROWSERS, UNKNOWN_BROWSER)
    if browser == "Safari" and "safari/" not in text:
        browser = UNKNOWN_BROWSER  # "Version/" alone is not Safari (nor anything we can name)
    return ClientDevice(browser, _first_match(text, _OPERATING_SYSTEMS, UNKNOWN_OS))
