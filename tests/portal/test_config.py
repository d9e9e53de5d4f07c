"""The portal profile's keys in the configuration file: identity_headers and assertion, each problem
named at its key and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ConfigError, parse_config
from gateway.policy.identity_headers import IdentityHeaderNames
from tests.portal.support import write_key

SITE = """\
sites:
  - name: wiki
    hosts: [wiki.example.com]
    upstream: http://10.0.0.5:8080
    profile: portal
    first_factor: monosign
    rules:
      - { action: two_factor }
"""


def problems(text: str, base_dir: Path | None = None) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        parse_config(text, source="gateway.yaml", base_dir=base_dir)
    return [str(problem) for problem in raised.value.problems]


def test_a_portal_site_is_available_with_authelia_s_headers_by_default() -> None:
    site = parse_config(SITE).sites[0]
    assert site.identity_header_names == IdentityHeaderNames()
    assert site.assertion is None
    custom = parse_config(SITE + "    identity_headers: { user: X-Forwarded-User, email: null, groups: X_Groups }\n")
    assert custom.sites[0].identity_header_names == IdentityHeaderNames(user="X-Forwarded-User", email=None,
                                                                        name="Remote-Name", groups="X_Groups")


# Names no header can have, or that the gateway writes or reads itself (in any spelling).
BAD_NAMES = [
    ("'Remote User'", "not a header name"), ("'Remote-User:'", "not a header name"), ("''", "not a header name"),
    ("'Rémote-User'", "not a header name"), ("'Remote-User\\n'", "not a header name"), ("'-_-'", "letters or digits"),
    ("Host", "the gateway writes or reads"), ("cookie", "the gateway writes or reads"),
    ("X-Forwarded-For", "the gateway writes or reads"), ("x_forwarded_for", "the gateway writes or reads"),
    ("X-Monosign-Assertion", "the gateway writes or reads"), ("Content-Length", "the gateway writes or reads"),
    ("X-Original-URL", "the gateway writes or reads"), ("Authorization", "the gateway writes or reads"),
    ("X-Request-Id", "the gateway writes or reads"), ("Transfer_Encoding", "the gateway writes or reads"),
    ("42", "expected text"), ("yes", "expected text"),
]


@pytest.mark.parametrize(("name", "message"), BAD_NAMES)
def test_a_bad_header_name_is_refused_at_its_key(name: str, message: str) -> None:
    (problem,) = problems(SITE + f"    identity_headers:\n      email: {name}\n")
    assert problem.startswith("gateway.yaml:10: sites[0].identity_headers.email: ")
    assert message in problem


@pytest.mark.parametrize("spelling", ["Remote-User", "remote_user", "REMOTEUSER", "Remote.User"])
def test_two_claims_in_one_header_are_refused(spelling: str) -> None:
    (problem,) = problems(SITE + f"    identity_headers: {{ name: {spelling} }}\n")
    assert problem.startswith("gateway.yaml:9: sites[0].identity_headers.name: ")
    assert "same header as user's" in problem


@pytest.mark.parametrize("profile", ["passthrough", "exchange"])
def test_identity_keys_belong_to_the_portal_profile(profile: str) -> None:
    text = SITE.replace("profile: portal", f"profile: {profile}").replace("    first_factor: monosign\n", "")
    text += "    identity_headers: {}\n    assertion: {enabled: false}\n"
    found = problems(text.replace("rules:\n      - { action: two_factor }\n", "rules:\n      - { action: deny }\n"))
    assert [problem.split(": ")[1] for problem in found] == ["sites[0].identity_headers", "sites[0].assertion"]


def test_assertion_keys_are_read_and_checked_at_load(tmp_path: Path) -> None:
    write_key(tmp_path / "current.pem")
    write_key(tmp_path / "previous.pem")
    write_key(tmp_path / "previous.pub", public_only=True)
    (tmp_path / "rsa.pem").write_text("-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n")
    good = parse_config(SITE + "    assertion: { key_file: current.pem, previous_key_files: [previous.pem, "
                               "previous.pub] }\n", base_dir=tmp_path)
    assertion = good.sites[0].assertion
    assert assertion is not None
    assert assertion.keys is not None
    assert len(assertion.keys.jwks()["keys"]) == 3
    assert parse_config(SITE + "    assertion: { enabled: false }\n").sites[0].assertion.keys is None  # type: ignore[union-attr]
    key_file = "gateway.yaml:9: sites[0].assertion.key_file:"
    cases = [
        ("{}", ["gateway.yaml:9: sites[0].assertion.key_file: the signing key's PEM file is needed"]),
        ("{ key_file: missing.pem }", [f"{key_file} {tmp_path}/missing.pem: cannot read"]),
        ("{ key_file: previous.pub }", [f"{key_file} {tmp_path}/previous.pub: not an unencrypted PEM private key"]),
        ("{ key_file: rsa.pem }", [f"{key_file} {tmp_path}/rsa.pem: not an unencrypted"]),
        ("{ key_file: current.pem, previous_key_files: [current.pem, rsa.pem, previous.pub] }",
         ["gateway.yaml:9: sites[0].assertion.previous_key_files[0]: the same key is listed twice",
          f"gateway.yaml:9: sites[0].assertion.previous_key_files[1]: {tmp_path}/rsa.pem: not a PEM key"]),
        ("{ key_file: current.pem, previous_key_files: [previous.pem, previous.pub, previous.pem] }",
         ["gateway.yaml:9: sites[0].assertion.previous_key_files: the same key is listed twice"]),
        ("{ enabled: 'yes', key_file: current.pem }", ["gateway.yaml:9: sites[0].assertion.enabled: "]),
        ("{ key_file: current.pem, previous_key_files: previous.pem }",
         ["gateway.yaml:9: sites[0].assertion.previous_key_files: expected a list of file paths"]),
        ("{ key_file: current.pem, algorithm: RS256 }", ["gateway.yaml:9: sites[0].assertion.algorithm: unknown key"]),
    ]
    for written, expected in cases:
        found = problems(SITE + f"    assertion: {written}\n", base_dir=tmp_path)
        assert len(found) == len(expected), (written, found)
        for problem, start in zip(found, expected, strict=True):
            assert problem.startswith(start), (written, problem)
