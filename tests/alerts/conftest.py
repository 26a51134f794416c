"""Fixtures of the alert tests: an alert factory and a fixed clock."""

from __future__ import annotations

from typing import Any, Protocol

import pytest

from shared.alert_model import Alert, Category, Severity, alert_id_for

T0 = 1_764_000_000.0  # 2025-11-24T16:00:00Z

_TITLES = {
    Category.UNWANTED_LOGIN: "Sign-in from an anonymising proxy",
    Category.CREDENTIAL_COMPROMISE: "Password spray success",
    Category.SHADOW_WORKFLOW: "Suspicious inbox rule",
    Category.EVASIVE_ACCESS: "Mailbox access through a legacy protocol",
    Category.DATA_EXFILTRATION: "Mass download",
    Category.ROGUE_APP: "Consent to a known rogue application",
    Category.PRIVILEGE_CHANGE: "Admin role granted",
    Category.DEFENSE_EVASION: "Audit log disabled",
    Category.INTEGRATION_HEALTH: "Audit feed stopped",
}
_MITRE = {
    Category.UNWANTED_LOGIN: ("T1078",),
    Category.CREDENTIAL_COMPROMISE: ("T1110.003",),
    Category.SHADOW_WORKFLOW: ("T1564.008", "T1114.003"),
    Category.EVASIVE_ACCESS: ("T1078",),
    Category.DATA_EXFILTRATION: ("T1530",),
    Category.ROGUE_APP: ("T1528",),
    Category.PRIVILEGE_CHANGE: ("T1098",),
    Category.DEFENSE_EVASION: ("T1562.008",),
    Category.INTEGRATION_HEALTH: ("T1562",),
}


class MakeAlert(Protocol):
    def __call__(
        self,
        category: Category,
        *,
        at: float = ...,
        tenant: str = ...,
        user: str = ...,
        user_key: str | None = ...,
        severity: Severity = ...,
        ip: str | None = ...,
        detector: str | None = ...,
        evidence: tuple[str, ...] | None = ...,
        context: dict[str, Any] | None = ...,
        title: str | None = ...,
        summary: str | None = ...,
    ) -> Alert: ...


TENANT = "9f6a3d1e-0c4b-4e8a-9d57-2b1f0c3e4a11"


def _make(
    category: Category,
    *,
    at: float = T0,
    tenant: str = TENANT,
    user: str = "megan@contoso.com",
    user_key: str | None = "5b0e9a3c-1111-4c2d-9e8f-0a1b2c3d4e5f",
    severity: Severity = Severity.MEDIUM,
    ip: str | None = "198.51.100.7",
    detector: str | None = None,
    evidence: tuple[str, ...] | None = None,
    context: dict[str, Any] | None = None,
    title: str | None = None,
    summary: str | None = None,
) -> Alert:
    det = detector or f"test_{category.value}"
    ev = evidence or (f"rec-{det}-{int(at)}",)
    dedup = f"{user_key or user}|{det}"
    return Alert(
        alert_id=alert_id_for(tenant, det, dedup, ev[0]),
        detector=det,
        title=title or _TITLES[category],
        category=category,
        severity=severity,
        tenant_id=tenant,
        user=user,
        user_key=user_key,
        first_seen=at,
        last_seen=at + 60,
        evidence_record_ids=list(ev),
        mitre=_MITRE[category],
        summary=summary or f"{_TITLES[category]} for {user}",
        dedup_key=dedup,
        ip=ip,
        context=dict(context or {}),
        runbook="Check the sign-in logs of the user, then revoke sessions if the activity is not theirs.",
    )


@pytest.fixture
def make_alert() -> MakeAlert:
    """Build a schema-shaped alert of a category (deterministic ID from tenant, detector and evidence)."""
    return _make


class Clock:
    """A settable clock for stores and emulators."""

    def __init__(self, start: float = T0 + 3600) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    """A clock one hour after T0 (2025-11-24T16:00:00Z); ``advance`` moves it."""
    return Clock()
