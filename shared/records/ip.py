"""Normalise the IP forms found in the unified audit log.

``ClientIP`` arrives as ``1.2.3.4``, ``1.2.3.4:51622``, ``[2001:db8::1]:443``, ``2001:db8::1``,
``::ffff:1.2.3.4``, a host name, an empty string or ``null``. :func:`normalize_ip` returns the
canonical address text (IPv4 dotted quad, IPv6 compressed lower case) or ``None`` when the value is
not an address. It never raises: a host name is "unknown", not an error.
"""

from __future__ import annotations

import socket
from functools import lru_cache

_AF_INET = socket.AF_INET
_AF_INET6 = socket.AF_INET6


@lru_cache(maxsize=65536)
def normalize_ip(value: str | None) -> str | None:
    """Canonical text of the address in ``value``, or None when it holds no address."""
    if not value:
        return None
    s = value.strip()
    if not s:
        return None
    if s[0] == "[":
        end = s.find("]")
        if end <= 1:
            return None
        s = s[1:end]
    elif s.count(":") == 1:
        # ipv4:port (an IPv6 address always has at least two colons)
        s = s.split(":", 1)[0]
    if "%" in s:
        s = s.split("%", 1)[0]
    try:
        packed = socket.inet_pton(_AF_INET, s)
        return socket.inet_ntop(_AF_INET, packed)
    except OSError:
        pass
    try:
        packed6 = socket.inet_pton(_AF_INET6, s)
    except OSError:
        return None
    if packed6[:12] == b"\x00" * 10 + b"\xff\xff":
        return socket.inet_ntop(_AF_INET, packed6[12:])
    return socket.inet_ntop(_AF_INET6, packed6)


def ip_version(ip: str) -> int:
    """4 or 6 for a normalised address."""
    return 6 if ":" in ip else 4
