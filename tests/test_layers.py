"""The import contract: no import cycle between the gateway's modules, and each layer imports only
the layers below it (docs/README.md, "The code's layers").

Read from the source with `ast`, so every import counts: at module level, inside functions, and
under `if TYPE_CHECKING:` (a cycle hidden behind a lazy import is still a cycle).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "gateway"

# Bottom to top. A module belongs to the layer of its longest matching prefix ("gateway" alone
# names only the package's own __init__).
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("foundation", ("gateway", "gateway._compat", "gateway.located", "gateway.settings", "gateway.observability",
                    "gateway.request_body")),
    # Pure rules and the configuration they are compiled from (config.model validates with the
    # rules' parsers; policy.rules and policy.sites compile the model): one layer, no cycle.
    ("policy and config", ("gateway.policy", "gateway.config", "gateway.assertion", "gateway.migration")),
    ("core types", ("gateway.core",)),
    ("components", ("gateway.proxy", "gateway.sessions", "gateway.monosign", "gateway.identity", "gateway.pages",
                    "gateway.tls")),
    ("application state", ("gateway.state",)),
    ("pipeline", ("gateway.app",)),
    ("mfa", ("gateway.mfa",)),
    ("exchange profile", ("gateway.profiles", "gateway.profiles.exchange")),
    ("passthrough and portal profiles", ("gateway.profiles.passthrough", "gateway.profiles.portal")),
    ("assembly", ("gateway.assembly",)),
    ("process", ("gateway.server", "gateway.commands", "gateway.workers", "gateway.demo", "gateway.cli",
                 "gateway.__main__", "gateway.sim")),
)
# The profiles are features too: they serve with the MFA flow's sessions; only the assembly wires them.
FEATURES = ("gateway.mfa", "gateway.profiles")

# Imports that still go up a layer: (importer, imported). Pinned, so the list can only shrink.
ALLOWED_UPWARD: frozenset[tuple[str, str]] = frozenset()


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _owner(name: str) -> str | None:
    """The gateway module `name` (a module, or a name inside one) resolves to."""
    known = modules()
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def imported_names(module: str) -> Iterator[str]:
    """Every gateway module `module` imports, wherever the import statement is."""
    path = modules()[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    return imports_in(path.read_text(encoding="utf-8"), module=module, package=package)


def imports_in(source: str, *, module: str, package: str) -> Iterator[str]:
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            candidates = [f"{base}.{alias.name}" for alias in node.names] or [base]
        else:
            continue
        for name in candidates:
            if name == "gateway" or name.startswith("gateway."):
                owner = _owner(name)
                if owner is not None and owner != module:
                    yield owner


@cache
def graph() -> dict[str, frozenset[str]]:
    return {module: frozenset(imported_names(module)) for module in modules()}


def layer_of(module: str) -> int:
    best: tuple[int, int] | None = None  # (prefix length, layer)
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            matches = module == prefix if prefix == "gateway" else (
                module == prefix or module.startswith(prefix + "."))
            if matches and (best is None or len(prefix) > best[0]):
                best = (len(prefix), index)
    assert best is not None, f"{module} is in no layer: add it to LAYERS"
    return best[1]


def cycles(edges: dict[str, frozenset[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def upward_imports() -> set[tuple[str, str]]:
    return {(module, imported) for module, imports in graph().items() for imported in imports
            if layer_of(imported) > layer_of(module)}


def test_every_module_has_a_layer() -> None:
    for module in modules():
        layer_of(module)


def test_no_import_cycles() -> None:
    assert cycles(graph()) == []


def test_layers_import_only_downward() -> None:
    described = sorted(f"{a} ({LAYERS[layer_of(a)][0]}) imports {b} ({LAYERS[layer_of(b)][0]})"
                       for a, b in upward_imports() - ALLOWED_UPWARD)
    assert described == []


def test_the_allow_list_only_shrinks() -> None:
    # An allowed edge that is gone must leave the list too, so nobody can bring it back unseen.
    assert ALLOWED_UPWARD - upward_imports() == set()


def test_only_the_assembly_and_the_process_wire_features() -> None:
    wiring = {m for m in modules() if m == "gateway.assembly" or m.startswith("gateway.assembly.")} | \
        {m for m in modules() if layer_of(m) == len(LAYERS) - 1}
    offenders = sorted(
        (module, imported) for module, imports in graph().items() for imported in imports
        if any(imported == f or imported.startswith(f + ".") for f in FEATURES)
        and not any(module == f or module.startswith(f + ".") for f in FEATURES)
        and module not in wiring
    )
    assert offenders == []


# The checker itself: a hidden cycle and an upward import must be seen.
@pytest.mark.parametrize(("edges", "expected"), [
    ({"a": frozenset({"b"}), "b": frozenset({"a"})}, [["a", "b"]]),
    ({"a": frozenset({"b"}), "b": frozenset({"c"}), "c": frozenset({"a"})}, [["a", "b", "c"]]),
    ({"a": frozenset({"b"}), "b": frozenset()}, []),
    ({"a": frozenset({"b", "c"}), "b": frozenset({"c"}), "c": frozenset()}, []),
])
def test_cycles_finds_what_is_there(edges: dict[str, frozenset[str]], expected: list[list[str]]) -> None:
    assert cycles(edges) == expected


def test_imports_inside_functions_and_type_checking_count() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from gateway.mfa.flow import MfaFlow\n"
        "def f():\n    from gateway.assembly import build_state\n    import gateway.profiles.exchange.login\n"
        "from . import core\n"
        "from .pages import renderer\n"
        "from .proxy.forwarder import Forwarder\n"
    )
    found = set(imports_in(source, module="gateway.app", package="gateway"))
    assert found == {"gateway.mfa.flow", "gateway.assembly", "gateway.profiles.exchange.login", "gateway.core",
                     "gateway.pages.renderer", "gateway.proxy.forwarder"}


@pytest.mark.parametrize(("lower", "higher"), [
    ("gateway", "gateway.sessions.store"),
    ("gateway.settings", "gateway.policy.paths"),
    ("gateway.policy.paths", "gateway.core"),
    ("gateway.core", "gateway.proxy.forwarder"),
    ("gateway.pages.renderer", "gateway.state"),
    ("gateway.state", "gateway.app"),
    ("gateway.app", "gateway.mfa.flow"),
    ("gateway.mfa.flow", "gateway.profiles.exchange.login"),
    ("gateway.proxy.forwarder", "gateway.profiles.exchange.client_routes"),
    ("gateway.profiles.exchange.client_routes", "gateway.assembly"),
    ("gateway.config.ldap", "gateway.identity.ldap_backend"),
    ("gateway.mfa.flow", "gateway.profiles.portal.signin"),
    ("gateway.profiles.portal.signin", "gateway.assembly"),
    ("gateway.assembly", "gateway.server"),
])
def test_layer_order(lower: str, higher: str) -> None:
    assert layer_of(lower) < layer_of(higher)


# The pipeline knows no profile: it reaches Exchange (or any other profile) only through
# AppState.profile. Words that would name one, in any identifier or import of gateway/app.py.
PROFILE_WORDS = ("owa", "exchange", "ecp", "activesync")


def profile_names_in(source: str) -> list[str]:
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        names: list[str] = []
        if isinstance(node, ast.Name):
            names = [node.id]
        elif isinstance(node, ast.Attribute):
            names = [node.attr]
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names = [node.name]
        elif isinstance(node, ast.arg):
            names = [node.arg]
        elif isinstance(node, ast.keyword):
            names = [node.arg or ""]
        elif isinstance(node, ast.alias):
            names = [node.name, node.asname or ""]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        found += [name for name in names if any(word in name.lower() for word in PROFILE_WORDS)]
    return found


def test_the_pipeline_names_no_profile() -> None:
    assert profile_names_in((PACKAGE / "app.py").read_text(encoding="utf-8")) == []
    assert not any(imported.startswith("gateway.profiles") for imported in graph()["gateway.app"])


@pytest.mark.parametrize(("source", "named"), [
    ("from gateway.profiles.exchange import login", ["gateway.profiles.exchange"]),
    ("import gateway.profiles.exchange", ["gateway.profiles.exchange"]),
    ("from gateway.profiles import exchange", ["exchange"]),
    ("async def redirect_to_owa(r): pass", ["redirect_to_owa"]),
    ("x = settings.gateway_policy_ecp", ["gateway_policy_ecp"]),
    ("x = RouteClass.ACTIVESYNC", ["ACTIVESYNC"]),
    ("f(exchange_site=1)", ["exchange_site"]),
    ("def f(owa_path): pass", ["owa_path"]),
    ("class ExchangeRoutes: pass", ["ExchangeRoutes"]),
    ("_ecp_denied(state)", ["_ecp_denied"]),
    ("def forward(request): return allowed", []),
    ("x = '/owa/'  # a string is not a name", []),
])
def test_profile_names_are_seen(source: str, named: list[str]) -> None:
    assert profile_names_in(source) == named
