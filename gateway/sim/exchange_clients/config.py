"""Knobs of the simulator's non-browser endpoints (EWS, MAPI, RPC, OAB, Autodiscover, ActiveSync).

Defaults are Exchange's; tests shrink the long ones (heartbeats, pending periods, holds).
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Virtual directories that also offer Basic next to NTLM/Negotiate (Exchange's defaults:
# Outlook Anywhere and Autodiscover do; ActiveSync offers Basic only).
DEFAULT_BASIC_VDIRS = frozenset({"rpc", "autodiscover"})


@dataclass(frozen=True, slots=True)
class ExchangeClientsConfig:
    basic_vdirs: frozenset[str] = field(default_factory=lambda: DEFAULT_BASIC_VDIRS)
    bearer_accepted: bool = False          # Authorization: Bearer … (OAuth): accepted, or 401

    # ActiveSync (MS-ASCMD): Ping holds the answer for the requested heartbeat, within these bounds.
    activesync_max_heartbeat_s: float = 3540.0
    activesync_default_heartbeat_s: float = 480.0  # a Ping without a HeartbeatInterval
    activesync_provision_required: bool = False    # answer 449 (send Provision first) to every command

    # MAPI over HTTP: PENDING keep-alives every period while a request is held.
    mapi_pending_period_ms: int = 30_000
    mapi_execute_hold_s: float = 0.0               # Connect / Execute
    mapi_notification_hold_s: float = 300.0        # NotificationWait

    # Outlook Anywhere: the Content-Length the RPC_OUT_DATA response announces (a channel's lifetime).
    rpc_out_content_length: int = 1024 * 1024 * 1024
    rpc_channel_queue: int = 64                    # IN bytes waiting for their OUT channel (chunks)

    oab_lzx_size: int = 4 * 1024 * 1024
