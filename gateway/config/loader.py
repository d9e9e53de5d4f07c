"""Load `GATEWAY_CONFIG_FILE`: YAML (safe loading only) to a validated :class:`GatewayConfig`.

Every problem is reported at once, each as ``FILE:LINE: KEY PATH: message``, e.g.
``gateway.yaml:14: sites[1].rules[3].networks[0]: not a CIDR``. The line comes from the YAML node
the key path leads to (PyYAML's marks); a key that is missing points at the mapping that lacks it.
A mapping that repeats a key is refused: YAML would silently keep the last one.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from gateway.config.model import GatewayConfig, LocatedProblems, Location

__all__ = ["MAX_CONFIG_BYTES", "ConfigError", "ConfigProblem", "load_config", "parse_config"]

MAX_CONFIG_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    source: str
    line: int | None
    location: Location
    message: str

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line is not None else self.source
        key = format_location(self.location)
        return f"{where}: {key}: {self.message}" if key else f"{where}: {self.message}"


class ConfigError(Exception):
    """The configuration cannot be used; `problems` holds every problem, one line each, in file order."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = sorted(problems, key=lambda problem: (problem.line or 0, format_location(problem.location)))
        super().__init__("\n".join(str(problem) for problem in self.problems))


def format_location(location: Location) -> str:
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def load_config(path: str | Path) -> GatewayConfig:
    """Read, parse and validate the file, or raise :class:`ConfigError` listing every problem."""
    source = str(path)
    try:
        with open(path, "rb") as file:
            raw = file.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError([ConfigProblem(source, None, (), f"cannot read the file ({exc.strerror or exc})")]) from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError([ConfigProblem(source, None, (), f"larger than {MAX_CONFIG_BYTES // 1024} KiB")])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError([ConfigProblem(source, None, (), "not UTF-8 text")]) from None
    return parse_config(text, source=source, base_dir=Path(path).parent)


def parse_config(text: str, *, source: str = "<config>", base_dir: Path | None = None) -> GatewayConfig:
    """Validate YAML text; relative file paths in it are taken from `base_dir`."""
    node, data = _compose(text, source)
    if not isinstance(data, dict):
        raise ConfigError([ConfigProblem(source, _line(node), (),
                                         "expected a mapping with `sites:` (see docs/sites.md)")])
    try:
        return GatewayConfig.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as exc:
        raise ConfigError([problem for error in exc.errors() for problem in _problems(error, node, source)]) from None


def _compose(text: str, source: str) -> tuple[yaml.Node | None, Any]:
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        duplicates = _duplicate_keys(node) if node is not None else []
        if duplicates:
            raise ConfigError([ConfigProblem(source, line, location, "this key is written twice in the same mapping")
                               for line, location in duplicates])
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise ConfigError([ConfigProblem(source, line, (), f"not valid YAML: {exc.problem or exc}")]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([ConfigProblem(source, None, (), f"not valid YAML: {exc}")]) from None
    finally:
        loader.dispose()
    return node, data


def _duplicate_keys(root: yaml.Node) -> list[tuple[int, Location]]:
    found: list[tuple[int, Location]] = []
    seen_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, Location]] = [(root, ())]
    while stack:
        node, location = stack.pop()
        if id(node) in seen_nodes:  # an alias: walked once
            continue
        seen_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            keys: set[str] = set()
            for key, value in node.value:
                name = str(key.value)
                if name in keys:
                    found.append((key.start_mark.line + 1, (*location, name)))
                keys.add(name)
                stack.append((value, (*location, name)))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((item, (*location, index)) for index, item in enumerate(node.value))
    return found


def _line(node: yaml.Node | None) -> int | None:
    return node.start_mark.line + 1 if node is not None else None


def _line_of(root: yaml.Node | None, location: Location) -> int | None:
    """The line of the deepest node the location reaches (a mapping key's own line for its last part)."""
    node = root
    line = _line(root)
    for part in location:
        if isinstance(node, yaml.MappingNode):
            pair = next(((key, value) for key, value in node.value if str(key.value) == str(part)), None)
            if pair is None:
                break
            line, node = _line(pair[0]), pair[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            node = node.value[part]
            line = _line(node)
        else:
            break
    return line


def _problems(error: ErrorDetails, root: yaml.Node | None, source: str) -> list[ConfigProblem]:
    location: Location = tuple(error["loc"])
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, LocatedProblems):
        return [ConfigProblem(source, _line_of(root, (*location, *relative)), (*location, *relative), message)
                for relative, message in cause.problems]
    return [ConfigProblem(source, _line_of(root, location), location, _message(error, location))]


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
