"""The story an `itdr scan` tells: incidents, gaps in the input, and the sign-ins behind the map.

* :func:`build_incidents` folds the scan's alerts into incidents with the pipeline's own incident code
  (:class:`shared.alerts.incidents.InMemoryIncidentBook`: per user, stages in story order, severity
  raised by the combination). The book's clock is the newest alert's ``last_seen``, so the same input
  always gives the same incidents, byte for byte (``updated_at`` included).
* :func:`signin_row` is a sign-in as the HTML report shows it (the scan keeps a bounded sample); gaps in
  the input are found by :class:`shared.ingest.gaps.GapDetector`, which the scan feeds in ``CreationTime`` order.
* :func:`write_incidents` writes ``--incidents FILE`` (JSON Lines, one :meth:`Incident.to_dict` a line);
  :func:`format_incidents` is the incident block that leads the ``table`` output.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import IO, TYPE_CHECKING, Any

import orjson

from shared.alert_model import Alert, iso
from shared.cli.terminal import safe
from shared.records.event import Event

if TYPE_CHECKING:
    from shared.alerts.incidents import Incident

_SEVERITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3}


def build_incidents(alerts: Sequence[Alert]) -> list[Incident]:
    """The incidents of a scan's alerts: most severe first, then oldest first."""
    if not alerts:
        return []
    # imported on use: the alerts package brings the Azure SDKs along (about a second at start-up)
    from shared.alerts.incidents import InMemoryIncidentBook

    now = max(a.last_seen for a in alerts)
    book = InMemoryIncidentBook(now=lambda: now)
    book.add_alerts(alerts)
    incidents = [inc for tid in sorted({a.tenant_id for a in alerts}) for inc in book.list_incidents(tid)]
    return sorted(incidents, key=lambda i: (_SEVERITY_ORDER.get(i.severity.value, 9), i.first_seen, i.incident_id))


def write_incidents(incidents: Sequence[Incident], out: IO[bytes]) -> None:
    """``--incidents FILE``: one incident a line."""
    for inc in incidents:
        out.write(orjson.dumps(inc.to_dict()) + b"\n")


def format_incidents(incidents: Sequence[Incident]) -> str:
    """The incident block of the ``table`` output: one header line per incident, then its story."""
    if not incidents:
        return ""
    lines = [f"INCIDENTS ({len(incidents)})"]
    for inc in incidents:
        stages = " → ".join(s.label for s in inc.stages)
        lines.append(
            f"{inc.severity.value.upper():<8}  {safe(inc.incident_id)}  {inc.tenant_id[:8]}  "
            f"{iso(inc.first_seen)} – {iso(inc.last_seen)}  {safe(inc.title)}"
        )
        lines.append(f"          stages: {stages}")
        for reason in inc.severity_reasons:
            lines.append(f"          raised because: {safe(reason)}")
        for entry in inc.entries:
            ip = f" [{safe(entry.ip)}]" if entry.ip else ""
            lines.append(
                f"          {iso(entry.first_seen)}  {entry.stage.label:<22}  {entry.severity.value:<8}  "
                f"{safe(entry.title)}{ip}"
            )
    return "\n".join(lines) + "\n\nALERTS\n"


def signin_row(ev: Event) -> dict[str, Any]:
    """A sign-in as the HTML report shows it (located when enrichment found coordinates)."""
    info = ev.ip_info
    return {
        "tenant_id": ev.tenant_id,
        "user": ev.user_display,
        "time": iso(ev.time),
        "ip": ev.ip,
        "lat": getattr(info, "latitude", None),
        "lon": getattr(info, "longitude", None),
        "country": getattr(info, "country", None),
        "city": getattr(info, "city", None),
    }
