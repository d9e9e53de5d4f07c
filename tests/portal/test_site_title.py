"""A site's `title`: the brand name on its own pages (sign-in, MFA, errors), GATEWAY_BRAND_NAME elsewhere."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gateway.config import ConfigError, load_config
from gateway.sessions.base import SessionState
from tests.portal.support import CRM_HOST, WIKI_HOST, get_raw, running_portal
from tests.proxy.support import PUBLIC_HOST

HTML = "Accept: text/html"
BRAND = re.compile(rb'<p class="brand-name">([^<]*)</p>')
TITLE = re.compile(rb"<title>([^<]*)</title>")


def brand_of(body: bytes) -> tuple[str, str]:
    """The page's brand line and its <title>."""
    brand, title = BRAND.search(body), TITLE.search(body)
    assert brand is not None, body[:300]
    assert title is not None
    return brand.group(1).decode(), title.group(1).decode()


async def test_a_site_s_title_names_its_pages_and_only_its_own(tmp_path: Path) -> None:
    async with running_portal(tmp_path, wiki={"title": "Intranet & Wiki"}, gateway_brand_name="Example Mail") as portal:
        pending = await portal.session(state=SessionState.PENDING)
        for target, extra in (("/_gateway/signin", ()), ("/closed", ()), ("/_gateway/mfa", (f"Cookie: {pending}",)),
                              ("/_gateway/nothing-here", ())):
            status, _, body = await get_raw(portal, target, HTML, *extra, host=WIKI_HOST)
            assert status in (200, 403, 404, 503), (target, status)
            brand, title = brand_of(body)
            assert brand == "Intranet &amp; Wiki", target  # escaped like every value on the pages
            assert title.endswith("Intranet &amp; Wiki"), target
        # The other portal site and Exchange's host keep GATEWAY_BRAND_NAME.
        for host, target in ((CRM_HOST, "/_gateway/signin"), (CRM_HOST, "/_gateway/nothing-here"),
                             (PUBLIC_HOST, "/_gateway/nothing-here")):
            _, _, body = await get_raw(portal, target, HTML, host=host)
            assert brand_of(body)[0] == "Example Mail", (host, target)


@pytest.mark.parametrize(("site", "title", "expected"), [
    ("intranet", "x" * 201, "sites[1].title: string should have at most 200 characters"),
    ("intranet", "Intra\\nnet", "sites[1].title: expected one line of printable text"),
    ("intranet", "Intra\\u202enet", "sites[1].title: expected one line of printable text"),
    ("intranet", "Intra\\u0000net", "sites[1].title: expected one line of printable text"),
    ("intranet", " ", "sites[1].title: expected one line of printable text"),
    ("intranet", "Intra\\u2028net", "sites[1].title: expected one line of printable text"),
    ("mail", "Mail", "sites[0].title: an exchange site's pages are named by GATEWAY_BRAND_NAME (for portal and "
                     "passthrough sites only)"),
])
def test_a_title_is_one_line_of_printable_text_on_a_site_of_its_own(tmp_path: Path, site: str, title: str,
                                                                   expected: str) -> None:
    text = """\
sites:
  - { name: mail, hosts: [mail.example.com], upstream: 'https://ex', profile: exchange }
  - { name: intranet, hosts: [intranet.example.com], upstream: 'http://in', profile: passthrough,
      rules: [{ action: bypass }] }
"""
    path = tmp_path / "gateway.yaml"
    path.write_text(text.replace(f"name: {site},", f'name: {site}, title: "{title}",'))
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert [problem.split(": ", 1)[1] for problem in str(raised.value).splitlines()] == [expected]
    path.write_text(text.replace("name: intranet,", 'name: intranet, title: "  Intranet  ",'))
    assert load_config(path).sites[1].title == "Intranet"
