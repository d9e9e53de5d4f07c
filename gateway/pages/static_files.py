"""The pages' static files, served under `/_gateway/static/<name>`.

Only names known at start-up are served: the files shipped in `static/`, the generated `brand.css`
(the brand colours: no inline styles under the pages' CSP) and `brand-logo` (the operator's logo
file, read once). A request for anything else is a 404; there is no path to traverse.

URLs carry a content hash (`?v=`), so the files can be cached for a day and still change on upgrade.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from gateway.pages.brand import Brand

STATIC_DIR = Path(__file__).parent / "static"
STATIC_PREFIX = "/_gateway/static/"
BRAND_CSS = "brand.css"
BRAND_LOGO = "brand-logo"

CONTENT_TYPES: Mapping[str, str] = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}
_SAFE_NAME = re.compile(r"[a-z0-9][a-z0-9-]*\.[a-z0-9]+")

# Every static answer: cacheable (the URL changes with the content), never sniffed, and inert when
# opened on its own (an SVG logo cannot run script in the gateway's origin: `sandbox`).
STATIC_HEADERS: Mapping[str, str] = {
    "Cache-Control": "public, max-age=86400",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; sandbox",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Referrer-Policy": "no-referrer",
}


@dataclass(frozen=True, slots=True)
class StaticAsset:
    body: bytes
    content_type: str
    version: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "version", hashlib.sha256(self.body).hexdigest()[:16])

    @property
    def headers(self) -> dict[str, str]:
        return {**STATIC_HEADERS, "Content-Type": self.content_type, "ETag": f'"{self.version}"'}


class StaticFiles:
    """The static files for one brand, all read into memory at start-up (they are a few KiB)."""

    def __init__(self, brand: Brand, directory: Path = STATIC_DIR) -> None:
        assets: dict[str, StaticAsset] = {}
        for path in sorted(directory.iterdir()):
            content_type = CONTENT_TYPES.get(path.suffix)
            if path.is_file() and not path.is_symlink() and content_type and _SAFE_NAME.fullmatch(path.name):
                assets[path.name] = StaticAsset(path.read_bytes(), content_type)
        assets[BRAND_CSS] = StaticAsset(brand.stylesheet().encode(), CONTENT_TYPES[".css"])
        if brand.logo is not None:
            assets[BRAND_LOGO] = StaticAsset(brand.logo.body, brand.logo.content_type)
        self._assets = assets

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self._assets)

    def get(self, name: str) -> StaticAsset | None:
        """The asset for the last segment of `/_gateway/static/<name>`, or None (answer 404)."""
        return self._assets.get(name)

    def url(self, name: str) -> str:
        """The versioned URL of a known asset (a KeyError for an unknown one is a template bug)."""
        return f"{STATIC_PREFIX}{name}?v={self._assets[name].version}"
