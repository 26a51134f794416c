"""A self-contained HTML report of one tenant and period: incidents, alerts, sign-in map, remediations.

One file, no external assets: inline CSS, an inline SVG map, no scripts (a Content-Security-Policy
``default-src 'none'`` says so to the browser). Every value that comes from data (user names, rule
names, summaries, IDs) goes through :func:`html.escape`, so a malicious inbox-rule name such as
``<script>`` is shown as text and never runs.

The map is an equirectangular plot (x = longitude, y = latitude) of the sign-in locations with a
30° graticule and a label per country; there are no tiles. Locations come from DB-IP's free
database, whose licence asks for the attribution "IP Geolocation by DB-IP" with a link to
https://db-ip.com; the report carries it.

Inputs are lenient so that every caller can use it: incidents and alerts may be the objects
(:class:`~shared.alerts.incidents.Incident`, :class:`~shared.alert_model.Alert`,
:class:`~shared.alerts.store.StoredAlert`) or their ``to_dict()`` forms; sign-ins are mappings with
``time``, ``user``, ``ip``, ``country`` and ``lat``/``lon`` (or ``latitude``/``longitude``);
remediations are mappings shown column by column.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from shared.platform.errors import BadInputError

DBIP_ATTRIBUTION = "IP Geolocation by DB-IP"
DBIP_URL = "https://db-ip.com"
MAP_WIDTH = 720
MAP_HEIGHT = 360
MAX_ALERT_ROWS = 500
MAX_POINTS = 2000

_SEVERITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3}
_REMEDIATION_COLUMNS = ("at", "action", "target", "state", "status", "by", "incident_id", "result", "reason")

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem;color:#1b1f24;background:#fff}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #d0d7de}
.meta{color:#57606a}.counts span{display:inline-block;margin-right:1.2rem}
table{border-collapse:collapse;width:100%;font-size:.85rem}th,td{border:1px solid #d0d7de;padding:.3rem .45rem;
text-align:left;vertical-align:top}th{background:#f6f8fa}
.sev{display:inline-block;padding:0 .4rem;border-radius:.6rem;font-size:.75rem;font-weight:600;color:#fff}
.sev-critical{background:#8b0000}.sev-high{background:#cf222e}.sev-medium{background:#bf8700}.sev-low{background:#57606a}
.incident{border:1px solid #d0d7de;border-radius:.4rem;padding:.6rem .9rem;margin:.8rem 0}
.incident ol{margin:.3rem 0 0 1.2rem;padding:0}.incident li{margin:.25rem 0}
.stage{font-weight:600}.ids{font-family:ui-monospace,monospace;font-size:.75rem;color:#57606a;word-break:break-all}
svg{max-width:100%;height:auto;border:1px solid #d0d7de;background:#eef6fb}
footer{margin-top:2.5rem;font-size:.8rem;color:#57606a}
"""


def esc(value: Any) -> str:
    """HTML-escaped text of any value (quotes included); None becomes an empty string."""
    return "" if value is None else html.escape(str(value), quote=True)


def _as_dict(item: Any) -> dict[str, Any]:
    if isinstance(item, Mapping):
        return dict(item)
    to_dict = getattr(item, "to_dict", None)
    if callable(to_dict):
        out = to_dict()
        if isinstance(out, Mapping):
            return dict(out)
    raise BadInputError(f"cannot report a {type(item).__name__}")


def _time_text(value: Any) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, int | float):
        return datetime.fromtimestamp(float(value), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, datetime):
        v = value if value.tzinfo else value.replace(tzinfo=UTC)
        return v.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)


def _period_text(period: Any) -> str:
    if isinstance(period, tuple | list) and len(period) == 2:
        return f"{_time_text(period[0])} – {_time_text(period[1])}"
    return str(period)


def _sev(value: Any) -> str:
    s = str(value or "low").lower()
    cls = s if s in _SEVERITY_ORDER else "low"
    return f'<span class="sev sev-{cls}">{esc(s)}</span>'


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if f == f else None  # NaN


def _point(signin: Mapping[str, Any]) -> tuple[float, float] | None:
    lat = _float(signin.get("lat", signin.get("latitude")))
    lon = _float(signin.get("lon", signin.get("longitude")))
    if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    return lat, lon


def project(lat: float, lon: float, *, width: int = MAP_WIDTH, height: int = MAP_HEIGHT) -> tuple[float, float]:
    """Equirectangular projection: (x, y) in the map's pixels for a latitude and longitude."""
    return (lon + 180.0) / 360.0 * width, (90.0 - lat) / 180.0 * height


def render_map(signins: Iterable[Mapping[str, Any]]) -> str:
    """An inline SVG plot of the sign-in locations with one label per country."""
    w, h = MAP_WIDTH, MAP_HEIGHT
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" height="{h}" '
        'role="img" aria-label="Sign-in locations">'
    ]
    for lon in range(-180, 181, 30):
        x, _ = project(0, lon)
        parts.append(f'<line x1="{x:.1f}" y1="0" x2="{x:.1f}" y2="{h}" stroke="#c9d6df" stroke-width="0.5"/>')
    for lat in range(-90, 91, 30):
        _, y = project(lat, 0)
        color = "#9fb3c2" if lat == 0 else "#c9d6df"
        parts.append(f'<line x1="0" y1="{y:.1f}" x2="{w}" y2="{y:.1f}" stroke="{color}" stroke-width="0.5"/>')
    by_country: dict[str, list[tuple[float, float]]] = {}
    for n, s in enumerate(signins):
        if n >= MAX_POINTS:
            break
        pt = _point(s)
        if pt is None:
            continue
        x, y = project(*pt)
        tip = " ".join(t for t in (_time_text(s.get("time")), str(s.get("user") or ""), str(s.get("ip") or "")) if t)
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="#cf222e" fill-opacity="0.75" stroke="#fff" '
            f'stroke-width="0.8"><title>{esc(tip)}</title></circle>'
        )
        country = str(s.get("country") or "").strip()
        if country:
            by_country.setdefault(country, []).append((x, y))
    for country, pts in sorted(by_country.items()):
        x = sum(p[0] for p in pts) / len(pts)
        y = sum(p[1] for p in pts) / len(pts)
        parts.append(
            f'<text x="{min(x + 6, w - 30):.1f}" y="{max(y - 6, 12):.1f}" font-size="11" fill="#1b1f24">'
            f"{esc(country)} ({len(pts)})</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _incident_html(inc: Mapping[str, Any]) -> str:
    alerts = inc.get("alerts") or []
    items = []
    for a in alerts:
        ids = ", ".join(str(i) for i in a.get("evidence_record_ids") or [])
        items.append(
            f'<li><span class="stage">{esc(str(a.get("stage", "")).replace("_", " "))}</span> '
            f"{esc(_time_text(a.get('first_seen')))} {_sev(a.get('severity'))} <strong>{esc(a.get('title'))}</strong>"
            f" — {esc(a.get('summary'))}"
            + (f' <span class="ids">IP {esc(a.get("ip"))}</span>' if a.get("ip") else "")
            + (f'<div class="ids">evidence: {esc(ids)}</div>' if ids else "")
            + "</li>"
        )
    reasons = inc.get("severity_reasons") or []
    return (
        '<div class="incident">'
        f"<div>{_sev(inc.get('severity'))} <strong>{esc(inc.get('title'))}</strong></div>"
        f'<div class="meta">{esc(inc.get("incident_id"))} · status {esc(inc.get("status"))} · '
        f"revision {esc(inc.get('revision'))} · {esc(_time_text(inc.get('first_seen')))} – "
        f"{esc(_time_text(inc.get('last_seen')))}</div>"
        + (f'<div class="meta">raised because: {esc("; ".join(str(r) for r in reasons))}</div>' if reasons else "")
        + f"<ol>{''.join(items)}</ol></div>"
    )


def _alerts_table(alerts: Sequence[Mapping[str, Any]]) -> str:
    rows = []
    ordered = sorted(
        alerts, key=lambda a: (_SEVERITY_ORDER.get(str(a.get("severity")), 9), str(a.get("first_seen", "")))
    )
    for a in ordered[:MAX_ALERT_ROWS]:
        ids = ", ".join(str(i) for i in a.get("evidence_record_ids") or [])
        rows.append(
            "<tr>"
            f"<td>{esc(_time_text(a.get('first_seen')))}</td><td>{_sev(a.get('severity'))}</td>"
            f"<td>{esc(a.get('detector'))}</td><td>{esc(a.get('user'))}</td><td>{esc(a.get('ip'))}</td>"
            f"<td>{esc(a.get('summary'))}</td><td>{esc(a.get('status', ''))}</td>"
            f'<td class="ids">{esc(a.get("alert_id"))}<br>{esc(ids)}</td>'
            "</tr>"
        )
    more = len(ordered) - MAX_ALERT_ROWS
    note = f'<p class="meta">{more} more alerts not shown.</p>' if more > 0 else ""
    return (
        "<table><thead><tr><th>First seen</th><th>Severity</th><th>Detector</th><th>User</th><th>IP</th>"
        "<th>Summary</th><th>Status</th><th>Alert / evidence record IDs</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>{note}"
    )


def _cell(value: Any) -> str:
    if isinstance(value, Mapping):
        return esc(", ".join(f"{k}={v}" for k, v in value.items()))
    if isinstance(value, list | tuple):
        return esc(", ".join(str(v) for v in value))
    if isinstance(value, datetime):
        return esc(_time_text(value))
    return esc(value)


def _remediations_table(remediations: Sequence[Mapping[str, Any]]) -> str:
    keys: list[str] = [k for k in _REMEDIATION_COLUMNS if any(k in r for r in remediations)]
    for r in remediations:
        keys.extend(k for k in r if k not in keys)
    head = "".join(f"<th>{esc(k)}</th>" for k in keys)
    body = "".join("<tr>" + "".join(f"<td>{_cell(r.get(k))}</td>" for k in keys) + "</tr>" for r in remediations)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_report(
    tenant_id: str,
    period: Any,
    incidents: Iterable[Any],
    alerts: Iterable[Any],
    signins: Iterable[Mapping[str, Any]],
    remediations: Iterable[Mapping[str, Any]],
    *,
    strict_tenant: bool = False,
    generated_at: float | None = None,
) -> str:
    """The report as one HTML document.

    ``period`` is a label or a ``(start, end)`` pair of epoch seconds or datetimes. With
    ``strict_tenant``, an incident, alert or sign-in of another tenant raises BadInputError.
    """
    incs = sorted((_as_dict(i) for i in incidents), key=lambda i: str(i.get("first_seen", "")))
    alts = [_as_dict(a) for a in alerts]
    sins = [dict(s) for s in signins]
    rems = [dict(r) for r in remediations]
    if strict_tenant:
        foreign = {
            str(x.get("tenant_id")) for x in (*incs, *alts, *sins) if x.get("tenant_id") not in (None, "", tenant_id)
        }
        if foreign:
            raise BadInputError("report data of another tenant", tenant=tenant_id)
    counts: dict[str, int] = {}
    for a in alts:
        sev = str(a.get("severity", "low"))
        counts[sev] = counts.get(sev, 0) + 1
    located = sum(1 for s in sins if _point(s) is not None)
    countries = sorted({str(s.get("country")) for s in sins if s.get("country")})
    when = _time_text(generated_at) if generated_at is not None else _time_text(datetime.now(UTC))
    title = f"m365-itdr report: {tenant_id}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
        'img-src data:">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        f'<p class="meta">Period: {esc(_period_text(period))} · generated {esc(when)}</p>',
        '<p class="counts">'
        + f"<span>{len(incs)} incident{'s' if len(incs) != 1 else ''}</span>"
        + f"<span>{len(alts)} alert{'s' if len(alts) != 1 else ''}</span>"
        + "".join(
            f"<span>{_sev(s)} {counts[s]}</span>" for s in sorted(counts, key=lambda s: _SEVERITY_ORDER.get(s, 9))
        )
        + f"<span>{len(rems)} remediation action{'s' if len(rems) != 1 else ''}</span></p>",
        "<h2>Incident timeline</h2>",
        "".join(_incident_html(i) for i in incs) if incs else '<p class="meta">No incidents in this period.</p>',
        "<h2>Alerts</h2>",
        _alerts_table(alts) if alts else '<p class="meta">No alerts in this period.</p>',
        "<h2>Sign-in locations</h2>",
        f'<p class="meta">{located} of {len(sins)} sign-ins located'
        + (f"; countries: {esc(', '.join(countries))}" if countries else "")
        + "</p>",
        render_map(sins),
        "<h2>Remediation actions taken</h2>",
        _remediations_table(rems) if rems else '<p class="meta">No remediation actions in this period.</p>',
        f'<footer><p><a href="{DBIP_URL}">{esc(DBIP_ATTRIBUTION)}</a> ({DBIP_URL}). '
        "Generated by m365-itdr.</p></footer>",
        "</body></html>",
    ]
    return "\n".join(parts)
