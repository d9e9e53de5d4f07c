"""Print the gateway's runtime dependencies as exact pins, as installed in the running environment.

Walks the installed `monosign-gateway` distribution's requirements (without extras, so no test
tools) and their requirements in turn. Environment markers are evaluated for this interpreter and
for the oldest Python 3.11 (base images ship 3.11.2: redis, for one, needs async-timeout below
3.11.3), so the lock serves both; a package this environment does not need is printed with its
declared range and pinned by pip-compile. `docker/update-lock` feeds the output to pip-compile to
produce `docker/requirements.lock`.
Run it with the project's virtualenv: `.venv/bin/python docker/runtime_pins.py`.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, distribution

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

PROJECT = "monosign-gateway"


# Marker environments the image may run in, besides this interpreter's own.
OTHER_ENVIRONMENTS: tuple[dict[str, str], ...] = ({"python_full_version": "3.11.0", "python_version": "3.11"},)


def _applies(requirement: Requirement, extras: frozenset[str]) -> bool:
    marker = requirement.marker
    if marker is None:
        return True
    return any(
        marker.evaluate({**environment, "extra": extra})
        for environment in ({}, *OTHER_ENVIRONMENTS)
        for extra in extras or {""}
    )


def runtime_closure(project: str = PROJECT) -> dict[str, str]:
    """Canonical name -> `==version` (installed here) or the declared range, for every runtime package."""
    found: dict[str, str] = {}
    pending: list[tuple[str, frozenset[str]]] = [(project, frozenset())]
    while pending:
        name, extras = pending.pop()
        try:
            requires = distribution(name).requires or []
        except PackageNotFoundError:
            continue  # not installed here: pip-compile resolves its own requirements
        for line in requires:
            requirement = Requirement(line)
            key = canonicalize_name(requirement.name)
            if key in found or not _applies(requirement, extras):
                continue
            try:
                found[key] = f"=={distribution(requirement.name).version}"
            except PackageNotFoundError:
                found[key] = str(requirement.specifier)
            pending.append((requirement.name, frozenset(requirement.extras)))
    return dict(sorted(found.items()))


if __name__ == "__main__":
    for package, pin in runtime_closure().items():
        print(f"{package}{pin}")
