"""TLS by SNI: each site's certificate for its hosts, the default for the rest, swapped whole on reload."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest
import trustme
from cryptography import x509

from gateway.config import parse_config
from gateway.config.model import GatewayConfig
from gateway.tls import CertificateError, SniCertificates


def issue(ca: trustme.CA, directory: Path, name: str, *hosts: str) -> tuple[Path, Path]:
    cert = ca.issue_cert(*hosts)
    cert_file, key_file = directory / f"{name}.pem", directory / f"{name}.key"
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    return cert_file, key_file


def config(directory: Path, sites: dict[str, tuple[Path, Path] | None]) -> GatewayConfig:
    lines = ["sites:"]
    for name, files in sites.items():
        lines += [f"  - name: {name}", f"    hosts: [{name}.example.com]", "    upstream: http://127.0.0.1:9",
                  "    profile: passthrough", "    rules: [{action: bypass}]"]
        if files is not None:
            lines += ["    tls:", f"      cert_file: {files[0]}", f"      key_file: {files[1]}"]
    return parse_config("\n".join(lines) + "\n", base_dir=directory)


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


async def _served_names(context: ssl.SSLContext, ca: trustme.CA, *server_names: str | None) -> list[str]:
    """The subject alternative names of the certificate a real handshake gets, per SNI name."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    client = ssl.create_default_context()
    ca.configure_trust(client)
    client.check_hostname = False
    names = []
    try:
        for server_name in server_names:
            _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client,
                                                      server_hostname=server_name or "")
            der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
            certificate = x509.load_der_x509_certificate(der)
            sans = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            names.append(",".join(sans.get_values_for_type(x509.DNSName)))
            writer.close()
    finally:
        server.close()
        await server.wait_closed()
    return names


@pytest.fixture
def files(tmp_path: Path, ca: trustme.CA) -> dict[str, tuple[Path, Path]]:
    return {
        "default": issue(ca, tmp_path, "default", "gateway.example.com"),
        "wiki": issue(ca, tmp_path, "wiki", "wiki.example.com"),
        "crm": issue(ca, tmp_path, "crm", "crm.example.com"),
    }


async def test_each_site_gets_its_certificate_and_others_the_default(tmp_path: Path, ca: trustme.CA,
                                                                      files: dict[str, tuple[Path, Path]]) -> None:
    certificates = SniCertificates(files["default"], config(tmp_path, {"wiki": files["wiki"], "crm": files["crm"],
                                                                       "plain": None}))
    served = await _served_names(certificates.listener_context, ca, "wiki.example.com", "CRM.Example.com",
                                 "plain.example.com", "unknown.example.com", None)
    assert served == ["wiki.example.com", "crm.example.com", "gateway.example.com", "gateway.example.com",
                      "gateway.example.com"]


async def test_a_reload_swaps_certificates_for_new_handshakes(tmp_path: Path, ca: trustme.CA,
                                                              files: dict[str, tuple[Path, Path]]) -> None:
    certificates = SniCertificates(files["default"], config(tmp_path, {"wiki": files["wiki"]}))
    renewed = issue(ca, tmp_path, "wiki-renewed", "wiki.example.com", "wiki2.example.com")
    certificates.reload(config(tmp_path, {"wiki": renewed}))
    served = await _served_names(certificates.listener_context, ca, "wiki.example.com")
    assert served == ["wiki.example.com,wiki2.example.com"]


async def test_a_certificate_that_does_not_load_keeps_the_old_ones(tmp_path: Path, ca: trustme.CA,
                                                                   files: dict[str, tuple[Path, Path]]) -> None:
    certificates = SniCertificates(files["default"], config(tmp_path, {"wiki": files["wiki"]}))
    broken = tmp_path / "broken.pem"
    broken.write_text("-----BEGIN CERTIFICATE-----\nnot one\n-----END CERTIFICATE-----\n")
    with pytest.raises(CertificateError, match=r"broken\.pem"):
        certificates.reload(config(tmp_path, {"wiki": (broken, files["wiki"][1])}))
    mismatched = (files["crm"][0], files["wiki"][1])  # a certificate with another certificate's key
    with pytest.raises(CertificateError):
        certificates.reload(config(tmp_path, {"wiki": mismatched}))
    assert await _served_names(certificates.listener_context, ca, "wiki.example.com") == ["wiki.example.com"]


def test_without_any_certificate_it_says_what_to_set(tmp_path: Path) -> None:
    with pytest.raises(CertificateError, match="GATEWAY_TLS_CERT_FILE"):
        SniCertificates(None, config(tmp_path, {"plain": None}))
