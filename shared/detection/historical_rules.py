"""Historical inbox rules: rules that existed before the tenant was onboarded, found through Graph.

At onboarding and weekly (the ``weekly_report`` timer), every mailbox's inbox rules are listed
through Graph and judged by the same scoring as rules seen in the audit log
(`shared.detection.inbox_rules.score_rule`). A suspicious rule becomes an alert of the
``exchange_suspicious_inbox_rule`` detector with ``context.source = "graph_historical_scan"``;
its evidence is the Graph rule ID, so a weekly rescan merges into the same alert.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from shared.alert_model import Alert, DetectorMeta, Finding, build_alert
from shared.detection.inbox_rules import score_rule
from shared.graph.client import SyncGraphClient
from shared.messages import send_raised_alerts
from shared.platform.bus import MessageBus
from shared.platform.errors import ItdrError, NotFoundError
from shared.records.exchange import inbox_rule_from_graph
from shared.tenant_config import TenantConfig

log = logging.getLogger("itdr.detection")


@dataclass
class RuleScan:
    tenant_id: str
    mailboxes: int = 0
    rules: int = 0
    alerts: list[Alert] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)


def _graph_json(rule: Any) -> dict[str, Any]:
    """Graph's messageRule JSON shape from the client's model."""
    a, c = rule.actions, rule.conditions

    def addrs(xs: tuple[str, ...]) -> list[dict[str, Any]]:
        return [{"emailAddress": {"address": x}} for x in xs]

    return {
        "id": rule.id,
        "displayName": rule.display_name,
        "isEnabled": rule.is_enabled,
        "actions": {
            "forwardTo": addrs(a.forward_to),
            "redirectTo": addrs(a.redirect_to),
            "forwardAsAttachmentTo": addrs(a.forward_as_attachment_to),
            "moveToFolder": a.move_to_folder,
            "delete": a.delete or a.permanent_delete,
            "markAsRead": a.mark_as_read,
            "stopProcessingRules": a.stop_processing_rules,
        },
        "conditions": {
            "subjectContains": list(c.subject_contains),
            "bodyContains": list(c.body_contains),
            "bodyOrSubjectContains": list(c.body_or_subject_contains),
            "senderContains": list(c.sender_contains),
            "fromAddresses": addrs(c.from_addresses),
        },
    }


class AlertStore(Protocol):
    def get_alert(self, tenant_id: str, alert_id: str) -> Alert | None: ...

    def upsert_alerts(self, alerts: Sequence[Alert]) -> None: ...


class InboxRuleSweep:
    """Scores every mailbox's existing inbox rules and raises the suspicious ones (new alerts only)."""

    def __init__(
        self,
        *,
        meta: DetectorMeta,
        graph: Callable[[str], SyncGraphClient],
        config: Callable[[str], TenantConfig],
        alerts: AlertStore,
        bus: MessageBus,
        shards: int,
        clock: Callable[[], float],
    ) -> None:
        self._meta = meta
        self._graph = graph
        self._config = config
        self._alerts = alerts
        self._bus = bus
        self._shards = shards
        self._clock = clock

    def scan(self, tenant_id: str, *, now: float | None = None) -> RuleScan:
        """List every mailbox's inbox rules of a tenant, store and raise alerts for the suspicious ones."""
        out = scan_tenant_rules(
            self._graph(tenant_id),
            self._config(tenant_id),
            tenant_id,
            meta=self._meta,
            now=self._clock() if now is None else now,
        )
        if out.alerts:
            fresh = [a for a in out.alerts if self._alerts.get_alert(tenant_id, a.alert_id) is None]
            self._alerts.upsert_alerts(fresh)
            if fresh:  # folded into incidents by the detect function, in the users' session
                send_raised_alerts(self._bus, tenant_id, fresh, source="historical_rules", shards=self._shards)
        log.info(
            "historical rule scan: tenant=%s mailboxes=%d rules=%d alerts=%d",
            tenant_id,
            out.mailboxes,
            out.rules,
            len(out.alerts),
        )
        return out


def scan_tenant_rules(
    graph: SyncGraphClient, cfg: TenantConfig, tenant_id: str, *, meta: DetectorMeta, now: float
) -> RuleScan:
    """List every mailbox's inbox rules of a tenant through Graph; returns the alerts for suspicious ones."""
    out = RuleScan(tenant_id)
    at = now
    for user in graph.list_users():
        upn = (user.user_principal_name or "").lower()
        try:
            rules = graph.list_inbox_rules(user.id)
        except NotFoundError:
            continue  # no mailbox
        except ItdrError as exc:
            out.errors[exc.reason] = out.errors.get(exc.reason, 0) + 1
            continue
        out.mailboxes += 1
        for r in rules:
            out.rules += 1
            rule = inbox_rule_from_graph(_graph_json(r), mailbox=upn or None)
            home = (upn.rsplit("@", 1)[1],) if "@" in upn else ()
            verdict = score_rule(rule, cfg, home_domains=home)
            if not verdict.suspicious:
                continue
            evidence = f"graph-rule:{hashlib.sha256(f'{user.id}|{r.id}'.encode()).hexdigest()[:24]}"
            dedup = f"{user.id.lower()}|{(rule.name or '').lower()}"
            finding = Finding(
                detector_id=meta.id,
                tenant_id=tenant_id,
                user_key=user.id.lower(),
                user=upn or user.id,
                severity=verdict.severity,
                summary=f"Existing inbox rule {rule.name!r} on {upn or user.id}: " + "; ".join(verdict.reasons),
                first_seen=at,
                last_seen=at,
                evidence_record_ids=(evidence,),
                dedup_key=dedup,
                context={
                    "source": "graph_historical_scan",
                    "rule_name": rule.name,
                    "mailbox": upn,
                    "graph_rule_id": r.id,
                    "score": verdict.score,
                    "reasons": list(verdict.reasons),
                    "external_recipients": list(verdict.external_recipients),
                    "forward_to": list(rule.recipients),
                },
            )
            out.alerts.append(build_alert(meta, finding))
    return out
