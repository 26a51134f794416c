"""The story an `itdr scan` tells: incidents, gaps in the input, and the sign-ins behind the map.

* :func:`build_incidents` folds the scan's alerts into incidents with the pipeline's own incident code
  (:class:`shared.alerts.incidents.InMemoryIncidentBook`: per user, stages in story order, severity
  raised by the combination). The book's clock is the newest alert's ``last_seen``, so the same input
  always gives the same incidents, byte for byte (``updated_at`` included).
* :class:`StoryWatch` sees every record in ``CreationTime`` order, as the scan processes them: it feeds
  the gap detector (:mod:`shared.ingest.gaps`) and keeps the sign-in rows of the HTML report.
* :func:`write_incidents` writes ``--incidents FILE`` (JSON Lines, one :meth:`Incident.to_dict` a line);
  :func:`format_incidents` is the incident block that leads the ``table`` output.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING, Any

import orjson

from shared.alert_model import Alert, iso
from shared.cli.terminal import safe
from shared.ingest.gaps import GapDetector
from shared.records.event import Event

if TYPE_CHECKING:
    from shared.alerts.incidents import Incident

_SEVERITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3}
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


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


def plain(text: object) -> str:
    """Text safe for a terminal (one sanitiser for every human-facing output: :func:`shared.cli.terminal.safe`)."""
    return safe(text)


def format_incidents(incidents: Sequence[Incident]) -> str:
    """The incident block of the ``table`` output: one header line per incident, then its story."""
    if not incidents:
        return ""
    lines = [f"INCIDENTS ({len(incidents)})"]
    for inc in incidents:
        stages = " → ".join(s.label for s in inc.stages)
        lines.append(
            f"{inc.severity.value.upper():<8}  {plain(inc.incident_id)}  {inc.tenant_id[:8]}  "
            f"{iso(inc.first_seen)} – {iso(inc.last_seen)}  {plain(inc.title)}"
        )
        lines.append(f"          stages: {stages}")
        for reason in inc.severity_reasons:
            lines.append(f"          raised because: {plain(reason)}")
        for entry in inc.entries:
            ip = f" [{plain(entry.ip)}]" if entry.ip else ""
            lines.append(
                f"          {iso(entry.first_seen)}  {entry.stage.label:<22}  {entry.severity.value:<8}  "
                f"{plain(entry.title)}{ip}"
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


class StoryWatch:
    """Watches every processed record, in time order: gap detection and the report's sign-ins."""

    def __init__(self) -> None:
        self.gaps = GapDetector()
        self.signins: list[dict[str, Any]] = []

    def observe(self, ev: Event) -> None:
        self.gaps.observe(ev)
        if ev.op == "userloggedin":
            self.signins.append(signin_row(ev))

    def gap_alerts(self) -> list[Alert]:
        return self.gaps.alerts()
