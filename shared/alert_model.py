"""Detector metadata, findings and alerts: the types every stage shares (this module imports nothing of the project).

`DetectorMeta` is a typed, frozen declaration validated when a detector is registered
(the pypanther ``RuleModel`` idea): an ID that matches the module name, a category from
the closed list of the ``itdr scan`` contract, a severity, MITRE ATT&CK techniques, a dedup
window, a runbook and a reference. A detector returns `Finding`s; the engine turns them into
`Alert`s with deterministic IDs, so a replay of the same evidence never doubles an alert.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]

    def upgrade(self, steps: int = 1) -> Severity:
        return _SEVERITIES[min(len(_SEVERITIES) - 1, self.rank + steps)]

    def downgrade(self, steps: int = 1) -> Severity:
        return _SEVERITIES[max(0, self.rank - steps)]


_SEVERITIES = (Severity.LOW, Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL)
_SEVERITY_RANK = {s: i for i, s in enumerate(_SEVERITIES)}


class Category(StrEnum):
    UNWANTED_LOGIN = "unwanted_login"
    CREDENTIAL_COMPROMISE = "credential_compromise"
    SHADOW_WORKFLOW = "shadow_workflow"
    EVASIVE_ACCESS = "evasive_access"
    ROGUE_APP = "rogue_app"
    PRIVILEGE_CHANGE = "privilege_change"
    DATA_EXFILTRATION = "data_exfiltration"
    DEFENSE_EVASION = "defense_evasion"
    INTEGRATION_HEALTH = "integration_health"


class Need(StrEnum):
    """What a detector needs to see or know: audit content, enrichment, configuration, state.

    Documented for each detector in ``docs/detectors.md`` (generated from the metadata), so an operator knows
    which Management Activity API content types to subscribe to and what to configure.
    """

    SIGNINS = "signins"
    DIRECTORY = "directory"
    EXCHANGE_ADMIN = "exchange_admin"
    MAILBOX_AUDIT = "mailbox_audit"
    SHAREPOINT = "sharepoint"
    GENERAL = "general"
    IP_CONTEXT = "ip_context"
    USER_HISTORY = "user_history"
    TENANT_HISTORY = "tenant_history"
    TENANT_CONFIG = "tenant_config"
    RISKY_SIGNIN = "risky_signin"
    ROGUE_APPS = "rogue_apps"
    SIGNIN_LOG = "signin_log"

    @property
    def description(self) -> str:
        return _NEED_TEXT[self]


_NEED_TEXT = {
    Need.SIGNINS: "Entra ID sign-ins (content type Audit.AzureActiveDirectory, RecordType 15)",
    Need.DIRECTORY: "Entra ID directory changes (Audit.AzureActiveDirectory, RecordType 8)",
    Need.EXCHANGE_ADMIN: "Exchange Online admin cmdlets, including Exchange Online Protection (Audit.Exchange, RecordType 1)",
    Need.MAILBOX_AUDIT: "mailbox auditing: MailItemsAccessed, UpdateInboxRules (Audit.Exchange, RecordTypes 2 and 50)",
    Need.SHAREPOINT: "SharePoint and OneDrive file operations (Audit.SharePoint, RecordType 6)",
    Need.GENERAL: "Teams / Skype for Business and Security & Compliance cmdlets (Audit.General, RecordTypes 18 and 23)",
    Need.IP_CONTEXT: "IP enrichment: location, ASN, hosting, VPN, proxy and Tor flags",
    Need.USER_HISTORY: "the user's own history kept in per-user state (quiet or lower until learned)",
    Need.TENANT_HISTORY: "tenant-wide state across users (shared networks, recent contacts, domains, destinations)",
    Need.TENANT_CONFIG: "tenant configuration: internal and approved forwarding domains, countries, trusted ranges",
    Need.RISKY_SIGNIN: "risky sign-ins marked by the sign-in detectors (raise the severity when they come first)",
    Need.ROGUE_APPS: "the RogueApps list of known malicious and abused applications",
    Need.SIGNIN_LOG: "Entra ID sign-in logs (Graph auditLogs/signIns, Entra ID P1 or higher; diagnostic settings or "
    "portal exports in itdr scan): Conditional Access, MFA steps, risk, service principal sign-ins",
}


class Learning(BaseModel):
    """A novelty detector's learning rule: how long the user and the tenant are watched before "new" means something.

    Until the user has been observed for ``user_days`` *and* the tenant for ``tenant_days`` (counted from the first
    record of each the detector's learning gate saw: ``shared.detection.learning``), the detector's activity builds
    the baseline and its findings are not raised, except those at ``while_learning`` or above: a risk signal (a
    risky sign-in of the user, an anonymous or hosting address) raised them, so they do not depend on what is new.
    In ``itdr scan`` the input's own first days are that period (``baseline_until`` in the summary).
    Detectors without a rule (known-bad infrastructure, listed rogue apps, forwarding outside the tenant, audit
    logging off...) fire from the first record.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    user_days: int = Field(ge=1, le=60)
    tenant_days: int = Field(ge=1, le=60)
    while_learning: Severity | None = Severity.HIGH
    """Findings at this severity or above are raised while learning (None: none are)."""

    def describe(self) -> str:
        """The rule in one sentence (the runbook and the generated docs say it)."""
        during = (
            f"only findings a risk signal raised to {self.while_learning.value} or above alert then"
            if self.while_learning is not None
            else "nothing alerts then"
        )
        return (
            f"Alerts only once the user has been observed for {self.user_days} days and the tenant for "
            f"{self.tenant_days} days; before that the activity builds the baseline ({during})."
        )


class DetectorMeta(BaseModel):
    """What an alert says about the detector that raised it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[a-z][a-z0-9]*(_[a-z0-9]+)+$")
    """Equals the detector's module name in ``detectors/`` and its test file ``tests/detectors/test_<id>.py``."""
    title: str = Field(min_length=5, max_length=120)
    description: str = Field(min_length=10)
    category: Category
    severity: Severity
    mitre: tuple[str, ...] = Field(min_length=1)
    dedup_window: timedelta = timedelta(hours=24)
    operations: frozenset[str] = frozenset()
    """Normalised operation names this detector reads (see ``shared.records.event.normalise_op``)."""
    runbook: str = Field(min_length=40)
    reference: HttpUrl
    false_positives: tuple[str, ...] = ()
    """Benign activity that raises the same alert (documented; tests/detectors/test_registry.py requires one)."""
    needs: tuple[Need, ...] = ()
    """What the detector reads (documented; tests/detectors/test_registry.py requires one)."""
    learning: Learning | None = None
    """A novelty detector's learning rule (None: it fires from the first record); checked at registration."""

    @field_validator("mitre")
    @classmethod
    def _mitre_ids(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        import re

        pattern = re.compile(r"^T\d{4}(\.\d{3})?$")
        bad = [t for t in v if not pattern.match(t)]
        if bad:
            raise ValueError(f"not MITRE ATT&CK technique IDs: {bad}")
        return v

    @field_validator("operations")
    @classmethod
    def _ops_normalised(cls, v: frozenset[str]) -> frozenset[str]:
        bad = [op for op in v if op != op.strip().lower() or op.endswith(".")]
        if bad:
            raise ValueError(f"operations must be normalised (lower case, no trailing '.'): {bad}")
        return v

    @field_validator("dedup_window")
    @classmethod
    def _window(cls, v: timedelta) -> timedelta:
        if not timedelta(minutes=1) <= v <= timedelta(days=30):
            raise ValueError("dedup_window must be between 1 minute and 30 days")
        return v


JsonScalar = str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class Finding:
    """One detector's verdict on one or more records."""

    detector_id: str
    tenant_id: str
    user_key: str | None
    user: str
    severity: Severity
    summary: str
    first_seen: float
    last_seen: float
    evidence_record_ids: tuple[str, ...]
    dedup_key: str
    ip: str | None = None
    context: Mapping[str, Any] = field(default_factory=dict)
    category: Category | None = None
    """The alert's category when it is not the detector's own (a detector relaying alerts of several kinds)."""
    title: str | None = None
    """The alert's title when it is not the detector's own (one source raising several kinds, e.g. feed health)."""
    mitre: tuple[str, ...] | None = None
    """The techniques when they are not the detector's own."""


def build_alert(meta: DetectorMeta, f: Finding) -> Alert:
    """The one way an alert is made: a finding of ``meta``'s detector (or system source), with its deterministic ID.

    Detection (the engine), feed health, the historical inbox-rule sweep and the remediation runner's permission
    alerts all come through here, so every alert's ``detector`` resolves to metadata with a runbook.
    """
    if f.detector_id != meta.id:
        raise ValueError(f"a finding of {f.detector_id} built with the metadata of {meta.id}")
    return Alert(
        alert_id=alert_id_for(f.tenant_id, meta.id, f.dedup_key, f.evidence_record_ids[0]),
        detector=meta.id,
        title=f.title or meta.title,
        category=f.category or meta.category,
        severity=f.severity,
        tenant_id=f.tenant_id,
        user=f.user,
        user_key=f.user_key,
        first_seen=f.first_seen,
        last_seen=f.last_seen,
        evidence_record_ids=list(f.evidence_record_ids),
        mitre=f.mitre if f.mitre is not None else meta.mitre,
        summary=f.summary,
        dedup_key=f.dedup_key,
        ip=f.ip,
        context=dict(f.context),
        runbook=meta.runbook,
    )


def alert_id_for(tenant_id: str, detector_id: str, dedup_key: str, first_evidence_id: str) -> str:
    """Deterministic alert ID: the same tenant, detector, dedup key and opening evidence give the same ID."""
    digest = hashlib.sha256(f"{tenant_id}|{detector_id}|{dedup_key}|{first_evidence_id}".encode()).hexdigest()
    return f"al-{digest[:24]}"


@dataclass(slots=True)
class Alert:
    """A finding as the SOC and the partner see it; findings with the same dedup key inside the
    detector's window merge into one alert."""

    alert_id: str
    detector: str
    title: str
    category: Category
    severity: Severity
    tenant_id: str
    user: str
    user_key: str | None
    first_seen: float
    last_seen: float
    evidence_record_ids: list[str]
    mitre: tuple[str, ...]
    summary: str
    dedup_key: str
    ip: str | None = None
    context: dict[str, Any] = field(default_factory=dict)
    count: int = 1
    runbook: str = ""

    MAX_EVIDENCE = 100

    def merge(self, finding: Finding) -> bool:
        """Fold a later finding of the same dedup key into this alert; False when nothing changed."""
        new_ids = [i for i in finding.evidence_record_ids if i not in self.evidence_record_ids]
        if not new_ids and finding.last_seen <= self.last_seen:
            return False
        room = self.MAX_EVIDENCE - len(self.evidence_record_ids)
        self.evidence_record_ids.extend(new_ids[: max(0, room)])
        self.first_seen = min(self.first_seen, finding.first_seen)
        self.last_seen = max(self.last_seen, finding.last_seen)
        if finding.severity.rank > self.severity.rank:
            self.severity = finding.severity
            self.summary = finding.summary
        self.count += 1
        return True

    def to_dict(self) -> dict[str, Any]:
        return {
            "alert_id": self.alert_id,
            "detector": self.detector,
            "title": self.title,
            "category": self.category.value,
            "severity": self.severity.value,
            "tenant_id": self.tenant_id,
            "user": self.user,
            "user_key": self.user_key,
            "first_seen": iso(self.first_seen),
            "last_seen": iso(self.last_seen),
            "evidence_record_ids": list(self.evidence_record_ids),
            "mitre": list(self.mitre),
            "summary": self.summary,
            "ip": self.ip,
            "count": self.count,
            "context": dict(self.context),
            "dedup_key": self.dedup_key,
            "runbook": self.runbook,
        }


def iso(ts: float) -> str:
    """ISO 8601 UTC text (seconds precision, 'Z') for epoch seconds."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
