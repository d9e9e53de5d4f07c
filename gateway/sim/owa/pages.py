"""HTML pages (Jinja templates, autoescaped) and the anonymous static resources."""

from __future__ import annotations

import struct
from functools import cache
from importlib import resources
from typing import Any

import jinja2

_STATIC_TYPES = {".css": "text/css", ".ico": "image/x-icon"}


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("gateway.sim.owa", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(template: str, **context: Any) -> str:
    return _environment().get_template(template).render(**context)


def _favicon() -> bytes:
    """A 16x16 Outlook-blue square as a real ICO (32-bit BMP inside)."""
    size = 16
    pixels = bytes([0xC6, 0x72, 0x00, 0xFF]) * (size * size)    # BGRA
    and_mask = bytes(4 * size)                                    # rows padded to 32 bits
    header = struct.pack("<IiiHHIIiiII", 40, size, size * 2, 1, 32, 0, len(pixels) + len(and_mask), 0, 0, 0, 0)
    image = header + pixels + and_mask
    directory = struct.pack("<HHH", 0, 1, 1) + struct.pack("<BBBBHHII", size, size, 0, 0, 1, 32, len(image), 22)
    return directory + image


FAVICON = _favicon()


@cache
def static_resource(name: str) -> tuple[bytes, str] | None:
    """(bytes, content type) of a resource under /owa/auth/<build>/themes/resources/, or None."""
    if name == "favicon.ico":
        return FAVICON, "image/x-icon"
    suffix = name[name.rfind("."):] if "." in name else ""
    content_type = _STATIC_TYPES.get(suffix)
    if content_type is None or "/" in name:
        return None
    resource = resources.files("gateway.sim.owa").joinpath("static", name)
    if not resource.is_file():
        return None
    return resource.read_bytes(), content_type
