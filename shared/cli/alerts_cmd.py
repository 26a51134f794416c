"""`itdr alerts queue|list|show|ack|confirm|dismiss` and `itdr suppressions list|add|remove`: the SOC's verbs.

    itdr alerts queue    [--tenant T ...] [--state S ...] [--format table|json]
    itdr alerts list     [--tenant T ...] [--status S] [--since 24h|2024-05-01T00:00Z] [--format table|json]
    itdr alerts show     --tenant T ALERT_ID [--format table|json]
    itdr alerts ack      --tenant T ALERT_ID|INCIDENT_ID --by NAME [--reason TEXT]
    itdr alerts confirm  --tenant T ALERT_ID|INCIDENT_ID --by NAME --reason TEXT
    itdr alerts dismiss  --tenant T ALERT_ID|INCIDENT_ID --by NAME --reason TEXT [--suppress user,ip,asn,detector] [--ttl 30d]

``queue`` lists the SOC queue: the incidents of every onboarded tenant (or the ``--tenant`` ones) whose
triage state is ``awaiting_verdict`` (held back from the partner) or ``awaiting_confirmation`` (sent at
once, to be confirmed), oldest first; ``--state`` picks other states (``confirmed``, ``dismissed``). A
verdict on an incident ID (``inc-...``) goes through :func:`shared.alerts.triage.apply_incident_verdict`
(the incident and each of its alerts); the incident book recomputes its triage state with the tenant's
triage policy, the same code the pipeline uses.
    itdr suppressions list   --tenant T [--all] [--format table|json]
    itdr suppressions add    --tenant T [--user U] [--ip ADDR|CIDR] [--asn N] [--detector D]
                             --reason TEXT --by NAME [--ttl 30d | --expires 2024-06-01T00:00Z]
    itdr suppressions remove --tenant T SUPPRESSION_ID --by NAME

Alerts, incidents and suppressions live in Table Storage (``alerts``, ``incidents``,
``suppressions``). A verdict on an alert is carried to its incident
(:func:`shared.alerts.triage.apply_alert_verdict`): confirming an alert confirms the incident.
The ``cmd_*`` functions take explicit storage clients (tests call them directly); the argparse
handler builds them from the settings (``ITDR_STORAGE_CONNECTION_STRING`` for Azurite).
Output: an aligned table for people, ``--format json`` for scripts. Every text written for people goes
through :func:`shared.cli.terminal.safe` (UPNs, summaries, reasons and names come from the tenant).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import IO, Any

import orjson

from shared.alert_model import iso
from shared.alerts.incidents import QUEUE_STATES, Incident, IncidentBook, TableIncidentBook, TriageState
from shared.alerts.store import AlertStatus, AlertStore, StoredAlert, TableAlertStore
from shared.alerts.suppressions import (
    SCOPES,
    Suppression,
    SuppressionStore,
    TableSuppressionStore,
    dismiss_alert,
)
from shared.alerts.triage import Triage, apply_alert_verdict, apply_incident_verdict
from shared.cli.terminal import safe
from shared.platform.errors import BadInputError
from shared.platform.storage import StorageClients

__all__ = [
    "Stores",
    "cmd_alerts_list",
    "cmd_alerts_queue",
    "cmd_alerts_set_status",
    "cmd_alerts_show",
    "cmd_suppressions_add",
    "cmd_suppressions_list",
    "cmd_suppressions_remove",
    "parse_duration",
    "parse_when",
    "register",
    "run",
]

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


@dataclass
class Stores:
    """The stores the commands use; :meth:`from_storage` builds the Table ones."""

    alerts: AlertStore
    incidents: IncidentBook | None
    suppressions: SuppressionStore
    tenants: Callable[[], list[str]] | None = None
    """The onboarded tenants' IDs (what ``queue`` lists without ``--tenant``)."""

    @classmethod
    def from_storage(cls, storage: StorageClients, *, now: Callable[[], float] = time.time) -> Stores:
        from shared.tenants import TenantDirectory

        directory = TenantDirectory(storage)
        suppressions = TableSuppressionStore.from_storage(storage, now=now)
        triage = Triage(directory, suppressions, clock=now)
        return cls(
            TableAlertStore.from_storage(storage, now=now),
            TableIncidentBook.from_storage(storage, now=now, triage=triage.states),
            suppressions,
            lambda: sorted(r.tenant_id for r in directory.list()),
        )


def _tenant_names(storage: StorageClients | Stores) -> dict[str, str]:
    """Tenant id -> display name (empty for explicit stores without a tenant directory)."""
    if isinstance(storage, Stores):
        return {}
    from shared.tenants import TenantDirectory

    return {r.tenant_id: r.name for r in TenantDirectory(storage).list()}


def _stores(storage: StorageClients | Stores, now: Callable[[], float]) -> Stores:
    return storage if isinstance(storage, Stores) else Stores.from_storage(storage, now=now)


def parse_duration(text: str) -> timedelta | None:
    """``30d``, ``12h``, ``90m``, ``45s``, ``2w`` as a timedelta; ``never`` or ``0`` as None (no expiry)."""
    t = text.strip().lower()
    if t in ("never", "0", "none"):
        return None
    m = _DURATION.match(t)
    if m is None:
        raise BadInputError(f"not a duration: {text!r} (use e.g. 30d, 12h, 90m or never)")
    return timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2)])


def parse_when(text: str, *, now: float) -> float:
    """A relative age (``24h``: that long ago) or an ISO 8601 date/time (UTC unless it says otherwise)."""
    t = text.strip()
    if _DURATION.match(t.lower()):
        age = parse_duration(t)
        return now - (age.total_seconds() if age else 0.0)
    try:
        value = datetime.fromisoformat(t.replace("Z", "+00:00"))
    except ValueError as exc:
        raise BadInputError(f"not a time: {text!r} (use e.g. 24h or 2024-05-01T09:00Z)") from exc
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


def _json(value: Any, out: IO[str]) -> None:
    out.write(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n")


def _table(rows: Sequence[Sequence[str]], out: IO[str]) -> None:
    """Aligned columns of terminal-safe cells; the last column is not padded."""
    if not rows:
        return
    rows = [[safe(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        out.write("  ".join(c.ljust(widths[i]) for i, c in enumerate(r[:-1])) + "  " + r[-1] + "\n")


def _short(text: str, n: int = 80) -> str:
    one = " ".join(safe(text).split())
    return one if len(one) <= n else one[: n - 3] + "..."


# --------------------------------------------------------------------------- alerts


def cmd_alerts_list(
    storage: StorageClients | Stores,
    *,
    tenant_id: str | None = None,
    tenant_ids: Sequence[str] = (),
    status: str | None = None,
    since: str | None = None,
    fmt: str = "table",
    out: IO[str] | None = None,
    now: Callable[[], float] = time.time,
    names: Mapping[str, str] | None = None,
) -> int:
    """Print alerts (oldest first), optionally one status and those seen since a time. Returns 0.

    ``tenant_id`` lists one tenant as before; otherwise ``tenant_ids``, or every onboarded tenant when none is
    given, with a TENANT column (the display name from ``names``, else the id) and ``tenant_name`` in JSON."""
    stream = out or sys.stdout
    stores = _stores(storage, now)
    if status is not None and status not in {s.value for s in AlertStatus}:
        raise BadInputError(f"unknown status {status!r}")
    since_ts = parse_when(since, now=now()) if since else None
    if tenant_id is not None:
        tenants, across = [tenant_id], False
    else:
        tenants = list(tenant_ids) or (stores.tenants() if stores.tenants is not None else [])
        across = True
    labels = dict(names or {})
    records = [r for t in tenants for r in stores.alerts.list_alerts(t, status=status, since=since_ts)]
    if across:
        records.sort(key=lambda r: (iso(r.alert.last_seen), r.alert.tenant_id, r.alert.alert_id))
    if fmt == "json":
        items = [r.to_dict() for r in records]
        if across:
            items = [
                {**d, "tenant_name": labels.get(r.alert.tenant_id, "")} for d, r in zip(items, records, strict=True)
            ]
        _json(items, stream)
        return 0
    head = ("ALERT", "STATUS", "SEVERITY", "DETECTOR", "USER", "LAST SEEN", "SUMMARY")
    rows: list[tuple[str, ...]] = [(("TENANT", *head)) if across else head]
    for r in records:
        a = r.alert
        row = (a.alert_id, r.status.value, a.severity.value, a.detector, a.user, iso(a.last_seen), _short(a.summary))
        rows.append(((_short(labels.get(a.tenant_id) or a.tenant_id, 36), *row)) if across else row)
    _table(rows, stream)
    stream.write(f"{len(records)} alert(s)" + (f" in {len(tenants)} tenant(s)\n" if across else "\n"))
    return 0


def cmd_alerts_queue(
    storage: StorageClients | Stores,
    *,
    tenant_ids: Sequence[str] = (),
    states: Sequence[str] = (),
    fmt: str = "table",
    out: IO[str] | None = None,
    now: Callable[[], float] = time.time,
) -> int:
    """Print the SOC queue across tenants (incidents awaiting a verdict or a confirmation), oldest first."""
    stream = out or sys.stdout
    stores = _stores(storage, now)
    if stores.incidents is None:
        raise BadInputError("no incident book configured")
    try:
        wanted = frozenset(TriageState(s) for s in states) if states else QUEUE_STATES
    except ValueError as exc:
        raise BadInputError(f"unknown triage state (use {', '.join(s.value for s in TriageState)})") from exc
    if tenant_ids:
        tenants = list(dict.fromkeys(tenant_ids))
    elif stores.tenants is not None:
        tenants = stores.tenants()
    else:
        raise BadInputError("queue needs --tenant (no tenant directory configured)")
    found: list[Incident] = []
    for tenant_id in tenants:
        found.extend(stores.incidents.list_queue(tenant_id, states=wanted))
    found.sort(key=lambda i: (i.first_seen, i.tenant_id, i.incident_id))
    if fmt == "json":
        _json([i.to_dict() for i in found], stream)
        return 0
    rows = [("INCIDENT", "TENANT", "TRIAGE", "SEVERITY", "USER", "FIRST SEEN", "TITLE")]
    for i in found:
        rows.append(
            (
                i.incident_id,
                i.tenant_id,
                i.triage.value,
                i.severity.value,
                i.user or "-",
                iso(i.first_seen),
                _short(i.title),
            )
        )
    _table(rows, stream)
    stream.write(f"{len(found)} incident(s)\n")
    return 0


def _show_text(record: StoredAlert, out: IO[str]) -> None:
    a = record.alert
    lines = [
        ("alert", a.alert_id),
        ("tenant", a.tenant_id),
        ("status", record.status.value),
        ("severity", a.severity.value),
        ("detector", a.detector),
        ("title", a.title),
        ("category", a.category.value),
        ("user", f"{a.user} ({a.user_key})" if a.user_key else a.user),
        ("ip", a.ip or "-"),
        ("first seen", iso(a.first_seen)),
        ("last seen", iso(a.last_seen)),
        ("count", str(a.count)),
        ("mitre", ", ".join(a.mitre)),
        ("summary", a.summary),
        ("evidence", ", ".join(a.evidence_record_ids)),
    ]
    width = max(len(k) for k, _ in lines)
    for k, v in lines:
        out.write(f"{k.ljust(width)}  {safe(v)}\n")
    for h in record.history:
        out.write(
            f"{'history'.ljust(width)}  "
            + safe(f"{iso(h.at)} {h.status.value} by {h.by}" + (f": {h.reason}" if h.reason else ""))
            + "\n"
        )


def cmd_alerts_show(
    storage: StorageClients | Stores,
    *,
    tenant_id: str,
    alert_id: str,
    fmt: str = "table",
    out: IO[str] | None = None,
    now: Callable[[], float] = time.time,
) -> int:
    """Print one alert with its status history. NotFoundError when it does not exist."""
    stream = out or sys.stdout
    record = _stores(storage, now).alerts.get_alert_record(tenant_id, alert_id)
    if fmt == "json":
        _json(record.to_dict(), stream)
    else:
        _show_text(record, stream)
    return 0


def cmd_alerts_set_status(
    storage: StorageClients | Stores,
    *,
    tenant_id: str,
    alert_id: str,
    status: str,
    by: str,
    reason: str = "",
    suppress: Sequence[str] = (),
    ttl: str = "30d",
    fmt: str = "table",
    out: IO[str] | None = None,
    now: Callable[[], float] = time.time,
    publish: Callable[[Any], None] | None = None,
) -> int:
    """Acknowledge, confirm or dismiss an alert (dismiss may also add a suppression). Returns 0.

    When the verdict changes the alert's incident, ``publish`` is given the incident (the ``itdr`` command
    sends its new revision to the delivery function, which posts it if triage publishes it, and posts a
    dismissal of an incident the partner already has, so its ticket can be closed).
    """
    stream = out or sys.stdout
    stores = _stores(storage, now)
    if alert_id.startswith("inc-") and stores.incidents is not None:
        if suppress:
            raise BadInputError("--suppress goes with an alert ID, not an incident ID")
        verdict = apply_incident_verdict(
            stores.alerts, stores.incidents, tenant_id, alert_id, status, by=by, reason=reason
        )
        if publish is not None:
            publish(verdict)
        if fmt == "json":
            _json({"alert": None, "incident": verdict.to_dict(), "suppression": None}, stream)
            return 0
        sent = "sent for delivery" if publish is not None else "not sent for delivery (no Service Bus configured)"
        stream.write(
            f"incident {verdict.incident_id}: {verdict.status.value}, triage {verdict.triage.value}, "
            f"revision {verdict.revision}, {sent}\n"
        )
        return 0
    created: Suppression | None = None
    if suppress:
        if status != AlertStatus.DISMISSED.value:
            raise BadInputError("--suppress only goes with dismiss")
        _, created = dismiss_alert(
            stores.alerts,
            stores.suppressions,
            tenant_id,
            alert_id,
            by=by,
            reason=reason,
            suppress=suppress,
            ttl=parse_duration(ttl),
            now=now,
        )
    record, incident = apply_alert_verdict(
        stores.alerts, stores.incidents, tenant_id, alert_id, status, by=by, reason=reason
    )
    if incident is not None and publish is not None:
        publish(incident)
    if fmt == "json":
        _json(
            {
                "alert": record.to_dict(),
                "incident": incident.to_dict() if incident is not None else None,
                "suppression": created.to_dict() if created is not None else None,
            },
            stream,
        )
        return 0
    stream.write(safe(f"{record.alert.alert_id}: {record.status.value} (by {by})") + "\n")
    if incident is not None:
        sent = "sent for delivery" if publish is not None else "not sent for delivery (no Service Bus configured)"
        stream.write(
            safe(f"incident {incident.incident_id}: {incident.status.value}, revision {incident.revision}, {sent}")
            + "\n"
        )
    if created is not None:
        until = iso(created.expires_at) if created.expires_at is not None else "never"
        stream.write(safe(f"suppression {created.suppression_id} added (expires {until})") + "\n")
    return 0


# --------------------------------------------------------------------------- suppressions


def _suppression_rows(items: Sequence[Suppression], now: float) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = [("SUPPRESSION", "STATE", "USER", "IP", "ASN", "DETECTOR", "EXPIRES", "BY", "REASON")]
    for s in items:
        state = "active" if s.is_active(now) else ("revoked" if s.revoked_at is not None else "expired")
        rows.append(
            (
                s.suppression_id,
                state,
                s.user or "-",
                s.ip or "-",
                "-" if s.asn is None else str(s.asn),
                s.detector or "-",
                iso(s.expires_at) if s.expires_at is not None else "never",
                s.created_by,
                _short(s.reason, 60),
            )
        )
    return rows


def cmd_suppressions_list(
    storage: StorageClients | Stores,
    *,
    tenant_id: str,
    include_inactive: bool = False,
    fmt: str = "table",
    out: IO[str] | None = None,
    now: Callable[[], float] = time.time,
) -> int:
    """Print the tenant's suppressions (active ones, or all with ``include_inactive``). Returns 0."""
    stream = out or sys.stdout
    at = now()
    items = _stores(storage, now).suppressions.list_suppressions(tenant_id, include_inactive=include_inactive, now=at)
    if fmt == "json":
        _json([s.to_dict() for s in items], stream)
        return 0
    _table(_suppression_rows(items, at), stream)
    stream.write(f"{len(items)} suppression(s)\n")
    return 0


def cmd_suppressions_add(
    storage: StorageClients | Stores,
    *,
    tenant_id: str,
    reason: str,
    by: str,
    user: str | None = None,
    ip: str | None = None,
    asn: int | None = None,
    detector: str | None = None,
    ttl: str | None = "30d",
    expires: str | None = None,
    fmt: str = "table",
    out: IO[str] | None = None,
    now: Callable[[], float] = time.time,
) -> int:
    """Add (or renew: same selectors, same ID) a suppression. Returns 0."""
    stream = out or sys.stdout
    at = now()
    if expires:
        expires_at: float | None = parse_when(expires, now=at)
    else:
        life = parse_duration(ttl) if ttl else None
        expires_at = None if life is None else at + life.total_seconds()
    try:
        sup = Suppression(
            tenant_id=tenant_id,
            user=user,
            ip=ip,
            asn=asn,
            detector=detector,
            reason=reason,
            created_by=by,
            created_at=at,
            expires_at=expires_at,
        )
    except ValueError as exc:
        raise BadInputError(f"invalid suppression: {exc}", tenant=tenant_id) from exc
    _stores(storage, now).suppressions.add_suppression(sup)
    if fmt == "json":
        _json(sup.to_dict(), stream)
    else:
        until = iso(sup.expires_at) if sup.expires_at is not None else "never"
        stream.write(safe(f"suppression {sup.suppression_id} added (expires {until})") + "\n")
    return 0


def cmd_suppressions_remove(
    storage: StorageClients | Stores,
    *,
    tenant_id: str,
    suppression_id: str,
    by: str,
    fmt: str = "table",
    out: IO[str] | None = None,
    now: Callable[[], float] = time.time,
) -> int:
    """Revoke a suppression (it stays listed with ``--all``). NotFoundError when it does not exist."""
    stream = out or sys.stdout
    sup = _stores(storage, now).suppressions.revoke_suppression(tenant_id, suppression_id, by=by)
    if fmt == "json":
        _json(sup.to_dict(), stream)
    else:
        stream.write(safe(f"suppression {sup.suppression_id} revoked by {sup.revoked_by}") + "\n")
    return 0


# --------------------------------------------------------------------------- argparse


def dispatch(
    args: argparse.Namespace,
    storage: StorageClients | Stores,
    *,
    out: IO[str] | None = None,
    now: Callable[[], float] = time.time,
    publish: Callable[[Any], None] | None = None,
) -> int:
    """Run parsed ``alerts``/``suppressions`` arguments against explicit storage (``publish``: see
    `cmd_alerts_set_status`)."""
    fmt = getattr(args, "format", "table")
    if args.command == "alerts":
        op = args.alerts_command
        if op == "queue":
            return cmd_alerts_queue(
                storage, tenant_ids=args.tenant or (), states=args.state or (), fmt=fmt, out=out, now=now
            )
        if op == "list":
            tenants = list(args.tenant or [])
            return cmd_alerts_list(
                storage,
                tenant_id=tenants[0] if len(tenants) == 1 else None,
                tenant_ids=tenants,
                status=args.status,
                since=args.since,
                fmt=fmt,
                out=out,
                now=now,
                names=_tenant_names(storage),
            )
        if op == "show":
            return cmd_alerts_show(storage, tenant_id=args.tenant, alert_id=args.alert_id, fmt=fmt, out=out, now=now)
        status = {"ack": "acknowledged", "confirm": "confirmed", "dismiss": "dismissed"}[op]
        suppress = [s for part in (getattr(args, "suppress", None) or []) for s in part.split(",") if s.strip()]
        return cmd_alerts_set_status(
            storage,
            tenant_id=args.tenant,
            alert_id=args.alert_id,
            status=status,
            by=args.by,
            reason=args.reason or "",
            suppress=suppress,
            ttl=getattr(args, "ttl", "30d"),
            fmt=fmt,
            out=out,
            now=now,
            publish=publish,
        )
    op = args.suppressions_command
    if op == "list":
        return cmd_suppressions_list(
            storage, tenant_id=args.tenant, include_inactive=args.all, fmt=fmt, out=out, now=now
        )
    if op == "add":
        return cmd_suppressions_add(
            storage,
            tenant_id=args.tenant,
            reason=args.reason,
            by=args.by,
            user=args.user,
            ip=args.ip,
            asn=args.asn,
            detector=args.detector,
            ttl=args.ttl,
            expires=args.expires,
            fmt=fmt,
            out=out,
            now=now,
        )
    return cmd_suppressions_remove(
        storage, tenant_id=args.tenant, suppression_id=args.suppression_id, by=args.by, fmt=fmt, out=out, now=now
    )


def run(args: argparse.Namespace) -> int:
    """The argparse handler: storage from the settings."""
    from shared.platform.settings import Settings

    settings = Settings.from_env()
    return dispatch(args, StorageClients.from_settings(settings), publish=incident_publisher(settings))


def incident_publisher(settings: Any) -> Callable[[Any], None] | None:
    """Send an incident's current revision to the alerts queue, as the detect function does (None without a
    Service Bus namespace in the settings)."""
    if not settings.servicebus_namespace:
        return None
    from shared.app import services
    from shared.messages import IncidentRef
    from shared.platform import names

    def publish(incident: Any) -> None:
        services().bus.send(names.QUEUE_ALERTS, [IncidentRef.of(incident).message()])

    return publish


def register(subparsers: Any) -> None:
    """Add ``alerts list|show|ack|confirm|dismiss`` and ``suppressions list|add|remove`` to the ``itdr`` parser."""

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--tenant", required=True, metavar="TENANT_ID", help="the tenant (directory) id")
        p.add_argument(
            "--format", choices=["table", "json"], default="table", help="table for people, json for scripts"
        )

    alerts = subparsers.add_parser("alerts", help="the SOC queue; list, show, acknowledge, confirm or dismiss alerts")
    asub = alerts.add_subparsers(dest="alerts_command", required=True)
    queue = asub.add_parser("queue", help="incidents awaiting an analyst's verdict or confirmation, across tenants")
    queue.add_argument("--tenant", action="append", metavar="TENANT_ID", help="only this tenant (repeatable)")
    queue.add_argument(
        "--state", action="append", choices=[s.value for s in TriageState], help="these triage states instead"
    )
    queue.add_argument(
        "--format", choices=["table", "json"], default="table", help="table for people, json for scripts"
    )
    lst = asub.add_parser("list", help="alerts of every tenant (or --tenant), with tenant names")
    lst.add_argument("--tenant", action="append", metavar="TENANT_ID", help="only this tenant (repeatable)")
    lst.add_argument("--format", choices=["table", "json"], default="table", help="table for people, json for scripts")
    lst.add_argument("--status", choices=[s.value for s in AlertStatus], help="only alerts in this status")
    lst.add_argument("--since", metavar="WHEN", help="an age (24h, 7d) or an ISO time")
    show = asub.add_parser("show", help="one alert with its history")
    common(show)
    show.add_argument("alert_id", metavar="ALERT_ID", help="the alert's id (al-...)")
    for name, text, needs_reason in (
        ("ack", "acknowledge an alert (an analyst is on it)", False),
        ("confirm", "confirm an alert as a true positive (its incident is published)", True),
        ("dismiss", "dismiss an alert as benign", True),
    ):
        p = asub.add_parser(name, help=text)
        common(p)
        p.add_argument("alert_id", metavar="ALERT_ID", help="an alert ID, or an incident ID (inc-...) from the queue")
        p.add_argument("--by", required=True, metavar="NAME", help="who decides (recorded)")
        p.add_argument("--reason", required=needs_reason, metavar="TEXT", help="why (recorded)")
        if name == "dismiss":
            p.add_argument(
                "--suppress",
                action="append",
                metavar="SCOPE",
                help=f"also suppress look-alikes on these of the alert's fields ({','.join(SCOPES)})",
            )
            p.add_argument("--ttl", default="30d", metavar="DURATION", help="suppression lifetime (30d, never)")
    alerts.set_defaults(handler=run)

    sups = subparsers.add_parser("suppressions", help="list, add or remove alert suppressions")
    ssub = sups.add_subparsers(dest="suppressions_command", required=True)
    sl = ssub.add_parser("list", help="the tenant's suppressions")
    common(sl)
    sl.add_argument("--all", action="store_true", help="include expired and revoked ones")
    sa = ssub.add_parser("add", help="add a suppression (at least one of --user, --ip, --asn, --detector)")
    common(sa)
    sa.add_argument("--user", metavar="UPN_OR_ID", help="suppress for this user (UPN or object id)")
    sa.add_argument("--ip", metavar="ADDRESS_OR_CIDR", help="suppress for this address or range")
    sa.add_argument("--asn", type=int, metavar="NUMBER", help="suppress for this autonomous system")
    sa.add_argument("--detector", metavar="DETECTOR_ID", help="suppress only this detector's alerts")
    sa.add_argument("--reason", required=True, metavar="TEXT", help="why (kept with the suppression)")
    sa.add_argument("--by", required=True, metavar="NAME", help="who adds it")
    life = sa.add_mutually_exclusive_group()
    life.add_argument("--ttl", default="30d", metavar="DURATION", help="lifetime (30d, 12h, never)")
    life.add_argument("--expires", metavar="WHEN", help="expiry as an ISO time")
    sr = ssub.add_parser("remove", help="revoke a suppression")
    common(sr)
    sr.add_argument("suppression_id", metavar="SUPPRESSION_ID", help="the suppression's id")
    sr.add_argument("--by", required=True, metavar="NAME", help="who removes it")
    sups.set_defaults(handler=run)
