"""Exchange's wire shapes as pure functions: URL encoding, logon redirects, cookies, IIS bodies.

Nothing here does I/O, so each rule is table-tested on its own (tests/sim/test_owa_wire.py).
"""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlsplit

# The five FBA cookies, in the order Exchange sets them.
CADATA_COOKIES = ("cadata", "cadataTTL", "cadataKey", "cadataIV", "cadataSig")
# Deleted together with the FBA cookies when a request carried them.
CAFE_COOKIES = ("X-DFPOWA-Vdir", "TargetServer", "ExchClientVer")

LOGON_PATH = "/owa/auth/logon.aspx"
LOGOFF_PAGE_TARGET = "/owa/auth/logoff.aspx?Cmd=logoff&src=exch"

# .NET HttpUtility.UrlEncode leaves these unencoded, turns space into "+", and writes lowercase hex.
_DOTNET_SAFE = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.!*()")

LOGIN_TIMEOUT_SCRIPT_BODY = (
    "<HTML><SCRIPT>if (parent.navbar != null) parent.location = self.location;"
    "else self.location = self.location;</SCRIPT><BODY>440 Login Timeout</BODY></HTML>"
)
LOGIN_TIMEOUT_PLAIN_BODY = "<HTML><BODY>440 Login Timeout</BODY></HTML>"


def dotnet_url_encode(text: str) -> str:
    """HttpUtility.UrlEncode: `https://h/owa/` -> `https%3a%2f%2fh%2fowa%2f`."""
    out: list[str] = []
    for byte in text.encode("utf-8"):
        if byte in _DOTNET_SAFE:
            out.append(chr(byte))
        elif byte == 0x20:
            out.append("+")
        else:
            out.append(f"%{byte:02x}")
    return "".join(out)


def split_host(host: str) -> tuple[str, int | None]:
    """`mail.example.com:8443` -> ("mail.example.com", 8443); handles `[::1]:443`."""
    if host.startswith("["):
        name, _, rest = host[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
        return f"[{name}]", int(port) if port.isdigit() else None
    name, sep, port = host.rpartition(":")
    if sep and port.isdigit():
        return name, int(port)
    return host, None


def host_name(host: str) -> str:
    """The Host header without its port, lower case (for comparisons)."""
    return split_host(host)[0].lower().strip("[]")


def origin(scheme: str, host: str) -> str:
    """`https://host[:port]` as Exchange builds it: the scheme's default port (and 80 under https) vanish."""
    name, port = split_host(host)
    default_ports = {80, 443} if scheme == "https" else {80}
    if port is None or port in default_ports:
        return f"{scheme}://{name}"
    return f"{scheme}://{name}:{port}"


def rescheme(url: str, scheme: str) -> str:
    """Replace a URL's scheme (and drop a port that becomes a default), keep everything else."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return url
    rest = url[len(parts.scheme) + 3 + len(parts.netloc):]
    return origin(scheme, parts.netloc) + rest


def logon_redirect(*, scheme: str, host: str, original_url: str, reason: int) -> str:
    """Location of Exchange's `RedirectToFbaLogon`: always /owa/auth/logon.aspx, also for ECP."""
    return f"{origin(scheme, host)}{LOGON_PATH}?url={dotnet_url_encode(original_url)}&reason={reason}"


def original_url_for_logon(*, scheme: str, host: str, target: str, explicit_logon_user: str | None = None) -> str:
    """The absolute URL put into `url=`: the request target, without a trailing `auth.owa` segment."""
    path, sep, query = target.partition("?")
    if path.lower().endswith("/auth.owa"):
        path = path[: -len("auth.owa")]
    if explicit_logon_user and path.lower().startswith("/owa/"):
        path = f"/owa/{explicit_logon_user}/{path[len('/owa/'):]}"
    return f"{origin(scheme, host)}{path}{sep}{query}"


def destination_problem(destination: str, host: str, *, require_host_match: bool) -> str | None:
    """Why an auth.owa `destination` gets 400, or None when it is acceptable.

    Exchange's CheckPostDestination lets `/…` through, but the anchor-mailbox step then demands an
    absolute URI; a host that differs from the request's Host (case-insensitive, port ignored) fails.
    """
    parts = urlsplit(destination)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return "destination value is not valid"
    if require_host_match and parts.hostname.lower() != host_name(host):
        return "destination host does not match the request host"
    return None


def parse_flags(value: str) -> int:
    """`flags` as int; anything non-numeric counts as 0, as in Exchange."""
    try:
        return int(value.strip())
    except ValueError:
        return 0


# Where a lenient reader also ends a pair (RFC 2109/2965-style readers, some load balancers and WAFs).
_LENIENT_SEPARATORS = re.compile(r"[;,\s]+")


def parse_cookie_header(values: list[str], *, lenient: bool = False) -> dict[str, str]:
    """Cookie header(s) -> {name: value}; first occurrence wins, values are kept byte for byte.

    Written by hand because OWA's own client-set cookies (e.g. `logondata=acc=1&lgn=CORP\\alice`)
    contain characters that make http.cookies stop parsing and silently drop later cookies.
    `lenient`: pairs also end at commas and white space, as a lenient parser in front of Exchange
    may read them (`OwaSimConfig.cookie_reader`).
    """
    cookies: dict[str, str] = {}
    for header in values:
        for pair in (_LENIENT_SEPARATORS.split(header) if lenient else header.split(";")):
            name, sep, value = pair.strip().partition("=")
            name = name.strip()
            if sep and name and name not in cookies:
                cookies[name] = value.strip()
    return cookies


def query_param(query_string: str, name: str) -> str | None:
    """A query parameter by case-insensitive name (ASP.NET's QueryString is case-insensitive)."""
    wanted = name.lower()
    for key, value in parse_qsl(query_string, keep_blank_values=True):
        if key.lower() == wanted:
            return value
    return None


def is_user_activity(query_string: str) -> bool:
    """OWA marks background requests (notification polls) with UA=0; they do not extend the session."""
    return query_param(query_string, "UA") != "0"


def is_oeh_request(query_string: str) -> bool:
    return query_string.lower().startswith("oeh=1&")


# Browsers that reject or mishandle SameSite=None (Chromium's published incompatible-clients list).
_SAMESITE_NONE_BROKEN = (
    re.compile(r"\(iP.+; CPU .*OS 12[_\d]*.*\) AppleWebKit/"),
    re.compile(r"\(Macintosh;.*Mac OS X 10_14[_\d]*.*\) AppleWebKit/(?!.*Chrom)"),
    re.compile(r"Chrom(?:e|ium)/(?:5[1-9]|6[0-6])\."),
    re.compile(r"UCBrowser/(?:[0-9]|1[01])\.|UCBrowser/12\.(?:[0-9]|1[0-2])\.|UCBrowser/12\.13\.[01]\b"),
)


def ua_supports_samesite_none(user_agent: str) -> bool:
    return not any(pattern.search(user_agent) for pattern in _SAMESITE_NONE_BROKEN)


def set_cookie(name: str, value: str, *, samesite_none: bool, secure: bool, httponly: bool,
               path: str = "/") -> str:
    """A Set-Cookie value as ASP.NET renders it; SameSite=None rides inside the path (`path=/;SameSite=None`)."""
    rendered_path = f"{path};SameSite=None" if samesite_none else path
    parts = [f"{name}={value}", f"path={rendered_path}"]
    if secure:
        parts.append("secure")
    if httponly:
        parts.append("HttpOnly")
    return "; ".join(parts)


def aspnet_expires(moment: datetime) -> str:
    """ASP.NET's cookie date: `Thu, 30-Nov-1995 13:51:23 GMT`."""
    return moment.astimezone(UTC).strftime("%a, %d-%b-%Y %H:%M:%S GMT")


def expired_cookie(name: str, now: datetime | None = None) -> str:
    """Utility.DeleteFbaAuthCookies: empty value, expiry thirty years back."""
    current = now or datetime.now(UTC)
    # DateTime.AddYears(-30); 29 February becomes 28 February.
    moment = current.replace(year=current.year - 30, day=min(current.day, 28) if current.month == 2 else current.day)
    return f"{name}=; expires={aspnet_expires(moment)}; path=/"


def object_moved_body(location: str) -> str:
    """IIS's body for a 302."""
    return (
        "<html><head><title>Object moved</title></head><body>"
        f'<h2>Object moved to <a href="{html.escape(location, quote=True)}">here</a>.</h2>'
        "</body></html>"
    )


def location_value(destination: str) -> str:
    """Location for a successful login: the destination as posted; Exchange only encodes newlines."""
    return destination.replace("\r", "%0d").replace("\n", "%0a")
