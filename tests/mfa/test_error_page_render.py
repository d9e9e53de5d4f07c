"""The gateway's error answers from the one renderer: per-status words in every language, HTML or plain
text, the same security headers, and the edge's reason only when it is one of the fixed strings."""

from __future__ import annotations

import pytest

from gateway.pages.brand import Brand
from gateway.pages.i18n import SUPPORTED_LANGUAGES, load_translations
from gateway.pages.renderer import (
    CONTENT_SECURITY_POLICY,
    ERROR_KINDS,
    ERROR_STATUSES,
    SECURITY_HEADERS,
    SHOWN_REASONS,
    PageRenderer,
)
from gateway.policy.edge import EdgeRejection
from tests.mfa.test_pages import parse
from tests.policy.test_paths import HOSTILE

REQUEST_ID = "0123456789abcdef0123456789abcdef"
TRANSLATIONS = load_translations()


@pytest.fixture(scope="module")
def renderer() -> PageRenderer:
    return PageRenderer(Brand())


def test_the_statuses_the_gateway_answers_have_their_own_words() -> None:
    assert {400, 403, 404, 405, 408, 413, 417, 440, 502, 504} <= ERROR_STATUSES
    for lang in SUPPORTED_LANGUAGES:
        texts = TRANSLATIONS[lang]
        for topic in [*map(str, ERROR_STATUSES), *ERROR_KINDS]:
            assert texts[f"error.{topic}.title"], (lang, topic)
            assert texts[f"error.{topic}.body"], (lang, topic)


@pytest.mark.parametrize("lang", SUPPORTED_LANGUAGES)
@pytest.mark.parametrize("status", sorted(ERROR_STATUSES))
def test_each_status_as_a_page_and_as_text(renderer: PageRenderer, status: int, lang: str) -> None:
    texts = TRANSLATIONS[lang]
    title, body = texts[f"error.{status}.title"], texts[f"error.{status}.body"]

    page = renderer.render_error(status, lang=lang, request_id=REQUEST_ID)
    assert page.status == status
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert page.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    for name, value in SECURITY_HEADERS.items():
        assert page.headers[name] == value
    assert page.headers["Content-Language"] == lang
    html = parse(page.body)
    assert html.all("html")[0]["lang"] == lang
    assert title in html.text
    assert body in html.text
    assert REQUEST_ID in html.text
    assert html.all("style") == []  # the CSP allows no inline style: the stylesheet is a static file
    assert any(link["href"].startswith("/_gateway/static/mfa.css") for link in html.all("link"))  # type: ignore[union-attr]

    text = renderer.render_error(status, lang=lang, request_id=REQUEST_ID, html=False)
    assert text.status == status
    assert text.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert text.headers["Content-Language"] == lang
    assert text.headers["X-Content-Type-Options"] == "nosniff"
    assert text.headers["Cache-Control"] == "no-store"
    assert text.body.decode().splitlines() == [f"{status} {title}", body,
                                               f"{texts['common.reference']} {REQUEST_ID}"]


@pytest.mark.parametrize("status", [500, 429, 431])
def test_other_statuses_get_the_generic_words(renderer: PageRenderer, status: int) -> None:
    assert status not in ERROR_STATUSES
    text = renderer.render_error(status, lang="en", request_id=REQUEST_ID, html=False).body.decode()
    assert text.splitlines()[:2] == [f"{status} {TRANSLATIONS['en']['error.title']}", TRANSLATIONS["en"]["error.body"]]


@pytest.mark.parametrize("kind", sorted(ERROR_KINDS))
def test_a_kind_replaces_the_status_words(renderer: PageRenderer, kind: str) -> None:
    for lang in SUPPORTED_LANGUAGES:
        html = parse(renderer.render_error(403, lang=lang, request_id=REQUEST_ID, kind=kind).body)
        assert TRANSLATIONS[lang][f"error.{kind}.title"] in html.text
        assert TRANSLATIONS[lang][f"error.{kind}.body"] in html.text
        assert TRANSLATIONS[lang]["error.403.title"] not in html.text


def test_an_unknown_kind_fails_loudly(renderer: PageRenderer) -> None:
    with pytest.raises(ValueError, match="kind"):
        renderer.render_error(403, lang="en", request_id=REQUEST_ID, kind="made-up")
    with pytest.raises(ValueError, match="kind"):
        renderer.render_error(403, lang="en", request_id=REQUEST_ID, kind="made-up", html=False)


@pytest.mark.parametrize("html", [True, False])
def test_the_edges_fixed_reason_is_shown(renderer: PageRenderer, html: bool) -> None:
    for lang in SUPPORTED_LANGUAGES:
        body = renderer.render_error(400, lang=lang, request_id=REQUEST_ID, html=html, reason="dot segment").body
        assert TRANSLATIONS[lang]["error.reason"].format(reason="dot segment").encode() in body


@pytest.mark.parametrize("reason", ["/owa/auth/../../etc/passwd", "<script>alert(1)</script>", "upstream 10.0.0.5:443",
                                    "Traceback (most recent call last)", ""])
@pytest.mark.parametrize("html", [True, False])
def test_any_other_reason_is_left_off(renderer: PageRenderer, reason: str, html: bool) -> None:
    page = renderer.render_error(400, lang="en", request_id=REQUEST_ID, html=html, reason=reason)
    body = page.body.decode()
    assert "Reason:" not in body
    for fragment in ("passwd", "script", "10.0.0.5", "Traceback"):
        assert fragment not in body


def test_every_reason_the_edge_gives_may_be_shown() -> None:
    """The shown reasons are the edge's own fixed strings: a new one is simply not shown until listed."""
    edge_reasons = {rejection.value for rejection in EdgeRejection}
    path_reasons = {reason for _, reason in HOSTILE}
    assert edge_reasons | path_reasons | {"unsupported expectation"} <= SHOWN_REASONS
    for reason in SHOWN_REASONS:  # short words, nothing that could carry a piece of a request
        assert len(reason) <= 40, reason
        assert all(c.isalnum() or c in " -%/." for c in reason), reason


def test_the_text_answer_follows_the_language(renderer: PageRenderer) -> None:
    turkish = renderer.render_error(502, lang="tr", request_id=REQUEST_ID, html=False).body.decode()
    assert turkish.startswith("502 Posta sunucusuna ulaşılamıyor\n")
    assert f"Referans: {REQUEST_ID}" in turkish
    with pytest.raises(ValueError, match="language"):
        renderer.render_error(502, lang="de", request_id=REQUEST_ID, html=False)
