"""The `ldap` first factor against a real OpenLDAP slapd (tests/ldap_server.py) on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
import unicodedata
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.identity import Failure, FailureKind, FirstFactor, Identity
from gateway.identity.ldap_backend import LdapFirstFactor, Problem
from gateway.identity.ldap_config import LdapConfig
from tests.ldap_server import GROUPS, PASSWORDS, PEOPLE, SERVICE_DN, SERVICE_PASSWORD, LdapServer
from tests.redis_server import TlsFiles, free_port, make_tls_files

ALICE = Identity(username="alice", display_name="Alice Example", email="alice@example.org",
                 groups=("admins", "staff"), directory_id=f"uid=alice,{PEOPLE}")
BAD_CREDENTIALS = FailureKind.BAD_CREDENTIALS
REFUSED = Failure(BAD_CREDENTIALS, "bind refused (invalid credentials)")


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("ldap-tls"))


@pytest.fixture(scope="module")
def slapd(tmp_path_factory: pytest.TempPathFactory, tls_files: TlsFiles) -> Iterator[LdapServer]:
    with LdapServer.running(tmp_path_factory.mktemp("slapd"), tls=tls_files, log_operations=True) as server:
        yield server


@pytest.fixture(scope="module")
def service_password(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("secrets") / "ldap-bind-password"
    path.write_text(SERVICE_PASSWORD + "\n")
    return path


def make_config(server: LdapServer, service_password: Path, **changes: Any) -> LdapConfig:
    settings: dict[str, Any] = {
        "url": server.url, "start_tls": True, "ca_file": server.tls.ca if server.tls else None,
        "base_dn": PEOPLE, "bind_dn": SERVICE_DN, "bind_password_file": service_password,
        "timeout": 5, "pool_size": 2,
    }
    return LdapConfig(**{**settings, **changes})


@pytest.fixture
async def connect(slapd: LdapServer, service_password: Path) -> AsyncIterator[Any]:
    """connect(**config changes) -> a backend on the shared slapd, closed at the end."""
    backends: list[LdapFirstFactor] = []

    def factory(server: LdapServer = slapd, **changes: Any) -> LdapFirstFactor:
        backend = LdapFirstFactor(make_config(server, service_password, **changes))
        backends.append(backend)
        return backend

    yield factory
    for backend in backends:
        await backend.aclose()


async def test_good_login_with_groups_from_memberof(connect: Any) -> None:
    backend = connect()
    assert isinstance(backend, FirstFactor)
    assert await backend.authenticate("  alice ", PASSWORDS["alice"]) == ALICE


async def test_groups_from_a_group_search(connect: Any) -> None:
    backend = connect(group_filter="(member={dn})", group_base_dn=GROUPS)
    assert await backend.authenticate("alice", PASSWORDS["alice"]) == ALICE
    bob = await backend.authenticate("bob", PASSWORDS["bob"])
    assert isinstance(bob, Identity)
    assert bob.groups == ("staff",)
    assert bob.display_name == "Bob Müller"


async def test_the_canonical_name_is_the_directorys(connect: Any) -> None:
    outcome = await connect().authenticate("ALICE", PASSWORDS["alice"])  # uid matches ignoring case
    assert isinstance(outcome, Identity)
    assert outcome.username == "alice"


async def test_bad_password_and_unknown_user_are_one_answer(connect: Any) -> None:
    backend = connect()
    wrong = await backend.authenticate("alice", "wrong")
    unknown = await backend.authenticate("nobody", PASSWORDS["alice"])
    assert isinstance(wrong, Failure)
    assert isinstance(unknown, Failure)
    assert wrong.kind is unknown.kind is BAD_CREDENTIALS
    assert (wrong.reason, unknown.reason) == (REFUSED.reason, "unknown user")


async def test_an_unknown_user_still_costs_a_bind(connect: Any, slapd: LdapServer) -> None:
    """The same round trips whether or not the name exists: a search, then a bind with the password."""
    backend = connect()
    before = len(slapd.bound_dns())
    assert await backend.authenticate("nobody", "guess") == Failure(BAD_CREDENTIALS, "unknown user")
    assert await backend.authenticate("alice", "guess") == REFUSED
    user_binds = [dn for dn in slapd.bound_dns()[before:] if dn != SERVICE_DN]
    assert len(user_binds) == 2
    assert user_binds[0].startswith("cn=monosign-gateway-absent-")
    assert user_binds[0].endswith(f",{PEOPLE}")
    assert user_binds[1] == f"uid=alice,{PEOPLE}"


async def test_an_empty_password_is_never_an_anonymous_bind(connect: Any) -> None:
    # RFC 4513 §5.1.2: a simple bind with a DN and no password is an unauthenticated bind, which
    # slapd answers with success; the backend must refuse before it gets there.
    assert await connect().authenticate("alice", "") == Failure(BAD_CREDENTIALS, "empty password")


async def test_non_ascii_password(connect: Any) -> None:
    backend = connect()
    outcome = await backend.authenticate("bob", PASSWORDS["bob"])
    assert isinstance(outcome, Identity)
    assert outcome.username == "bob"
    # Sent as typed (UTF-8), not normalised: the decomposed spelling is another password.
    decomposed = unicodedata.normalize("NFD", PASSWORDS["bob"])
    assert decomposed != PASSWORDS["bob"]
    assert await backend.authenticate("bob", decomposed) == REFUSED


async def test_disabled_accounts(connect: Any) -> None:
    plain = connect()
    # carol has no userPassword: slapd refuses every bind, so she is indistinguishable from a wrong password.
    assert await plain.authenticate("carol", "anything") == REFUSED
    # dave's entry is "expired" (shadowExpire: 0); only disabled_filter makes the gateway refuse him.
    assert isinstance(await plain.authenticate("dave", PASSWORDS["dave"]), Identity)
    checked = connect(disabled_filter="(shadowExpire=0)")
    assert await checked.authenticate("dave", PASSWORDS["dave"]) == Failure(
        FailureKind.ACCOUNT_DISABLED, "entry matches disabled_filter")
    # Without the right password nothing says that dave exists, not even the time it takes.
    assert await checked.authenticate("dave", "guess") == REFUSED
    assert await checked.authenticate("alice", PASSWORDS["alice"]) == ALICE


INJECTIONS = [
    "*",
    "a*",
    "*)(uid=*",
    ")(uid=*",
    "admin)(|(uid=*",
    "alice)(|(uid=*",
    "*)(objectClass=*",
    "\\2a",
    "x\\2a",
    "alice\\2a",
    "\\",
    "alice\\29",
    "(|(uid=alice)(uid=bob))",
    "alice)(&)",
    "al*ce",
    "*ice",
    "alice\x00",
    "alice\x00)(uid=*",
]


@pytest.mark.parametrize("typed", INJECTIONS)
async def test_ldap_injection_in_the_user_name(connect: Any, typed: str) -> None:
    outcome = await connect().authenticate(typed, PASSWORDS["alice"])
    assert isinstance(outcome, Failure)
    assert outcome.kind is BAD_CREDENTIALS
    # Refused as a name (NUL, a lone backslash), or searched for literally and not found.
    assert outcome.reason == "unknown user" or outcome.reason.startswith("username refused")


async def test_injection_through_a_filter_with_two_placeholders(connect: Any) -> None:
    backend = connect(user_filter="(|(uid={username})(mail={username}))")
    assert await backend.authenticate("alice@example.org", PASSWORDS["alice"]) == ALICE
    for typed in ("*", "*)(uid=alice", "alice)(mail=*"):
        assert await backend.authenticate(typed, PASSWORDS["alice"]) == Failure(BAD_CREDENTIALS, "unknown user")


async def test_a_name_with_filter_characters_still_finds_its_entry(connect: Any) -> None:
    outcome = await connect().authenticate("j.doe(ext)", PASSWORDS["j.doe(ext)"])
    assert isinstance(outcome, Identity)
    assert (outcome.username, outcome.directory_id) == ("j.doe(ext)", f"uid=j.doe(ext),{PEOPLE}")


async def test_a_filter_matching_several_entries_is_a_misconfiguration(connect: Any) -> None:
    backend = connect(user_filter="(|(uid={username})(objectClass=inetOrgPerson))")
    assert await backend.authenticate("alice", PASSWORDS["alice"]) == Failure(
        FailureKind.DIRECTORY_MISCONFIGURED, "user_filter matches more than one entry")
    checks = await backend.diagnose("alice")
    assert checks[-1].problem is Problem.AMBIGUOUS_USER


async def test_ldaps_with_the_ca(connect: Any, slapd: LdapServer) -> None:
    backend = connect(url=slapd.ldaps_url, start_tls=False)
    assert await backend.authenticate("alice", PASSWORDS["alice"]) == ALICE
    assert [check.ok for check in await backend.diagnose("alice")] == [True] * 4


async def test_untrusted_certificates_fail_closed(connect: Any, slapd: LdapServer) -> None:
    for backend in (connect(url=slapd.ldaps_url, start_tls=False, ca_file=None), connect(ca_file=None)):
        outcome = await backend.authenticate("alice", PASSWORDS["alice"])
        assert isinstance(outcome, Failure)
        assert outcome.kind is FailureKind.DIRECTORY_MISCONFIGURED
        assert outcome.reason.startswith("TLS: ")
        assert "certificate" in outcome.reason
        checks = await backend.diagnose()
        assert [(check.step, check.problem) for check in checks] == [("connect", Problem.BAD_TLS)]


async def test_ldaps_to_a_plain_port_is_a_tls_problem(connect: Any, slapd: LdapServer) -> None:
    backend = connect(url=f"ldaps://127.0.0.1:{slapd.port}", start_tls=False)
    outcome = await backend.authenticate("alice", PASSWORDS["alice"])
    assert isinstance(outcome, Failure)
    assert outcome.kind is FailureKind.DIRECTORY_MISCONFIGURED
    assert outcome.reason.startswith("TLS: ")


async def test_a_certificate_for_another_host_is_refused(tmp_path: Path, service_password: Path) -> None:
    import trustme

    ca = trustme.CA()
    issued = ca.issue_cert("ldap.example.org")
    files = TlsFiles(tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem")
    issued.cert_chain_pems[0].write_to_path(str(files.cert))
    issued.private_key_pem.write_to_path(str(files.key))
    ca.cert_pem.write_to_path(str(files.ca))
    with LdapServer.running(tmp_path / "other", tls=files) as other:
        backend = LdapFirstFactor(make_config(other, service_password))
        outcome = await backend.authenticate("alice", PASSWORDS["alice"])
        await backend.aclose()
    assert isinstance(outcome, Failure)
    assert outcome.kind is FailureKind.DIRECTORY_MISCONFIGURED
    assert "mismatch" in outcome.reason or "match" in outcome.reason


async def test_diagnose(connect: Any, slapd: LdapServer, tmp_path: Path) -> None:
    good = await connect().diagnose("alice")
    assert [(check.step, check.ok) for check in good] == [
        ("connect", True), ("service account", True), ("base_dn", True), ("user", True)]
    assert good[0].detail.endswith("(StartTLS)")
    assert (await connect().diagnose("nobody"))[-1].problem is Problem.USER_NOT_FOUND
    assert (await connect(base_dn="ou=nowhere,dc=example,dc=org").diagnose())[-1].problem \
        is Problem.BASE_DN_NOT_FOUND
    wrong = tmp_path / "wrong"
    wrong.write_text("not the password")
    bad_service = connect(bind_password_file=wrong)
    assert [(check.step, check.problem) for check in await bad_service.diagnose()][-1] == (
        "service account", Problem.BAD_SERVICE_CREDENTIALS)
    assert await bad_service.authenticate("alice", PASSWORDS["alice"]) == Failure(
        FailureKind.DIRECTORY_MISCONFIGURED, "service account bind refused (bind_dn / bind_password_file)")
    nowhere = connect(url=f"ldap://127.0.0.1:{free_port()}")
    assert [(check.step, check.problem) for check in await nowhere.diagnose()] == [("connect", Problem.CANNOT_REACH)]


async def test_slapd_stopped_mid_run_fails_closed_then_recovers(tmp_path: Path, service_password: Path) -> None:
    with LdapServer.running(tmp_path) as server:
        backend = LdapFirstFactor(make_config(server, service_password, start_tls=False, ca_file=None,
                                              allow_plaintext=True))
        try:
            assert await backend.authenticate("alice", PASSWORDS["alice"]) == ALICE  # a pooled connection now
            server.stop()
            for name in ("alice", "nobody"):
                outcome = await backend.authenticate(name, PASSWORDS["alice"])
                assert isinstance(outcome, Failure)
                assert outcome.kind is FailureKind.DIRECTORY_UNREACHABLE
            server.start()
            assert await backend.authenticate("alice", PASSWORDS["alice"]) == ALICE
        finally:
            await backend.aclose()


async def test_a_directory_that_never_answers_times_out(service_password: Path) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        backend = LdapFirstFactor(LdapConfig(url=f"ldap://127.0.0.1:{port}", allow_plaintext=True, base_dn=PEOPLE,
                                             bind_dn=SERVICE_DN, bind_password_file=service_password, timeout=1))
        try:
            outcome = await backend.authenticate("alice", PASSWORDS["alice"])
        finally:
            await backend.aclose()
    assert isinstance(outcome, Failure)
    assert outcome.kind is FailureKind.DIRECTORY_UNREACHABLE


async def test_concurrent_sign_ins_share_a_small_pool(connect: Any) -> None:
    backend = connect(pool_size=2)
    names = ["alice", "bob", "nobody", "alice"] * 3
    outcomes = await asyncio.gather(*(backend.authenticate(name, PASSWORDS.get(name, "x")) for name in names))
    assert [type(outcome).__name__ for outcome in outcomes] == ["Identity", "Identity", "Failure", "Identity"] * 3


async def test_upn_binds_need_active_directory(connect: Any) -> None:
    """slapd binds DNs only, so a UPN bind is refused as a malformed name: a misconfiguration, not a
    wrong password (the UPN and DOMAIN\\user forms themselves are table-tested in test_rules.py)."""
    backend = connect(user_bind="upn", user_domain="example.org", bind_dn=None, bind_password_file=None)
    outcome = await backend.authenticate("alice", PASSWORDS["alice"])
    assert isinstance(outcome, Failure)
    assert outcome.kind is FailureKind.DIRECTORY_MISCONFIGURED
    assert "invalidDNSyntax" in outcome.reason
    bare = connect(user_bind="down_level", bind_dn=None, bind_password_file=None)
    assert await bare.authenticate("alice", PASSWORDS["alice"]) == Failure(
        BAD_CREDENTIALS, "bare name and no user_domain configured")
    checks = await bare.diagnose()
    assert [check.step for check in checks] == ["connect", "service account"]
    assert all(check.ok for check in checks)


async def test_a_closed_backend_fails_closed(slapd: LdapServer, service_password: Path) -> None:
    backend = LdapFirstFactor(make_config(slapd, service_password))
    await backend.aclose()
    assert await backend.authenticate("alice", PASSWORDS["alice"]) == Failure(
        FailureKind.DIRECTORY_UNREACHABLE, "backend closed")
