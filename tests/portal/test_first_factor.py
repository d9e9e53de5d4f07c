"""What happens around a portal site's first factor: the smart lockout of failed sign-ins, the
user exceptions and fail-open of Exchange's login, Monosign's failure pages, backends on reload."""

from __future__ import annotations

import json
from pathlib import Path

from gateway.assembly.sites import Sites
from gateway.commands.check import Mark, config_file_results
from gateway.commands.serve import config_file_problems
from gateway.config import ConfigError, load_config
from gateway.mfa.flow import FLOW
from gateway.profiles.portal.portal import PORTAL
from gateway.sessions.base import SessionRecord, SessionState
from tests.flow.conftest import FlowEnv
from tests.identity.kit import fast_hash
from tests.portal.kit import APP_HOST, PortalBrowser, portal_environment, portal_site, write_config
from tests.proxy.support import gateway_settings


async def _record(env: FlowEnv, browser: PortalBrowser) -> SessionRecord | None:
    cookie = browser.gateway_cookie
    assert cookie is not None
    return await env.gateway.state.feature(FLOW).store.load(cookie)


async def test_failures_lock_the_name_from_that_network_only(tmp_path: Path) -> None:
    async with portal_environment(tmp_path, gateway_mfa_max_failures=3,
                                  gateway_trusted_proxies=["127.0.0.1/32"]) as env:
        def from_address(address: str) -> PortalBrowser:
            return PortalBrowser(env, extra_headers={"X-Forwarded-For": address})

        pages = [await from_address("203.0.113.9").sign_in_form("alice", "guess") for _ in range(3)]
        assert [page.status for page in pages] == [200, 200, 429]
        # Locked: not even the right password is checked from there.
        locked = await from_address("203.0.113.10").sign_in_form("alice")
        assert locked.status == 429
        # Counted per name (however it is spelt) and network: others, and alice elsewhere, sign in.
        assert (await from_address("203.0.113.9").sign_in_form("CORP\\alice")).status == 429
        assert (await from_address("203.0.113.9").sign_in_form("bob")).status == 302
        assert (await from_address("198.51.100.7").sign_in_form("alice")).status == 302
        text = await env.metrics()
        assert 'gateway_authn_lockouts_total{scope="signin_network"} 1.0' in text


async def test_an_excepted_user_is_signed_in_by_the_first_factor(tmp_path: Path) -> None:
    async with portal_environment(tmp_path, monosign_user_exceptions=["alice", "bob@corp.example"]) as env:
        browser = PortalBrowser(env)
        page = await browser.sign_in_form("alice", rd="/home")
        assert (page.status, page.location) == (302, "/home")
        record = await _record(env, browser)
        assert record is not None
        assert (record.state, record.second_factor, record.site) == (SessionState.EXEMPT, "exception", "app")
        assert await env.monosign_calls("lookup_user") == []  # decided on the directory's name alone
        # Excepted by Monosign's e-mail: asked, then exempt.
        bob = PortalBrowser(env)
        assert (await bob.sign_in_form("bob")).location == "/"
        bob_record = await _record(env, bob)
        assert bob_record is not None
        assert (bob_record.second_factor, bob_record.email) == ("exception", "bob@directory.example")


async def test_monosign_unreachable_fails_closed_unless_fail_open(tmp_path: Path) -> None:
    async with portal_environment(tmp_path) as env:
        await env.fault("refuse", duration=30.0)
        browser = PortalBrowser(env)
        page = await browser.sign_in_form("alice")
        assert page.status == 503
        assert browser.gateway_cookie is None
    async with portal_environment(tmp_path / "..", gateway_fail_mode="open") as env:
        await env.fault("refuse", duration=30.0)
        browser = PortalBrowser(env)
        page = await browser.sign_in_form("alice", rd="/r")
        assert (page.status, page.location) == (302, "/r")
        record = await _record(env, browser)
        assert record is not None
        assert (record.state, record.second_factor, record.user_id) == (SessionState.EXEMPT, "fail_open", "")


async def test_monosign_answers_get_the_pages_of_exchanges_login(tmp_path: Path) -> None:
    async with portal_environment(tmp_path) as env:
        carol = await PortalBrowser(env).sign_in_form("carol")  # not assigned to the application (code 22)
        assert carol.status == 403
        assert "No access to this application" in carol.text
        await env.fault("code12")
        page = await PortalBrowser(env).sign_in_form("alice")
        assert page.status == 503
        assert "Sign-in is not available" in page.text


async def test_a_reload_rebuilds_a_changed_backend_and_keeps_the_others(tmp_path: Path) -> None:
    async with portal_environment(tmp_path) as env:
        sites = env.gateway.state.sites
        assert isinstance(sites, Sites)
        portal = env.gateway.state.feature(PORTAL)
        wiki = portal.first_factors.site("wiki")
        assert wiki is not None
        other = tmp_path / "other-users.yaml"
        other.write_text(json.dumps({"users": {"alice": {"password": fast_hash("new password")}}}), encoding="utf-8")
        config_dir = tmp_path / "next"
        config_dir.mkdir()
        path = write_config(config_dir, [portal_site("app", APP_HOST, users_file=str(other)),
                                         portal_site("wiki", "wiki.corp.example",
                                                     users_file=str(tmp_path / "users.yaml"))])
        sites.swap(load_config(path))
        assert portal.first_factors.site("wiki") is wiki
        assert (await PortalBrowser(env).sign_in_form("alice")).status == 200  # the old password: no more
        assert (await PortalBrowser(env).sign_in_form("alice", "new password")).status == 302

        # A new users file that cannot be used refuses the configuration (the backend of a file
        # that stays is the one to re-read it, keeping what it read before: tests/identity).
        bad_users = tmp_path / "bad-users.yaml"
        bad_users.write_text("users: {alice: {password: not-a-hash}}", encoding="utf-8")
        broken = tmp_path / "broken"
        broken.mkdir()
        path = write_config(broken, [portal_site("app", APP_HOST, users_file=str(bad_users))])
        try:
            sites.swap(load_config(path))
        except ConfigError as exc:
            [problem] = exc.problems
            assert problem.location == ("sites", 0, "users_file")
        else:
            raise AssertionError("a users file that cannot be used was accepted")
        assert portal.first_factors.site("wiki") is not None  # the configuration in force stayed
        assert (await PortalBrowser(env).sign_in_form("alice", "new password")).status == 302


def test_serve_and_check_name_a_first_factor_that_cannot_be_built(tmp_path: Path) -> None:
    (tmp_path / "bad-users.yaml").write_text("users: {alice: {password: not-a-hash}}", encoding="utf-8")
    path = write_config(tmp_path, [portal_site("app", APP_HOST, users_file="bad-users.yaml")])
    settings = gateway_settings("http://127.0.0.1:1", gateway_config_file=path)
    [problem] = config_file_problems(settings)
    assert "sites[0].users_file:" in problem
    assert [result.mark for result in config_file_results(settings)] == [Mark.FAIL, Mark.FAIL]
