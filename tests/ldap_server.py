"""A real OpenLDAP slapd on 127.0.0.1 for tests: free ports, a generated slapd.conf, seed data.

    with LdapServer.running(tmp_path) as server:
        server.url                       # ldap://127.0.0.1:<port>  (StartTLS offered when tls is set)
        server.ldaps_url                 # ldaps://127.0.0.1:<port> (only with tls)
        server.stop(); server.start()    # an outage and a recovery, same ports and data

Debian's `slapd` (and `ldap-utils` for ldapadd) must be installed: skipped locally when missing,
a failure in CI (tests/tools.py). The directory (`SUFFIX`) holds:

- `cn=gateway,ou=system`: the service account (password `SERVICE_PASSWORD`), which may read people
  and groups; anonymous clients may only bind.
- people under `ou=people`: `alice` (groups staff and admins), `bob` (a non-ASCII password),
  `carol` (no userPassword: a disabled account as plain slapd has it, every bind refused),
  `dave` (`shadowExpire: 0`, the nis schema's "expired": disabled through `disabled_filter`),
  `j.doe(ext)` (a name with filter metacharacters, to show escaping still finds real entries).
- groups under `ou=groups` (groupOfNames); the memberof overlay (a module of the slapd package)
  fills the members' `memberOf`, as Active Directory does.
"""

from __future__ import annotations

import re
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.redis_server import TlsFiles, free_port
from tests.tools import require_tool

SUFFIX = "dc=example,dc=org"
PEOPLE = f"ou=people,{SUFFIX}"
GROUPS = f"ou=groups,{SUFFIX}"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PASSWORD = "root-secret"
SERVICE_DN = f"cn=gateway,ou=system,{SUFFIX}"
SERVICE_PASSWORD = "service-secret"

PASSWORDS = {
    "alice": "correct horse battery staple",
    "bob": "pässwörd Ünïcödé 日本語 ✓",
    "dave": "dave's password",
    "j.doe(ext)": "paren password",
}

_START_TIMEOUT = 15.0


def _person(uid: str, *, cn: str, mail: str, password: str | None, extra: str = "") -> str:
    lines = [
        f"dn: uid={_dn_value(uid)},{PEOPLE}",
        "objectClass: inetOrgPerson",
        *(["objectClass: shadowAccount"] if "shadow" in extra else []),
        f"uid: {uid}",
        f"cn: {cn}",
        f"sn: {cn.split()[-1]}",
        f"displayName: {cn}",
        f"mail: {mail}",
    ]
    if password is not None:
        lines.append(f"userPassword: {password}")
    if extra:
        lines.append(extra)
    return _ldif(lines)


def _dn_value(value: str) -> str:
    return "".join(f"\\{char}" if char in ',+"\\<>;=' else char for char in value)


def _ldif(lines: list[str]) -> str:
    """LDIF records; a value that is not plain ASCII is written base64 (`attr:: ...`)."""
    import base64

    out = []
    for line in lines:
        name, _, value = line.partition(": ")
        if value.isascii() and value.isprintable() and not value.startswith((" ", ":", "<")):
            out.append(line)
        else:
            out.append(f"{name}:: {base64.b64encode(value.encode()).decode()}")
    return "\n".join(out) + "\n\n"


def seed_ldif() -> str:
    return "".join([
        _ldif([f"dn: {SUFFIX}", "objectClass: dcObject", "objectClass: organization", "o: Example", "dc: example"]),
        _ldif([f"dn: ou=system,{SUFFIX}", "objectClass: organizationalUnit", "ou: system"]),
        _ldif([f"dn: {SERVICE_DN}", "objectClass: organizationalRole", "objectClass: simpleSecurityObject",
               "cn: gateway", f"userPassword: {SERVICE_PASSWORD}"]),
        _ldif([f"dn: {PEOPLE}", "objectClass: organizationalUnit", "ou: people"]),
        _ldif([f"dn: {GROUPS}", "objectClass: organizationalUnit", "ou: groups"]),
        _person("alice", cn="Alice Example", mail="alice@example.org", password=PASSWORDS["alice"]),
        _person("bob", cn="Bob Müller", mail="bob@example.org", password=PASSWORDS["bob"]),
        _person("carol", cn="Carol Locked", mail="carol@example.org", password=None),
        _person("dave", cn="Dave Expired", mail="dave@example.org", password=PASSWORDS["dave"],
                extra="shadowExpire: 0"),
        _person("j.doe(ext)", cn="John Doe", mail="jdoe@example.org", password=PASSWORDS["j.doe(ext)"]),
        _ldif([f"dn: cn=staff,{GROUPS}", "objectClass: groupOfNames", "cn: staff",
               f"member: uid=alice,{PEOPLE}", f"member: uid=bob,{PEOPLE}"]),
        _ldif([f"dn: cn=admins,{GROUPS}", "objectClass: groupOfNames", "cn: admins",
               f"member: uid=alice,{PEOPLE}"]),
    ])


class LdapServer:
    """A slapd with the seed data; with `tls`, StartTLS on `url` and TLS on `ldaps_url`."""

    def __init__(self, directory: Path, *, tls: TlsFiles | None = None, log_operations: bool = False) -> None:
        self.binary = require_tool("/usr/sbin/slapd")
        self.ldapadd = require_tool("ldapadd", "ldap-utils")
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.tls = tls
        self.log_operations = log_operations
        self.log = directory / "slapd.log"
        self.port = free_port()
        self.ldaps_port = free_port() if tls else None
        self.process: subprocess.Popen[bytes] | None = None
        self._seeded = False

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def ldaps_url(self) -> str:
        assert self.ldaps_port is not None, "started without tls"
        return f"ldaps://127.0.0.1:{self.ldaps_port}"

    def _write_config(self) -> Path:
        data = self.directory / "data"
        data.mkdir(parents=True, exist_ok=True)
        tls = ""
        if self.tls is not None:
            tls = (f"TLSCACertificateFile {self.tls.ca}\nTLSCertificateFile {self.tls.cert}\n"
                   f"TLSCertificateKeyFile {self.tls.key}\n")
        config = self.directory / "slapd.conf"
        config.write_text(
            "include /etc/ldap/schema/core.schema\n"
            "include /etc/ldap/schema/cosine.schema\n"
            "include /etc/ldap/schema/nis.schema\n"
            "include /etc/ldap/schema/inetorgperson.schema\n"
            "modulepath /usr/lib/ldap\n"
            "moduleload back_mdb\n"
            "moduleload memberof\n"
            f"pidfile {self.directory}/slapd.pid\n"
            f"argsfile {self.directory}/slapd.args\n"
            f"{tls}"
            "database mdb\n"
            "maxsize 16777216\n"
            f'suffix "{SUFFIX}"\n'
            f'rootdn "{ROOT_DN}"\n'
            f"rootpw {ROOT_PASSWORD}\n"
            f"directory {data}\n"
            "overlay memberof\n"
            "access to attrs=userPassword by anonymous auth by * none\n"
            f'access to * by dn.exact="{SERVICE_DN}" read by self read by * none\n'
        )
        return config

    def start(self) -> None:
        assert self.process is None, "already running"
        config = self._write_config()
        urls = self.url + (f" {self.ldaps_url}" if self.tls else "")
        # -d: stay in the foreground (so the test owns the process); "stats" logs every operation
        # (into a file: a pipe nobody reads would fill up and stop slapd).
        level = "stats" if self.log_operations else "0"
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [self.binary, "-f", str(config), "-h", urls, "-d", level],
                stdout=subprocess.DEVNULL, stderr=log, cwd=self.directory,
            )
        self._wait_until_listening()
        if not self._seeded:
            self._seed()
            self._seeded = True

    def _wait_until_listening(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + _START_TIMEOUT
        while True:
            if self.process.poll() is not None:
                self.process = None
                raise RuntimeError(f"slapd exited at start: {self.log.read_text(errors='replace').strip()[-800:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("slapd did not listen within 15 s") from None
                time.sleep(0.05)

    def _seed(self) -> None:
        # Through the server (not slapadd), so the memberof overlay fills memberOf.
        result = subprocess.run(
            [self.ldapadd, "-x", "-H", self.url, "-D", ROOT_DN, "-w", ROOT_PASSWORD],
            input=seed_ldif().encode(), capture_output=True, timeout=30, check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"ldapadd failed: {result.stderr.decode(errors='replace')[-800:]}")

    def stop(self) -> None:
        """Kill slapd (SIGKILL: an outage, not a clean shutdown) and wait for it."""
        if self.process is None:
            return
        self.process.kill()
        self.process.wait(timeout=10)
        self.process = None

    def bound_dns(self) -> list[str]:
        """The DNs of every simple bind so far, in order (needs `log_operations`)."""
        assert self.log_operations, "started without log_operations"
        return re.findall(r' BIND dn="([^"]*)" method=128', self.log.read_text(errors="replace"))

    @classmethod
    @contextmanager
    def running(cls, directory: Path, *, tls: TlsFiles | None = None,
                log_operations: bool = False) -> Iterator[LdapServer]:
        for attempt in range(3):  # a free port may be taken between choosing and binding it
            server = cls(directory / f"slapd-{attempt}", tls=tls, log_operations=log_operations)
            try:
                server.start()
                break
            except RuntimeError:
                server.stop()
                if attempt == 2:
                    raise
        try:
            yield server
        finally:
            server.stop()
