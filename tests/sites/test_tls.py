"""The listener's TLS with a configuration file: each site's certificate by SNI, swapped on reload."""

from __future__ import annotations

import asyncio
import json
import ssl
from contextlib import suppress
from pathlib import Path

import trustme
from cryptography import x509

from gateway.commands.serve import config_file_problems
from gateway.server import Gateway
from gateway.sim.app.server import running_app_sim
from tests.proxy.support import PUBLIC_HOST, gateway_settings, read_until_quiet, run_upstream, status_codes
from tests.sites.support import APP_HOST, config_text, request


def issue(ca: trustme.CA, directory: Path, name: str, host: str) -> tuple[Path, Path]:
    cert = ca.issue_cert(host)
    cert_file, key_file = directory / f"{name}.pem", directory / f"{name}.key"
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    return cert_file, key_file


async def over_tls(port: int, ca: trustme.CA, host: str, data: bytes) -> tuple[x509.Certificate, bytes]:
    """The certificate a handshake naming `host` gets (verified against the CA), and the answer to `data`."""
    client = ssl.create_default_context()
    ca.configure_trust(client)
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client, server_hostname=host)
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        writer.write(data)
        await writer.drain()
        return x509.load_der_x509_certificate(der), await read_until_quiet(reader, 2.0)
    finally:
        writer.close()
        with suppress(ConnectionError, ssl.SSLError):
            await writer.wait_closed()


async def test_each_site_gets_its_certificate_by_sni_and_a_reload_swaps_it(tmp_path: Path) -> None:
    ca = trustme.CA()
    mail_files = issue(ca, tmp_path, "mail", PUBLIC_HOST)
    app_files = issue(ca, tmp_path, "app", APP_HOST)
    async with run_upstream() as exchange, running_app_sim() as app:
        data = json.loads(config_text(exchange[0].url, app.base_url))
        for site, (cert_file, key_file) in zip(data["sites"], (mail_files, app_files), strict=True):
            site["tls"] = {"cert_file": str(cert_file), "key_file": str(key_file)}
        path = tmp_path / "gateway.yaml"
        path.write_text(json.dumps(data), encoding="utf-8")
        settings = gateway_settings(exchange[0].url, gateway_config_file=path)
        assert config_file_problems(settings) == []
        gateway = Gateway(settings, watch_interval=0.05)
        await gateway.start()
        try:
            assert gateway.main_addresses[0].startswith("https://")
            port = int(gateway.main_addresses[0].rsplit(":", 1)[1])
            certificate, answer = await over_tls(port, ca, APP_HOST, request("/hello", APP_HOST))
            assert status_codes(answer) == [200]
            first_serial = certificate.serial_number
            certificate, answer = await over_tls(port, ca, PUBLIC_HOST, request("/", PUBLIC_HOST))
            assert status_codes(answer) == [302]
            names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            assert names.get_values_for_type(x509.DNSName) == [PUBLIC_HOST]

            # A renewed certificate (same files, same configuration) is picked up by the file watch.
            issue(ca, tmp_path, "app", APP_HOST)
            async with asyncio.timeout(20):
                while (await over_tls(port, ca, APP_HOST, request("/", APP_HOST)))[0].serial_number == first_serial:
                    await asyncio.sleep(0.05)

            # A certificate that does not load refuses the reload: the one in force stays.
            app_files[0].write_text("not a certificate\n", encoding="utf-8")
            gateway.reload()
            certificate, answer = await over_tls(port, ca, APP_HOST, request("/hello", APP_HOST))
            assert status_codes(answer) == [200]
            assert certificate.serial_number != first_serial
            assert config_file_problems(settings) != []
        finally:
            await gateway.stop()
