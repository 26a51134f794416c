"""Typed view of Security and Compliance alert records (RecordType 40: ``AlertTriggered``, ``AlertEntityGenerated``,
``AlertUpdated``).

Microsoft's own alert policies (Defender portal "Alert policies": "User restricted from sending email",
"Suspicious email sending patterns detected", "Creation of forwarding/redirect rule"...) and Defender for Cloud Apps
alerts reach the unified audit log as these records. Their fields have generic names (``Name``, ``Severity``,
``Category``...) kept raw by the decoder and read here once; ``Data`` is a JSON object serialised as a string with
short keys (``f3u`` the user, ``trc`` the recipient, ``tsd`` the sender, ``an`` the alert name, ``ad`` its
description). The user the alert is about is resolved at parse time (see ``shared.records.model.alert_subject``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from shared.records.event import Event
from shared.records.model import alert_data, decode_text

ALERT_OPS = frozenset({"alerttriggered", "alertentitygenerated", "alertupdated"})
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\ufeff"))


@dataclass(frozen=True, slots=True)
class SecurityAlert:
    """One Security and Compliance alert record."""

    alert_id: str
    name: str
    severity: str
    """Microsoft's severity: Informational, Low, Medium or High."""
    category: str
    """Microsoft's category: ThreatManagement, DataGovernance, MailFlow, AccessGovernance..."""
    status: str
    source: str
    entity_type: str
    entity_id: str
    subject: str | None
    """The user (lower-case UPN) the alert is about, when it names one."""
    data: Mapping[str, str]


def _text(value: str | None) -> str:
    return (value or "").translate(_INVISIBLE).strip()


def security_alert_of(event: Event) -> SecurityAlert | None:
    """The alert an event carries, or None when it is not a Security and Compliance alert record."""
    if event.op not in ALERT_OPS:
        return None
    rec = event.record
    data = alert_data(rec)
    return SecurityAlert(
        alert_id=_text(decode_text(rec.AlertId)),
        name=_text(decode_text(rec.Name) or data.get("an")),
        severity=_text(decode_text(rec.Severity) or data.get("sev")),
        category=_text(decode_text(rec.Category)),
        status=_text(decode_text(rec.Status)),
        source=_text(decode_text(rec.Source)),
        entity_type=_text(decode_text(rec.EntityType) or data.get("etype")),
        entity_id=_text(decode_text(rec.AlertEntityId)),
        subject=event.upn,
        data=data,
    )
