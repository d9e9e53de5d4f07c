"""The portal's pages that belong to no one site: forward auth and the assertion keys."""

from __future__ import annotations

from collections.abc import Callable

from gateway.profiles.portal.forward_auth import FORWARD_AUTH_PATH, forward_auth_handler
from gateway.profiles.portal.jwks import JWKS_PATH, jwks_handler
from gateway.profiles.portal.serve import PortalSites
from gateway.state import AppState

__all__ = ["install_portal_endpoints"]


def install_portal_endpoints(state: AppState, portals: Callable[[], PortalSites]) -> None:
    """`portals()` answers the configuration in force (it changes with each reload)."""
    state.pages.add("GET", FORWARD_AUTH_PATH, forward_auth_handler(portals))
    state.pages.add("GET", JWKS_PATH, jwks_handler(portals))
