"""An Exchange 2016/2019 OWA/ECP front end as a browser sees it: forms login, cadata cookies,
timeouts, logoff, service.svc with the canary, notification stream, large downloads and uploads.

    app = build_app(OwaSimConfig(public_timeout_s=2))
    async with running_owa_sim(config) as sim: ...   # sim.base_url, sim.state

Specification: the Exchange protocol notes, section 5 (see docs/simulators.md).
"""

from gateway.sim.owa.app import RunningOwaSim, build_app, running_owa_sim
from gateway.sim.owa.config import OwaSimConfig, SimMessage, SimUser, demo_users, load_users_file
from gateway.sim.owa.content import attachment_chunks, attachment_sha256
from gateway.sim.owa.state import STATE_KEY, OwaSimState

__all__ = [
    "STATE_KEY",
    "OwaSimConfig",
    "OwaSimState",
    "RunningOwaSim",
    "SimMessage",
    "SimUser",
    "attachment_chunks",
    "attachment_sha256",
    "build_app",
    "demo_users",
    "load_users_file",
    "running_owa_sim",
]
