"""The brand: colour validation, the contrast fallback, and the settings that carry it."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.pages.brand import WHITE, Brand, Logo, contrast_ratio, darken, readable_with_white, relative_luminance
from gateway.settings import SettingsError, load_settings
from tests.settings_env import with_required_settings


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    return with_required_settings(monkeypatch)


@pytest.mark.parametrize(
    ("first", "second", "ratio"),
    [("#000000", "#ffffff", 21.0), ("#ffffff", "#ffffff", 1.0), ("#767676", "#ffffff", 4.54), ("#0f6cbd", WHITE, 5.38)],
)
def test_contrast_ratio_matches_wcag(first: str, second: str, ratio: float) -> None:
    assert contrast_ratio(first, second) == pytest.approx(ratio, abs=0.01)
    assert contrast_ratio(second, first) == pytest.approx(ratio, abs=0.01)


def test_relative_luminance_extremes() -> None:
    assert relative_luminance("#000000") == 0
    assert relative_luminance("#FFFFFF") == pytest.approx(1)


@pytest.mark.parametrize(
    ("color", "expected"),
    [
        ("#0f6cbd", "#0f6cbd"),  # already readable: kept as it is
        ("#B42318", "#b42318"),
        ("#000000", "#000000"),
        ("#ffcc00", None),  # yellow: darkened
        ("#ffffff", None),  # white: becomes a grey
        ("#00a4ef", None),  # a light blue
        ("#e81123", "#e81123"),  # just above 4.5
    ],
)
def test_readable_with_white(color: str, expected: str | None) -> None:
    result = readable_with_white(color)
    assert contrast_ratio(result, WHITE) >= 4.5
    if expected is not None:
        assert result == expected
    else:
        assert result != color.lower()
        # The lightest darker shade that passes: one step (1 %) lighter fails.
        steps = [step for step in range(101) if darken(color, step / 100) == result]
        assert steps
        assert contrast_ratio(darken(color, (steps[0] - 1) / 100), WHITE) < 4.5


def test_darkened_shade_keeps_the_hue() -> None:
    result = readable_with_white("#00a4ef")
    red, green, blue = (int(result[i:i + 2], 16) for i in (1, 3, 5))
    assert red == 0
    assert green / blue == pytest.approx(0xA4 / 0xEF, abs=0.02)


@pytest.mark.parametrize("color", ["blue", "#fff", "#12345g", "0f6cbd", "#0f6cbd ", "#0f6cbd00"])
def test_brand_refuses_a_colour_that_is_not_rrggbb(color: str) -> None:
    with pytest.raises(ValueError, match="#rrggbb"):
        Brand(color=color)


def test_brand_stylesheet_uses_the_readable_colour() -> None:
    css = Brand(color="#ffcc00").stylesheet()
    accent = readable_with_white("#ffcc00")
    assert f"--brand:{accent};" in css
    assert "#ffcc00" not in css


def test_default_brand_settings(env: pytest.MonkeyPatch) -> None:
    settings = load_settings(env_file=None)
    brand = Brand.from_settings(settings)
    assert brand == Brand()
    assert settings.gateway_language == "auto"
    assert settings.gateway_templates_dir is None


def test_brand_settings_are_read(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    logo = tmp_path / "logo.svg"
    logo.write_bytes(b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>')
    env.setenv("GATEWAY_BRAND_NAME", "  Contoso Mail  ")
    env.setenv("GATEWAY_BRAND_COLOR", "#C50F1F")
    env.setenv("GATEWAY_BRAND_LOGO_FILE", str(logo))
    env.setenv("GATEWAY_BRAND_SUPPORT_TEXT", "Help desk: +90 212 555 0000")
    env.setenv("GATEWAY_TEMPLATES_DIR", str(tmp_path))
    env.setenv("GATEWAY_LANGUAGE", "tr")
    settings = load_settings(env_file=None)
    brand = Brand.from_settings(settings)
    assert brand.name == "Contoso Mail"
    assert brand.color == "#c50f1f"
    assert brand.logo == Logo(logo.read_bytes(), "image/svg+xml")
    assert brand.support_text == "Help desk: +90 212 555 0000"
    assert settings.gateway_templates_dir == tmp_path


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("GATEWAY_BRAND_COLOR", "red", "GATEWAY_BRAND_COLOR: expected a colour as #rrggbb"),
        ("GATEWAY_BRAND_COLOR", "#f00", "GATEWAY_BRAND_COLOR: expected a colour as #rrggbb"),
        ("GATEWAY_LANGUAGE", "de", "GATEWAY_LANGUAGE: 'de' is not one of: auto, en, tr"),
        ("GATEWAY_BRAND_NAME", "Mail\u202eliam", "GATEWAY_BRAND_NAME: expected one line of printable text"),
        ("GATEWAY_BRAND_NAME", "x" * 201, "GATEWAY_BRAND_NAME: String should have at most 200 characters"),
        ("GATEWAY_BRAND_SUPPORT_TEXT", "a\u200bb", "GATEWAY_BRAND_SUPPORT_TEXT: expected one line"),
        ("GATEWAY_TEMPLATES_DIR", "/nonexistent-templates", "GATEWAY_TEMPLATES_DIR: no directory there"),
        ("GATEWAY_BRAND_LOGO_FILE", "/nonexistent.png", "GATEWAY_BRAND_LOGO_FILE: no readable file there"),
        ("GATEWAY_BRAND_LOGO_FILE", "/nonexistent.html", "GATEWAY_BRAND_LOGO_FILE: expected one of"),
    ],
)
def test_bad_brand_setting_names_itself(env: pytest.MonkeyPatch, name: str, value: str, expected: str) -> None:
    env.setenv(name, value)
    with pytest.raises(SettingsError) as info:
        load_settings(env_file=None)
    assert any(line.startswith(expected) for line in info.value.problems), info.value.problems


def test_logo_file_too_large(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    logo = tmp_path / "logo.png"
    logo.write_bytes(b"\x89PNG" + b"\0" * 300_000)
    env.setenv("GATEWAY_BRAND_LOGO_FILE", str(logo))
    with pytest.raises(SettingsError) as info:
        load_settings(env_file=None)
    assert len(info.value.problems) == 1
    assert info.value.problems[0].startswith("GATEWAY_BRAND_LOGO_FILE: larger than 256 KiB")
