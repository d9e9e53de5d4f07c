"""Exchange's explicit-logon path confusion on Autodiscover (ProxyShell, ProxyNotShell), sans-IO.

Exchange's front end treats `/autodiscover/autodiscover.json?@host/<path>…&Email=autodiscover/
autodiscover.json%3F@host` as an explicit logon, cuts the self-reference out and proxies what is
left (`/mapi/nspi`, `/powershell`, `/owa/…`) to the back end (CVE-2021-34473; with a password alone,
CVE-2022-41040). The gateway decides on `/autodiscover/`, an endpoint that needs no second factor,
while Exchange would serve another one: such a request is refused, whatever Exchange's patch level.

No legitimate client puts `autodiscover.json` or `powershell` in an Autodiscover query, nor an
`@host/path` (an `Email=user@domain` value has no `/` before its next parameter).

The same shape is refused on every endpoint that needs a password alone (EWS, MAPI, RPC, OAB,
ActiveSync): Exchange's explicit-logon handling lives in the front end's handler for EWS and
Autodiscover alike, so a path ending in `autodiscover.json` below another vdir is no safer, and no
client of those endpoints sends such a query either.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from gateway.policy.paths import Target

__all__ = ["autodiscover_path_confusion"]

# Decoding rounds: the exploits' markers arrive encoded once (`%3F`) or twice (`%253F`).
_DECODE_ROUNDS = 3
_AT_HOST_PATH = re.compile(r"@[^&=]*[/\\]")
# First path segments (lower case) of the endpoints that take a password without a second factor.
_PASSWORD_ONLY_APPS = frozenset({"autodiscover", "ews", "mapi", "rpc", "oab", "microsoft-server-activesync"})


def autodiscover_path_confusion(target: Target) -> bool:
    """True when the query of a request to Autodiscover (or another endpoint that takes a password
    alone) has the explicit-logon confusion's shape."""
    if target.lower_path[1:].split("/", 1)[0] not in _PASSWORD_ONLY_APPS or not target.query:
        return False
    query = target.query
    for _ in range(_DECODE_ROUNDS):
        decoded = unquote(query.replace("+", " "))
        if decoded == query:
            break
        query = decoded
    lowered = query.lower()
    return "autodiscover.json" in lowered or "powershell" in lowered or _AT_HOST_PATH.search(lowered) is not None
