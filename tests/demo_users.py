"""The demo users' passwords, as the OWA simulator has them (gateway.sim.owa.demo_users)."""

from __future__ import annotations

from gateway.sim.owa import demo_users

# alice, bob, carol and dave.
PASSWORDS = {user.username: user.password for user in demo_users()}


def demo_password(user: str) -> str:
    """The password of a demo user named in any form: `CORP\\alice`, `alice@corp.example`, `ALICE`."""
    return PASSWORDS[user.split("\\")[-1].split("@")[0].lower()]
