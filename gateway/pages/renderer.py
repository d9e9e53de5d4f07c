"""Render every page the gateway answers itself: translated, branded, escaped, locked down.

The MFA page, its outcome pages and the gateway's error answers (400, 403, 404, ... 502, 504, from
the edge, the route handlers and the forwarder) all come from one renderer, built once at start-up
by `gateway.assembly.build_state` and kept on `AppState.renderer` (the MFA flow reuses it):

    renderer = gateway.assembly.page_renderer(settings)   # PageRenderer(brand, templates_dir, forced_language)
    lang = renderer.pick_language(request.headers.get("Accept-Language"))
    page = renderer.render("mfa", lang=lang, request_id=rid, display_name=user.display_name,
                           methods=user.mfa_methods, csrf_token=token)
    return web.Response(status=page.status, body=page.body, headers=page.headers)

`PAGES` lists every page, its default status and the context it needs; a missing or unknown context
key is a TypeError at once, not a blank on the user's screen. Templates run with autoescape on and
`StrictUndefined`; every string comes from the translation files; the only script is a static file
(the CSP allows `script-src 'self'`, no inline code). `GATEWAY_TEMPLATES_DIR` overrides templates by
file name; an override can extend the original as `builtin/<name>`.

Error answers: `render_error(status, lang=..., request_id=..., html=...)` gives the `error` page
with the status's own title and message (`error.<status>.title` / `.body`, or a `kind` for the few
refusals that need other words), or the same words as plain text for clients that did not ask for
HTML (`gateway.pages.error_response` makes the aiohttp response and chooses between the two).

What the MFA page expects from the handlers (the contract in DESIGN.md):
- `POST /_gateway/mfa/push` (`csrf_token`) starts a push; the page is then shown with
  `push_state="waiting"`.
- While waiting, the page polls `GET /_gateway/mfa/status` (JSON `{"status": ...}`) and, on any
  status but `pending`, goes to `GET /_gateway/mfa/complete`. So does a 4xx from the status URL,
  the "I have approved it" button, and (without JavaScript) a refresh every few seconds.
  `complete` therefore decides for every status: approved → finish; pending → the waiting page
  again; rejected / expired → the page with `notice="push-rejected"` / `"push-expired"`.
- `POST /_gateway/mfa/verify` (`code`, `csrf_token`); a wrong code → the page with
  `code_error="invalid"` (or `"format"`) and `attempts_left`.
- While waiting, the page shows `push_expires_in` (whole seconds the push has left; the script counts
  down), a "Send again" form (`POST /_gateway/mfa/push` with `resend=1`: a new push in place of the
  waiting one, within the push limits) and a cancel form (`POST /_gateway/mfa/cancel`; with
  `then=code`, "Use a code instead", the browser lands on the code field).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import jinja2

from gateway.monosign.inputs import NUMBER_CHALLENGE
from gateway.pages.brand import Brand
from gateway.pages.i18n import SUPPORTED_LANGUAGES, Translator, load_translations, negotiate_language
from gateway.pages.static_files import StaticFiles
from gateway.policy.edge import EdgeRejection

TEMPLATES_DIR = Path(__file__).parent / "templates"

# The gateway pages' URLs, in one place for the templates (and the handlers that serve them).
URLS: Mapping[str, str] = {
    "mfa": "/_gateway/mfa",
    "push": "/_gateway/mfa/push",
    "status": "/_gateway/mfa/status",
    "complete": "/_gateway/mfa/complete",
    "verify": "/_gateway/mfa/verify",
    "cancel": "/_gateway/mfa/cancel",
    "start": "/owa/",
    # Ends the gateway session (owa-logoff route class) and lets Exchange clear its own cookies.
    "sign_out": "/owa/logoff.owa",
    # A portal site's own sign-in and sign-out (gateway.profiles.portal).
    "signin": "/_gateway/signin",
    "signout": "/_gateway/signout",
}

# The links of the pages a portal site's users see: its own sign-out and sign-in, not Exchange's.
PORTAL_URLS: Mapping[str, str] = {**URLS, "sign_out": URLS["signout"], "start": URLS["signin"]}

# Every gateway page, whatever the status: no framing, no inline code, no caching, no referrer to
# other sites. Not `no-referrer`: under it browsers send `Origin: null` with the page's own form
# posts, and the CSRF check (rightly) refuses those.
# `connect-src 'self'` lets the MFA page poll the push status.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Opener-Policy": "same-origin",
}

MFA_METHODS = ("push", "totp")  # Monosign's "Push" and "Totp", in the order the page shows them
PUSH_STATES = frozenset({"idle", "waiting"})
MFA_NOTICES = frozenset({"push-rejected", "push-expired"})
CODE_ERRORS = frozenset({"invalid", "format"})
# What the second step opens: Exchange's mailbox, or a portal site's application.
MFA_GREETINGS = frozenset({"mailbox", "site"})
CODE_MAX_LENGTH = 8
# Without JavaScript, the waiting page asks again this often.
NO_SCRIPT_REFRESH_SECONDS = 5
# With JavaScript, the page asks for the push status this often (backing off after failures).
POLL_INTERVAL_MS = 2000

# Statuses whose error page has its own title and message (`error.<status>.title` / `.body`). Any
# other status, 500 among them, shows the generic `error.title` / `error.body` ("something went wrong").
ERROR_STATUSES = frozenset({400, 401, 403, 404, 405, 408, 413, 417, 440, 502, 503, 504})
# Refusals that need other words than their status's own: `error.<kind>.title` / `.body`.
ERROR_KINDS = frozenset({
    "mfa-not-configured",  # the MFA flow is not installed: nobody gets in
    "sign-in-again",  # an Exchange session appeared without MFA: held back, sign in again
    "unknown-host",  # a Host the gateway does not serve: the page names (and links) the public URL
})
# Why the edge refused a request (400, 417), as shown to the user: fixed strings of
# gateway.policy.edge and gateway.policy.paths that name the problem and never echo the request.
# A reason not listed here is not shown (the access log has it).
SHOWN_REASONS = frozenset({
    *(rejection.value for rejection in EdgeRejection),
    "too long", "fragment", "whitespace", "control character", "non-ASCII", "not origin-form",
    "double slash", "backslash", "bad UTF-8", "%u encoding", "bad percent-encoding", "encoded slash",
    "encoded backslash", "double encoding", "disallowed character", "dot segment", "trailing dot or space",
    "unsupported expectation",
    "sign-in for this site is not available",  # gateway.profiles.passthrough: a one_factor/two_factor rule
})


@dataclass(frozen=True, slots=True)
class PageSpec:
    status: int
    required: frozenset[str] = frozenset()
    optional: Mapping[str, Any] = field(default_factory=dict)


PAGES: Mapping[str, PageSpec] = {
    "mfa": PageSpec(
        200,
        required=frozenset({"display_name", "methods", "csrf_token"}),
        optional={"push_state": "idle", "notice": None, "code_error": None, "attempts_left": None,
                  "push_expires_in": None, "push_number": None, "greeting": "mailbox"},
    ),
    "not-assigned": PageSpec(403),  # Monosign code 22
    "not-found": PageSpec(403),  # the user is not in Monosign (code 21)
    "no-methods": PageSpec(403),  # in Monosign, but no push and no code to offer
    "locked": PageSpec(429, required=frozenset({"retry_after_seconds"})),
    "unavailable": PageSpec(503, optional={"retry_after_seconds": None}),  # unreachable, slow, breaker open
    "config-error": PageSpec(503),  # e.g. code 12: the detail is for the log only
    "store-unavailable": PageSpec(503),  # the session store (Redis) is down: no sign-in at all
    "input-refused": PageSpec(400),  # a value for Monosign outside its grammar: not sent (gateway.monosign.inputs)
    "error": PageSpec(500, optional={"kind": None, "reason": None, "expected_url": None}),  # see render_error
    "bad-request": PageSpec(400),  # e.g. a CSRF failure: the form expired
    # A portal site's sign-in form (gateway.profiles.portal): `action` is the post URL with `rd`,
    # `password` whether the site's first factor asks for one (not `monosign`).
    "signin": PageSpec(
        200,
        required=frozenset({"csrf_token", "action", "password"}),
        optional={"error": None, "notice": None, "username": ""},
    ),
    # The sign-out a GET from another site asked for, to confirm with a POST (gateway.profiles.portal.signin).
    "signout": PageSpec(200, required=frozenset({"csrf_token"})),
}
SIGNIN_ERRORS = frozenset({"credentials"})
SIGNIN_NOTICES = frozenset({"signed-out"})


@dataclass(frozen=True, slots=True)
class RenderedPage:
    status: int
    body: bytes
    headers: Mapping[str, str]


def offered_methods(monosign_methods: Iterable[str]) -> tuple[str, ...]:
    """The methods the page can offer, from Monosign's `MfaMethods` (`["Push", "Totp"]`), in page order."""
    reported = {method.strip().lower() for method in monosign_methods}
    return tuple(method for method in MFA_METHODS if method in reported)


class PageRenderer:
    def __init__(
        self,
        brand: Brand | None = None,
        templates_dir: Path | None = None,
        forced_language: str | None = None,
    ) -> None:
        if forced_language is not None and forced_language not in SUPPORTED_LANGUAGES:
            raise ValueError(f"unsupported language {forced_language!r}")
        self.brand = brand or Brand()
        self.forced_language = forced_language
        self.static = StaticFiles(self.brand)
        self._translators = {
            language: Translator(language, texts) for language, texts in load_translations().items()
        }
        builtin = jinja2.FileSystemLoader(TEMPLATES_DIR)
        loaders: list[jinja2.BaseLoader] = [builtin, jinja2.PrefixLoader({"builtin": builtin})]
        if templates_dir is not None:
            loaders.insert(0, jinja2.FileSystemLoader(templates_dir))
        self._environment = jinja2.Environment(
            loader=jinja2.ChoiceLoader(loaders),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=False,
        )

    def pick_language(self, accept_language: str | None) -> str:
        """The forced language if the operator set one, else the browser's preference (en/tr)."""
        return self.forced_language or negotiate_language(accept_language)

    def render(
        self,
        page: str,
        *,
        lang: str,
        request_id: str,
        status: int | None = None,
        urls: Mapping[str, str] | None = None,
        brand_name: str | None = None,
        **context: Any,
    ) -> RenderedPage:
        """Render `page` (a key of PAGES) in `lang`; `status` defaults to the page's own; `urls`
        replaces URLS for the page's links (a portal site's sign-out and sign-in, `PORTAL_URLS`);
        `brand_name` replaces the brand's name (a site's `title`)."""
        spec = PAGES.get(page)
        if spec is None:
            raise ValueError(f"unknown page {page!r}")
        if lang not in self._translators:
            raise ValueError(f"unsupported language {lang!r}")
        missing = spec.required - context.keys()
        unknown = context.keys() - spec.required - spec.optional.keys()
        if missing or unknown:
            raise TypeError(f"page {page!r}: missing {sorted(missing)}, unknown {sorted(unknown)}")
        shown_status = spec.status if status is None else status
        values = {**spec.optional, **context}
        values.update(_page_values(page, values, shown_status))
        title_key, body_key = _text_keys(page, values)
        template = self._environment.get_template(f"{page}.html")
        body = template.render(
            values,
            page=page,
            lang=lang,
            title_key=title_key,
            body_key=body_key,
            request_id=request_id,
            brand=self.brand if brand_name is None else replace(self.brand, name=brand_name),
            urls=urls or URLS,
            t=self._translators[lang],
            static_url=self.static.url,
        )
        headers = {
            **SECURITY_HEADERS,
            "Content-Type": "text/html; charset=utf-8",
            "Content-Language": lang,
        }
        retry_after = values.get("retry_after_seconds")
        if retry_after is not None:
            headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
        return RenderedPage(status=shown_status, body=body.encode(), headers=headers)

    def render_error(
        self,
        status: int,
        *,
        lang: str,
        request_id: str,
        html: bool = True,
        kind: str | None = None,
        reason: str | None = None,
        expected_url: str | None = None,
        brand_name: str | None = None,
    ) -> RenderedPage:
        """The gateway's answer for an error `status`: the `error` page, or its words as plain text.

        `kind` (one of ERROR_KINDS) replaces the status's wording; `reason` is shown only when it is
        one of the edge's fixed SHOWN_REASONS; `expected_url` (configuration, never the request's)
        is named as the address to use instead, and linked on the page.
        """
        if html:
            return self.render("error", lang=lang, request_id=request_id, status=status, kind=kind, reason=reason,
                               expected_url=expected_url, brand_name=brand_name)
        if lang not in self._translators:
            raise ValueError(f"unsupported language {lang!r}")
        values = _page_values("error", {"kind": kind, "reason": reason, "expected_url": expected_url}, status)
        title_key, body_key = _text_keys("error", values)
        t = self._translators[lang]
        lines = [f"{status} {t(title_key)}", t(body_key)]
        if expected_url is not None:
            lines.append(t("error.expected_url", url=expected_url))
        if values["reason"] is not None:
            lines.append(t("error.reason", reason=values["reason"]))
        lines.append(f"{t('common.reference')} {request_id}")
        headers = {**SECURITY_HEADERS, "Content-Type": "text/plain; charset=utf-8", "Content-Language": lang}
        return RenderedPage(status=status, body=("\n".join(lines) + "\n").encode(), headers=headers)


def _minutes_seconds(seconds: int) -> str:
    """`m:ss`, as the countdown shows it (mfa-push.js writes the same)."""
    seconds = max(0, seconds)
    return f"{seconds // 60}:{seconds % 60:02d}"


def _text_keys(page: str, values: dict[str, Any]) -> tuple[str, str]:
    """The translation keys of the page's title and message (the error page picks its own)."""
    return values.pop("title_key", f"{page}.title"), values.pop("body_key", f"{page}.body")


def _page_values(page: str, values: Mapping[str, Any], status: int) -> dict[str, Any]:
    """Check a page's context and derive what its template shows from it."""
    if page == "error":
        kind = values["kind"]
        if kind is not None and kind not in ERROR_KINDS:
            raise ValueError(f"unknown error kind {kind!r}")
        topic = f"error.{kind}" if kind is not None else f"error.{status}" if status in ERROR_STATUSES else "error"
        reason = values["reason"]
        return {
            "title_key": f"{topic}.title",
            "body_key": f"{topic}.body",
            # Fail closed: a reason we do not know to be a fixed, non-echoing string is not shown.
            "reason": reason if reason in SHOWN_REASONS else None,
        }
    if page == "signin":
        if values["error"] is not None and values["error"] not in SIGNIN_ERRORS:
            raise ValueError(f"unknown sign-in error {values['error']!r}")
        if values["notice"] is not None and values["notice"] not in SIGNIN_NOTICES:
            raise ValueError(f"unknown sign-in notice {values['notice']!r}")
        return {}
    if page == "mfa":
        methods = offered_methods(values["methods"])
        if not methods:
            raise ValueError("no method to offer: render the 'no-methods' page instead")
        if values["push_state"] not in PUSH_STATES or (values["push_state"] == "waiting" and "push" not in methods):
            raise ValueError(f"bad push_state {values['push_state']!r} for methods {methods}")
        if values["notice"] is not None and values["notice"] not in MFA_NOTICES:
            raise ValueError(f"unknown notice {values['notice']!r}")
        if values["code_error"] is not None and values["code_error"] not in CODE_ERRORS:
            raise ValueError(f"unknown code_error {values['code_error']!r}")
        if values["greeting"] not in MFA_GREETINGS:
            raise ValueError(f"unknown greeting {values['greeting']!r}")
        if values["push_number"] is not None and NUMBER_CHALLENGE.fullmatch(str(values["push_number"])) is None:
            raise ValueError("push_number is two digits")
        expires_in = values["push_expires_in"]
        return {
            "methods": methods,
            # Seconds the waiting push has left, as m:ss (the page's script counts down from it).
            "push_countdown": None if expires_in is None else _minutes_seconds(expires_in),
            "code_max_length": CODE_MAX_LENGTH,
            "refresh_seconds": NO_SCRIPT_REFRESH_SECONDS,
            "poll_interval_ms": POLL_INTERVAL_MS,
        }
    if page == "locked":
        # Rounded up: "try again in 1 minute" must not come back after 30 seconds of a 90-second lock.
        return {"minutes": max(1, math.ceil(values["retry_after_seconds"] / 60))}
    return {}
