"""The look the operator chose (name, colour, logo, help-desk line), made safe to show.

The brand colour is used for buttons (white text on it) and links (it on white), so it must reach
WCAG AA's 4.5:1 against white. A colour that does not is darkened step by step, keeping its hue,
until it does: the operator's choice is kept as closely as accessibility allows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.settings import BRAND_LOGO_TYPES, MAX_BRAND_LOGO_BYTES

if TYPE_CHECKING:
    from gateway.settings import Settings

DEFAULT_NAME = "Outlook on the web"
DEFAULT_COLOR = "#0f6cbd"
WHITE = "#ffffff"
# WCAG 2.x AA for normal text.
MIN_CONTRAST = 4.5

_HEX_COLOR = re.compile(r"#[0-9a-fA-F]{6}")


def parse_hex_color(color: str) -> tuple[int, int, int]:
    if not _HEX_COLOR.fullmatch(color):
        raise ValueError(f"expected a colour as #rrggbb, got {color!r}")
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def hex_color(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def relative_luminance(color: str) -> float:
    """WCAG 2.x relative luminance of an sRGB colour."""

    def linear(channel: int) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    red, green, blue = (linear(channel) for channel in parse_hex_color(color))
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def contrast_ratio(first: str, second: str) -> float:
    lighter, darker = sorted((relative_luminance(first), relative_luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def darken(color: str, amount: float) -> str:
    """Mix with black: `amount` 0 keeps the colour, 1 gives black. The hue stays the same."""
    red, green, blue = parse_hex_color(color)
    keep = 1 - amount
    return hex_color((round(red * keep), round(green * keep), round(blue * keep)))


def readable_with_white(color: str, minimum: float = MIN_CONTRAST) -> str:
    """The colour if white text on it (and it as text on white) reaches `minimum`; else the lightest
    darker shade of it that does (black, at worst, reaches 21:1)."""
    color = color.lower()
    for step in range(101):
        candidate = darken(color, step / 100)
        if contrast_ratio(candidate, WHITE) >= minimum:
            return candidate
    return "#000000"


@dataclass(frozen=True, slots=True)
class Logo:
    body: bytes
    content_type: str

    @classmethod
    def read(cls, path: Path) -> Logo:
        suffix = path.suffix.lower()
        if suffix not in BRAND_LOGO_TYPES:
            raise ValueError(f"unsupported logo type {suffix!r}")
        body = path.read_bytes()
        if len(body) > MAX_BRAND_LOGO_BYTES:
            raise ValueError("logo file too large")
        return cls(body=body, content_type=BRAND_LOGO_TYPES[suffix])


@dataclass(frozen=True, slots=True)
class Brand:
    name: str = DEFAULT_NAME
    color: str = DEFAULT_COLOR  # as configured
    logo: Logo | None = None
    support_text: str | None = None

    def __post_init__(self) -> None:
        parse_hex_color(self.color)

    @property
    def accent(self) -> str:
        """The colour actually used: the configured one, darkened if needed for 4.5:1 with white."""
        return readable_with_white(self.color)

    @property
    def accent_strong(self) -> str:
        """Hover and pressed states: a little darker than the accent."""
        return darken(self.accent, 0.18)

    @property
    def has_logo(self) -> bool:
        return self.logo is not None

    @classmethod
    def from_settings(cls, settings: Settings) -> Brand:
        logo_file = settings.gateway_brand_logo_file
        return cls(
            name=settings.gateway_brand_name,
            color=settings.gateway_brand_color,
            logo=Logo.read(logo_file) if logo_file is not None else None,
            support_text=settings.gateway_brand_support_text,
        )

    def stylesheet(self) -> str:
        """`brand.css`: the colours as CSS custom properties (no inline style: CSP `style-src 'self'`)."""
        return (
            ":root{"
            f"--brand:{self.accent};"
            f"--brand-strong:{self.accent_strong};"
            "}\n"
        )
