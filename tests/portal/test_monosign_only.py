"""The `monosign` first factor: a user name and a push with number matching, nothing else; refused
(at start-up and on reload) unless GATEWAY_MFA_NUMBER_MATCHING is on."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gateway.assembly.sites import Sites
from gateway.config import ConfigError, load_config
from gateway.mfa.flow import FLOW
from gateway.sessions.base import SessionState
from tests.portal.kit import APP_HOST, PortalBrowser, portal_environment, portal_site, write_config

_NUMBER = re.compile(r"data-push-number>[^<]*?(\d\d)")
MONOSIGN_SITES = [portal_site("app", APP_HOST, first_factor="monosign")]


async def test_refused_at_start_without_number_matching(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as refused:
        async with portal_environment(tmp_path, sites=MONOSIGN_SITES):
            pass
    [problem] = refused.value.problems
    assert problem.location == ("sites", 0, "first_factor")
    assert "GATEWAY_MFA_NUMBER_MATCHING=true" in str(problem)


async def test_refused_on_reload_without_number_matching(tmp_path: Path) -> None:
    async with portal_environment(tmp_path) as env:  # file sites, number matching off
        sites = env.gateway.state.sites
        assert isinstance(sites, Sites)
        (tmp_path / "reload").mkdir()
        monosign_config = load_config(write_config(tmp_path / "reload", MONOSIGN_SITES))
        with pytest.raises(ConfigError, match="GATEWAY_MFA_NUMBER_MATCHING"):
            sites.swap(monosign_config)
        assert (await PortalBrowser(env).signin_page()).status == 200
        assert 'name="password"' in (await PortalBrowser(env).signin_page()).text  # the file site stays


async def test_a_name_and_a_push_with_number_matching(tmp_path: Path) -> None:
    async with portal_environment(tmp_path, sites=MONOSIGN_SITES, gateway_mfa_number_matching=True) as env:
        browser = PortalBrowser(env)
        form = await browser.signin_page("/inbox")
        assert form.status == 200
        assert 'name="password"' not in form.text
        assert "with a number to enter there" in form.text
        first = await browser.sign_in_form("alice", rd="/inbox")
        assert (first.status, first.location) == (302, "/_gateway/mfa")
        mfa = await browser.mfa_page()
        assert 'name="code"' not in mfa.text  # the push only: a code alone would be one factor
        refused = await browser.verify(await env.code("alice"))
        assert refused.status == 403
        await browser.push()
        match = _NUMBER.search((await browser.mfa_page()).text)
        assert match is not None
        async with env.http.post(f"{env.monosign.url}/_sim/users/alice/push/approve",
                                 json={"number": match.group(1)}) as response:
            assert response.status == 200
        final = await browser.complete()
        assert (final.status, final.location) == (302, "/inbox")
        cookie = browser.gateway_cookie
        assert cookie is not None
        record = await env.gateway.state.feature(FLOW).store.load(cookie)
        assert record is not None
        assert record.state is SessionState.COMPLETE
        assert (record.first_factor, record.second_factor, record.email) == ("monosign", "push", "alice@corp.example")


async def test_a_name_monosign_does_not_know_gets_the_form_again(tmp_path: Path) -> None:
    async with portal_environment(tmp_path, sites=MONOSIGN_SITES, gateway_mfa_number_matching=True,
                                  monosign_user_exceptions=["nobody", "alice"]) as env:
        for user in ("nobody", "carol"):  # unknown; known but not assigned to the application
            browser = PortalBrowser(env)
            page = await browser.sign_in_form(user)
            assert page.status == 200
            assert "The user name or password is not correct." in page.text
            assert browser.gateway_cookie is None
        # An exception never signs anyone in on a typed name alone: alice still gets the push.
        browser = PortalBrowser(env)
        page = await browser.sign_in_form("alice")
        assert (page.status, page.location) == (302, "/_gateway/mfa")


def test_one_factor_is_refused_on_a_monosign_site(tmp_path: Path) -> None:
    # Its first factor is a typed name: a session waiting for the push has proven nothing.
    site = portal_site("app", APP_HOST, first_factor="monosign")
    site["rules"] = [{"paths": ["/status"], "action": "one_factor"}, {"action": "two_factor"}]
    with pytest.raises(ConfigError) as refused:
        load_config(write_config(tmp_path, [site]))
    [problem] = refused.value.problems
    assert problem.location == ("sites", 0, "rules", 0, "action")
    assert "one_factor on a monosign site would open to anyone who types a name" in problem.message
