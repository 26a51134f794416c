"""A self-contained HTML report of one tenant and period: incidents, timelines, alerts, sign-in map, remediations.

One file, no external assets: inline CSS, an inline SVG world map, no scripts (a Content-Security-Policy
``default-src 'none'`` says so to the browser). The page is the Jinja2 template
``templates/report.html.j2`` rendered with autoescaping on, so every value that comes from data (user
names, rule names, user agents, summaries, IDs) is escaped: a malicious inbox-rule name such as
``<script>`` is shown as text and never runs.

The report leads with the incidents (each told as a story in stage order, with the reasons its
severity was raised), then each user's timeline (alerts and sign-ins in time order), the alert table
(with the IP), and the sign-ins: a world map (country outlines of Natural Earth 1:110m, public domain,
via world-atlas, ISC; equirectangular, x = longitude, y = latitude; see ``data/NOTICE.md``) with one
dot per place, sized by its number of sign-ins, and a sign-in table. Every view that is capped says
so ("showing 2,000 of 5,312 sign-ins"). Locations come from DB-IP's free database, whose licence
asks for the attribution "IP Geolocation by DB-IP" with a link to https://db-ip.com; the report
carries it, and the map data's credit.

Inputs are lenient so that every caller can use it: incidents and alerts may be the objects
(:class:`~shared.alerts.incidents.Incident`, :class:`~shared.alert_model.Alert`,
:class:`~shared.alerts.store.StoredAlert`) or their ``to_dict()`` forms; sign-ins are mappings with
``time``, ``user``, ``ip``, ``country``, ``city`` and ``lat``/``lon`` (or ``latitude``/``longitude``);
remediations are mappings shown column by column.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any

import jinja2
from markupsafe import Markup

from shared.platform.errors import BadInputError

DBIP_ATTRIBUTION = "IP Geolocation by DB-IP"
DBIP_URL = "https://db-ip.com"
MAP_WIDTH = 720
MAP_HEIGHT = 360
MAX_INCIDENTS = 200
MAX_ALERT_ROWS = 500
MAX_POINTS = 2000
"""Places (distinct rounded locations) drawn on the map: the busiest when there are more."""
MAX_SIGNIN_ROWS = 1000
MAX_TIMELINE_USERS = 50
MAX_TIMELINE_ROWS = 100
PLACE_DECIMALS = 1
"""Sign-ins closer than this many decimals of a degree (about 10 km) share one dot."""

_SEVERITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3}
_REMEDIATION_COLUMNS = ("at", "action", "target", "state", "status", "by", "incident_id", "result", "reason")
_MAX_TIP_ITEMS = 5

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem;color:#1b1f24;background:#fff}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #d0d7de}
h3{font-size:1rem;margin:1.2rem 0 .3rem}
.meta{color:#57606a}.cap{font-style:italic}.counts span{display:inline-block;margin-right:1.2rem}
table{border-collapse:collapse;width:100%;font-size:.85rem}th,td{border:1px solid #d0d7de;padding:.3rem .45rem;
text-align:left;vertical-align:top}th{background:#f6f8fa}tr.alert td{background:#fff8f8}
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


@cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("shared.reports", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(num=lambda n: f"{n:,}", plural=_plural, severities=tuple(_SEVERITY_ORDER))
    return env


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


@cache
def world_map() -> dict[str, Any]:
    """The shipped country outlines: ``{"width", "height", "licence", "countries": [{"id", "name", "d"}]}``."""
    text = resources.files("shared.reports").joinpath("data/world-110m.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    if (data.get("width"), data.get("height")) != (MAP_WIDTH, MAP_HEIGHT):
        raise BadInputError("world map data does not match the report's map size")
    return data


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


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _tip(label: str, values: Sequence[str]) -> str:
    shown = ", ".join(values[:_MAX_TIP_ITEMS])
    more = len(values) - _MAX_TIP_ITEMS
    return f"{label}: {shown}" + (f" (+{more:,} more)" if more > 0 else "")


def _map_view(signins: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The map's places (busiest first, at most MAX_POINTS), labels and what the cap left out."""
    places: dict[tuple[float, float], dict[str, Any]] = {}
    for s in signins:
        pt = _point(s)
        if pt is None:
            continue
        key = (round(pt[0], PLACE_DECIMALS), round(pt[1], PLACE_DECIMALS))
        place = places.get(key)
        if place is None:
            place = places[key] = {"lat": key[0], "lon": key[1], "count": 0, "users": {}, "ips": {}, "where": set()}
        place["count"] += 1
        place["users"].setdefault(_text(s.get("user")), None)
        place["ips"].setdefault(_text(s.get("ip")), None)
        where = " ".join(t for t in (_text(s.get("city")), _text(s.get("country"))) if t)
        if where:
            place["where"].add(where)
    ordered = sorted(places.values(), key=lambda p: (-p["count"], p["lat"], p["lon"]))
    shown = ordered[:MAX_POINTS]
    dots = []
    by_country: dict[str, list[tuple[float, float, int]]] = {}
    for p in shown:
        x, y = project(p["lat"], p["lon"])
        tip = " · ".join(
            [
                f"{p['count']:,} sign-in{'s' if p['count'] != 1 else ''}",
                ", ".join(sorted(p["where"])),
                _tip("users", [u for u in p["users"] if u]),
                _tip("IPs", [i for i in p["ips"] if i]),
            ]
        )
        r = 3.0 + min(6.0, math.sqrt(p["count"]) - 1.0)
        dots.append({"x": f"{x:.1f}", "y": f"{y:.1f}", "r": f"{r:.1f}", "tip": tip})
    for s in signins:
        pt = _point(s)
        country = _text(s.get("country")).strip()
        if pt is not None and country:
            by_country.setdefault(country, []).append((*project(*pt), 1))
    labels = []
    placed: list[tuple[float, float, float, float]] = []
    for country, pts in sorted(by_country.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        x = sum(p[0] for p in pts) / len(pts)
        y = sum(p[1] for p in pts) / len(pts)
        right = x > MAP_WIDTH - 80  # near the right edge: the label ends left of the dot
        width = _LABEL_CHAR_W * (len(country) + len(str(len(pts))) + 3)
        left = x - 6 - width if right else x + 6
        top = _free_row(placed, left, width, max(y - 6, 12))
        placed.append((left, top, width, _LABEL_H))
        labels.append(
            {
                "x": f"{x - 6 if right else x + 6:.1f}",
                "y": f"{top:.1f}",
                "anchor": "end" if right else "start",
                "country": country,
                "count": len(pts),
            }
        )
    labels.sort(key=lambda lab: lab["country"])
    data = world_map()
    return {
        "places": dots,
        "places_total": len(ordered),
        "shown_signins": sum(p["count"] for p in shown),
        "labels": labels,
        "map": {
            "width": MAP_WIDTH,
            "height": MAP_HEIGHT,
            "countries": data["countries"],
            "credit": data["licence"],
            "meridians": [f"{project(0, lon)[0]:.1f}" for lon in range(-150, 180, 30)],
            "parallels": [f"{project(lat, 0)[1]:.1f}" for lat in range(-60, 90, 30)],
        },
    }


def _incident_view(inc: Mapping[str, Any]) -> dict[str, Any]:
    entries = []
    for a in inc.get("alerts") or []:
        entries.append(
            {
                "stage": _text(a.get("stage")).replace("_", " "),
                "first_seen": _time_text(a.get("first_seen")),
                "severity": _text(a.get("severity") or "low").lower(),
                "title": _text(a.get("title")),
                "summary": _text(a.get("summary")),
                "ip": _text(a.get("ip")),
                "evidence": [_text(i) for i in a.get("evidence_record_ids") or []],
            }
        )
    return {
        "incident_id": _text(inc.get("incident_id")),
        "tenant_id": _text(inc.get("tenant_id")),
        "user": _text(inc.get("user")),
        "title": _text(inc.get("title")),
        "severity": _text(inc.get("severity") or "low").lower(),
        "status": _text(inc.get("status")),
        "revision": _text(inc.get("revision")),
        "first_seen": _time_text(inc.get("first_seen")),
        "last_seen": _time_text(inc.get("last_seen")),
        "stages": [_text(s).replace("_", " ") for s in inc.get("stages") or []],
        "reasons": [_text(r) for r in inc.get("severity_reasons") or []],
        "entries": entries,
    }


def _alert_view(a: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "first_seen": _time_text(a.get("first_seen")),
        "severity": _text(a.get("severity") or "low").lower(),
        "detector": _text(a.get("detector")),
        "user": _text(a.get("user")),
        "ip": _text(a.get("ip")),
        "summary": _text(a.get("summary")),
        "status": _text(a.get("status", "")),
        "alert_id": _text(a.get("alert_id")),
        "evidence": [_text(i) for i in a.get("evidence_record_ids") or []],
    }


def _sort_time(value: Any) -> str:
    return _time_text(value)


def _timelines(alerts: Sequence[Mapping[str, Any]], signins: Sequence[Mapping[str, Any]]) -> tuple[list[Any], int]:
    """Per user with an alert (most severe first): alerts and sign-ins in time order."""
    users: dict[str, list[dict[str, Any]]] = {}
    worst: dict[str, int] = {}
    for a in alerts:
        user = _text(a.get("user")).strip()
        if not user:
            continue
        key = user.lower()
        sev = _text(a.get("severity") or "low").lower()
        worst[key] = min(worst.get(key, 9), _SEVERITY_ORDER.get(sev, 9))
        users.setdefault(key, []).append(
            {
                "kind": "alert",
                "time": _sort_time(a.get("first_seen")),
                "severity": sev,
                "what": _text(a.get("title") or a.get("detector")),
                "ip": _text(a.get("ip")),
                "where": "",
                "detail": _text(a.get("summary")),
                "user": user,
            }
        )
    for s in signins:
        key = _text(s.get("user")).strip().lower()
        if key in users:
            where = ", ".join(t for t in (_text(s.get("city")), _text(s.get("country"))) if t)
            users[key].append(
                {
                    "kind": "signin",
                    "time": _sort_time(s.get("time")),
                    "severity": "",
                    "what": "sign-in",
                    "ip": _text(s.get("ip")),
                    "where": where,
                    "detail": "",
                    "user": _text(s.get("user")),
                }
            )
    order = sorted(users, key=lambda k: (worst[k], k))
    out = []
    for key in order[:MAX_TIMELINE_USERS]:
        rows = users[key]
        name = next(r["user"] for r in rows if r["kind"] == "alert")
        out.append({"user": name, "rows": _timeline_rows(rows), "total": len(rows)})
    return out, len(order)


def _timeline_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """At most MAX_TIMELINE_ROWS rows in time order (a sign-in before the alert it raised at the same second):
    when there are more, the alerts first, then the sign-ins nearest in time to an alert."""
    if len(rows) > MAX_TIMELINE_ROWS:
        alerts = sorted((r for r in rows if r["kind"] == "alert"), key=lambda r: r["time"])[:MAX_TIMELINE_ROWS]
        marks = [_epoch(r["time"]) for r in alerts]
        signins = [r for r in rows if r["kind"] != "alert"]
        signins.sort(key=lambda r: (min(abs(_epoch(r["time"]) - m) for m in marks), r["time"]))
        rows = alerts + signins[: MAX_TIMELINE_ROWS - len(alerts)]
    return sorted(rows, key=lambda r: (r["time"], r["kind"] == "alert"))


def _epoch(text: str) -> float:
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return 0.0


def _cell(value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    if isinstance(value, datetime):
        return _time_text(value)
    return _text(value)


_LABEL_CHAR_W = 6.5
_LABEL_H = 12.0


def _free_row(placed: list[tuple[float, float, float, float]], left: float, width: float, y: float) -> float:
    """The baseline nearest ``y`` (in steps of a line, down first) where a label does not cover a placed one."""
    for step in range(40):
        shift = _LABEL_H * ((step + 1) // 2) * (1 if step % 2 else -1)
        cand = y + shift
        if cand < _LABEL_H or cand > MAP_HEIGHT - 2:
            continue
        if not any(
            left < pl + pw and pl < left + width and cand - _LABEL_H < pt and pt - _LABEL_H < cand
            for pl, pt, pw, _ in placed
        ):
            return cand
    return y


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
    signins_total: int | None = None,
    located_total: int | None = None,
) -> str:
    """The report as one HTML document.

    ``signins`` may be a bounded sample of a larger input (``itdr scan``): ``signins_total`` and ``located_total``
    then say how many there were in all, and the views say they show a part.

    ``period`` is a label or a ``(start, end)`` pair of epoch seconds or datetimes. With
    ``strict_tenant``, an incident, alert or sign-in of another tenant raises BadInputError.
    """
    incs = [_as_dict(i) for i in incidents]
    incs.sort(key=lambda i: (_SEVERITY_ORDER.get(_text(i.get("severity")), 9), _sort_time(i.get("first_seen"))))
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
        sev = _text(a.get("severity") or "low").lower()
        counts[sev] = counts.get(sev, 0) + 1
    ordered_alerts = sorted(
        alts, key=lambda a: (_SEVERITY_ORDER.get(_text(a.get("severity")), 9), _sort_time(a.get("first_seen")))
    )
    alert_users = {_text(a.get("user")).strip().lower() for a in alts}
    signin_rows = sorted(
        sins, key=lambda s: (_text(s.get("user")).strip().lower() not in alert_users, _sort_time(s.get("time")))
    )[:MAX_SIGNIN_ROWS]
    timelines, timeline_users = _timelines(alts, sins)
    keys: list[str] = [k for k in _REMEDIATION_COLUMNS if any(k in r for r in rems)]
    for r in rems:
        keys.extend(k for k in r if k not in keys)
    when = _time_text(generated_at) if generated_at is not None else _time_text(datetime.now(UTC))
    return (
        _environment()
        .get_template("report.html.j2")
        .render(
            title=f"m365-itdr report: {tenant_id}",
            css=Markup(_CSS),  # noqa: S704 - a constant of this module
            period=_period_text(period),
            generated=when,
            incidents_total=len(incs),
            incidents=[_incident_view(i) for i in incs[:MAX_INCIDENTS]],
            alerts_total=len(alts),
            alerts=[_alert_view(a) for a in ordered_alerts[:MAX_ALERT_ROWS]],
            severity_counts=sorted(counts.items(), key=lambda kv: _SEVERITY_ORDER.get(kv[0], 9)),
            signins_total=max(signins_total or 0, len(sins)),
            located=max(located_total or 0, sum(1 for s in sins if _point(s) is not None)),
            countries=sorted({_text(s.get("country")) for s in sins if s.get("country")}),
            signin_rows=[
                {
                    "time": _time_text(s.get("time")),
                    "user": _text(s.get("user")),
                    "ip": _text(s.get("ip")),
                    "country": _text(s.get("country")),
                    "city": _text(s.get("city")),
                }
                for s in signin_rows
            ],
            timelines=timelines,
            timeline_users_total=timeline_users,
            remediations=[{k: _cell(r.get(k)) for k in keys} for r in rems],
            remediation_keys=keys,
            dbip_url=DBIP_URL,
            dbip_attribution=DBIP_ATTRIBUTION,
            **_map_view(sins),
        )
    )
