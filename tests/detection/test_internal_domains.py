"""Which mail domains count as internal: suffix matches need their dot, configured domains win.

A look-alike domain (``evilcontoso.com``) must never count as ``contoso.com``: without the dot in the
suffix match every forwarding rule to such a domain would look internal and no alert would fire.
"""

from __future__ import annotations

import pytest

from shared.detection.inbox_rules import home_domains_of, is_internal_recipient
from shared.tenant_config import TenantConfig

TENANT = "9f6a3d1e-0c4b-4e8a-9d57-2b1f0c3e4a11"
CONFIGURED = TenantConfig(
    tenant_id=TENANT,
    internal_domains=frozenset({"contoso.com"}),
    approved_forwarding_domains=frozenset({"partner.example"}),
)


@pytest.mark.parametrize(
    ("address", "internal"),
    [
        ("megan@contoso.com", True),
        ("SMTP:Megan@Contoso.COM", True),
        ("megan@eu.contoso.com", True),  # a subdomain
        ("x@evilcontoso.com", False),  # look-alike: same suffix without the dot
        ("x@contoso.com.evil.example", False),
        ("x@notcontoso.com", False),
        ("x@partner.example", True),  # approved forwarding destination
        ("x@mail.partner.example", True),
        ("x@evilpartner.example", False),
        ("x@fabrikam.com", False),
    ],
)
def test_configured_domains_match_whole_labels(address: str, internal: bool) -> None:
    assert CONFIGURED.is_internal_address(address) is internal


@pytest.mark.parametrize(
    ("address", "internal"),
    [
        ("boss@contoso.com", True),
        ("boss@sales.contoso.com", True),
        ("x@evilcontoso.com", False),
        ("x@fabrikam.com", False),
    ],
)
def test_without_configured_domains_the_owners_domain_counts(address: str, internal: bool) -> None:
    bare = TenantConfig(tenant_id=TENANT)
    homes = home_domains_of("megan@contoso.com")
    assert homes == ("contoso.com",)
    assert is_internal_recipient(address, bare, home_domains=homes) is internal


def test_configured_domains_turn_off_the_owners_domain() -> None:
    # The mailbox owner is at contoso.com, but the tenant configured fabrikam.com only: contoso.com is
    # then just another external domain (a configured list is the whole truth).
    fabrikam = TenantConfig(tenant_id=TENANT, internal_domains=frozenset({"fabrikam.com"}))
    homes = home_domains_of("megan@contoso.com")
    assert is_internal_recipient("boss@contoso.com", fabrikam, home_domains=homes) is False
    assert is_internal_recipient("boss@fabrikam.com", fabrikam, home_domains=homes) is True
