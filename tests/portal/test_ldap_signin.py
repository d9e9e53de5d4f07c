"""A portal site with the `ldap` first factor against a real slapd (tests/ldap_server.py): the whole
sign-in, the same page for a wrong password and an unknown name, a stopped directory, and what
`monosign-gateway check` says about the directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.commands.check import Mark, check_portal_sites
from gateway.mfa.flow import FLOW
from gateway.sessions.base import SessionState
from tests.ldap_server import GROUPS, PASSWORDS, PEOPLE, SERVICE_DN, SERVICE_PASSWORD, LdapServer
from tests.portal.kit import APP_HOST, PortalBrowser, portal_environment, portal_site, write_config
from tests.proxy.support import gateway_settings


@pytest.fixture
def slapd(tmp_path: Path) -> Iterator[LdapServer]:
    with LdapServer.running(tmp_path / "slapd") as server:
        yield server


def ldap_sites(directory: Path, server: LdapServer, **ldap: Any) -> list[dict[str, Any]]:
    (directory / "ldap-password").write_text(SERVICE_PASSWORD + "\n", encoding="utf-8")
    settings = {"url": server.url, "allow_plaintext": True, "base_dn": PEOPLE, "bind_dn": SERVICE_DN,
                "bind_password_file": "ldap-password", "group_filter": "(member={dn})", "group_base_dn": GROUPS,
                "timeout": 5, **ldap}
    return [portal_site("app", APP_HOST, first_factor="ldap", ldap=settings)]


async def test_an_ldap_sign_in_end_to_end(tmp_path: Path, slapd: LdapServer) -> None:
    async with portal_environment(tmp_path, sites=ldap_sites(tmp_path, slapd)) as env:
        browser = PortalBrowser(env)
        first = await browser.sign_in_form("alice", PASSWORDS["alice"], rd="/dashboard")
        assert (first.status, first.location) == (302, "/_gateway/mfa")
        cookie = browser.gateway_cookie
        assert cookie is not None
        store = env.gateway.state.feature(FLOW).store
        pending = await store.load(cookie)
        assert pending is not None
        assert (pending.first_factor, pending.user_name, pending.site) == ("ldap", "alice", "app")
        assert pending.groups == ["admins", "staff"]
        assert pending.display_name == "Alice Example"
        await browser.mfa_page()
        final = await browser.verify(await env.code("alice"))
        assert (final.status, final.location) == (302, "/dashboard")
        record = await store.load(browser.gateway_cookie or "")
        assert record is not None
        assert record.state is SessionState.COMPLETE

        wrong = await PortalBrowser(env).sign_in_form("alice", "not it")
        unknown = await PortalBrowser(env).sign_in_form("nobody*)(uid=*", "not it")
        for page in (wrong, unknown):
            assert page.status == 200
            assert "The user name or password is not correct." in page.text

        slapd.stop()
        down = PortalBrowser(env)
        page = await down.sign_in_form("alice", PASSWORDS["alice"])
        assert page.status == 503  # fail closed, a clear page, whoever it is
        assert down.gateway_cookie is None


async def test_check_names_each_directory_problem(tmp_path: Path, slapd: LdapServer) -> None:
    def settings_for(**ldap: Any) -> Any:
        directory = tmp_path / f"case-{len(list(tmp_path.glob('case-*')))}"
        directory.mkdir()
        path = write_config(directory, ldap_sites(directory, slapd, **ldap))
        return gateway_settings("http://127.0.0.1:1", gateway_config_file=path)

    good = await check_portal_sites(settings_for(), "alice")
    assert [result.mark for result in good] == [Mark.OK] * 4
    assert good[-1].title.endswith(f"user: found uid=alice,{PEOPLE}")

    missing = await check_portal_sites(settings_for(), "nobody")
    assert missing[-1].mark is Mark.FAIL
    assert "user_filter finds no entry" in missing[-1].title

    bad_password = settings_for()
    (bad_password.gateway_config_file.parent / "ldap-password").write_text("wrong\n", encoding="utf-8")
    refused = await check_portal_sites(bad_password, None)
    assert refused[-1].mark is Mark.FAIL
    assert "the service account's bind was refused" in refused[-1].title

    not_tls = await check_portal_sites(settings_for(url=slapd.url.replace("ldap://", "ldaps://"),
                                                    allow_plaintext=False), None)
    assert not_tls[-1].mark is Mark.FAIL
    assert "TLS" in not_tls[-1].title

    slapd.stop()
    unreachable = await check_portal_sites(settings_for(), None)
    assert [result.mark for result in unreachable] == [Mark.FAIL]
    assert "cannot reach the directory" in unreachable[0].title


async def test_check_says_what_a_file_or_monosign_site_lacks(tmp_path: Path) -> None:
    path = write_config(tmp_path, [portal_site("app", APP_HOST),
                                   portal_site("push", "push.corp.example", first_factor="monosign")])
    results = await check_portal_sites(gateway_settings("http://127.0.0.1:1", gateway_config_file=path), None)
    assert [result.mark for result in results] == [Mark.OK, Mark.FAIL]
    assert "holds 4 user(s)" in results[0].title
    assert "GATEWAY_MFA_NUMBER_MATCHING" in results[1].title
    on = gateway_settings("http://127.0.0.1:1", gateway_config_file=path, gateway_mfa_number_matching=True)
    assert [result.mark for result in await check_portal_sites(on, None)] == [Mark.OK, Mark.OK]
