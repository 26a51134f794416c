"""TenantConfig's own rules, pinned where mutation testing found them unchecked.

Allowed countries are the union of the tenant's, every group's and the user's own, plus travel
exceptions of *that* user that have not expired (the expiry instant itself still counts); trusted
ranges need an address; a bare ``smtp:`` domain is read like an address.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.tenant_config import TenantConfig, TravelException

TENANT = "9f6a3d1e-0c4b-4e8a-9d57-2b1f0c3e4a11"
FRIDAY = datetime(2025, 11, 28, 18, 0, tzinfo=UTC)

CONFIG = TenantConfig(
    tenant_id=TENANT,
    allowed_countries=frozenset({"DE"}),
    user_groups={"megan@contoso.com": ("sales", "travel")},
    group_allowed_countries={"sales": frozenset({"FR"}), "travel": frozenset({"ES"})},
    user_allowed_countries={"megan@contoso.com": frozenset({"AT"})},
    travel_exceptions=(
        TravelException(user="megan@contoso.com", country="pt", until=FRIDAY),
        TravelException(user="bob@contoso.com", country="BR", until=FRIDAY),
    ),
)


def test_allowed_countries_are_the_union_of_tenant_groups_user_and_her_own_travel() -> None:
    assert CONFIG.allowed_countries_for("Megan@Contoso.com", at=FRIDAY - timedelta(days=1)) == {
        "DE",
        "FR",
        "ES",
        "AT",
        "PT",
    }


def test_a_travel_exception_counts_until_its_instant_and_only_for_its_user() -> None:
    assert "PT" in CONFIG.allowed_countries_for("megan@contoso.com", at=FRIDAY)
    assert "PT" not in CONFIG.allowed_countries_for("megan@contoso.com", at=FRIDAY + timedelta(seconds=1))
    assert CONFIG.allowed_countries_for("megan@contoso.com") == {"DE", "FR", "ES", "AT"}  # no time: no exceptions
    assert CONFIG.allowed_countries_for("carol@contoso.com", at=FRIDAY) == {"DE"}  # nobody else's exceptions


def test_a_trusted_range_needs_an_address() -> None:
    config = TenantConfig(tenant_id=TENANT, trusted_ip_ranges=("192.0.2.0/24",))
    assert config.is_trusted_ip("192.0.2.9") is True
    assert config.is_trusted_ip("198.51.100.9") is False
    assert config.is_trusted_ip(None) is False
    assert config.is_trusted_ip("") is False


def test_a_bare_smtp_domain_is_read_like_an_address() -> None:
    config = TenantConfig(tenant_id=TENANT, internal_domains=frozenset({"contoso.com"}))
    assert config.is_internal_address("smtp:contoso.com") is True
    assert config.is_internal_address("SMTP:sub.contoso.com") is True
    assert config.is_internal_address("smtp:evil.example") is False
    assert config.is_internal_address("<megan@contoso.com>") is True


def test_a_group_without_countries_of_its_own_adds_none() -> None:
    config = TenantConfig(
        tenant_id=TENANT, allowed_countries=frozenset({"DE"}), user_groups={"bob@contoso.com": ("ops",)}
    )
    assert config.allowed_countries_for("bob@contoso.com") == {"DE"}
