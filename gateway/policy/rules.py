"""A site's access rules: ordered, first match wins, no match is deny (pure, sans-IO).

A rule matches when every condition it writes holds (a condition left out matches anything):

- ``paths``: the canonical lower-case path is one of the patterns or below it, by whole segments
  (``/admin`` matches ``/admin``, ``/admin/`` and ``/admin/x``, never ``/administrator``): the rule of
  the route classes, on the string the proxy forwards, each segment read without its ``;``
  parameters (``/admin;x=1`` is ``/admin`` to Java servers);
- ``methods``: the method, upper-cased on both sides (a server that reads ``get`` as ``GET`` gets the
  decision made for ``GET``);
- ``networks``: the client address (after the trusted proxies; IPv4-mapped IPv6 read as IPv4) is in
  one of the CIDRs; an address that does not parse is in none;
- ``users`` / ``groups`` (the *subject*): the user is listed (any form of the name, as
  ``MONOSIGN_USER_EXCEPTIONS`` compares them), **or** is in a listed group; a name outside printable
  ASCII is never listed (Exchange may read it as another account);
- ``route_classes``: the profile's route class of the request (Exchange's ``owa-app``, ...).

Before sign-in the user is not known. A rule with a subject whose other conditions hold then stops
the walk with *needs identity* (``Decision.action is None``): the caller signs the user in (for
Exchange's non-browser clients: passes only the upstream's authentication challenge) and decides
again with the user. Later rules are never tried in its place: skipping it could let a broader rule
below admit someone the subject rule was written to keep to a list.

:class:`RuleSet` compiles a site's rules once: a trie of path segments and per-condition bit masks
(bit *i* is rule *i*), so a decision is a few dict lookups and integer ANDs, with no regular
expression and no backtracking on the request. :func:`trace` is the plain first-match walk, with
each rule's reasons: it is what ``monosign-gateway explain`` prints, and the property tests hold the
compiled form to it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from gateway.config.model import Action, Rule
from gateway.policy.addresses import IPAddress, client_address
from gateway.policy.routes import RouteClass
from gateway.policy.users import AmbiguousUserName, UserName, check_exchange_reading, matches_exception

__all__ = ["Decision", "Identity", "RuleRequest", "RuleSet", "RuleTrace", "decide_naively", "trace"]

MEMO_ENTRIES = 4096
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Identity:
    """Who the user is, once known. Group names are compared lower-cased."""

    user: UserName
    groups: frozenset[str] = frozenset()


class RuleRequest(NamedTuple):
    """What a decision sees: the canonical request, the client, the user when known. (A NamedTuple:
    one is made per request, and a frozen dataclass costs several times as much to build.)"""

    method: str
    lower_path: str  # gateway.policy.paths.Target.lower_path
    client_ip: str
    route_class: RouteClass | None = None  # None: the site's profile has no route classes
    identity: Identity | None = None


class Decision(NamedTuple):
    """`action` None means *needs identity*: sign in, then decide again. `rule` None: the default deny."""

    action: Action | None
    rule: int | None
    reason: str

    @property
    def needs_identity(self) -> bool:
        return self.action is None


@dataclass(frozen=True, slots=True)
class RuleTrace:
    """One rule as the walk saw it: matched, or why not (`failed`), or undecidable without a user."""

    index: int
    rule: Rule
    matched: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    needs_identity: bool = False

    @property
    def matches(self) -> bool:
        return not self.failed and not self.needs_identity


# --- Reading requests the one way both forms share ----------------------------------------------------
def path_segments(lower_path: str) -> tuple[str, ...]:
    """``/a/b/`` -> ``("a", "b", "")``; ``/`` -> ``("",)``. A pattern's segments are a prefix of these.

    Each segment is cut at its first ``;``: Tomcat, Jetty and Spring read ``/admin;x=1/`` as
    ``/admin/`` (path parameters), so a rule for ``/admin`` must decide ``/admin;x=1`` too. A server
    that does not strip them sees another resource, which is then decided as ``/admin`` is.
    """
    if ";" not in lower_path:
        return tuple(lower_path[1:].split("/"))
    return tuple(segment.partition(";")[0] for segment in lower_path[1:].split("/"))


def pattern_segments(pattern: str) -> tuple[str, ...]:
    """``/admin`` -> ``("admin",)``; ``/`` -> ``()`` (everything is below the root)."""
    return () if pattern == "/" else tuple(pattern[1:].split("/"))


def _user_forms(identity: Identity) -> frozenset[str] | None:
    """The user's name forms, or None when the name is outside printable ASCII (never listed)."""
    try:
        check_exchange_reading(identity.user.typed)
    except AmbiguousUserName:
        return None
    return identity.user.forms


def _subject_matches(rule: Rule, identity: Identity) -> bool:
    forms = _user_forms(identity)
    if rule.users is not None and forms is not None and matches_exception(forms, rule.users):
        return True
    groups = {group.lower() for group in identity.groups}
    return rule.groups is not None and bool(groups & set(rule.groups))


# --- The plain walk: the reference semantics, with reasons ---------------------------------------------
def _check(rule: Rule, request: RuleRequest, address: IPAddress | None) -> RuleTrace:
    matched: list[str] = []
    failed: list[str] = []
    if rule.paths is not None:
        segments = path_segments(request.lower_path)
        hits = [p for p in rule.paths if segments[: len(pattern_segments(p))] == pattern_segments(p)]
        (matched if hits else failed).append(
            f"path {request.lower_path} is {'under ' + hits[0] if hits else 'not under ' + ', '.join(rule.paths)}")
    if rule.methods is not None:
        method = request.method.upper()
        ok = method in rule.methods
        (matched if ok else failed).append(f"method {method} is {'' if ok else 'not '}in {', '.join(rule.methods)}")
    if rule.networks is not None:
        if address is None:
            shown = repr(request.client_ip) if request.client_ip else "not given"
            failed.append(f"client address {shown} is in none of {', '.join(rule.networks)}")
        else:
            hit = next((n for n in rule.networks if address in ipaddress.ip_network(n)), None)
            (matched if hit else failed).append(
                f"client {address} is in {hit}" if hit else f"client {address} is not in {', '.join(rule.networks)}")
    if rule.route_classes is not None:
        route = request.route_class
        ok = route is not None and route in rule.route_classes
        shown = route.value if route is not None else "none"
        (matched if ok else failed).append(
            f"route class {shown} is {'' if ok else 'not '}in {', '.join(c.value for c in rule.route_classes)}")
    needs_identity = False
    if rule.needs_identity:
        listed = ", ".join([*(rule.users or ()), *(f"group {g}" for g in rule.groups or ())])
        if request.identity is None:
            needs_identity = not failed
            (matched if needs_identity else failed).append(f"the user is not known yet (rule lists {listed})")
        elif _subject_matches(rule, request.identity):
            matched.append(f"user {request.identity.user.typed} is {listed}")
        else:
            failed.append(f"user {request.identity.user.typed} is not {listed}")
    if not (rule.paths or rule.methods or rule.networks or rule.route_classes or rule.needs_identity):
        matched.append("no conditions: matches every request")
    return RuleTrace(0, rule, matched, failed, needs_identity)


def trace(rules: Sequence[Rule], request: RuleRequest) -> tuple[list[RuleTrace], Decision]:
    """Walk the rules in order up to the deciding one: each rule's reasons, and the decision."""
    address = client_address(request.client_ip)
    walked: list[RuleTrace] = []
    for index, rule in enumerate(rules):
        result = _check(rule, request, address)
        result = RuleTrace(index, rule, result.matched, result.failed, result.needs_identity)
        walked.append(result)
        if result.needs_identity:
            return walked, Decision(None, index, f"rules[{index}] applies only to some users: sign in first")
        if result.matches:
            return walked, Decision(rule.action, index, f"rules[{index}]: {'; '.join(result.matched)}")
    return walked, Decision(Action.DENY, None, "no rule matched: denied by default")


def decide_naively(rules: Sequence[Rule], request: RuleRequest) -> Decision:
    return trace(rules, request)[1]


# --- The compiled form ------------------------------------------------------------------------------------
@dataclass(slots=True)
class _PathNode:
    children: dict[str, _PathNode] = field(default_factory=dict)
    mask: int = 0  # rules with a pattern ending here


@dataclass(frozen=True, slots=True)
class _NetworkMask:
    version: int
    first: int  # the network's first and last addresses, as integers
    last: int
    mask: int


class RuleSet:
    """A site's rules compiled once; :meth:`decide` agrees with :func:`decide_naively` on every request."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules: tuple[Rule, ...] = tuple(rules)
        everything = (1 << len(self.rules)) - 1
        self._root = _PathNode()
        self._any_path = 0
        self._methods: dict[str, int] = {}
        self._any_method = 0
        self._classes: dict[RouteClass, int] = {}
        self._any_class = 0
        self._networks: list[_NetworkMask] = []
        self._any_network = 0
        self._users: list[tuple[frozenset[str], int]] = []  # (entries, mask): matched with matches_exception
        self._groups: dict[str, int] = {}
        self._subject = 0  # rules that need the user
        networks: dict[IPNetwork, int] = {}
        for index, rule in enumerate(self.rules):
            bit = 1 << index
            if rule.paths is None:
                self._any_path |= bit
            for pattern in rule.paths or ():
                node = self._root
                for segment in pattern_segments(pattern):
                    node = node.children.setdefault(segment, _PathNode())
                node.mask |= bit
            if rule.methods is None:
                self._any_method |= bit
            for method in rule.methods or ():
                self._methods[method] = self._methods.get(method, 0) | bit
            if rule.route_classes is None:
                self._any_class |= bit
            for route_class in rule.route_classes or ():
                self._classes[route_class] = self._classes.get(route_class, 0) | bit
            if rule.networks is None:
                self._any_network |= bit
            for cidr in rule.networks or ():
                network = ipaddress.ip_network(cidr)
                networks[network] = networks.get(network, 0) | bit
            if rule.needs_identity:
                self._subject |= bit
                if rule.users is not None:
                    self._users.append((frozenset(rule.users), bit))
                for group in rule.groups or ():
                    self._groups[group] = self._groups.get(group, 0) | bit
        self._networks = [_NetworkMask(network.version, int(network.network_address),
                                       int(network.broadcast_address), mask)
                          for network, mask in networks.items()]
        self._everything = everything
        self._matched = tuple(f"rules[{index}] matched" for index in range(len(self.rules)))
        self._sign_in_first = tuple(f"rules[{index}] applies only to some users: sign in first"
                                    for index in range(len(self.rules)))
        # Masks are pure functions of the path and of the address for these rules: remember recent
        # ones (bounded: varied paths or clients only refill the memo).
        self._path_masks: dict[str, int] = {}
        self._network_masks: dict[str, int] = {}

    def decide(self, request: RuleRequest) -> Decision:
        candidates = (self._path_mask(request.lower_path)
                      & (self._methods.get(request.method.upper(), 0) | self._any_method)
                      & self._class_mask(request.route_class)
                      & self._network_mask(request.client_ip))
        if request.identity is None:
            # Subject rules cannot be decided yet: the first candidate among them stops the walk.
            first = candidates & -candidates
            if not first:
                return Decision(Action.DENY, None, "no rule matched: denied by default")
            index = first.bit_length() - 1
            if first & self._subject:
                return Decision(None, index, self._sign_in_first[index])
            return Decision(self.rules[index].action, index, self._matched[index])
        candidates &= (self._everything & ~self._subject) | self._subject_mask(request.identity)
        first = candidates & -candidates
        if not first:
            return Decision(Action.DENY, None, "no rule matched: denied by default")
        index = first.bit_length() - 1
        return Decision(self.rules[index].action, index, self._matched[index])

    def _path_mask(self, lower_path: str) -> int:
        mask = self._path_masks.get(lower_path)
        if mask is None:
            mask = self._walk_paths(lower_path)
            if len(self._path_masks) >= MEMO_ENTRIES:
                self._path_masks.clear()
            self._path_masks[lower_path] = mask
        return mask

    def _walk_paths(self, lower_path: str) -> int:
        mask = self._any_path | self._root.mask
        node = self._root
        for segment in path_segments(lower_path):
            child = node.children.get(segment)
            if child is None:
                break
            mask |= child.mask
            node = child
        return mask

    def _class_mask(self, route_class: RouteClass | None) -> int:
        if route_class is None:
            return self._any_class
        return self._classes.get(route_class, 0) | self._any_class

    def _network_mask(self, client_ip: str) -> int:
        if not self._networks:
            return self._any_network
        mask = self._network_masks.get(client_ip)
        if mask is None:
            mask = self._match_networks(client_ip)
            if len(self._network_masks) >= MEMO_ENTRIES:
                self._network_masks.clear()
            self._network_masks[client_ip] = mask
        return mask

    def _match_networks(self, client_ip: str) -> int:
        mask = self._any_network
        address = client_address(client_ip)
        if address is None:
            return mask
        version, number = address.version, int(address)
        for entry in self._networks:
            if entry.version == version and entry.first <= number <= entry.last:
                mask |= entry.mask
        return mask

    def _subject_mask(self, identity: Identity) -> int:
        mask = 0
        forms = _user_forms(identity)
        if forms is not None:
            for entries, bit in self._users:
                if matches_exception(forms, entries):
                    mask |= bit
        for group in identity.groups:
            mask |= self._groups.get(group.lower(), 0)
        return mask
