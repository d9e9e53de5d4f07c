"""Forward auth: which request another proxy is asking about (pure, sans-IO).

nginx (`auth_request`), Caddy (`forward_auth`) and Traefik (`ForwardAuth`) ask the gateway whether a
request may pass by sending a sub-request to `/_gateway/auth` that describes the original one in
headers. Those headers decide access, so:

- they are believed only from a peer in `GATEWAY_TRUSTED_PROXIES` (the caller checks the peer and
  answers 403 otherwise): a client that can reach the gateway directly could describe any request it
  liked (oauth2-proxy CVE-2026-40575 was a spoofed `X-Forwarded-Uri`);
- one description only: nginx's `X-Original-URL` + `X-Original-Method`, or the `X-Forwarded-Method`,
  `-Proto`, `-Host`, `-Uri` set of Traefik and Caddy. Both at once, or any of them twice, is refused:
  a proxy that passes a client's own `X-Forwarded-Uri` next to the one it sets would otherwise let the
  client choose which is read;
- the method is required (a missing one must not default to a harmless GET for a rule that allows
  only GET), the scheme is `http` or `https`, the host is checked and normalised by the same rule as the
  gateway's own `Host`, and the target goes through the same canonicalisation as proxied requests
  (`gateway.policy.paths.canonicalize`): a path the other proxy normalises differently is refused here,
  never decided on in another spelling.

Every refusal carries a short reason that never echoes the request.

`decide` then applies the same site selection and rules as proxied requests (gateway.policy.sites,
gateway.policy.rules): 200 (pass, with the identity for a session), 401 (sign in first; a browser is
sent to the sign-in page), or 403.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from gateway.config.model import Action
from gateway.policy.edge import normalise_host
from gateway.policy.paths import BadTarget, Target, canonicalize
from gateway.policy.rules import Identity, RuleRequest
from gateway.policy.sites import SiteIndex

__all__ = ["ForwardAuthDecision", "ForwardAuthRefused", "OriginalRequest", "SessionFactors", "Verdict", "decide",
           "original_request"]

NGINX_HEADERS = ("X-Original-URL", "X-Original-Method")
FORWARDED_HEADERS = ("X-Forwarded-Method", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Forwarded-Uri")
SCHEMES = frozenset({"http", "https"})
_METHOD = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,32}")
# scheme://authority then the origin-form target (or nothing: the root).
_ABSOLUTE_URL = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<authority>[^/?#]*)(?P<target>[/?].*)?", re.S)


class MultiHeaders(Protocol):
    def getall(self, key: str, default: list[str]) -> list[str]: ...


class ForwardAuthRefused(ValueError):
    """The sub-request does not describe one original request unambiguously; `reason` is safe to show."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class OriginalRequest:
    """The request the other proxy asks about, in the gateway's canonical terms."""

    method: str  # as sent: methods are case-sensitive, rules compare them exactly
    scheme: str  # http | https
    host: str  # normalised host[:port], default port dropped
    target: Target

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}{self.target.forward}"


def original_request(headers: MultiHeaders) -> OriginalRequest:
    """Read the original request from a trusted proxy's sub-request headers, or raise `ForwardAuthRefused`."""
    values = {name: headers.getall(name, []) for name in (*NGINX_HEADERS, *FORWARDED_HEADERS)}
    for name, found in values.items():
        if len(found) > 1:
            raise ForwardAuthRefused(f"{name} sent more than once")
    single = {name: found[0] for name, found in values.items() if found}
    nginx = any(name in single for name in NGINX_HEADERS)
    forwarded = any(name in single for name in FORWARDED_HEADERS)
    if nginx and forwarded:
        raise ForwardAuthRefused("both X-Original-* and X-Forwarded-* describe the request")
    if nginx:
        return _from_nginx(single)
    if forwarded:
        return _from_forwarded(single)
    raise ForwardAuthRefused("no X-Original-URL or X-Forwarded-Uri: nothing to decide on")


def _from_nginx(values: Mapping[str, str]) -> OriginalRequest:
    url = _required(values, "X-Original-URL")
    match = _ABSOLUTE_URL.fullmatch(url)
    if match is None:
        raise ForwardAuthRefused("X-Original-URL is not an absolute http(s) URL")
    return _original(
        method=_required(values, "X-Original-Method"),
        scheme=match["scheme"],
        host=match["authority"],
        target=_origin_form(match["target"]),
        names=("X-Original-Method", "X-Original-URL", "X-Original-URL", "X-Original-URL"),
    )


def _origin_form(target: str | None) -> str:
    """The target of an absolute URL: "https://host" and "https://host?q" ask about the root."""
    if not target:
        return "/"
    return "/" + target if target.startswith("?") else target


def _from_forwarded(values: Mapping[str, str]) -> OriginalRequest:
    method, proto, host, uri = (_required(values, name) for name in FORWARDED_HEADERS)
    return _original(method=method, scheme=proto, host=host, target=uri, names=FORWARDED_HEADERS)


def _required(values: Mapping[str, str], name: str) -> str:
    value = values.get(name)
    if value is None or not value.strip():
        raise ForwardAuthRefused(f"{name} missing")
    return value


def _original(*, method: str, scheme: str, host: str, target: str, names: tuple[str, str, str, str]) -> OriginalRequest:
    method_name, scheme_name, host_name, target_name = names
    method = method.strip()
    if _METHOD.fullmatch(method) is None:
        raise ForwardAuthRefused(f"{method_name}: not a method")
    scheme = scheme.strip().lower()
    if scheme not in SCHEMES:
        raise ForwardAuthRefused(f"{scheme_name}: not http or https")
    if "," in host:
        raise ForwardAuthRefused(f"{host_name}: more than one host")
    normalised = normalise_host(host, scheme=scheme)
    if normalised is None:
        raise ForwardAuthRefused(f"{host_name}: not a host")
    if not target.startswith("/"):
        # Origin-form only: "?q" alone or a relative path has no unambiguous reading.
        raise ForwardAuthRefused(f"{target_name}: not a path")
    try:
        canonical = canonicalize(target)
    except BadTarget as exc:
        raise ForwardAuthRefused(f"{target_name}: {exc.reason}") from None
    return OriginalRequest(method=method, scheme=scheme, host=normalised, target=canonical)


# --- The decision ------------------------------------------------------------------------------------------


class Verdict(StrEnum):
    ALLOW = "allow"  # 200: the proxy forwards the request (with the identity headers, for a session)
    SIGN_IN = "sign_in"  # 401: no session (a browser is sent to the sign-in page)
    DENY = "deny"  # 403
    BAD_REQUEST = "bad_request"  # the sub-request describes no request unambiguously (403 to the proxy)


@dataclass(frozen=True, slots=True)
class SessionFactors:
    """What the caller's session proved: who, and whether the second factor passed."""

    identity: Identity
    second_factor: bool


@dataclass(frozen=True, slots=True)
class ForwardAuthDecision:
    verdict: Verdict
    reason: str
    original: OriginalRequest | None = None
    site: str | None = None
    rule: int | None = None
    session: SessionFactors | None = None

    @property
    def status(self) -> int:
        """What nginx, Caddy and Traefik understand: 2xx passes, 401 and 403 are relayed, anything
        else is a server error to them; so a malformed description is a 403 too."""
        return {Verdict.ALLOW: 200, Verdict.SIGN_IN: 401}.get(self.verdict, 403)


def decide(headers: MultiHeaders, *, peer_trusted: bool, client_ip: str, sites: SiteIndex,
           session: SessionFactors | None) -> ForwardAuthDecision:
    """The whole forward-auth decision: who may ask, what they ask about, and what the site's rules say."""
    if not peer_trusted:
        return ForwardAuthDecision(Verdict.DENY, "the asking peer is not in GATEWAY_TRUSTED_PROXIES")
    try:
        original = original_request(headers)
    except ForwardAuthRefused as exc:
        return ForwardAuthDecision(Verdict.BAD_REQUEST, exc.reason)
    selection = sites.select(original.host)
    if selection.site is None or selection.rules is None:
        return ForwardAuthDecision(Verdict.DENY, f"no site for the host ({selection.match.value})", original)
    site = selection.site.name
    request = RuleRequest(method=original.method, lower_path=original.target.lower_path, client_ip=client_ip,
                          identity=session.identity if session is not None else None)
    decision = selection.rules.decide(request)
    if decision.needs_identity:
        return ForwardAuthDecision(Verdict.SIGN_IN, decision.reason, original, site, decision.rule)
    action = decision.action
    if action is Action.BYPASS:
        return ForwardAuthDecision(Verdict.ALLOW, decision.reason, original, site, decision.rule)
    if action in (Action.ONE_FACTOR, Action.TWO_FACTOR):
        if session is None:
            return ForwardAuthDecision(Verdict.SIGN_IN, decision.reason, original, site, decision.rule)
        if action is Action.TWO_FACTOR and not session.second_factor:
            return ForwardAuthDecision(Verdict.SIGN_IN, "the second factor is needed", original, site, decision.rule)
        return ForwardAuthDecision(Verdict.ALLOW, decision.reason, original, site, decision.rule, session)
    # deny, the default deny, and profile actions (Exchange's `pinned`) that forward auth cannot honour
    return ForwardAuthDecision(Verdict.DENY, decision.reason, original, site, decision.rule)
