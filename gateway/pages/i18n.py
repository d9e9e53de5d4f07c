"""The pages' languages: the translation files and the choice of language for a request.

Every user-facing string lives in `translations/<lang>.json` (flat keys, `{name}` placeholders); the
files for all languages have exactly the same keys and placeholders (a test checks it). Values are
plain text: the templates escape them, so a translation can never inject markup.
"""

from __future__ import annotations

import json
import string
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TRANSLATIONS_DIR = Path(__file__).parent / "translations"
SUPPORTED_LANGUAGES = ("en", "tr")
DEFAULT_LANGUAGE = "en"
# An Accept-Language header longer than this is read only this far (no browser sends more).
_MAX_ACCEPT_LANGUAGE = 1024


def load_translations(directory: Path = TRANSLATIONS_DIR) -> dict[str, dict[str, str]]:
    """Language → key → text for every supported language; a missing or malformed file is an error."""
    loaded: dict[str, dict[str, str]] = {}
    for language in SUPPORTED_LANGUAGES:
        data = json.loads((directory / f"{language}.json").read_text(encoding="utf-8"))
        if not isinstance(data, dict) or not all(
            isinstance(key, str) and isinstance(value, str) for key, value in data.items()
        ):
            raise ValueError(f"{language}.json: expected an object of strings")
        loaded[language] = data
    return loaded


def placeholders(text: str) -> frozenset[str]:
    """The `{name}` fields of a translated text."""
    return frozenset(field for _, field, _, _ in string.Formatter().parse(text) if field)


@dataclass(frozen=True, slots=True)
class Translator:
    """`t(key, **values)` for one language, as the templates call it."""

    language: str
    texts: Mapping[str, str]

    def __call__(self, key: str, **values: Any) -> str:
        try:
            text = self.texts[key]
        except KeyError:
            # A template asking for a key nobody translated is a bug: fail loudly in tests, not silently.
            raise KeyError(f"no translation for {key!r} in {self.language}") from None
        return text.format_map(values) if values else text


def negotiate_language(
    accept_language: str | None,
    supported: tuple[str, ...] = SUPPORTED_LANGUAGES,
    default: str = DEFAULT_LANGUAGE,
) -> str:
    """The supported language the browser prefers most (RFC 9110 §12.5.4 q-values), else `default`.

    Matching is on the primary subtag (`tr-TR` → `tr`); `*` stands for `default`; `q=0` means
    "not this one"; among equal q-values the first listed wins; malformed entries are ignored.
    """
    if not accept_language:
        return default
    best: tuple[float, str] | None = None
    for entry in accept_language[:_MAX_ACCEPT_LANGUAGE].split(","):
        tag, _, parameters = entry.partition(";")
        primary = tag.strip().lower().split("-")[0]
        language = default if primary == "*" else primary
        if language not in supported:
            continue
        quality = _quality(parameters)
        if quality is None or quality <= 0:
            continue
        if best is None or quality > best[0]:  # ties: the earlier entry stays
            best = (quality, language)
    return best[1] if best is not None else default


def _quality(parameters: str) -> float | None:
    """The q-value of one Accept-Language entry: 1 when absent, None when malformed."""
    parameters = parameters.strip()
    if not parameters:
        return 1.0
    name, sep, value = parameters.partition("=")
    if name.strip().lower() != "q" or not sep:
        return None
    try:
        quality = float(value.strip())
    except ValueError:
        return None
    return quality if 0 <= quality <= 1 else None
