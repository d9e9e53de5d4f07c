"""`GET /_gateway/jwks.json`: the public keys that verify the sites' assertions (`X-Monosign-Assertion`).

Every site's keys, the signing key's public half and the previous ones (a rotation keeps them listed),
each once (by `kid`, its RFC 7638 thumbprint). Cacheable for `JWKS_MAX_AGE` seconds: an upstream that
caches it longer may miss a newly added key, so a rotation lists the new key here first (as a
previous key) for longer than that before it signs (docs/forward-auth.md).
"""

from __future__ import annotations

import json
from collections.abc import Callable

from aiohttp import web

from gateway.core import Handler, RequestContext
from gateway.profiles.portal.serve import PortalSites

__all__ = ["JWKS_MAX_AGE", "JWKS_PATH", "jwks_document", "jwks_handler"]

JWKS_PATH = "/_gateway/jwks.json"
JWKS_MAX_AGE = 300


def jwks_document(portals: PortalSites) -> dict[str, list[dict[str, str]]]:
    keys: dict[str, dict[str, str]] = {}
    for signer in portals.signers():
        for key in signer.keys.jwks()["keys"]:
            keys.setdefault(key["kid"], key)
    return {"keys": list(keys.values())}


def jwks_handler(portals: Callable[[], PortalSites]) -> Handler:
    """The page handler; the document is made once per configuration."""
    made: list[tuple[PortalSites, bytes]] = []  # the configuration it was made for, and the document

    async def handle(request: web.Request, ctx: RequestContext) -> web.StreamResponse:
        current = portals()
        if made and made[0][0] is current:
            body = made[0][1]
        else:
            body = json.dumps(jwks_document(current), separators=(",", ":")).encode()
            made[:] = [(current, body)]
        return web.Response(body=body, content_type="application/jwk-set+json",
                            headers={"Cache-Control": f"public, max-age={JWKS_MAX_AGE}"})

    return handle
