"""The image's HEALTHCHECK: GET /healthz on the gateway's admin listener; exit 0 when it answers 200.

Standard library only (no curl in the image). It reads GATEWAY_ADMIN_LISTEN from the environment,
as the gateway does, and talks to the loopback address when the listener is bound to all interfaces.
Proxy variables (HTTP_PROXY and friends) are ignored: the check must reach this container's gateway.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

DEFAULT_ADMIN_LISTEN = "127.0.0.1:9090"
WILDCARDS = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1", "*": "127.0.0.1"}


def healthz_url(listen: str) -> str:
    text = listen.strip()
    if text.startswith("["):
        host, _, port = text[1:].partition("]:")
    else:
        host, _, port = text.rpartition(":")
    host = WILDCARDS.get(host, host)
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/healthz"


def main() -> int:
    url = healthz_url(os.environ.get("GATEWAY_ADMIN_LISTEN") or DEFAULT_ADMIN_LISTEN)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=4) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (OSError, ValueError) as exc:
        print(f"unhealthy: {url}: {exc}", file=sys.stderr)
        return 1
    if status != 200:
        print(f"unhealthy: {url} answered {status}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
