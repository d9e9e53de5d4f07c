"""The MFA and outcome pages: status, headers, languages, escaping, no inline code, accessibility basics."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from gateway.pages.brand import Brand, Logo
from gateway.pages.i18n import SUPPORTED_LANGUAGES, load_translations
from gateway.pages.renderer import (
    CONTENT_SECURITY_POLICY,
    PAGES,
    TEMPLATES_DIR,
    PageRenderer,
    offered_methods,
)
from gateway.pages.static_files import BRAND_CSS, BRAND_LOGO, StaticFiles

REQUEST_ID = "7d0f3c1a9b2e4d5f"
# The smallest context each page needs, and the status it answers with by default.
CONTEXTS: dict[str, tuple[int, dict[str, Any]]] = {
    "mfa": (200, {"display_name": "John Smith", "methods": ["Push", "Totp"], "csrf_token": "tok-123"}),
    "not-assigned": (403, {}),
    "not-found": (403, {}),
    "no-methods": (403, {}),
    "locked": (429, {"retry_after_seconds": 600}),
    "unavailable": (503, {}),
    "config-error": (503, {}),
    "store-unavailable": (503, {}),
    "input-refused": (400, {}),
    "error": (500, {}),
    "bad-request": (400, {}),
    "signin": (200, {"csrf_token": "tok-123", "action": "/_gateway/signin?rd=%2F", "password": True}),
    "signout": (200, {"csrf_token": "tok-123"}),
}
TRANSLATIONS = load_translations()


@pytest.fixture(scope="module")
def renderer() -> PageRenderer:
    return PageRenderer(Brand())


@dataclass
class Html(HTMLParser):
    """What the tests look at in a rendered page."""

    tags: list[tuple[str, dict[str, str | None]]] = field(default_factory=list)
    script_text: list[str] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    _in: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(convert_charrefs=True)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag in ("script", "style", "title", "noscript"):
            self._in.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if self._in and self._in[-1] == tag:
            self._in.pop()

    def handle_data(self, data: str) -> None:
        if self._in and self._in[-1] == "script":
            self.script_text.append(data)
        elif data.strip():
            self.text.append(data.strip())

    def all(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.tags if name == tag]

    @property
    def ids(self) -> list[str]:
        return [attrs["id"] for _, attrs in self.tags if attrs.get("id")]  # type: ignore[misc]


def parse(body: bytes) -> Html:
    html = Html()
    html.feed(body.decode("utf-8"))
    html.close()
    return html


def render(renderer: PageRenderer, page: str, lang: str = "en", **overrides: Any) -> tuple[Any, Html]:
    _, context = CONTEXTS[page]
    rendered = renderer.render(page, lang=lang, request_id=REQUEST_ID, **{**context, **overrides})
    return rendered, parse(rendered.body)


def test_every_page_is_covered() -> None:
    assert CONTEXTS.keys() == PAGES.keys()
    assert {path.stem for path in TEMPLATES_DIR.glob("*.html")} == {*PAGES, "base", "outcome"}


@pytest.mark.parametrize("lang", SUPPORTED_LANGUAGES)
@pytest.mark.parametrize("page", sorted(CONTEXTS))
def test_every_page_renders_in_every_language(renderer: PageRenderer, page: str, lang: str) -> None:
    status, _ = CONTEXTS[page]
    rendered, html = render(renderer, page, lang)
    assert rendered.status == status
    headers = rendered.headers
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    for directive in ("default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:",
                      "form-action 'self'", "frame-ancestors 'none'", "base-uri 'none'"):
        assert directive in headers["Content-Security-Policy"]
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "same-origin"  # no-referrer would make form posts Origin: null
    assert headers["Cache-Control"] == "no-store"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Content-Language"] == lang
    # The page is in that language: <html lang>, and the title and heading from its translation file.
    assert html.all("html")[0]["lang"] == lang
    texts = TRANSLATIONS[lang]
    assert texts[f"{page}.title"] in html.text
    assert len(html.all("h1")) == 1
    # The request id, small, for support.
    assert REQUEST_ID in html.text
    assert texts["common.reference"] in html.text
    # Phones: a viewport.
    assert any(meta.get("name") == "viewport" for meta in html.all("meta"))


def test_status_can_be_chosen_by_the_handler(renderer: PageRenderer) -> None:
    assert renderer.render("mfa", lang="en", request_id="r", status=400, **CONTEXTS["mfa"][1]).status == 400
    assert renderer.render("error", lang="en", request_id="r", status=502).status == 502


@pytest.mark.parametrize("lang", SUPPORTED_LANGUAGES)
@pytest.mark.parametrize(
    ("page", "overrides"),
    [(page, {}) for page in CONTEXTS]
    + [
        ("mfa", {"push_state": "waiting"}),
        ("mfa", {"notice": "push-rejected", "code_error": "invalid", "attempts_left": 1}),
        ("mfa", {"methods": ["Totp"], "code_error": "format"}),
        ("mfa", {"methods": ["Push"], "push_state": "waiting"}),
        ("mfa", {"push_state": "waiting", "push_expires_in": 65}),
        ("mfa", {"methods": ["Push"], "push_state": "waiting", "push_expires_in": 0}),
        ("mfa", {"greeting": "site"}),
        ("signin", {"error": "credentials", "username": "alice"}),
        ("signin", {"password": False, "notice": "signed-out"}),
    ],
)
def test_no_inline_code_and_labelled_controls(
    renderer: PageRenderer, page: str, overrides: dict[str, Any], lang: str
) -> None:
    """What the CSP would block must not be there at all; every control has a label."""
    rendered, html = render(renderer, page, lang, **overrides)
    for script in html.all("script"):
        assert script.get("src", "").startswith("/_gateway/static/")  # type: ignore[union-attr]
    assert "".join(html.script_text).strip() == ""
    assert html.all("style") == []
    for tag, attrs in html.tags:
        assert "style" not in attrs, tag
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
        for name in ("href", "src", "action"):
            value = attrs.get(name) or ""
            assert not value.lower().startswith(("javascript:", "data:", "http:", "https:", "//")), (tag, value)
    for link in html.all("link"):
        assert link["href"].startswith("/_gateway/static/")  # type: ignore[union-attr]
    for form in html.all("form"):
        assert form["action"].startswith(("/_gateway/mfa/", "/_gateway/signin?")) \
            or form["action"] == "/_gateway/signout"  # type: ignore[union-attr]
        if form["method"] == "post":
            assert b'name="csrf_token"' in rendered.body
    # Accessibility: ids unique, every visible input labelled, aria references resolve.
    assert len(html.ids) == len(set(html.ids))
    labelled = {attrs["for"] for attrs in html.all("label")}
    for control in html.all("input"):
        if control.get("type") != "hidden":
            assert control["id"] in labelled
    for _, attrs in html.tags:
        for name in ("aria-describedby", "aria-labelledby"):
            for target in (attrs.get(name) or "").split():
                assert target in html.ids, (name, target)


def test_templates_hold_no_untranslated_text() -> None:
    """All words come from the translation files: none are written into a template."""
    for path in TEMPLATES_DIR.glob("*.html"):
        source = path.read_text(encoding="utf-8")
        stripped = re.sub(r"{{.*?}}|{%.*?%}|{#.*?#}", "", source, flags=re.DOTALL)
        stripped = re.sub(r"<[^>]*>", "", stripped, flags=re.DOTALL)
        assert not re.search(r"[^\W\d_]{2,}", stripped), (path.name, stripped.strip()[:80])
        for attribute in ("alt", "title", "placeholder", "aria-label"):
            for match in re.finditer(rf'{attribute}="([^"]*)"', source):
                assert match.group(1).startswith("{{"), (path.name, attribute)


def test_display_name_and_brand_are_escaped() -> None:
    renderer = PageRenderer(Brand(name='<img src=x onerror="alert(1)">', support_text="<b>call</b> & ask"))
    rendered, html = render(renderer, "mfa", display_name="<script>alert('x')</script>", csrf_token='"><x')
    body = rendered.body.decode()
    assert "<script>alert" not in body
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in body
    assert "<img src=x" not in body
    assert "&lt;b&gt;call&lt;/b&gt; &amp; ask" in body
    assert 'value="&#34;&gt;&lt;x"' in body
    assert [attrs.get("src") for attrs in html.all("img")] == []


def test_mfa_page_offers_push_and_code(renderer: PageRenderer) -> None:
    _, html = render(renderer, "mfa")
    forms = {attrs["action"]: attrs for attrs in html.all("form")}
    assert forms["/_gateway/mfa/push"]["method"] == "post"
    assert forms["/_gateway/mfa/verify"]["method"] == "post"
    code = next(attrs for attrs in html.all("input") if attrs.get("name") == "code")
    assert code["inputmode"] == "numeric"
    assert code["autocomplete"] == "one-time-code"
    assert "aria-invalid" not in code
    tokens = [attrs["value"] for attrs in html.all("input") if attrs.get("name") == "csrf_token"]
    assert tokens == ["tok-123", "tok-123"]
    assert "John Smith" in " ".join(html.text)
    assert html.all("script")[0]["defer"] is None  # present, valueless
    assert not any(attrs.get("http-equiv") for attrs in html.all("meta"))  # no refresh before a push


@pytest.mark.parametrize(
    ("methods", "push", "code"),
    [(["Push"], True, False), (["Totp"], False, True), (["totp", "PUSH", "Fido2"], True, True)],
)
def test_mfa_page_shows_only_the_reported_methods(
    renderer: PageRenderer, methods: list[str], push: bool, code: bool
) -> None:
    _, html = render(renderer, "mfa", methods=methods)
    actions = {attrs["action"] for attrs in html.all("form")}
    assert ("/_gateway/mfa/push" in actions) is push
    assert ("/_gateway/mfa/verify" in actions) is code
    assert (TRANSLATIONS["en"]["mfa.or"] in html.text) is (push and code)


def test_waiting_state_polls_and_completes_without_javascript(renderer: PageRenderer) -> None:
    rendered, html = render(renderer, "mfa", push_state="waiting")
    waiting = next(attrs for _, attrs in html.tags if "data-status-url" in attrs)
    assert waiting["data-status-url"] == "/_gateway/mfa/status"
    assert waiting["data-complete-url"] == "/_gateway/mfa/complete"
    assert waiting["data-poll-interval"] == "2000"
    assert waiting["data-lost-message"] == TRANSLATIONS["en"]["mfa.push.connection_lost"]
    # The status line is announced to screen readers as it changes.
    assert any(attrs.get("role") == "status" and attrs.get("aria-live") == "polite" for _, attrs in html.tags)
    # Without JavaScript: a refresh inside <noscript>, and a button that is a plain GET form.
    body = rendered.body.decode()
    assert re.search(r'<noscript><meta http-equiv="refresh" content="\d+;url=/_gateway/mfa/complete"></noscript>', body)
    complete = [attrs for attrs in html.all("form") if attrs["action"] == "/_gateway/mfa/complete"]
    assert complete == [{"method": "get", "action": "/_gateway/mfa/complete"}]
    # No second "Send request" form while one is waiting, only "Send again" (resend=1); the code form stays.
    actions = [attrs["action"] for attrs in html.all("form")]
    assert actions.count("/_gateway/mfa/push") == 1
    assert any(attrs.get("name") == "resend" and attrs.get("value") == "1" for attrs in html.all("input"))
    assert TRANSLATIONS["en"]["mfa.push.button"] not in html.text
    assert "/_gateway/mfa/verify" in actions


@pytest.mark.parametrize(("seconds", "shown"), [
    (0, "0:00"), (1, "0:01"), (9, "0:09"), (59, "0:59"), (60, "1:00"), (61, "1:01"), (65, "1:05"), (119, "1:59"),
    (600, "10:00"), (-3, "0:00"),
])
def test_the_waiting_push_shows_its_time_left(renderer: PageRenderer, seconds: int, shown: str) -> None:
    for lang in SUPPORTED_LANGUAGES:
        _, html = render(renderer, "mfa", lang, push_state="waiting", push_expires_in=seconds)
        texts = TRANSLATIONS[lang]
        countdown = next(attrs for _, attrs in html.tags if "data-countdown" in attrs)
        assert countdown["data-countdown"] == str(seconds)  # the script counts down from here
        assert countdown["data-countdown-text"] == texts["mfa.push.expires_in"]  # {time} filled in by the script
        assert countdown["data-expired-text"] == texts["mfa.push.expired_now"]
        assert texts["mfa.push.expires_in"].format(time=shown) in html.text
        # Not announced every second: outside the polite status line.
        assert countdown.get("aria-live") is None


def test_no_countdown_without_the_expiry(renderer: PageRenderer) -> None:
    _, html = render(renderer, "mfa", push_state="waiting")
    assert not any("data-countdown" in attrs for _, attrs in html.tags)
    _, html = render(renderer, "mfa", push_expires_in=30)  # not waiting: nothing to count down
    assert not any("data-countdown" in attrs for _, attrs in html.tags)


@pytest.mark.parametrize(("methods", "cancel_label", "then"), [
    (["Push", "Totp"], "mfa.push.use_code", "code"),
    (["Push"], "mfa.push.cancel", None),
])
def test_the_waiting_push_can_be_sent_again_or_cancelled(renderer: PageRenderer, methods: list[str],
                                                         cancel_label: str, then: str | None) -> None:
    for lang in SUPPORTED_LANGUAGES:
        rendered, _ = render(renderer, "mfa", lang, methods=methods, push_state="waiting", push_expires_in=30)
        body = rendered.body.decode()
        texts = TRANSLATIONS[lang]
        again = re.search(r'<form method="post" action="/_gateway/mfa/push" data-once>(.*?)</form>', body, re.S)
        assert again is not None
        assert '<input type="hidden" name="csrf_token" value="tok-123">' in again.group(1)
        assert '<input type="hidden" name="resend" value="1">' in again.group(1)
        assert texts["mfa.push.send_again"] in again.group(1)
        cancel = re.search(r'<form method="post" action="/_gateway/mfa/cancel" data-once>(.*?)</form>', body, re.S)
        assert cancel is not None
        assert '<input type="hidden" name="csrf_token" value="tok-123">' in cancel.group(1)
        assert texts[cancel_label] in cancel.group(1)
        assert ('name="then" value="code"' in cancel.group(1)) is (then == "code")
    _, idle = render(renderer, "mfa", methods=methods)
    assert not any(attrs.get("action") == "/_gateway/mfa/cancel" for attrs in idle.all("form"))


def test_the_code_field_lets_spaces_through_and_says_what_it_is(renderer: PageRenderer) -> None:
    _, html = render(renderer, "mfa")
    field = next(attrs for attrs in html.all("input") if attrs.get("name") == "code")
    assert field["inputmode"] == "numeric"
    assert field["autocomplete"] == "one-time-code"
    pattern = re.compile(f"(?:{field['pattern']})")  # as the browser anchors it
    for typed in ("123456", "123 456", " 123 456 ", "1234 5678", "12 34 56"):
        assert pattern.fullmatch(typed), typed
    for typed in ("12a456", "123-456", "١٢٣٤٥٦"):
        assert not pattern.fullmatch(typed), typed
    assert int(field["maxlength"] or 0) >= len("1234 5678")


@pytest.mark.parametrize("notice", ["push-rejected", "push-expired"])
def test_push_outcomes_are_messages_on_the_mfa_page(renderer: PageRenderer, notice: str) -> None:
    for lang in SUPPORTED_LANGUAGES:
        _, html = render(renderer, "mfa", lang, notice=notice)
        assert TRANSLATIONS[lang][f"mfa.notice.{notice}"] in html.text
        assert any(attrs.get("role") == "alert" and attrs.get("class") == "notice" for _, attrs in html.tags)


@pytest.mark.parametrize(("attempts", "text"), [(None, None), (1, "1 attempt left."), (3, "3 attempts left.")])
def test_code_error_with_remaining_attempts(renderer: PageRenderer, attempts: int | None, text: str | None) -> None:
    _, html = render(renderer, "mfa", code_error="invalid", attempts_left=attempts)
    assert TRANSLATIONS["en"]["mfa.code.error.invalid"] in html.text
    assert (text in html.text) if text else not any("attempt" in line for line in html.text)
    code = next(attrs for attrs in html.all("input") if attrs.get("name") == "code")
    assert code["aria-invalid"] == "true"
    assert "autofocus" in code


@pytest.mark.parametrize(
    ("seconds", "minutes_text", "retry_after"),
    [(1, "1 minute", "1"), (60, "1 minute", "60"), (61, "2 minutes", "61"), (90.5, "2 minutes", "91"),
     (900, "15 minutes", "900")],
)
def test_locked_page_says_when_to_retry(
    renderer: PageRenderer, seconds: float, minutes_text: str, retry_after: str
) -> None:
    rendered, html = render(renderer, "locked", retry_after_seconds=seconds)
    assert any(f"Try again in {minutes_text}." in line for line in html.text)
    assert rendered.headers["Retry-After"] == retry_after


def test_locked_page_in_turkish(renderer: PageRenderer) -> None:
    _, html = render(renderer, "locked", "tr", retry_after_seconds=300)
    assert any("5 dakika sonra tekrar deneyin." in line for line in html.text)


def test_unavailable_may_say_when_to_retry(renderer: PageRenderer) -> None:
    assert "Retry-After" not in render(renderer, "unavailable")[0].headers
    assert render(renderer, "unavailable", retry_after_seconds=30)[0].headers["Retry-After"] == "30"


@pytest.mark.parametrize(
    ("page", "context", "error"),
    [
        ("nope", {}, ValueError),
        ("mfa", {"display_name": "x", "methods": ["Push"]}, TypeError),  # csrf_token missing
        ("mfa", {**CONTEXTS["mfa"][1], "colour": "red"}, TypeError),  # unknown key: a typo
        ("locked", {}, TypeError),
        ("error", {"detail": "stack trace"}, TypeError),  # internal detail has nowhere to go
        ("mfa", {**CONTEXTS["mfa"][1], "methods": []}, ValueError),
        ("mfa", {**CONTEXTS["mfa"][1], "methods": ["Fido2"]}, ValueError),
        ("mfa", {**CONTEXTS["mfa"][1], "methods": ["Totp"], "push_state": "waiting"}, ValueError),
        ("mfa", {**CONTEXTS["mfa"][1], "push_state": "sleeping"}, ValueError),
        ("mfa", {**CONTEXTS["mfa"][1], "notice": "hello"}, ValueError),
        ("mfa", {**CONTEXTS["mfa"][1], "code_error": "wrong"}, ValueError),
    ],
)
def test_bad_context_fails_loudly(renderer: PageRenderer, page: str, context: dict[str, Any],
                                  error: type[Exception]) -> None:
    with pytest.raises(error):
        renderer.render(page, lang="en", request_id="r", **context)


def test_unsupported_language_is_refused(renderer: PageRenderer) -> None:
    with pytest.raises(ValueError, match="language"):
        renderer.render("error", lang="de", request_id="r")
    with pytest.raises(ValueError, match="language"):
        PageRenderer(forced_language="de")


@pytest.mark.parametrize(
    ("forced", "header", "expected"),
    [(None, "tr-TR,tr;q=0.9", "tr"), (None, None, "en"), ("en", "tr-TR", "en"), ("tr", "en-US", "tr"),
     ("tr", None, "tr")],
)
def test_pick_language_forced_by_the_setting(forced: str | None, header: str | None, expected: str) -> None:
    assert PageRenderer(forced_language=forced).pick_language(header) == expected


def test_offered_methods_in_page_order() -> None:
    assert offered_methods(["Totp", "Push"]) == ("push", "totp")
    assert offered_methods([" push "]) == ("push",)
    assert offered_methods(["Sms"]) == ()


def test_template_override_directory(tmp_path: Path) -> None:
    # A page replaced outright, and the base layout extended (not copied) through `builtin/`.
    (tmp_path / "not-assigned.html").write_text(
        '{% extends "outcome.html" %}{% block message %}<p class="message">Call 1234 ({{ t("not-assigned.body") }})'
        "</p>{% endblock %}"
    )
    (tmp_path / "base.html").write_text(
        '{% extends "builtin/base.html" %}{% block head %}<link rel="stylesheet" href="/_gateway/static/mfa.css">'
        "{% block extra %}{% endblock %}{{ super() }}{% endblock %}"
    )
    renderer = PageRenderer(templates_dir=tmp_path)
    rendered, html = render(renderer, "not-assigned")
    assert any(line.startswith("Call 1234 (Your account is not assigned") for line in html.text)
    assert rendered.body.decode().count("/_gateway/static/mfa.css") == 2
    # Pages without an override still come from the built-in templates, through the overridden base.
    rendered, html = render(renderer, "error")
    assert TRANSLATIONS["en"]["error.title"] in html.text
    assert rendered.body.decode().count("/_gateway/static/mfa.css") == 2


def test_override_templates_are_escaped_too(tmp_path: Path) -> None:
    (tmp_path / "error.html").write_text('{% extends "outcome.html" %}{% block message %}{{ page }}'
                                         "{{ '<b>' }}{% endblock %}")
    rendered, _ = render(PageRenderer(templates_dir=tmp_path), "error")
    assert b"&lt;b&gt;" in rendered.body


def test_static_files() -> None:
    brand = Brand(color="#ffcc00", logo=Logo(b"<svg xmlns='http://www.w3.org/2000/svg'/>", "image/svg+xml"))
    static = StaticFiles(brand)
    assert {"mfa.css", "mfa.js", BRAND_CSS, BRAND_LOGO} <= static.names
    css = static.get("mfa.css")
    assert css is not None
    assert css.headers["Content-Type"] == "text/css; charset=utf-8"
    assert css.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in css.headers["Content-Security-Policy"]
    js = static.get("mfa.js")
    assert js is not None
    assert js.content_type == "text/javascript; charset=utf-8"
    logo = static.get(BRAND_LOGO)
    assert logo is not None
    assert logo.content_type == "image/svg+xml"
    brand_css = static.get(BRAND_CSS)
    assert brand_css is not None
    assert brand.accent.encode() in brand_css.body
    assert static.url("mfa.css") == f"/_gateway/static/mfa.css?v={css.version}"
    for name in ("", "../pages.py", "..%2Fpages.py", "mfa.css/", "MFA.CSS", "pages.py", "static", "brand-logo.svg"):
        assert static.get(name) is None, name


def test_no_logo_means_no_logo_route_and_a_text_brand(renderer: PageRenderer) -> None:
    assert renderer.static.get(BRAND_LOGO) is None
    _, html = render(renderer, "error")
    assert html.all("img") == []
    assert "Outlook on the web" in html.text


def test_logo_is_shown_with_the_brand_name_as_alt() -> None:
    renderer = PageRenderer(Brand(name="Contoso Mail", logo=Logo(b"\x89PNG\r\n", "image/png")))
    _, html = render(renderer, "mfa")
    (img,) = html.all("img")
    assert img["alt"] == "Contoso Mail"
    assert img["src"] == renderer.static.url(BRAND_LOGO)
    asset = renderer.static.get(BRAND_LOGO)
    assert asset is not None
    assert asset.body == b"\x89PNG\r\n"


def test_support_text_is_shown(renderer: PageRenderer) -> None:
    renderer = PageRenderer(Brand(support_text="Help desk: +90 212 555 0000"))
    _, html = render(renderer, "config-error")
    assert "Help desk: +90 212 555 0000" in html.text


def test_stylesheet_colours_are_readable() -> None:
    """Fixed colours of the stylesheet, used as text on white, reach 4.5:1."""
    from gateway.pages.brand import WHITE, contrast_ratio
    from gateway.pages.static_files import STATIC_DIR

    css = (STATIC_DIR / "mfa.css").read_text()
    for name in ("--text", "--muted", "--error", "--brand"):
        match = re.search(rf"{name}: (#[0-9a-f]{{6}});", css)
        assert match, name
        assert contrast_ratio(match.group(1), WHITE) >= 4.5, name


def test_documented_override_examples_work(tmp_path: Path) -> None:
    """The two examples in docs/branding.md, taken from the page itself."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "branding.md").read_text(encoding="utf-8")
    examples = re.findall(r"```jinja\n(.*?)```", doc, flags=re.DOTALL)
    assert len(examples) == 2
    (tmp_path / "not-assigned.html").write_text(examples[0])
    (tmp_path / "base.html").write_text(examples[1])
    _, html = render(PageRenderer(templates_dir=tmp_path), "not-assigned")
    assert "Call the help desk on 1234 and ask for access to Outlook on the web." in html.text
    assert TRANSLATIONS["en"]["not-assigned.body"] in html.text
    assert any(attrs.get("href") == "https://help.example.com/sign-in" for attrs in html.all("a"))
    assert REQUEST_ID in html.text
