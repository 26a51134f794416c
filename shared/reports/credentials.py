"""The weekly compromised-credentials report: users whose password someone else knows.

Built only from the alerts ``signin_mfa_failure`` recorded over a period (a pure function: no storage, no
clock unless ``generated_at`` is omitted). Each alert of that detector is one fact "the password was right,
MFA stopped it" from one source address (``report_only`` LOW findings, and HIGH ones from anonymisers,
hosting providers, new countries or spray sources), or an MFA-fatigue success. The report groups them per
user with location and VPN context, worst first, and renders as JSON and as a small HTML table::

    report = build_credentials_report(alerts, tenant_id=tid, start=monday, end=next_monday)
    blob = credentials_report_json(report)
    page = render_credentials_html(report)
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field

from shared.alert_model import Alert, Severity

DETECTOR_ID = "signin_mfa_failure"
DATA_CREDIT = "IP Geolocation by DB-IP (https://db-ip.com); ASN data by RouteViews, DB-IP and the NRO."


class ExposureSource(BaseModel):
    """One address from which the user's correct password was used."""

    model_config = ConfigDict(frozen=True)

    ip: str | None
    country: str | None = None
    city: str | None = None
    asn: int | None = None
    asn_org: str | None = None
    anonymizer: str | None = None
    vpn_operator: str | None = None
    hosting: bool = False
    familiar_location: bool = False
    attempts: int
    first_seen: datetime
    last_seen: datetime
    reasons: tuple[str, ...] = ()
    error_numbers: tuple[int, ...] = ()


class ExposedUser(BaseModel):
    """A user whose password is known to someone, with every source seen in the period."""

    model_config = ConfigDict(frozen=True)

    user: str
    user_key: str | None
    severity: Severity
    attempts: int
    first_seen: datetime
    last_seen: datetime
    mfa_fatigue: bool = False
    risky: bool = False
    """At least one attempt came from an anonymiser, hosting provider, new country or spray source."""
    reasons: tuple[str, ...] = ()
    sources: tuple[ExposureSource, ...] = ()
    alert_ids: tuple[str, ...] = ()


class CredentialsReport(BaseModel):
    """The compromised-credentials report of one tenant over one period."""

    model_config = ConfigDict(frozen=True)

    tenant_id: str
    period_start: datetime
    period_end: datetime
    generated_at: datetime
    users: tuple[ExposedUser, ...] = Field(default=())

    @property
    def attempts(self) -> int:
        return sum(u.attempts for u in self.users)


def _when(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(float(value), UTC)
    text = str(value).strip()
    dt = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _as_dict(alert: Any) -> dict[str, Any]:
    """An alert as a dict: an :class:`Alert`, a stored alert (``.alert`` + ``.status``) or a ``to_dict()`` form."""
    inner = getattr(alert, "alert", None)
    if isinstance(inner, Alert):
        d = _as_dict(inner)
        status = getattr(alert, "status", None)
        d["status"] = str(getattr(status, "value", status) or "new")
        return d
    if isinstance(alert, Alert):
        d = alert.to_dict()
        d["first_seen"] = alert.first_seen
        d["last_seen"] = alert.last_seen
        return d
    if isinstance(alert, Mapping):
        return dict(alert)
    raise TypeError(f"not an alert: {type(alert).__name__}")


def last_week(now: datetime) -> tuple[datetime, datetime]:
    """The last complete ISO week before ``now``: Monday 00:00 UTC to the following Monday 00:00 UTC."""
    now = _when(now).astimezone(UTC)
    this_monday = (now - timedelta(days=now.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
    return this_monday - timedelta(days=7), this_monday


def _str_or_none(v: Any) -> str | None:
    return v if isinstance(v, str) and v else None


def build_credentials_report(
    alerts: Iterable[Any],
    *,
    tenant_id: str,
    start: datetime,
    end: datetime,
    generated_at: datetime | None = None,
    include_dismissed: bool = False,
) -> CredentialsReport:
    """The report for ``tenant_id`` from the ``signin_mfa_failure`` alerts that overlap ``[start, end)``.

    ``alerts`` may be :class:`Alert` objects, stored alerts (``shared.alerts.store.StoredAlert``) or their
    ``to_dict()`` forms; alerts of other detectors or other tenants are ignored, so a partner's whole alert
    list can be passed in. Alerts an analyst dismissed ("it was me") are left out unless
    ``include_dismissed``.
    """
    start = _when(start)
    end = _when(end)
    if end <= start:
        raise ValueError("the report period must end after it starts")
    per_user: dict[str, list[dict[str, Any]]] = {}
    for raw in alerts:
        a = _as_dict(raw)
        if a.get("detector") != DETECTOR_ID or a.get("tenant_id") != tenant_id:
            continue
        if a.get("status") == "dismissed" and not include_dismissed:
            continue
        first, last = _when(a["first_seen"]), _when(a["last_seen"])
        if last < start or first >= end:
            continue
        a["first_seen"], a["last_seen"] = first, last
        key = str(a.get("user_key") or a.get("user") or "unknown")
        per_user.setdefault(key, []).append(a)
    users = [_user(items) for items in per_user.values()]
    users.sort(key=lambda u: (-u.severity.rank, -u.attempts, u.user))
    return CredentialsReport(
        tenant_id=tenant_id,
        period_start=start,
        period_end=end,
        generated_at=_when(generated_at) if generated_at is not None else datetime.now(UTC),
        users=tuple(users),
    )


def _user(items: list[dict[str, Any]]) -> ExposedUser:
    items.sort(key=lambda a: (a["first_seen"], a.get("alert_id") or ""))
    sources: dict[str, dict[str, Any]] = {}
    reasons: list[str] = []
    fatigue = False
    severity = Severity.LOW
    for a in items:
        ctx: Mapping[str, Any] = a.get("context") or {}
        sev = Severity(a.get("severity") or "low")
        severity = sev if sev.rank > severity.rank else severity
        item_reasons = [str(r) for r in ctx.get("reasons") or []]
        reasons += [r for r in item_reasons if r not in reasons]
        if "mfa_fatigue" in item_reasons:
            fatigue = True
            continue
        ip = _str_or_none(ctx.get("ip")) or _str_or_none(a.get("ip"))
        src = sources.get(ip or "")
        count = int(a.get("count") or 1)
        err = ctx.get("error_number")
        if src is None:
            asn = ctx.get("asn")
            sources[ip or ""] = {
                "ip": ip,
                "country": _str_or_none(ctx.get("country")),
                "city": _str_or_none(ctx.get("city")),
                "asn": asn if isinstance(asn, int) else None,
                "asn_org": _str_or_none(ctx.get("asn_org")),
                "anonymizer": _str_or_none(ctx.get("anonymizer")),
                "vpn_operator": _str_or_none(ctx.get("vpn_operator")),
                "hosting": bool(ctx.get("hosting")),
                "familiar_location": bool(ctx.get("familiar_location")),
                "attempts": count,
                "first_seen": a["first_seen"],
                "last_seen": a["last_seen"],
                "reasons": tuple(item_reasons),
                "error_numbers": (err,) if isinstance(err, int) else (),
            }
        else:
            src["attempts"] += count
            src["first_seen"] = min(src["first_seen"], a["first_seen"])
            src["last_seen"] = max(src["last_seen"], a["last_seen"])
            src["reasons"] = tuple(dict.fromkeys([*src["reasons"], *item_reasons]))
            if isinstance(err, int) and err not in src["error_numbers"]:
                src["error_numbers"] = (*src["error_numbers"], err)
    ordered = sorted(sources.values(), key=lambda s: (s["last_seen"], s["ip"] or ""), reverse=True)
    first = items[0]
    return ExposedUser(
        user=str(first.get("user") or "unknown"),
        user_key=_str_or_none(first.get("user_key")),
        severity=severity,
        attempts=sum(s["attempts"] for s in ordered),
        first_seen=min(a["first_seen"] for a in items),
        last_seen=max(a["last_seen"] for a in items),
        mfa_fatigue=fatigue,
        risky=any(r != "mfa_fatigue" for r in reasons) or fatigue,
        reasons=tuple(reasons),
        sources=tuple(ExposureSource(**s) for s in ordered),
        alert_ids=tuple(str(a.get("alert_id")) for a in items if a.get("alert_id")),
    )


def credentials_report_json(report: CredentialsReport) -> bytes:
    """The report as JSON bytes (ISO 8601 UTC times; keys as in the model, plus ``attempts``)."""
    doc = report.model_dump(mode="json")
    doc["attempts"] = report.attempts
    doc["data_credit"] = DATA_CREDIT
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2)


def _t(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _source_text(s: ExposureSource) -> str:
    where = ", ".join(x for x in (s.city, s.country) if x) or "unknown location"
    via: list[str] = []
    if s.anonymizer:
        via.append(s.anonymizer.replace("_", " ") + (f" ({s.vpn_operator})" if s.vpn_operator else ""))
    if s.hosting:
        via.append("hosting" + (f" ({s.asn_org})" if s.asn_org else ""))
    if s.familiar_location:
        via.append("familiar location")
    tail = f" [{'; '.join(via)}]" if via else ""
    return f"{s.ip or '?'} – {where}{tail} ×{s.attempts}"


def render_credentials_html(report: CredentialsReport) -> str:
    """A small, self-contained HTML page with one table row per user (every value escaped)."""
    e = html.escape
    rows: list[str] = []
    for u in report.users:
        sources = "<br>".join(e(_source_text(s)) for s in u.sources) or "–"
        notes = ", ".join(r.replace("_", " ") for r in u.reasons if r != "mfa_fatigue")
        if u.mfa_fatigue:
            notes = f"{e(notes)}, <strong>MFA fatigue</strong>" if notes else "<strong>MFA fatigue</strong>"
        else:
            notes = e(notes) or "–"
        rows.append(
            "<tr>"
            f"<td>{e(u.user)}</td>"
            f'<td class="sev-{e(u.severity.value)}">{e(u.severity.value)}</td>'
            f"<td>{u.attempts}</td>"
            f"<td>{sources}</td>"
            f"<td>{notes}</td>"
            f"<td>{e(_t(u.first_seen))}</td>"
            f"<td>{e(_t(u.last_seen))}</td>"
            "</tr>"
        )
    body = "\n".join(rows) or '<tr><td colspan="7">No user had a correct password followed by failed MFA.</td></tr>'
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        "<title>Compromised credentials</title>"
        "<style>body{font-family:sans-serif}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}"
        ".sev-high,.sev-critical{color:#b00;font-weight:bold}</style></head><body>\n"
        f"<h1>Compromised credentials</h1>\n"
        f"<p>Tenant {e(report.tenant_id)}, {e(_t(report.period_start))} to {e(_t(report.period_end))}: "
        f"{len(report.users)} users whose password was used correctly and stopped only by MFA "
        f"({report.attempts} attempts). Reset these passwords.</p>\n"
        "<table><thead><tr><th>User</th><th>Severity</th><th>Attempts</th><th>Sources</th><th>Notes</th>"
        "<th>First seen</th><th>Last seen</th></tr></thead><tbody>\n"
        f"{body}\n"
        "</tbody></table>\n"
        f"<p><small>Generated {e(_t(report.generated_at))}. {e(DATA_CREDIT)}</small></p>\n"
        "</body></html>\n"
    )
