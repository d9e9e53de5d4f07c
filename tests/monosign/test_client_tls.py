"""Monosign over TLS: an untrusted certificate is "unreachable" with its own reason; MONOSIGN_CA_FILE fixes it."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiohttp import web

from gateway.assembly import monosign_client
from gateway.monosign import MonosignClient, MonosignUnreachable
from gateway.settings import Settings, load_settings


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
async def tls_monosign(ca: trustme.CA) -> AsyncIterator[str]:
    async def lookup(request: web.Request) -> web.Response:
        return web.json_response({"Success": True, "Code": 1, "Data": {
            "Id": "1", "UserName": request.query["userName"], "MfaMethods": ["Totp"]}})

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(context)
    app = web.Application()
    app.router.add_get("/api/v1.4/users/by-username", lookup)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    yield f"https://localhost:{runner.addresses[0][1]}"
    await runner.cleanup()


def settings_for(url: str, **extra: Any) -> Settings:
    return load_settings(env_file=None, monosign_api_url=url, monosign_api_key="k", monosign_api_secret="s",
                         gateway_public_url="https://mail.example.com", gateway_upstream_url="http://127.0.0.1:1",
                         **extra)


async def test_untrusted_certificate(tls_monosign: str) -> None:
    async with MonosignClient(base_url=tls_monosign, api_key="k", api_secret="s") as client:
        with pytest.raises(MonosignUnreachable) as info:
            await client.lookup_user("alice")
    assert info.value.reason == "tls_certificate"
    assert "MONOSIGN_CA_FILE" in info.value.operator_hint


async def test_ca_file_setting(tls_monosign: str, ca: trustme.CA, tmp_path: Path) -> None:
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    async with monosign_client(settings_for(tls_monosign, monosign_ca_file=ca_file)) as client:
        assert (await client.lookup_user("alice")).user_name == "alice"
    async with monosign_client(settings_for(tls_monosign, monosign_tls_verify=False)) as client:
        assert (await client.lookup_user("bob")).user_name == "bob"
