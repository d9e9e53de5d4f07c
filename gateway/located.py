"""YAML read with the line of every key: the configuration file's problems as `FILE:LINE: KEY PATH: message`.

Safe loading only. A mapping that repeats a key is refused (YAML would silently keep the last one).
The line of a problem comes from the YAML node its key path leads to (PyYAML's marks); a key that is
missing points at the mapping that lacks it. Used by the configuration file's loader
(`gateway.config.loader`) and by the settings read from the same file (`gateway.settings`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = ["MAX_CONFIG_BYTES", "ConfigError", "ConfigProblem", "Location", "compose", "format_location", "line_of",
           "node_line", "read_text"]

MAX_CONFIG_BYTES = 1024 * 1024

Location = tuple[str | int, ...]


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


def read_text(path: str | Path) -> str:
    """The file's text (UTF-8, at most MAX_CONFIG_BYTES), or ConfigError."""
    source = str(path)
    try:
        with open(path, "rb") as file:
            raw = file.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError([ConfigProblem(source, None, (), f"cannot read the file ({exc.strerror or exc})")]) from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError([ConfigProblem(source, None, (), f"larger than {MAX_CONFIG_BYTES // 1024} KiB")])
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError([ConfigProblem(source, None, (), "not UTF-8 text")]) from None


def compose(text: str, source: str) -> tuple[yaml.Node | None, Any]:
    """The document's node tree (for lines) and its data, or ConfigError (bad YAML, a key written twice)."""
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


def node_line(node: yaml.Node | None) -> int | None:
    return node.start_mark.line + 1 if node is not None else None


def line_of(root: yaml.Node | None, location: Location) -> int | None:
    """The line of the deepest node the location reaches (a mapping key's own line for its last part)."""
    node = root
    line = node_line(root)
    for part in location:
        if isinstance(node, yaml.MappingNode):
            pair = next(((key, value) for key, value in node.value if str(key.value) == str(part)), None)
            if pair is None:
                break
            line, node = node_line(pair[0]), pair[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            node = node.value[part]
            line = node_line(node)
        else:
            break
    return line
