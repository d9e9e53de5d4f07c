"""Load `GATEWAY_CONFIG_FILE`: YAML (safe loading only) to a validated :class:`GatewayConfig`.

Every problem is reported at once, each as ``FILE:LINE: KEY PATH: message``, e.g.
``gateway.yaml:14: sites[1].rules[3].networks[0]: not a CIDR``. The line comes from the YAML node
the key path leads to (PyYAML's marks); a key that is missing points at the mapping that lacks it.
A mapping that repeats a key is refused: YAML would silently keep the last one (gateway.located, shared
with the settings the file holds).
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from gateway.config.model import GatewayConfig, LocatedProblems, Location
from gateway.located import MAX_CONFIG_BYTES, ConfigError, ConfigProblem, compose, line_of, node_line, read_text

__all__ = ["MAX_CONFIG_BYTES", "ConfigError", "ConfigProblem", "load_config", "parse_config"]


def load_config(path: str | Path) -> GatewayConfig:
    """Read, parse and validate the file, or raise :class:`ConfigError` listing every problem."""
    return parse_config(read_text(path), source=str(path), base_dir=Path(path).parent)


def parse_config(text: str, *, source: str = "<config>", base_dir: Path | None = None) -> GatewayConfig:
    """Validate YAML text; relative file paths in it are taken from `base_dir`."""
    node, data = compose(text, source)
    if not isinstance(data, dict):
        raise ConfigError([ConfigProblem(source, node_line(node), (),
                                         "expected a mapping with `sites:` (see docs/sites.md)")])
    try:
        return GatewayConfig.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as exc:
        raise ConfigError([problem for error in exc.errors() for problem in _problems(error, node, source)]) from None


def _problems(error: ErrorDetails, root: yaml.Node | None, source: str) -> list[ConfigProblem]:
    location: Location = tuple(error["loc"])
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, LocatedProblems):
        return [ConfigProblem(source, line_of(root, (*location, *relative)), (*location, *relative), message)
                for relative, message in cause.problems]
    return [ConfigProblem(source, line_of(root, location), location, _message(error, location))]


def _message(error: ErrorDetails, location: Location) -> str:
    kind = error["type"]
    value = error.get("input")
    if kind == "extra_forbidden":
        allowed = _allowed_keys(location[:-1])
        close = difflib.get_close_matches(str(location[-1]), allowed, n=1)
        if close:
            return f"unknown key; did you mean {close[0]!r}?"
        return f"unknown key; expected one of: {', '.join(allowed)}" if allowed else "unknown key"
    if kind == "missing" and location[-1] == "rules":
        return "required for this profile (with no rules every request would be denied)"
    if kind == "missing":
        return "required"
    if kind == "string_type" and isinstance(value, bool):
        return "expected text, got a boolean (YAML reads yes/no/on/off/true/false unquoted as booleans: quote it)"
    if kind == "string_type":
        return "expected text"
    if kind == "too_short" and isinstance(value, list) and not value:
        return "an empty list matches nothing: leave the key out to match any value, or list values"
    message = str(error["msg"]).removeprefix("Value error, ")
    return message[:1].lower() + message[1:]


def _allowed_keys(location: Location) -> list[str]:
    """The keys the model at `location` accepts (for "did you mean")."""
    model: type[BaseModel] = GatewayConfig
    for part in location:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(str(part))
        inner = _model_in(field.annotation) if field is not None else None
        if inner is None:
            return []
        model = inner
    return sorted(model.model_fields)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in getattr(annotation, "__args__", ()):
        found = _model_in(argument)
        if found is not None:
            return found
    return None
