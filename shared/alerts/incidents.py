"""Incidents: the alerts of one user in one tenant, close in time, told as one story.

Grouping. Alerts of the same tenant and user key (the object ID when known, else the lower-cased
user name, else ``_tenant`` for tenant-wide alerts) join one incident when an alert starts within
``window`` (24 h by default) of the incident's span and the whole span stays within ``max_span``
(7 days); otherwise they open a new incident. An incident holds at most ``max_alerts`` alerts; the
next one opens a new incident. The incident ID is derived from the tenant, the user key and the ID
of the alert that opened it, so the same alerts in the same order always give the same incidents,
and adding an alert that is already there (a replay) changes nothing.

The story. Alerts are ordered by attack stage, then time: sign-in → mail rule / forwarding →
access → consent / privilege → defence evasion (integration-health alerts last):

=========================  ======================================================
stage                      alert categories
=========================  ======================================================
``sign_in``                ``unwanted_login``, ``credential_compromise``
``persistence``            ``shadow_workflow`` (inbox rules, forwarding)
``access``                 ``evasive_access``, ``data_exfiltration``
``consent``                ``rogue_app``, ``privilege_change``
``defense_evasion``        ``defense_evasion``
``integration_health``     ``integration_health`` (not counted as an attack stage)
=========================  ======================================================

Severity. The highest alert severity, raised by the combination (see :func:`assess`):

- a risky sign-in followed within ``window`` by a persistence, access or consent alert: at least high;
- defence evasion together with any other attack stage: at least high;
- three or more distinct attack stages: critical.

Remediation. The actions taken for an incident are recorded in it (:class:`RemediationEntry`, one per
remediation ledger row, keyed by the row's idempotency key): the action, its target, its state
(``pending_approval`` or a terminal one), the reason and summary, the manual steps and warnings.
:meth:`IncidentBook.record_remediation` replaces an action's entry when the ledger row changed and
ignores a replayed or older notification.

Every change (an alert added or updated, a status change, a remediation entry recorded) raises
``revision`` by one; the partner delivery keys its idempotency on (incident ID, revision).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import orjson
from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError, ServiceRequestError
from azure.data.tables import TableClient, UpdateMode

from shared.alert_model import Alert, Category, Severity, iso
from shared.alerts.store import (
    MAX_HISTORY,
    AlertStatus,
    StatusChange,
    _check_change,
    chunks,
    epoch,
    get_json,
    put_json,
    storage_error,
)
from shared.platform import names
from shared.platform.errors import ConcurrencyError, NotFoundError
from shared.platform.storage import StorageClients, encode_key
from shared.records.ip import normalize_ip

IncidentStatus = AlertStatus
"""Incidents move through the same statuses as alerts: new, acknowledged, confirmed, dismissed."""


class TriageState(StrEnum):
    """Where an incident stands in the SOC queue (see :mod:`shared.alerts.triage`).

    ``awaiting_verdict``: held back from the partner until an analyst confirms or dismisses it;
    ``awaiting_confirmation``: sent to the partner at once, an analyst still confirms it;
    ``confirmed`` / ``dismissed``: an analyst's verdict (or a suppression that hid every alert).
    """

    AWAITING_VERDICT = "awaiting_verdict"
    AWAITING_CONFIRMATION = "awaiting_confirmation"
    CONFIRMED = "confirmed"
    DISMISSED = "dismissed"


QUEUE_STATES = frozenset({TriageState.AWAITING_VERDICT, TriageState.AWAITING_CONFIRMATION})
"""The states that are in the SOC's queue (waiting for an analyst)."""

TriageHook = Callable[[str], Callable[["Incident"], TriageState]]
"""tenant id → the triage state of an incident of that tenant (``shared.alerts.triage.Triage.states``)."""


def status_triage(incident: Incident) -> TriageState:
    """The triage state a status alone implies (no policy): a verdict, else awaiting a verdict."""
    if incident.status is AlertStatus.CONFIRMED:
        return TriageState.CONFIRMED
    if incident.status is AlertStatus.DISMISSED:
        return TriageState.DISMISSED
    return TriageState.AWAITING_VERDICT


TENANT_USER_KEY = "_tenant"
"""User key of alerts that name no user (tenant-wide detections, integration health)."""
MAX_ENTRY_EVIDENCE = 10
"""Evidence record IDs kept per alert inside an incident (the alert row keeps up to 100)."""
MAX_SUMMARY = 1000
SYSTEM_ACTOR = "m365-itdr"
MAX_REMEDIATIONS = 50
"""Remediation entries kept per incident (the oldest dropped first)."""
MAX_REMEDIATION_LINES = 20
"""Manual steps and warnings kept per remediation entry."""
MAX_REMEDIATION_TEXT = 2000
"""Characters kept per summary, manual step or warning."""
_RECORD_ATTEMPTS = 5


class Stage(StrEnum):
    """Attack stages, in story order."""

    SIGN_IN = "sign_in"
    PERSISTENCE = "persistence"
    ACCESS = "access"
    CONSENT = "consent"
    DEFENSE_EVASION = "defense_evasion"
    INTEGRATION_HEALTH = "integration_health"

    @property
    def order(self) -> int:
        return _STAGE_ORDER[self]

    @property
    def label(self) -> str:
        return _STAGE_LABEL[self]


_STAGE_ORDER = {s: i for i, s in enumerate(Stage)}
_STAGE_LABEL = {
    Stage.SIGN_IN: "Sign-in",
    Stage.PERSISTENCE: "Mail rule / forwarding",
    Stage.ACCESS: "Access",
    Stage.CONSENT: "Consent / privilege",
    Stage.DEFENSE_EVASION: "Defence evasion",
    Stage.INTEGRATION_HEALTH: "Integration health",
}

STAGE_OF: Mapping[Category, Stage] = {
    Category.UNWANTED_LOGIN: Stage.SIGN_IN,
    Category.CREDENTIAL_COMPROMISE: Stage.SIGN_IN,
    Category.SHADOW_WORKFLOW: Stage.PERSISTENCE,
    Category.EVASIVE_ACCESS: Stage.ACCESS,
    Category.DATA_EXFILTRATION: Stage.ACCESS,
    Category.ROGUE_APP: Stage.CONSENT,
    Category.PRIVILEGE_CHANGE: Stage.CONSENT,
    Category.DEFENSE_EVASION: Stage.DEFENSE_EVASION,
    Category.INTEGRATION_HEALTH: Stage.INTEGRATION_HEALTH,
}
ATTACK_STAGES = frozenset(Stage) - {Stage.INTEGRATION_HEALTH}
FOLLOW_UP_STAGES = frozenset({Stage.PERSISTENCE, Stage.ACCESS, Stage.CONSENT})
"""Stages that, after a risky sign-in by the same user, make an incident at least high."""


# --------------------------------------------------------------------------- what alerts carry in their context


def alert_user_key(alert: Alert) -> str:
    """The grouping key of an alert's user (object ID, else lower-cased name, else ``_tenant``)."""
    if alert.user_key:
        return alert.user_key
    if alert.user and alert.user.strip():
        return alert.user.strip().lower()
    return TENANT_USER_KEY


def context_asn(context: Mapping[str, Any]) -> int | None:
    """The autonomous system number a detector put in an alert's context (``asn`` or ``ip_info.asn``)."""
    for value in (context.get("asn"), _nested(context, "ip_info", "asn")):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.upper().removeprefix("AS").isdigit():
            return int(value.upper().removeprefix("AS"))
    return None


def context_country(context: Mapping[str, Any]) -> str | None:
    """The ISO country code in an alert's context (``country`` or ``ip_info.country``)."""
    for value in (context.get("country"), _nested(context, "ip_info", "country")):
        if isinstance(value, str) and len(value) == 2:
            return value.upper()
    return None


APP_ID_KEYS = ("app_id", "client_id", "application_id", "appid")
"""Context keys a detector may use for an OAuth application (client) ID."""


def context_app_id(context: Mapping[str, Any]) -> str | None:
    """The OAuth application (client) ID in an alert's context, lower-cased."""
    for key in APP_ID_KEYS:
        value = context.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip().lower()
    return None


def _nested(context: Mapping[str, Any], *path: str) -> Any:
    cur: Any = context
    for key in path:
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(key)
    return cur


# --------------------------------------------------------------------------- model


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One alert as it appears in an incident's story."""

    alert_id: str
    detector: str
    title: str
    category: Category
    severity: Severity
    first_seen: float
    last_seen: float
    summary: str
    user: str
    ip: str | None = None
    asn: int | None = None
    country: str | None = None
    app_id: str | None = None
    mitre: tuple[str, ...] = ()
    evidence_record_ids: tuple[str, ...] = ()
    count: int = 1

    @property
    def stage(self) -> Stage:
        return STAGE_OF[self.category]

    @classmethod
    def from_alert(cls, alert: Alert) -> TimelineEntry:
        return cls(
            alert_id=alert.alert_id,
            detector=alert.detector,
            title=alert.title,
            category=alert.category,
            severity=alert.severity,
            first_seen=float(alert.first_seen),
            last_seen=float(alert.last_seen),
            summary=alert.summary[:MAX_SUMMARY],
            user=alert.user,
            ip=normalize_ip(alert.ip) or alert.ip,
            asn=context_asn(alert.context),
            country=context_country(alert.context),
            app_id=context_app_id(alert.context),
            mitre=tuple(alert.mitre),
            evidence_record_ids=tuple(alert.evidence_record_ids[:MAX_ENTRY_EVIDENCE]),
            count=alert.count,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "alert_id": self.alert_id,
            "detector": self.detector,
            "title": self.title,
            "category": self.category.value,
            "stage": self.stage.value,
            "severity": self.severity.value,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "summary": self.summary,
            "user": self.user,
            "ip": self.ip,
            "asn": self.asn,
            "country": self.country,
            "app_id": self.app_id,
            "mitre": list(self.mitre),
            "evidence_record_ids": list(self.evidence_record_ids),
            "count": self.count,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TimelineEntry:
        return cls(
            alert_id=str(d["alert_id"]),
            detector=str(d["detector"]),
            title=str(d["title"]),
            category=Category(d["category"]),
            severity=Severity(d["severity"]),
            first_seen=float(d["first_seen"]),
            last_seen=float(d["last_seen"]),
            summary=str(d.get("summary", "")),
            user=str(d.get("user", "")),
            ip=d.get("ip"),
            asn=d.get("asn"),
            country=d.get("country"),
            app_id=d.get("app_id"),
            mitre=tuple(d.get("mitre", ())),
            evidence_record_ids=tuple(d.get("evidence_record_ids", ())),
            count=int(d.get("count", 1)),
        )


def story_order(entries: Iterable[TimelineEntry]) -> list[TimelineEntry]:
    """Entries in stage order, then by time, then by alert ID."""
    return sorted(entries, key=lambda e: (e.stage.order, e.first_seen, e.alert_id))


def assess(entries: Sequence[TimelineEntry], *, window: timedelta = timedelta(hours=24)) -> tuple[Severity, list[str]]:
    """The severity of a set of alerts of one user, and the reasons it was raised above the highest alert."""
    if not entries:
        return Severity.LOW, []
    base = max((e.severity for e in entries), key=lambda s: s.rank)
    severity = base
    reasons: list[str] = []
    span = window / timedelta(seconds=1)
    hours = f"{span / 3600:g} h"
    sign_ins = [e for e in entries if e.stage is Stage.SIGN_IN]
    followed = sorted(
        {
            x.stage
            for x in entries
            if x.stage in FOLLOW_UP_STAGES
            and any(s.first_seen <= x.first_seen <= s.first_seen + span for s in sign_ins)
        },
        key=lambda s: s.order,
    )
    if followed and severity.rank < Severity.HIGH.rank:
        severity = Severity.HIGH
        reasons.append(f"risky sign-in followed within {hours} by {', '.join(s.label.lower() for s in followed)}")
    stages = {e.stage for e in entries} & ATTACK_STAGES
    if Stage.DEFENSE_EVASION in stages and len(stages) > 1 and severity.rank < Severity.HIGH.rank:
        severity = Severity.HIGH
        reasons.append("defence evasion together with other attack stages")
    if len(stages) >= 3 and severity is not Severity.CRITICAL:
        severity = Severity.CRITICAL
        reasons.append(
            f"{len(stages)} attack stages: {' → '.join(s.label for s in sorted(stages, key=lambda s: s.order))}"
        )
    return severity, reasons


@dataclass(frozen=True, slots=True)
class RemediationEntry:
    """One remediation action of an incident as the partner sees it (a view of its ledger row).

    ``updated_at`` is the ledger row's last change (epoch seconds), so the same row state always gives an
    equal entry. ``revision`` is the incident revision that recorded this entry (bookkeeping: not compared).
    """

    idempotency_key: str
    action: str
    target: str
    state: str
    updated_at: float
    reason: str | None = None
    summary: str = ""
    manual_steps: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    undo_of: str | None = None
    revision: int = field(default=0, compare=False)

    @property
    def terminal(self) -> bool:
        """True for a final state (everything but ``pending_approval``, ``pending`` and ``running``)."""
        return self.state not in _OPEN_REMEDIATION_STATES

    def bounded(self) -> RemediationEntry:
        """The entry with its texts cut to the stored limits."""
        return RemediationEntry(
            idempotency_key=self.idempotency_key,
            action=self.action,
            target=self.target[:MAX_REMEDIATION_TEXT],
            state=self.state,
            updated_at=float(self.updated_at),
            reason=self.reason,
            summary=self.summary[:MAX_REMEDIATION_TEXT],
            manual_steps=tuple(s[:MAX_REMEDIATION_TEXT] for s in self.manual_steps[:MAX_REMEDIATION_LINES]),
            warnings=tuple(w[:MAX_REMEDIATION_TEXT] for w in self.warnings[:MAX_REMEDIATION_LINES]),
            undo_of=self.undo_of,
            revision=self.revision,
        )

    def supersedes(self, other: RemediationEntry) -> bool:
        """Whether this entry should replace ``other`` (same action): newer, or as new and final."""
        if self == other:
            return False
        if self.updated_at != other.updated_at:
            return self.updated_at > other.updated_at
        return self.terminal or not other.terminal

    def to_dict(self) -> dict[str, Any]:
        return {
            "idempotency_key": self.idempotency_key,
            "action": self.action,
            "target": self.target,
            "state": self.state,
            "updated_at": self.updated_at,
            "reason": self.reason,
            "summary": self.summary,
            "manual_steps": list(self.manual_steps),
            "warnings": list(self.warnings),
            "undo_of": self.undo_of,
            "revision": self.revision,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RemediationEntry:
        return cls(
            idempotency_key=str(d["idempotency_key"]),
            action=str(d["action"]),
            target=str(d.get("target", "")),
            state=str(d["state"]),
            updated_at=float(d["updated_at"]),
            reason=d.get("reason"),
            summary=str(d.get("summary", "")),
            manual_steps=tuple(str(s) for s in d.get("manual_steps", ())),
            warnings=tuple(str(w) for w in d.get("warnings", ())),
            undo_of=d.get("undo_of"),
            revision=int(d.get("revision", 0)),
        )


_OPEN_REMEDIATION_STATES = frozenset({"pending_approval", "pending", "running"})


@dataclass(slots=True)
class Incident:
    """The alerts of one user in one tenant within the grouping window, in story order."""

    incident_id: str
    tenant_id: str
    user_key: str
    user: str
    entries: list[TimelineEntry] = field(default_factory=list)
    severity: Severity = Severity.LOW
    severity_reasons: list[str] = field(default_factory=list)
    status: AlertStatus = AlertStatus.NEW
    history: list[StatusChange] = field(default_factory=list)
    revision: int = 0
    updated_at: float = 0.0
    remediation: list[RemediationEntry] = field(default_factory=list)
    """The incident's remediation actions, in the order they were first recorded."""
    triage: TriageState = TriageState.AWAITING_VERDICT
    """Its place in the SOC queue (set by the book's triage hook on every change)."""
    escalations: list[str] = field(default_factory=list)
    """Why it was raised to the partner at once whatever its severity (the same attacker in other tenants)."""

    @property
    def alert_ids(self) -> list[str]:
        return [e.alert_id for e in self.entries]

    @property
    def first_seen(self) -> float:
        return min((e.first_seen for e in self.entries), default=0.0)

    @property
    def last_seen(self) -> float:
        return max((e.last_seen for e in self.entries), default=0.0)

    @property
    def stages(self) -> list[Stage]:
        return sorted({e.stage for e in self.entries}, key=lambda s: s.order)

    @property
    def title(self) -> str:
        who = self.user or "the tenant"
        attack = [s for s in self.stages if s in ATTACK_STAGES]
        if len(attack) >= 2:
            return f"Possible account takeover of {who}: " + " → ".join(s.label for s in attack)
        if not self.entries:
            return f"Incident for {who}"
        first = self.entries[0]
        more = len(self.entries) - 1
        return f"{first.title} ({who})" + (f" and {more} more alert{'s' if more > 1 else ''}" if more else "")

    @property
    def story(self) -> list[str]:
        """One line per alert, in story order: time, stage, title, summary."""
        return [f"{iso(e.first_seen)} {e.stage.label}: {e.title} - {e.summary}" for e in self.entries]

    def reassess(self, window: timedelta) -> None:
        """Re-sort the story and recompute the severity."""
        self.entries = story_order(self.entries)
        self.severity, self.severity_reasons = assess(self.entries, window=window)

    def fingerprint(self) -> bytes:
        """Everything that matters to a reader (not the revision or the write time)."""
        d = self.to_dict()
        d.pop("revision")
        d.pop("updated_at")
        return orjson.dumps(d, option=orjson.OPT_SORT_KEYS)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (times as ISO 8601 text)."""
        return {
            "incident_id": self.incident_id,
            "tenant_id": self.tenant_id,
            "user_key": self.user_key,
            "user": self.user,
            "title": self.title,
            "severity": self.severity.value,
            "severity_reasons": list(self.severity_reasons),
            "status": self.status.value,
            "triage": self.triage.value,
            "escalations": list(self.escalations),
            "stages": [s.value for s in self.stages],
            "first_seen": iso(self.first_seen),
            "last_seen": iso(self.last_seen),
            "revision": self.revision,
            "updated_at": iso(self.updated_at),
            "alerts": [
                {**e.to_dict(), "first_seen": iso(e.first_seen), "last_seen": iso(e.last_seen)} for e in self.entries
            ],
            "history": [{**h.to_dict(), "at": iso(h.at)} for h in self.history],
            "remediation": [{**r.to_dict(), "updated_at": iso(r.updated_at)} for r in self.remediation],
        }


def incident_id_for(tenant_id: str, user_key: str, first_alert_id: str) -> str:
    """Deterministic incident ID: the same tenant, user key and opening alert give the same ID."""
    digest = hashlib.sha256(f"{tenant_id}|{user_key}|{first_alert_id}".encode()).hexdigest()
    return f"inc-{digest[:24]}"


# --------------------------------------------------------------------------- the book


@dataclass(slots=True)
class _Working:
    incident: Incident
    etag: str | None
    before: bytes | None


class IncidentBook:
    """Groups alerts into incidents and keeps them. Use :class:`InMemoryIncidentBook` or :class:`TableIncidentBook`."""

    def __init__(
        self,
        *,
        window: timedelta = timedelta(hours=24),
        max_span: timedelta = timedelta(days=7),
        max_alerts: int = 100,
        now: Callable[[], float] = time.time,
        triage: TriageHook | None = None,
    ) -> None:
        if window <= timedelta(0) or max_span < window or max_alerts < 1:
            raise ValueError("need window > 0, max_span >= window and max_alerts >= 1")
        self.window = window
        self.max_span = max_span
        self.max_alerts = max_alerts
        self._now = now
        self._triage = triage

    def _triage_of(self, tenant_id: str) -> Callable[[Incident], TriageState]:
        return status_triage if self._triage is None else self._triage(tenant_id)

    # storage hooks ---------------------------------------------------------------------------
    def _query(
        self, tenant_id: str, *, user_key: str | None = None, since: float | None = None
    ) -> list[tuple[Incident, str | None]]:
        raise NotImplementedError

    def _write(self, tenant_id: str, items: Sequence[tuple[Incident, str | None]]) -> None:
        """Create (etag None) or replace-if-unchanged each incident; ConcurrencyError on a conflict."""
        raise NotImplementedError

    def _get(self, tenant_id: str, incident_id: str) -> tuple[Incident, str | None] | None:
        for inc, etag in self._query(tenant_id):
            if inc.incident_id == incident_id:
                return inc, etag
        return None

    # public API ------------------------------------------------------------------------------
    def add_alerts(self, alerts: Iterable[Alert], *, include_unchanged: bool = False) -> list[Incident]:
        """Fold alerts into incidents; returns the incidents that changed (each once, revision raised).

        With ``include_unchanged``, the incidents that already held these alerts unchanged are
        returned too: a redelivered message then still reaches triage and delivery, whose ledger
        keeps it from being posted twice (a crash after this call but before delivery loses nothing).
        """
        groups: dict[tuple[str, str], dict[str, Alert]] = {}
        for a in alerts:
            groups.setdefault((a.tenant_id, alert_user_key(a)), {})[a.alert_id] = a
        changed: list[Incident] = []
        by_tenant: dict[str, list[tuple[Incident, str | None]]] = {}
        win = self.window / timedelta(seconds=1)
        states: dict[str, Callable[[Incident], TriageState]] = {}
        for (tenant_id, user_key), by_id in sorted(groups.items()):
            state_of = states.get(tenant_id) or states.setdefault(tenant_id, self._triage_of(tenant_id))
            items = sorted(by_id.values(), key=lambda a: (a.first_seen, a.alert_id))
            since = min(a.first_seen for a in items) - win
            working = [
                _Working(inc, etag, inc.fingerprint())
                for inc, etag in self._query(tenant_id, user_key=user_key, since=since)
            ]
            touched = {id(self._place(alert, user_key, working)) for alert in items}
            now = self._now()
            for w in working:
                w.incident.reassess(self.window)
                w.incident.triage = state_of(w.incident)
                if w.before is None or w.incident.fingerprint() != w.before:
                    w.incident.revision += 1
                    w.incident.updated_at = now
                    by_tenant.setdefault(tenant_id, []).append((w.incident, w.etag))
                    changed.append(w.incident)
                elif include_unchanged and id(w) in touched:
                    changed.append(w.incident)
        for tenant_id, to_write in by_tenant.items():
            self._write(tenant_id, to_write)
        return changed

    def _place(self, alert: Alert, user_key: str, working: list[_Working]) -> _Working:
        entry = TimelineEntry.from_alert(alert)
        for w in working:
            for i, e in enumerate(w.incident.entries):
                if e.alert_id == entry.alert_id:
                    if e != entry:
                        w.incident.entries[i] = entry
                    return w
        win = self.window / timedelta(seconds=1)
        span = self.max_span / timedelta(seconds=1)
        fits = [
            w
            for w in working
            if len(w.incident.entries) < self.max_alerts
            and w.incident.first_seen - win <= entry.first_seen <= w.incident.last_seen + win
            and max(w.incident.last_seen, entry.last_seen) - min(w.incident.first_seen, entry.first_seen) <= span
        ]
        if fits:
            target = max(fits, key=lambda w: (w.incident.last_seen, w.incident.incident_id))
        else:
            target = _Working(
                Incident(
                    incident_id=incident_id_for(alert.tenant_id, user_key, alert.alert_id),
                    tenant_id=alert.tenant_id,
                    user_key=user_key,
                    user=alert.user,
                ),
                None,
                None,
            )
            working.append(target)
        inc = target.incident
        inc.entries.append(entry)
        if not inc.user and alert.user:
            inc.user = alert.user
        if inc.status is AlertStatus.DISMISSED:
            inc.status = AlertStatus.NEW
            inc.history = [
                *inc.history,
                StatusChange(AlertStatus.NEW, SYSTEM_ACTOR, f"reopened: new alert {alert.alert_id}", self._now()),
            ][-MAX_HISTORY:]
        return target

    def get_incident(self, tenant_id: str, incident_id: str) -> Incident:
        """One incident; NotFoundError when there is none."""
        found = self._get(tenant_id, incident_id)
        if found is None:
            raise NotFoundError("no such incident", tenant=tenant_id, incident=incident_id)
        return found[0]

    def list_incidents(
        self, tenant_id: str, *, status: AlertStatus | str | None = None, since: float | datetime | None = None
    ) -> list[Incident]:
        """The tenant's incidents (oldest first), optionally one status and those seen since a time."""
        wanted = AlertStatus(status) if status is not None else None
        found = [inc for inc, _ in self._query(tenant_id, since=epoch(since))]
        return sorted(
            (i for i in found if wanted is None or i.status == wanted), key=lambda i: (i.first_seen, i.incident_id)
        )

    def find_incident_for_alert(self, tenant_id: str, alert_id: str) -> Incident | None:
        """The incident that holds an alert, or None."""
        for inc, _ in self._query(tenant_id):
            if alert_id in inc.alert_ids:
                return inc
        return None

    def set_status(
        self, tenant_id: str, incident_id: str, status: AlertStatus | str, *, by: str, reason: str = ""
    ) -> Incident:
        """Move an incident to ``status`` (who and why recorded; the revision is raised when it changes)."""
        target = _check_change(status, by, reason, tenant_id=tenant_id, alert_id=incident_id)
        found = self._get(tenant_id, incident_id)
        if found is None:
            raise NotFoundError("no such incident", tenant=tenant_id, incident=incident_id)
        inc, etag = found
        if inc.status is target:
            return inc
        at = self._now()
        inc.status = target
        inc.history = [*inc.history, StatusChange(target, by.strip(), reason.strip(), at)][-MAX_HISTORY:]
        inc.triage = self._triage_of(tenant_id)(inc)
        inc.revision += 1
        inc.updated_at = at
        self._write(tenant_id, [(inc, etag)])
        return inc

    def escalate(self, tenant_id: str, incident_id: str, reason: str) -> tuple[Incident, bool]:
        """Record why an incident goes to the partner at once (once per reason); returns it and whether it changed.

        The triage state is recomputed and the revision raised on a change; conflicting writers are retried.
        """
        text = reason.strip()[:MAX_SUMMARY]
        for attempt in range(_RECORD_ATTEMPTS):
            found = self._get(tenant_id, incident_id)
            if found is None:
                raise NotFoundError("no such incident", tenant=tenant_id, incident=incident_id)
            inc, etag = found
            if text in inc.escalations:
                return inc, False
            inc.escalations = [*inc.escalations, text][-MAX_HISTORY:]
            inc.triage = self._triage_of(tenant_id)(inc)
            inc.revision += 1
            inc.updated_at = self._now()
            try:
                self._write(tenant_id, [(inc, etag)])
            except ConcurrencyError:
                if attempt == _RECORD_ATTEMPTS - 1:
                    raise
                continue
            return inc, True
        raise AssertionError("unreachable")  # pragma: no cover

    def list_queue(self, tenant_id: str, *, states: Iterable[TriageState] = QUEUE_STATES) -> list[Incident]:
        """The tenant's incidents in the given triage states (the SOC queue by default), oldest first."""
        wanted = frozenset(TriageState(s) for s in states)
        return [i for i in self.list_incidents(tenant_id) if i.triage in wanted]

    def record_remediation(self, tenant_id: str, incident_id: str, entry: RemediationEntry) -> tuple[Incident, bool]:
        """Record the state of one remediation action in its incident; returns the incident and whether it changed.

        The entry replaces the action's earlier entry (same idempotency key) when it is newer; an equal
        entry (a replayed notification) or an older one changes nothing, so the revision is raised once per
        recorded state. Conflicting writers are retried on a fresh read. NotFoundError when there is no
        such incident.
        """
        fresh = entry.bounded()
        for attempt in range(_RECORD_ATTEMPTS):
            found = self._get(tenant_id, incident_id)
            if found is None:
                raise NotFoundError("no such incident", tenant=tenant_id, incident=incident_id)
            inc, etag = found
            index = next((i for i, r in enumerate(inc.remediation) if r.idempotency_key == fresh.idempotency_key), None)
            if index is not None and not fresh.supersedes(inc.remediation[index]):
                return inc, False
            recorded = replace(fresh, revision=inc.revision + 1)
            if index is None:
                inc.remediation = [*inc.remediation, recorded][-MAX_REMEDIATIONS:]
            else:
                inc.remediation[index] = recorded
            inc.revision += 1
            inc.updated_at = self._now()
            try:
                self._write(tenant_id, [(inc, etag)])
            except ConcurrencyError:
                if attempt == _RECORD_ATTEMPTS - 1:
                    raise
                continue
            return inc, True
        raise AssertionError("unreachable")  # pragma: no cover


# --------------------------------------------------------------------------- persistence


def incident_to_entity(inc: Incident) -> dict[str, Any]:
    ent: dict[str, Any] = {
        "PartitionKey": encode_key(inc.tenant_id),
        "RowKey": encode_key(inc.incident_id),
        "kind": "user",
        "incident_id": inc.incident_id,
        "tenant_id": inc.tenant_id,
        "user_key": inc.user_key,
        "user": inc.user,
        "first_seen": float(inc.first_seen),
        "last_seen": float(inc.last_seen),
        "severity": inc.severity.value,
        "status": inc.status.value,
        "triage": inc.triage.value,
        "revision": inc.revision,
        "updated_at": float(inc.updated_at),
        "alert_count": len(inc.entries),
        "title": inc.title,
    }
    put_json(ent, "entries", [e.to_dict() for e in inc.entries])
    put_json(ent, "severity_reasons", list(inc.severity_reasons))
    put_json(ent, "history", [h.to_dict() for h in inc.history])
    put_json(ent, "remediation", [r.to_dict() for r in inc.remediation])
    put_json(ent, "escalations", list(inc.escalations))
    return ent


def incident_from_entity(ent: Mapping[str, Any]) -> Incident:
    return Incident(
        incident_id=str(ent["incident_id"]),
        tenant_id=str(ent["tenant_id"]),
        user_key=str(ent["user_key"]),
        user=str(ent.get("user", "")),
        entries=[TimelineEntry.from_dict(e) for e in get_json(ent, "entries", [])],
        severity=Severity(ent["severity"]),
        severity_reasons=[str(r) for r in get_json(ent, "severity_reasons", [])],
        status=AlertStatus(ent.get("status") or AlertStatus.NEW),
        history=[StatusChange.from_dict(h) for h in get_json(ent, "history", [])],
        revision=int(ent.get("revision", 0)),
        updated_at=float(ent.get("updated_at", 0.0)),
        remediation=[RemediationEntry.from_dict(r) for r in get_json(ent, "remediation", [])],
        triage=TriageState(ent.get("triage") or TriageState.AWAITING_VERDICT),
        escalations=[str(r) for r in get_json(ent, "escalations", [])],
    )


class InMemoryIncidentBook(IncidentBook):
    """Incidents in memory, with the Table book's ETag semantics (for ``itdr scan`` and tests)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._rows: dict[tuple[str, str], tuple[bytes, int]] = {}
        self._lock = threading.Lock()

    def _query(
        self, tenant_id: str, *, user_key: str | None = None, since: float | None = None
    ) -> list[tuple[Incident, str | None]]:
        with self._lock:
            rows = [(blob, v) for (t, _), (blob, v) in self._rows.items() if t == tenant_id]
        out: list[tuple[Incident, str | None]] = []
        for blob, version in rows:
            inc = incident_from_entity(orjson.loads(blob))
            if (user_key is None or inc.user_key == user_key) and (since is None or inc.last_seen >= since):
                out.append((inc, str(version)))
        return out

    def _write(self, tenant_id: str, items: Sequence[tuple[Incident, str | None]]) -> None:
        with self._lock:
            for inc, etag in items:
                current = self._rows.get((tenant_id, inc.incident_id))
                if (None if current is None else str(current[1])) != etag:
                    raise ConcurrencyError(
                        "incident changed by another writer", tenant=tenant_id, incident=inc.incident_id
                    )
            for inc, _ in items:
                current = self._rows.get((tenant_id, inc.incident_id))
                version = 1 if current is None else current[1] + 1
                self._rows[(tenant_id, inc.incident_id)] = (orjson.dumps(incident_to_entity(inc)), version)


class TableIncidentBook(IncidentBook):
    """Incidents in ``TABLE_INCIDENTS``: PartitionKey = tenant ID, RowKey = incident ID; ETag-guarded writes.

    The partitions ``partner:<id>`` of the same table belong to :mod:`shared.alerts.crosstenant`.
    """

    def __init__(self, table: TableClient, **options: Any) -> None:
        super().__init__(**options)
        self._table = table

    @classmethod
    def from_storage(cls, storage: StorageClients, **options: Any) -> TableIncidentBook:
        return cls(storage.table(names.TABLE_INCIDENTS), **options)

    def _query(
        self, tenant_id: str, *, user_key: str | None = None, since: float | None = None
    ) -> list[tuple[Incident, str | None]]:
        query = "PartitionKey eq @pk and kind eq @kind"
        params: dict[str, Any] = {"pk": encode_key(tenant_id), "kind": "user"}
        if user_key is not None:
            query += " and user_key eq @uk"
            params["uk"] = user_key
        if since is not None:
            query += " and last_seen ge @since"
            params["since"] = float(since)
        try:
            return [
                (incident_from_entity(e), e.metadata.get("etag"))
                for e in self._table.query_entities(query, parameters=params)
            ]
        except (HttpResponseError, ServiceRequestError) as exc:
            raise storage_error(exc, action="query_incidents", tenant=tenant_id) from exc

    def _get(self, tenant_id: str, incident_id: str) -> tuple[Incident, str | None] | None:
        try:
            ent = self._table.get_entity(encode_key(tenant_id), encode_key(incident_id))
        except ResourceNotFoundError:
            return None
        except (HttpResponseError, ServiceRequestError) as exc:
            raise storage_error(exc, action="get_incident", tenant=tenant_id, incident=incident_id) from exc
        if ent.get("kind") != "user":
            return None
        return incident_from_entity(ent), ent.metadata.get("etag")

    def _write(self, tenant_id: str, items: Sequence[tuple[Incident, str | None]]) -> None:
        for chunk in chunks(list(items)):
            ops: list[Any] = []
            for inc, etag in chunk:
                ent = incident_to_entity(inc)
                if etag is None:
                    ops.append(("create", ent))
                else:
                    ops.append(
                        (
                            "update",
                            ent,
                            {
                                "mode": UpdateMode.REPLACE,
                                "etag": etag,
                                "match_condition": MatchConditions.IfNotModified,
                            },
                        )
                    )
            try:
                self._table.submit_transaction(ops)
            except (HttpResponseError, ServiceRequestError) as exc:
                if isinstance(exc, ResourceNotFoundError) or getattr(exc, "error_code", None) == "ResourceNotFound":
                    raise ConcurrencyError("incident deleted by another writer", tenant=tenant_id) from exc
                raise storage_error(exc, action="write_incidents", tenant=tenant_id) from exc
