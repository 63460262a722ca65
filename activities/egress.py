"""Where analysis providers and notifications may connect: the worker's egress allow-list.

Provider URLs and notification targets come from rollout authors, and the worker runs inside the
cluster, next to cloud metadata services and internal endpoints. So every outgoing request of
``activities/analysis.py`` and ``activities/notify.py`` goes through ``EgressPolicy``:

- ``ROLLOUT_EGRESS_ALLOW`` lists what may be reached, comma- or space-separated: CIDRs or IPs
  (``10.96.0.0/12``, ``192.0.2.7``), exact host names (``prometheus.monitoring.svc``) and name
  suffixes (``*.example.com``). Unset or empty: every address outside the ranges below (the default,
  so an upgrade does not turn running analyses into Errors); ``none``: nothing may be reached.
- Every address a name resolves to is checked, and aiohttp connects only to the addresses this
  policy's resolver returned, so DNS cannot point an allowed name at a refused address afterwards.
- Link-local and cloud metadata addresses (169.254.0.0/16, fe80::/10, fd00:ec2::254, 100.100.100.200),
  loopback and the unspecified/multicast ranges are refused even under a broad entry such as
  ``0.0.0.0/0`` or an allowed host name; only an entry *inside* such a range (``127.0.0.0/8`` for a
  local stack) allows it.
- Redirects are never followed by the callers (a 3xx is an answer, not a new destination).
"""

from __future__ import annotations

import fnmatch
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

__all__ = ["EGRESS_ALLOW_ENV", "EgressPolicy", "EgressRefused"]

EGRESS_ALLOW_ENV = "ROLLOUT_EGRESS_ALLOW"
# Unset: any address but the guarded ranges below (metadata, link-local, loopback stay refused).
DEFAULT_ALLOW = "0.0.0.0/0,::/0"

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Reached only through an allow entry that lies inside the range itself.
EXPLICIT_ONLY: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(n)
    for n in (
        "169.254.0.0/16",  # link-local, AWS/GCP/Azure metadata (169.254.169.254)
        "fe80::/10",  # IPv6 link-local
        "fd00:ec2::254/128",  # AWS metadata over IPv6
        "100.100.100.200/32",  # Alibaba Cloud metadata
        "127.0.0.0/8",  # loopback: the worker's own ports
        "::1/128",
        "0.0.0.0/8",  # "this host"
        "::/128",
        "224.0.0.0/4",  # multicast
        "ff00::/8",
        "255.255.255.255/32",
    )
)


class EgressRefused(Exception):
    """The destination is not on the worker's allow-list (the message is one short line)."""


def _address(text: str) -> IPAddress | None:
    try:
        ip = ipaddress.ip_address(text.strip("[]").split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped  # ::ffff:169.254.169.254 is 169.254.169.254
    return ip


@dataclass(frozen=True)
class EgressPolicy:
    """The allow-list: networks and host-name patterns (see the module doc)."""

    networks: tuple[IPNetwork, ...] = ()
    names: tuple[str, ...] = field(default=())

    @classmethod
    def parse(cls, text: str | None) -> EgressPolicy:
        """``ROLLOUT_EGRESS_ALLOW``'s value; a bad entry raises ``ValueError`` naming it."""
        networks: list[IPNetwork] = []
        names: list[str] = []
        for entry in (text or "").replace(",", " ").split():
            if any(c.isdigit() for c in entry) and ("/" in entry or _address(entry) is not None):
                try:
                    networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
                except ValueError:
                    raise ValueError(f"{EGRESS_ALLOW_ENV}: {entry!r} is not an IP or CIDR") from None
            elif entry.replace("*.", "", 1).replace("-", "").replace(".", "").isalnum():
                names.append(entry.lower().rstrip("."))
            else:
                raise ValueError(f"{EGRESS_ALLOW_ENV}: {entry!r} is not a host name, IP or CIDR")
        return cls(tuple(networks), tuple(names))

    @classmethod
    def from_env(cls, env: dict[str, str] | Any) -> EgressPolicy:
        value = (env.get(EGRESS_ALLOW_ENV) or "").strip()
        if value.lower() == "none":
            return cls()
        return cls.parse(value or DEFAULT_ALLOW)

    def __str__(self) -> str:
        return ",".join([*(str(n) for n in self.networks), *self.names]) or "(nothing)"

    # -- decisions ------------------------------------------------------------------------------------

    def _name_allowed(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        return any(host == p or (p.startswith("*.") and fnmatch.fnmatch(host, p)) for p in self.names)

    def address_allowed(self, ip: IPAddress, *, by_name: bool = False) -> bool:
        """Whether ``ip`` may be reached (``by_name``: through an allowed host name)."""
        guarded = [n for n in EXPLICIT_ONLY if n.version == ip.version and ip in n]
        for net in self.networks:
            if net.version != ip.version or ip not in net:
                continue
            if all(net.subnet_of(g) for g in guarded):  # type: ignore[arg-type]
                return True
        return by_name and not guarded

    def check_url(self, url: str) -> str:
        """Refuse a URL whose host is an address off the list; return the host (for messages)."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise EgressRefused("only http and https URLs with a host are allowed")
        host = parts.hostname
        ip = _address(host)
        if ip is not None and not self.address_allowed(ip):
            raise EgressRefused(f"{ip} is not on the worker's egress allow-list ({EGRESS_ALLOW_ENV})")
        if ip is None and not self.names and not self.networks:
            raise EgressRefused(f"{host} is not on the worker's egress allow-list ({EGRESS_ALLOW_ENV})")
        return host

    def check_resolved(self, host: str, addresses: Iterable[str]) -> None:
        """Every address ``host`` resolved to must be allowed (a name entry, or a network entry)."""
        by_name = self._name_allowed(host)
        for text in addresses:
            ip = _address(text)
            if ip is None or not self.address_allowed(ip, by_name=by_name):
                raise EgressRefused(
                    f"{host} resolves to {text}, which is not on the worker's egress allow-list "
                    f"({EGRESS_ALLOW_ENV})"
                )

    def connector(self) -> aiohttp.TCPConnector:
        """A connector that resolves through this policy (use one per session)."""
        return aiohttp.TCPConnector(resolver=_CheckingResolver(self), use_dns_cache=False)


class _CheckingResolver(AbstractResolver):
    """aiohttp resolver: the system's answers, refused unless every address is allowed."""

    def __init__(self, policy: EgressPolicy) -> None:
        self._policy = policy
        self._inner = aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        self._policy.check_resolved(host, [r["host"] for r in results])
        return results

    async def close(self) -> None:
        await self._inner.close()
