"""Tenant configuration that detectors read: internal domains, allowed countries, trusted ranges.

The same model is filled from ``itdr scan --config`` (JSON) and, deployed, from the tenants table.
"""

from __future__ import annotations

import ipaddress
from datetime import datetime
from functools import cached_property

from pydantic import BaseModel, ConfigDict, Field, field_validator


class TravelException(BaseModel):
    """ "This user is in Portugal until Friday": an extra allowed country until it expires."""

    model_config = ConfigDict(frozen=True)

    user: str
    country: str = Field(min_length=2, max_length=2)
    until: datetime


class TenantConfig(BaseModel):
    """Per-tenant settings for detection (all optional: an unknown tenant gets the defaults)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tenant_id: str = ""
    name: str = ""
    partner_id: str = "default"
    cloud: str = "commercial"
    internal_domains: frozenset[str] = frozenset()
    allowed_countries: frozenset[str] = frozenset()
    trusted_ip_ranges: tuple[str, ...] = ()
    group_allowed_countries: dict[str, frozenset[str]] = Field(default_factory=dict)
    """Group name -> allowed countries; a user's groups come from ``user_groups``."""
    user_groups: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    user_allowed_countries: dict[str, frozenset[str]] = Field(default_factory=dict)
    home_countries: dict[str, str] = Field(default_factory=dict)
    """User (UPN or object ID, lower case) -> home country, seeded from Entra usageLocation."""
    travel_exceptions: tuple[TravelException, ...] = ()
    approved_forwarding_domains: frozenset[str] = frozenset()
    admin_users: frozenset[str] = frozenset()

    @field_validator("internal_domains", "approved_forwarding_domains", "admin_users", mode="before")
    @classmethod
    def _lower(cls, v: object) -> object:
        if isinstance(v, list | tuple | set | frozenset):
            return frozenset(str(x).strip().lower().lstrip("@") for x in v)
        return v

    @field_validator("allowed_countries", mode="before")
    @classmethod
    def _upper(cls, v: object) -> object:
        if isinstance(v, list | tuple | set | frozenset):
            return frozenset(str(x).strip().upper() for x in v)
        return v

    @field_validator("trusted_ip_ranges")
    @classmethod
    def _cidrs(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for cidr in v:
            ipaddress.ip_network(cidr, strict=False)
        return v

    @cached_property
    def _networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return tuple(ipaddress.ip_network(c, strict=False) for c in self.trusted_ip_ranges)

    def is_trusted_ip(self, ip: str | None) -> bool:
        if not ip or not self.trusted_ip_ranges:
            return False
        addr = ipaddress.ip_address(ip)
        return any(addr in net for net in self._networks)

    def is_internal_address(self, address: str) -> bool:
        """True when an email address (or bare domain) belongs to the tenant or an approved destination."""
        a = address.strip().lower()
        if a.startswith("smtp:"):
            a = a[5:]
        domain = a.rsplit("@", 1)[-1].strip(" >]\"'")
        if not domain:
            return True
        domains = self.internal_domains | self.approved_forwarding_domains
        return any(domain == d or domain.endswith("." + d) for d in domains)

    def allowed_countries_for(self, user: str, *, at: datetime | None = None) -> frozenset[str]:
        """Tenant, group and user allowed countries plus unexpired travel exceptions."""
        u = user.lower()
        allowed = set(self.allowed_countries)
        for group in self.user_groups.get(u, ()):
            allowed |= self.group_allowed_countries.get(group, frozenset())
        allowed |= self.user_allowed_countries.get(u, frozenset())
        if at is not None:
            allowed |= {t.country.upper() for t in self.travel_exceptions if t.user.lower() == u and at <= t.until}
        return frozenset(allowed)
