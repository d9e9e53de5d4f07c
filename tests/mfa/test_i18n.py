"""Translations (same keys and placeholders in every language) and the choice of language."""

from __future__ import annotations

import json

import pytest

from gateway.pages.i18n import (
    SUPPORTED_LANGUAGES,
    TRANSLATIONS_DIR,
    Translator,
    load_translations,
    negotiate_language,
    placeholders,
)


def test_every_language_has_exactly_the_same_keys() -> None:
    translations = load_translations()
    english = translations["en"]
    for language in SUPPORTED_LANGUAGES:
        assert translations[language].keys() == english.keys(), language


def test_every_text_has_the_same_placeholders_in_every_language() -> None:
    translations = load_translations()
    for key, text in translations["en"].items():
        for language in SUPPORTED_LANGUAGES:
            assert placeholders(translations[language][key]) == placeholders(text), (language, key)


def test_no_text_is_empty_or_left_in_english() -> None:
    translations = load_translations()
    same = {key for key, text in translations["en"].items() if translations["tr"][key] == text}
    # Only texts without words of their own (a title template) may be the same.
    assert same == {"common.page_title"}
    assert all(text.strip() for texts in translations.values() for text in texts.values())


def test_translation_files_have_no_duplicate_keys() -> None:
    for language in SUPPORTED_LANGUAGES:
        pairs = json.loads(
            (TRANSLATIONS_DIR / f"{language}.json").read_text(encoding="utf-8"), object_pairs_hook=lambda p: p
        )
        keys = [key for key, _ in pairs]
        assert len(keys) == len(set(keys)), language


def test_translator_formats_and_refuses_unknown_keys() -> None:
    t = Translator("en", {"greeting": "Hello {name}", "plain": "{not a field"})
    assert t("greeting", name="Ali") == "Hello Ali"
    assert t("plain") == "{not a field"  # no values: the text as it is
    with pytest.raises(KeyError, match="nope"):
        t("nope")


@pytest.mark.parametrize(
    ("header", "language"),
    [
        (None, "en"),
        ("", "en"),
        ("tr", "tr"),
        ("tr-TR", "tr"),
        ("TR-tr", "tr"),
        ("en-US,en;q=0.9", "en"),
        ("tr-TR,tr;q=0.9,en-US;q=0.8,en;q=0.7", "tr"),
        ("en-GB,en;q=0.9,tr;q=0.8", "en"),
        ("de-DE,de;q=0.9,tr;q=0.5", "tr"),  # the first language we have
        ("de-DE,de;q=0.9", "en"),  # none we have: English
        ("en;q=0.5, tr;q=0.8", "tr"),  # q-values, not order
        ("tr;q=0.8, en;q=0.8", "tr"),  # equal q: the first listed
        ("tr;q=0, en;q=0.1", "en"),
        ("en;q=0, tr", "tr"),  # q=0: not acceptable
        ("tr;q=0", "en"),
        ("*", "en"),
        ("de, *;q=0.5, tr;q=0.4", "en"),
        ("tr;q=abc, en;q=0.1", "en"),  # a malformed q ignores the entry
        ("tr;q=1.5, en;q=0.1", "en"),
        ("tr;level=1", "en"),
        ("fr-CH, fr;q=0.9, en;q=0.8, de;q=0.7, *;q=0.5", "en"),
        (" tr ; q=0.9 ", "tr"),
        ("x" * 5000 + ",tr", "en"),  # read only so far
    ],
)
def test_negotiate_language(header: str | None, language: str) -> None:
    assert negotiate_language(header) == language
