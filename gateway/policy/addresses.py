"""Client addresses as the network rules read them (pure).

One reading for every rule that matches a client against networks (site rules, client-class
policies, trusted proxies): the text parsed strictly, and an IPv4-mapped IPv6 address
(`::ffff:10.0.0.1`, what a dual-stack listener reports for an IPv4 client) read as its IPv4 address.
Nothing else is unwrapped: a 6to4 or Teredo address names the IPv6 host, not the IPv4 address
inside it, so it must not pass a rule written for that IPv4 network (the lockout counts them
differently, on purpose: gateway.mfa.lockout).
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

__all__ = ["IPAddress", "client_address", "unmapped"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def unmapped(address: IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@lru_cache(maxsize=4096)  # the same clients come back; bounded, so varied addresses only evict
def client_address(client_ip: str) -> IPAddress | None:
    try:
        return unmapped(ipaddress.ip_address(client_ip))
    except ValueError:
        return None
