"""The main listener's TLS: one certificate per site, chosen by SNI, reloadable without a restart.

The listening socket keeps one `ssl.SSLContext` for its whole life; its SNI callback hands each new
handshake the context of the site whose host the client named (`ssl_object.context = ...`). A reload
builds every context first and then swaps the whole mapping in one assignment, so a handshake sees
either the old certificates or the new ones, never a mix, and a certificate that does not load
refuses the reload (the old certificates stay in force). A client that names no host, or a host no
site lists, gets the default certificate (`GATEWAY_TLS_CERT_FILE`, or the first site's).
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from gateway.config.model import GatewayConfig

__all__ = ["CertificateError", "SniCertificates", "server_context"]


class CertificateError(ValueError):
    """A certificate or key that does not load; the message names the files."""


def server_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    """A server context as the gateway's listener needs it: TLS 1.2+, HTTP/1.1 only."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # HTTP/1.1 only: Windows authentication is bound to the connection and cannot be multiplexed.
    context.set_alpn_protocols(["http/1.1"])
    try:
        context.load_cert_chain(str(cert_file), str(key_file))
    except (ssl.SSLError, OSError) as exc:
        detail = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or type(exc).__name__
        raise CertificateError(f"{cert_file} / {key_file}: cannot load the certificate and key ({detail})") from None
    return context


@dataclass(frozen=True, slots=True)
class _Certificates:
    default: ssl.SSLContext
    by_host: Mapping[str, ssl.SSLContext]


class SniCertificates:
    """The listener's context and the per-host contexts its SNI callback picks from."""

    def __init__(self, default: tuple[Path, Path] | None, config: GatewayConfig) -> None:
        self._default_files = default
        self._certificates = self._build(config)
        self.listener_context = server_context(*self._files_of_default(config))
        self.listener_context.sni_callback = self._choose

    def reload(self, config: GatewayConfig) -> None:
        """Load every certificate of `config`, then swap them in at once; `CertificateError` keeps the old."""
        self._certificates = self._build(config)

    def context_for(self, server_name: str | None) -> ssl.SSLContext:
        certificates = self._certificates
        if server_name is None:
            return certificates.default
        return certificates.by_host.get(server_name.lower().rstrip("."), certificates.default)

    def _choose(self, ssl_object: ssl.SSLObject | ssl.SSLSocket, server_name: str | None,
                _: ssl.SSLContext) -> None:
        ssl_object.context = self.context_for(server_name)

    def _files_of_default(self, config: GatewayConfig) -> tuple[Path, Path]:
        if self._default_files is not None:
            return self._default_files
        for site in config.sites:
            if site.tls is not None:
                return site.tls.cert_file, site.tls.key_file
        raise CertificateError("no certificate: set GATEWAY_TLS_CERT_FILE and GATEWAY_TLS_KEY_FILE, or a site's tls")

    def _build(self, config: GatewayConfig) -> _Certificates:
        loaded: dict[tuple[Path, Path], ssl.SSLContext] = {}

        def context(files: tuple[Path, Path]) -> ssl.SSLContext:
            if files not in loaded:
                loaded[files] = server_context(*files)
            return loaded[files]

        default = context(self._files_of_default(config))
        by_host = {
            host: context((site.tls.cert_file, site.tls.key_file))
            for site in config.sites if site.tls is not None
            for host in site.hosts
        }
        return _Certificates(default=default, by_host=by_host)
