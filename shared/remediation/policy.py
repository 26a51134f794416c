"""Per-tenant remediation policy, the retry policy, and :func:`plan` (alerts → remediation actions).

A tenant's :class:`RemediationPolicy` says, per detector, whether its alerts remediate automatically
(``auto``, the default), wait for a person's approval (``approval``) or never remediate (``off``). What an
``auto`` detector does depends on the severity of the incident (or of the alert, when higher):

    critical (``auto_min_severity``)  → acts at once: the identity is isolated (disable + revoke sessions)
    high     (``min_severity``)       → the action waits for a person's approval
    medium, low                       → nothing is planned

So by default a takeover (an unwanted login followed by a shadow workflow, a rogue app or evasive access: a
critical incident) is contained at once, a high incident asks, and nothing below acts. ``approval_actions``
always wait for approval whatever the detector says (disabling a service principal, by default).

Protected identities are never isolated automatically: ``protected`` (the holders of the directory roles in
``protected_roles`` — Global Administrator and Privileged Role Administrator — and the app's own service
principal, read from Graph at onboarding and on each refresh, :mod:`shared.ingest.onboarding`) and
``break_glass`` (configured): their actions always wait for a person. ``never_disable`` (UPNs, object ids or
app ids) are never disabled at all: the action is recorded as skipped. All matched case-insensitively.

The runner checks the policy again when an action executes (:meth:`RemediationPolicy.recheck`): an action
queued under a policy that has since changed follows the new one.

:func:`plan` maps an incident's alerts to :class:`PlannedAction` s with :data:`DEFAULT_DETECTOR_ACTIONS`
(overridable per tenant; some only under :data:`DEFAULT_CONDITIONS`):

    risky sign-in that succeeded         → isolate_identity (disable the account + revoke sessions)
    exchange_suspicious_inbox_rule       → remove_inbox_rule (name, recipients, folder from alert.context)
    app_risky_consent                    → revoke_oauth_grant + disable_service_principal
    exchange_mailbox_forwarding          → clear_mailbox_forwarding (always needs_manual)

:class:`RetryPolicy` is the pure back-off function the runner uses (exponential with jitter, ``Retry-After``
honoured as given).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.alert_model import Alert, Severity
from shared.remediation.ledger import ActionKind, RemediationRequest
from shared.tenants import PROTECTED_ROLE_TEMPLATES, TenantRecord

__all__ = [
    "DEFAULT_CONDITIONS",
    "DEFAULT_DETECTOR_ACTIONS",
    "PROTECTED_REASON",
    "PROTECTED_ROLE_TEMPLATES",
    "Mode",
    "PlannedAction",
    "Recheck",
    "RemediationPolicy",
    "RetryPolicy",
    "plan",
]

PROTECTED_REASON = "never_disable"


class Mode(StrEnum):
    """How a detector's alerts remediate."""

    AUTO = "auto"
    APPROVAL = "approval"
    OFF = "off"


_ISOLATE = (ActionKind.ISOLATE_IDENTITY,)

DEFAULT_DETECTOR_ACTIONS: dict[str, tuple[ActionKind, ...]] = {
    "exchange_suspicious_inbox_rule": (ActionKind.REMOVE_INBOX_RULE,),
    "exchange_mailbox_forwarding": (ActionKind.CLEAR_MAILBOX_FORWARDING,),
    "app_risky_consent": (ActionKind.REVOKE_OAUTH_GRANT, ActionKind.DISABLE_SERVICE_PRINCIPAL),
    # a risky sign-in that succeeded, or a takeover: isolate the identity
    "signin_anonymizer": _ISOLATE,
    "signin_hosting_provider": _ISOLATE,
    "signin_impossible_travel": _ISOLATE,
    "signin_geo_allowlist": _ISOLATE,
    "signin_new_location": _ISOLATE,
    "signin_unfamiliar_fingerprint": _ISOLATE,
    "signin_brute_force": _ISOLATE,
    "signin_password_spray": _ISOLATE,
    "signin_mfa_failure": _ISOLATE,
    "evasive_attack_tool_user_agent": _ISOLATE,
    "evasive_legacy_or_ropc_signin": _ISOLATE,
}
"""Detector id → actions. A tenant's ``detector_actions`` overrides entries (an empty tuple: no action);
detectors not listed (and not in the tenant's map) plan nothing."""


def _when_success(alert: Alert) -> bool:
    return alert.context.get("followed_by_success") is True


def _when_spray_success(alert: Alert) -> bool:
    return "spray_flagged_at" in alert.context and bool(alert.user_key)


def _when_not_report_only(alert: Alert) -> bool:
    return alert.context.get("report_only") is not True


DEFAULT_CONDITIONS: dict[str, Callable[[Alert], bool]] = {
    "signin_brute_force": _when_success,
    "signin_password_spray": _when_spray_success,
    "signin_mfa_failure": _when_not_report_only,
}
"""Alerts of these detectors plan their default actions only when the condition holds: failed attempts alone
never disable an account (that would let an attacker lock users out); only a success after them does."""

_ALWAYS_APPROVAL_DEFAULT = frozenset({ActionKind.DISABLE_SERVICE_PRINCIPAL})
"""Disabling a service principal stops the app for the whole tenant: a person decides by default."""

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


class RetryPolicy(BaseModel):
    """Exponential back-off with jitter for transient failures, bounded by ``max_attempts``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    base_s: float = Field(default=30.0, gt=0)
    cap_s: float = Field(default=3600.0, gt=0)
    max_attempts: int = Field(default=6, ge=1, le=50)
    jitter: float = Field(default=0.5, ge=0, le=1)
    """Fraction of the back-off that is randomised (0.5: between half and the full back-off)."""
    min_delay_s: float = Field(default=1.0, ge=0)

    def delay(self, attempt: int, *, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait after attempt number ``attempt`` (1-based) failed transiently.

        A ``Retry-After`` from Graph is honoured as given (at least ``min_delay_s``); otherwise
        ``min(cap, base * 2**(attempt-1))`` with the last ``jitter`` fraction randomised.
        """
        if retry_after is not None and retry_after > 0:
            return max(self.min_delay_s, float(retry_after))
        backoff = min(self.cap_s, self.base_s * (2.0 ** max(0, attempt - 1)))
        fixed = backoff * (1.0 - self.jitter)
        return max(self.min_delay_s, fixed + rng.random() * (backoff - fixed))

    def exhausted(self, attempt: int) -> bool:
        """True when attempt number ``attempt`` was the last one allowed."""
        return attempt >= self.max_attempts


class Recheck(StrEnum):
    """What the policy says, at execution time, of an action planned earlier (:meth:`RemediationPolicy.recheck`)."""

    RUN = "run"
    APPROVAL = "approval"
    """It may no longer run without a person: back to pending_approval."""
    SKIP = "skip"
    """The policy no longer allows it at all: recorded as skipped."""


class RemediationPolicy(BaseModel):
    """What a tenant allows the remediation to do on its own. The defaults: isolate at once for a critical
    incident, ask for approval on high, nothing below (see the module docstring)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tenant_id: str = ""
    enabled: bool = True
    default_mode: Mode = Mode.AUTO
    detector_modes: dict[str, Mode] = Field(default_factory=dict)
    auto_min_severity: Severity = Severity.CRITICAL
    """An ``auto`` detector acts at once from this incident (or alert) severity; below it, approval."""
    min_severity: Severity = Severity.HIGH
    """Below this incident (or alert) severity nothing is planned."""
    protected_roles: frozenset[str] = frozenset(PROTECTED_ROLE_TEMPLATES)
    """Directory role template ids whose holders are protected (read from Graph at onboarding)."""
    protected: frozenset[str] = frozenset()
    """Identities read from Graph (role holders, the app's own service principal): never acted on automatically."""
    break_glass: frozenset[str] = frozenset()
    """Break-glass accounts (UPN or object id): never acted on automatically."""
    approval_actions: frozenset[ActionKind] = _ALWAYS_APPROVAL_DEFAULT
    """Actions that always wait for approval, whatever the detector's mode."""
    detector_actions: dict[str, tuple[ActionKind, ...]] = Field(default_factory=dict)
    never_disable: frozenset[str] = frozenset()
    """UPNs, user object ids, service principal ids or app ids that are never disabled (case-insensitive)."""
    retry: RetryPolicy = RetryPolicy()
    lease_s: float = Field(default=300.0, gt=0)
    """How long a running attempt owns its row; a crashed attempt is taken over after it."""

    @field_validator("never_disable", "protected", "break_glass", "protected_roles", mode="before")
    @classmethod
    def _fold(cls, v: object) -> object:
        if isinstance(v, str):
            v = [v]
        if isinstance(v, list | tuple | set | frozenset):
            return frozenset(str(x).strip().casefold() for x in v if str(x).strip())
        return v

    def is_protected(self, *identifiers: str | None) -> bool:
        """True when any of the identifiers (UPN, object id, app id) is on the never-disable list."""
        return any(i is not None and i.strip().casefold() in self.never_disable for i in identifiers)

    def is_guarded(self, *identifiers: str | None) -> bool:
        """True when any identifier is a protected identity or a break-glass account (approval only)."""
        return any(
            i is not None and (i.strip().casefold() in self.protected or i.strip().casefold() in self.break_glass)
            for i in identifiers
        )

    def mode_for(self, detector: str) -> Mode:
        """The mode of a detector's alerts."""
        if not self.enabled:
            return Mode.OFF
        return self.detector_modes.get(detector, self.default_mode)

    def actions_for(self, alert: Alert) -> tuple[ActionKind, ...]:
        """The actions an alert calls for (the tenant's map first, then the defaults and their conditions)."""
        if alert.detector in self.detector_actions:
            return tuple(self.detector_actions[alert.detector])
        condition = DEFAULT_CONDITIONS.get(alert.detector)
        if condition is not None and not condition(alert):
            return ()
        return DEFAULT_DETECTOR_ACTIONS.get(alert.detector, ())

    def needs_approval(self, alert: Alert, action: ActionKind, *, incident_severity: Severity | None = None) -> bool:
        """True when this alert's action waits for a person (the detector's mode is not ``off``)."""
        return self.needs_approval_for(action, alert.detector, _effective(alert.severity, incident_severity))

    def needs_approval_for(self, action: ActionKind, detector: str, severity: Severity) -> bool:
        """True when ``action`` for an alert of ``detector`` at ``severity`` (the incident's, when higher) waits."""
        if action in self.approval_actions:
            return True
        if self.mode_for(detector) is not Mode.AUTO:
            return True
        return severity.rank < self.auto_min_severity.rank

    def recheck(
        self, action: ActionKind, target: Mapping[str, Any], basis: Mapping[str, Any], *, approved: bool
    ) -> tuple[Recheck, str]:
        """What this policy says now of an action planned earlier (``basis``: the detectors and severity it was
        planned for, empty for an action requested by hand; ``approved``: a person approved it). With the reason."""
        if not self.enabled:
            return Recheck.SKIP, "policy_disabled"
        if self.is_protected(*_protected_ids(action, target)):
            return Recheck.SKIP, PROTECTED_REASON
        detectors = [str(d) for d in basis.get("detectors") or ()]
        severity = Severity(str(basis["severity"])) if basis.get("severity") else None
        if detectors and all(self.mode_for(d) is Mode.OFF for d in detectors):
            return Recheck.SKIP, "policy_off"
        if severity is not None and severity.rank < self.min_severity.rank:
            return Recheck.SKIP, "below_min_severity"
        if approved:
            return Recheck.RUN, "approved"
        if self.is_guarded(*_protected_ids(action, target)):
            return Recheck.APPROVAL, "protected_identity"
        if action in self.approval_actions:
            return Recheck.APPROVAL, "approval_action"
        if detectors and severity is not None and all(self.needs_approval_for(action, d, severity) for d in detectors):
            return Recheck.APPROVAL, "policy_requires_approval"
        return Recheck.RUN, "automatic"


@dataclass(slots=True)
class PlannedAction:
    """One action :func:`plan` proposes. ``blocked_reason`` set: recorded as skipped, never run."""

    request: RemediationRequest
    requires_approval: bool
    source_alert_ids: list[str] = field(default_factory=list)
    blocked_reason: str | None = None
    note: str = ""
    detectors: list[str] = field(default_factory=list, compare=False)
    """The detectors whose alerts call for it."""
    severity: Severity | None = field(default=None, compare=False)
    """The severity it was planned at (the incident's, or the alert's when higher)."""

    @property
    def basis(self) -> dict[str, Any]:
        """What the runner re-checks the policy against when the action executes."""
        if not self.detectors:
            return {}
        return {"detectors": list(self.detectors), "severity": self.severity.value if self.severity else None}

    @property
    def key(self) -> str:
        """The idempotency key of the action."""
        return self.request.idempotency_key


# --------------------------------------------------------------------------- targets from alerts


def _str(ctx: Mapping[str, Any], *keys: str) -> str | None:
    for k in keys:
        v = ctx.get(k)
        if isinstance(v, str) and v.strip():
            return v.strip()
    return None


def _strs(ctx: Mapping[str, Any], key: str) -> list[str]:
    v = ctx.get(key)
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list | tuple):
        return []
    return sorted({str(x).strip().lower() for x in v if str(x).strip()})


def _flag(ctx: Mapping[str, Any], key: str) -> bool | None:
    v = ctx.get(key)
    return v if isinstance(v, bool) else None


def _is_directory_key(value: str) -> bool:
    """A UPN or an object id: something Graph's /users/{id|upn} accepts."""
    return "@" in value or bool(_GUID.match(value))


def _user_of(alert: Alert) -> str | None:
    for candidate in (alert.user_key, alert.user):
        if candidate and _is_directory_key(candidate.strip()):
            return candidate.strip()
    return None


def _isolate_target(alert: Alert) -> dict[str, Any] | None:
    user = _user_of(alert)
    return {"user": user} if user else None


def _rule_target(alert: Alert) -> dict[str, Any] | None:
    ctx = alert.context
    mailbox = _str(ctx, "mailbox")
    if mailbox is None or not _is_directory_key(mailbox):
        mailbox = _user_of(alert)
    if mailbox is None:
        return None
    rule_identity = ctx.get("rule_identity")
    target: dict[str, Any] = {
        "mailbox": mailbox,
        "rule_name": ctx.get("rule_name") if isinstance(ctx.get("rule_name"), str) else None,
        "forward_to": _strs(ctx, "forward_to"),
        "redirect_to": _strs(ctx, "redirect_to"),
        "forward_as_attachment_to": _strs(ctx, "forward_as_attachment_to"),
        "move_to_folder": _str(ctx, "move_to_folder"),
        "delete": _flag(ctx, "delete") or None,
        "mark_as_read": _flag(ctx, "mark_as_read") or None,
        "words": _strs(ctx, "words"),
        "rule_identity": str(rule_identity) if isinstance(rule_identity, int | str) and rule_identity else None,
    }
    return target


def _app_target(alert: Alert) -> dict[str, Any] | None:
    ctx = alert.context
    sp_id = _str(ctx, "service_principal_id", "sp_id", "servicePrincipalId")
    if sp_id is None:
        return None
    return {"service_principal_id": sp_id, "app_id": _str(ctx, "app_id", "appId", "client_app_id")}


def _forwarding_target(alert: Alert) -> dict[str, Any] | None:
    ctx = alert.context
    # Only a manual Set-Mailbox step comes of it, and -Identity takes an alias or a name too: keep it as audited.
    mailbox = _str(ctx, "mailbox")
    if mailbox is None or mailbox == "unknown mailbox":
        mailbox = _user_of(alert)
    if mailbox is None:
        return None
    return {"mailbox": mailbox, "forwarding_addresses": _strs(ctx, "destinations")}


def _target_for(action: ActionKind, alert: Alert) -> dict[str, Any] | None:
    if action is ActionKind.ISOLATE_IDENTITY:
        return _isolate_target(alert)
    if action is ActionKind.REMOVE_INBOX_RULE:
        return _rule_target(alert)
    if action in (ActionKind.REVOKE_OAUTH_GRANT, ActionKind.DISABLE_SERVICE_PRINCIPAL):
        return _app_target(alert)
    if action is ActionKind.CLEAR_MAILBOX_FORWARDING:
        return _forwarding_target(alert)
    return None


def _effective(severity: Severity, incident_severity: Severity | None) -> Severity:
    if incident_severity is not None and incident_severity.rank > severity.rank:
        return incident_severity
    return severity


def _protected_ids(action: ActionKind, target: Mapping[str, Any]) -> tuple[str | None, ...]:
    if action is ActionKind.ISOLATE_IDENTITY:
        return (target.get("user"),)
    if action is ActionKind.DISABLE_SERVICE_PRINCIPAL:
        return (target.get("service_principal_id"), target.get("app_id"))
    return ()


def plan(
    alerts: Sequence[Alert] | Iterable[Alert],
    policy: RemediationPolicy,
    *,
    incident_id: str,
    requested_by: str = "itdr",
    incident_severity: Severity | None = None,
) -> list[PlannedAction]:
    """The remediation actions an incident's alerts call for under ``policy``, one per idempotency key.

    Alerts of other tenants than ``policy.tenant_id`` (when set) are refused with ValueError: one tenant's
    alerts never remediate in another. Each alert counts at ``incident_severity`` when that is higher than
    its own: below ``policy.min_severity`` it plans nothing; an action is automatic
    (``requires_approval=False``) when at least one of its alerts allows it, and never for a protected
    identity or a break-glass account. Targets on the never-disable list, and alerts that do not name the
    target (no UPN / object id, no service principal id), give a planned action with ``blocked_reason`` set.
    """
    planned: dict[str, PlannedAction] = {}
    order: list[str] = []
    for alert in alerts:
        if policy.tenant_id and alert.tenant_id != policy.tenant_id:
            raise ValueError(f"alert of tenant {alert.tenant_id} planned with the policy of {policy.tenant_id}")
        if policy.mode_for(alert.detector) is Mode.OFF:
            continue
        severity = _effective(alert.severity, incident_severity)
        if severity.rank < policy.min_severity.rank:
            continue
        for action in policy.actions_for(alert):
            target = _target_for(action, alert)
            blocked: str | None = None
            note = ""
            if target is None:
                blocked = "target_unknown"
                note = f"alert {alert.alert_id} does not name the {action.value} target"
                target = {"alert_id": alert.alert_id}
            elif policy.is_protected(*_protected_ids(action, target)):
                blocked = PROTECTED_REASON
                note = "the target is on the tenant's never-disable list"
            guarded = target is not None and policy.is_guarded(*_protected_ids(action, target))
            if guarded:
                note = "a protected identity (privileged role, break-glass or the app itself): a person decides"
            request = RemediationRequest(
                tenant_id=alert.tenant_id,
                incident_id=incident_id,
                action=action,
                target=target,
                requested_by=requested_by,
                approved=not guarded and not policy.needs_approval_for(action, alert.detector, severity),
            )
            key = request.idempotency_key
            existing = planned.get(key)
            if existing is None:
                planned[key] = PlannedAction(
                    request=request,
                    requires_approval=not request.approved,
                    source_alert_ids=[alert.alert_id],
                    blocked_reason=blocked,
                    note=note,
                    detectors=[alert.detector],
                    severity=severity,
                )
                order.append(key)
                continue
            if alert.alert_id not in existing.source_alert_ids:
                existing.source_alert_ids.append(alert.alert_id)
            if alert.detector not in existing.detectors:
                existing.detectors.append(alert.detector)
            if existing.severity is None or severity.rank > existing.severity.rank:
                existing.severity = severity
            if existing.requires_approval and request.approved:
                existing.requires_approval = False
                existing.request = request
    return [planned[k] for k in order]


class TenantRecords(Protocol):
    """Where a tenant's remediation fields live (the tenant directory)."""

    def get(self, tenant_id: str) -> TenantRecord | None: ...


class RemediationPolicies:
    """Each tenant's remediation policy: ``defaults`` (a deployment's own), then the tenant record's fields."""

    def __init__(self, tenants: TenantRecords, *, defaults: Mapping[str, object] | None = None) -> None:
        self._tenants = tenants
        self._defaults = dict(defaults or {})

    def for_tenant(self, tenant_id: str) -> RemediationPolicy:
        """The deployment's defaults, then the tenant's ``remediation`` fields, and the protected identities read
        from Graph (``protected_identities`` of the tenant record) added to any the policy names."""
        rec = self._tenants.get(tenant_id)
        body = {**self._defaults, **(dict(rec.remediation) if rec is not None else {})}
        if rec is not None and rec.protected_identities:
            named = body.get("protected") or []
            body["protected"] = [*([named] if isinstance(named, str) else list(named)), *rec.protected_identities]
        return RemediationPolicy.model_validate({**body, "tenant_id": tenant_id})
