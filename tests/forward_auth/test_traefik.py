"""Traefik's configuration in docs/forward-auth.md, checked for syntax and shape (Traefik has no Debian
package, so it is not run; the page says so). And every documented configuration handles the same
headers: the gateway's default identity headers and its assertion."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from gateway.policy.identity_headers import ASSERTION_HEADER, IdentityHeaderNames
from tests.forward_auth.proxies import DOC_HOST, documented

HEADERS = [*IdentityHeaderNames().all(), ASSERTION_HEADER]
# The keys Traefik v2/v3 accepts where the page writes them (a typo would be ignored by Traefik, silently).
ROUTER_KEYS = {"rule", "middlewares", "service", "entryPoints", "tls", "priority", "ruleSyntax"}
FORWARD_AUTH_KEYS = {"address", "tls", "trustForwardHeader", "authResponseHeaders", "authResponseHeadersRegex",
                     "authRequestHeaders", "addAuthCookiesToResponse", "forwardBody", "maxBodySize",
                     "preserveLocationHeader", "preserveRequestMethod", "headerField"}
RULE = re.compile(r"Host\(`([a-z0-9.-]+)`\)(?: && PathPrefix\(`(/[^`]*)`\))?")


@pytest.fixture
def traefik() -> dict[str, Any]:
    document = yaml.safe_load(documented("traefik", marker="checked"))
    assert isinstance(document, dict)
    assert set(document) == {"http"}
    assert set(document["http"]) == {"routers", "middlewares", "services"}
    return dict(document["http"])


def test_the_routers_send_the_application_through_forward_auth_and_the_gateway_s_pages_to_it(
        traefik: dict[str, Any]) -> None:
    routers, middlewares, services = traefik["routers"], traefik["middlewares"], traefik["services"]
    by_prefix = {}
    for router in routers.values():
        assert set(router) <= ROUTER_KEYS
        assert router["service"] in services
        for name in router.get("middlewares", []):
            assert name in middlewares
        match = RULE.fullmatch(router["rule"])
        assert match, router["rule"]
        assert match[1] == DOC_HOST
        by_prefix[match[2]] = router
    application, pages = by_prefix[None], by_prefix["/_gateway/"]
    # Strip the client's copies first, then ask the gateway; the gateway's pages need no forward auth.
    kinds = [next(iter(middlewares[name])) for name in application["middlewares"]]
    assert kinds == ["headers", "forwardAuth"]
    assert "middlewares" not in pages
    assert services[pages["service"]]["loadBalancer"]["passHostHeader"] is True
    assert services[application["service"]]["loadBalancer"]["servers"][0]["url"].startswith("http")


def test_forward_auth_asks_the_gateway_and_copies_exactly_its_headers(traefik: dict[str, Any]) -> None:
    middlewares = traefik["middlewares"].values()
    (auth,) = [middleware["forwardAuth"] for middleware in middlewares if "forwardAuth" in middleware]
    assert set(auth) <= FORWARD_AUTH_KEYS
    assert re.fullmatch(r"https?://[a-z0-9.-]+(:[0-9]+)?/_gateway/auth\?browsers=redirect", auth["address"])
    assert auth["trustForwardHeader"] is False  # Traefik writes X-Forwarded-* itself
    assert auth["authResponseHeaders"] == HEADERS
    (strip,) = [middleware["headers"] for middleware in middlewares if "headers" in middleware]
    assert strip == {"customRequestHeaders": dict.fromkeys(HEADERS, "")}


def test_nginx_and_caddy_handle_the_same_headers() -> None:
    nginx, caddy = documented("nginx"), documented("caddy")
    for name in HEADERS:
        variable = name.lower().replace("-", "_")
        assert f"$upstream_http_{variable};" in nginx, name
        assert re.search(rf"proxy_set_header {name} \$monosign_\w+;", nginx), name
        assert f"request_header -{name}\n" in caddy, name
    (copied,) = re.findall(r"^\s*copy_headers (.*)$", caddy, re.M)
    assert copied.split() == HEADERS
