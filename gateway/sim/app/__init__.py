"""A generic internal web application: the upstream of a `passthrough` or `portal` site.

It is what an intranet wiki, a dashboard or a file portal looks like to the gateway, small enough to
read in one sitting: pages, an echo of the request it received (what identity headers reached it),
a slow stream, a large download and an upload, a WebSocket echo, a health check, and an optional
form login of its own with its own session cookie. See docs/simulators.md.
"""

from gateway.sim.app.server import (
    AppSimConfig,
    RunningAppSim,
    build_app,
    running_app_sim,
)

__all__ = ["AppSimConfig", "RunningAppSim", "build_app", "running_app_sim"]
