"""Read the parts of an IIS `web.config` that Monosign's module used: appSettings and the module lists.

Pure: bytes in, a `WebConfig` out. The XML is parsed without DTDs, entities or external references
(a web.config never needs them), in whatever encoding it declares (UTF-8 with or without BOM,
UTF-16). appSettings and module lists are evaluated the way ASP.NET does: `<add>`, `<remove>` and
`<clear/>` in document order, keys compared case-insensitively, the application's own level
(top level, or `<location path=".">`) only. Anything scoped to another path is reported, not applied:
the gateway has one configuration for the whole host.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

# OWA's own web.config is about 50 KB; anything this large is not a web.config.
MAX_WEBCONFIG_BYTES = 4 * 1024 * 1024

INTEGRATED_MODULES = "system.webServer/modules"
CLASSIC_MODULES = "system.web/httpModules"


class WebConfigError(Exception):
    """The file cannot be read as a web.config; the message is one operator-facing line."""


@dataclass(frozen=True, slots=True)
class ModuleEntry:
    name: str
    type: str
    section: str  # INTEGRATED_MODULES or CLASSIC_MODULES


@dataclass(frozen=True, slots=True)
class WebConfig:
    # Effective appSettings, keys upper-cased (ASP.NET compares them case-insensitively).
    app_settings: dict[str, str] = field(default_factory=dict)
    # Effective module registrations, in order.
    modules: tuple[ModuleEntry, ...] = ()
    # Text of XML comments that hold an `<add name=... type=... />` line: modules someone switched off.
    commented_out: tuple[str, ...] = ()
    # Things present but not applied (other <location> paths, external appSettings files).
    notes: tuple[str, ...] = ()


def _local(tag: object) -> str:
    """The element name without an XML namespace (old Visual Studio templates add one)."""
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _children(element: ET.Element) -> list[ET.Element]:
    return [child for child in element if isinstance(child.tag, str)]


def _parse_xml(data: bytes) -> ET.Element:
    if not data.strip():
        raise WebConfigError("the file is empty")
    if len(data) > MAX_WEBCONFIG_BYTES:
        raise WebConfigError(f"the file is larger than {MAX_WEBCONFIG_BYTES // (1024 * 1024)} MiB; not a web.config")
    parser = DefusedXMLParser(
        target=ET.TreeBuilder(insert_comments=True),
        forbid_dtd=True,
        forbid_entities=True,
        forbid_external=True,
    )
    try:
        parser.feed(data)
        root: ET.Element = parser.close()
    except DefusedXmlException:
        raise WebConfigError(
            "the file declares a DTD or entities, which a web.config never needs; refusing to read it"
        ) from None
    except ET.ParseError as exc:
        line, column = exc.position
        raise WebConfigError(f"not well-formed XML (line {line}, column {column})") from None
    if _local(root.tag) != "configuration":
        raise WebConfigError(f"the root element is <{_local(root.tag)}>, not <configuration>: not a web.config")
    return root


class _Evaluator:
    """Applies appSettings and module sections in document order."""

    def __init__(self) -> None:
        self.settings: dict[str, str] = {}
        self.modules: dict[tuple[str, str], ModuleEntry] = {}
        self.notes: list[str] = []

    def configuration(self, element: ET.Element) -> None:
        for child in _children(element):
            name = _local(child.tag)
            if name == "appSettings":
                self.app_settings(child)
            elif name == "system.webServer":
                for section in _children(child):
                    if _local(section.tag) == "modules":
                        self.module_list(section, INTEGRATED_MODULES)
            elif name == "system.web":
                for section in _children(child):
                    if _local(section.tag) == "httpModules":
                        self.module_list(section, CLASSIC_MODULES)
            elif name == "location":
                self.location(child)

    def location(self, element: ET.Element) -> None:
        path = (element.get("path") or "").strip()
        if path in ("", "."):
            self.configuration(element)
            return
        scoped = _Evaluator()
        scoped.configuration(element)
        keys = sorted(key for key in scoped.settings if key.startswith("MONOSIGN_"))
        if keys:
            self.notes.append(f"<location path={path!r}> sets {', '.join(keys)} for that path only; not imported")
        for entry in scoped.modules.values():
            self.notes.append(
                f"<location path={path!r}> registers module {entry.name!r} ({entry.type}) for that path only"
            )
        self.notes.extend(scoped.notes)

    def app_settings(self, element: ET.Element) -> None:
        for attribute in ("file", "configSource"):
            if element.get(attribute):
                self.notes.append(
                    f"appSettings {attribute}={element.get(attribute)!r}: settings in that file are not read; "
                    "run import-webconfig on it too or copy its MONOSIGN_* keys by hand"
                )
        for child in _children(element):
            operation = _local(child.tag)
            key = (child.get("key") or "").strip().upper()
            if operation == "clear":
                self.settings.clear()
            elif operation == "remove" and key:
                self.settings.pop(key, None)
            elif operation == "add" and key:
                self.settings[key] = child.get("value") or ""

    def module_list(self, element: ET.Element, section: str) -> None:
        for child in _children(element):
            operation = _local(child.tag)
            name = (child.get("name") or "").strip()
            if operation == "clear":
                for registered in [k for k in self.modules if k[0] == section]:
                    del self.modules[registered]
            elif operation == "remove" and name:
                self.modules.pop((section, name.lower()), None)
            elif operation == "add" and name:
                self.modules[(section, name.lower())] = ModuleEntry(name, (child.get("type") or "").strip(), section)


def _is_comment(element: ET.Element) -> bool:
    # TreeBuilder(insert_comments=True) gives comments the Comment factory as their tag.
    tag: object = element.tag
    return tag is ET.Comment


def _looks_like_module_line(text: str) -> bool:
    lowered = text.lower()
    return "<add" in lowered and "type=" in lowered


def parse_webconfig(data: bytes) -> WebConfig:
    """Parse a web.config's bytes; raise WebConfigError when it is not one."""
    root = _parse_xml(data)
    evaluator = _Evaluator()
    evaluator.configuration(root)
    commented = tuple(
        " ".join((element.text or "").split())
        for element in root.iter()
        if _is_comment(element) and _looks_like_module_line(element.text or "")
    )
    return WebConfig(
        app_settings=dict(evaluator.settings),
        modules=tuple(evaluator.modules.values()),
        commented_out=commented,
        notes=tuple(evaluator.notes),
    )
