"""The demo serves two sites from one listener: Exchange at 127.0.0.1 and the application simulator
at intranet.localhost, behind a portal site (its own sign-in) that denies /admin and leaves /health open."""

from __future__ import annotations

from gateway.demo import DEMO_APP_HOST, DemoPorts, banner, running_demo
from tests.proxy.support import raw_exchange, status_codes
from tests.sites.support import request


async def test_the_demo_serves_exchange_and_the_intranet_side_by_side() -> None:
    async with running_demo(DemoPorts(0, 0, 0, 0)) as demo:
        assert demo.app is not None
        port = int(demo.gateway_url.rsplit(":", 1)[1])
        text = banner(demo, auto_approve=False)
        assert f"{demo.gateway_url}/owa/" in text
        assert f"http://{DEMO_APP_HOST}:{port}/" in text

        host = f"{DEMO_APP_HOST}:{port}"
        assert status_codes(await raw_exchange(port, request("/", host))) == [401]  # not a browser: no redirect
        assert status_codes(await raw_exchange(port, request("/Admin/", host))) == [403]
        assert status_codes(await raw_exchange(port, request("/health", host))) == [200]
        assert list(demo.app.state.paths) == ["/health"]
        # Exchange as before, and the loopback aliases of its address still lead to it.
        assert status_codes(await raw_exchange(port, request("/", f"127.0.0.1:{port}"))) == [302]
        assert status_codes(await raw_exchange(port, request("/owa/", f"localhost:{port}"))) == [307]


async def test_the_demo_without_the_intranet_is_exchange_alone() -> None:
    async with running_demo(DemoPorts(0, 0, 0, 0), intranet=False) as demo:
        port = int(demo.gateway_url.rsplit(":", 1)[1])
        assert demo.app is None
        assert DEMO_APP_HOST not in banner(demo, auto_approve=False)
        assert status_codes(await raw_exchange(port, request("/", f"{DEMO_APP_HOST}:{port}"))) == [400]
