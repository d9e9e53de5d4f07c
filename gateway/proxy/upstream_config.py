"""`UpstreamConfig`: what the forwarder, its pools and the pinned connections need to know about
the upstream, and nothing else (in the spirit of httpx's `Timeout` and `Limits`: a small typed
object, not the whole `Settings`). `gateway.assembly` builds it from the settings."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class UpstreamConfig:
    url: str  # may name a base path
    pool_size: int
    connect_timeout: float
    read_timeout: float
    # OWA's background requests (the ev.owa2 notification channel) may stay silent this long.
    long_poll_timeout: float
    # How long a client connection authenticated by NTLM/Negotiate may sit idle (its pinned
    # upstream connection stays as long).
    windows_auth_timeout: float
    ca_file: Path | None = None
    tls_verify: bool = True

    def ssl_context(self) -> ssl.SSLContext | None:
        """Verification on by default, with the operator's CA file when given; off only when asked."""
        if not self.url.startswith("https://"):
            return None
        context = ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.set_alpn_protocols(["http/1.1"])
        if not self.tls_verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context
