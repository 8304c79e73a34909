"""URL rules shared by the handler, the destinations and the collector's command line."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

__all__ = ["is_loopback", "is_loopback_host"]


def is_loopback_host(host: str) -> bool:
    """True when ``host`` names this machine: ``localhost`` or a loopback address."""
    host = host.lower().rstrip(".").strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_loopback(url: str) -> bool:
    """True when ``url`` points at this machine (the local collector)."""
    return is_loopback_host(urlsplit(url).hostname or "")
