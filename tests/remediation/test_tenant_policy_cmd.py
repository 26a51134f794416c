"""`itdr tenants policy`: how a partner changes a tenant's remediation and triage defaults (#19 item 6)."""

from __future__ import annotations

from typing import Any

import pytest

from shared.alerts.triage import Triage
from shared.cli.ops_cmd import set_tenant_policy
from shared.platform.errors import ConfigurationError
from shared.remediation.policy import RemediationPolicies
from shared.tenants import TenantDirectory, TenantRecord

TENANT = "5f0c1c39-4e0b-4d7e-9b51-1a7d3c2a0a01"


class NoSuppressions:
    def list_suppressions(self, tenant_id: str) -> list[Any]:
        return []


def test_a_partner_changes_the_defaults_of_one_tenant(storage: Any) -> None:
    tenants = TenantDirectory(storage, cache_s=0)
    tenants.upsert(TenantRecord(tenant_id=TENANT, protected_identities=["ga@contoso.com"]))
    defaults = set_tenant_policy(tenants, TENANT)
    assert (defaults["remediation"]["default_mode"], defaults["remediation"]["auto_min_severity"]) == (
        "auto",
        "critical",
    )
    assert defaults["remediation"]["min_severity"] == "high"
    assert defaults["remediation"]["protected"] == ["ga@contoso.com"]
    assert sorted(defaults["triage"]["publish_severities"]) == ["critical", "high"]
    assert defaults["triage"]["publish_categories"] == ["integration_health"]

    out = set_tenant_policy(
        tenants,
        TENANT,
        remediation={"default_mode": "approval", "break_glass": ["BG@contoso.com"]},
        triage={"publish_severities": ["medium", "high", "critical"]},
    )
    assert (out["remediation"]["default_mode"], out["remediation"]["break_glass"]) == ("approval", ["bg@contoso.com"])
    stored = RemediationPolicies(tenants).for_tenant(TENANT)
    assert (stored.default_mode.value, stored.is_guarded("bg@contoso.com"), stored.is_guarded("GA@contoso.com")) == (
        "approval",
        True,
        True,
    )
    triage = Triage(tenants, NoSuppressions()).policy(TENANT)
    assert sorted(s.value for s in triage.publish_severities) == ["critical", "high", "medium"]


def test_an_invalid_policy_or_tenant_is_refused(storage: Any) -> None:
    tenants = TenantDirectory(storage, cache_s=0)
    tenants.upsert(TenantRecord(tenant_id=TENANT))
    with pytest.raises(ConfigurationError, match="invalid policy: default_mode"):
        set_tenant_policy(tenants, TENANT, remediation={"default_mode": "sometimes"})
    with pytest.raises(ConfigurationError, match="invalid policy: publish_sometimes"):
        set_tenant_policy(tenants, TENANT, triage={"publish_sometimes": True})
    with pytest.raises(ConfigurationError, match="no such tenant"):
        set_tenant_policy(tenants, "00000000-0000-4000-8000-000000000000", triage={})
    assert tenants.get(TENANT) == TenantRecord(tenant_id=TENANT)  # nothing stored
