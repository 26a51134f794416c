"""The HTML report: self-contained, every value escaped, incidents first, user timelines, world map, IP columns,
capped views that say so, evidence IDs, remediations, DB-IP and Natural Earth credits."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from shared.alert_model import Category
from shared.alerts.incidents import InMemoryIncidentBook
from shared.platform.errors import BadInputError
from shared.reports.html import project, render_report

T0 = 1_764_000_000.0
H = 3600.0
TENANT = "9f6a3d1e-0c4b-4e8a-9d57-2b1f0c3e4a11"
EVIL_RULE = "<script>alert('pwned')</script>"
EVIL_USER = '"><img src=x onerror=alert(1)>@contoso.com'
EVIL_UA = "Mozilla/5.0 <iframe src=//evil.example></iframe> & 'x'"
WORLD = Path(__file__).resolve().parents[2] / "shared" / "reports" / "data" / "world-110m.json"


class Tags(HTMLParser):
    """Every start tag and attribute the browser would see."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


@pytest.fixture
def report(make_alert: Any) -> tuple[str, list[Any]]:
    rule = make_alert(
        Category.SHADOW_WORKFLOW,
        at=T0 + H,
        title=f"Inbox rule {EVIL_RULE}",
        summary=f"Inbox rule {EVIL_RULE!r} moves mail to RSS Feeds",
        user=EVIL_USER,
        evidence=("rec-<b>1</b>", "rec-2"),
    )
    sign_in = make_alert(Category.UNWANTED_LOGIN, at=T0, user=EVIL_USER, summary=f"Sign-in with user agent {EVIL_UA}")
    (inc,) = InMemoryIncidentBook(now=lambda: T0).add_alerts([sign_in, rule])
    signins = [
        {"time": "2025-11-24T16:00:00Z", "user": EVIL_USER, "ip": "198.51.100.7", "country": "PT", "lat": 38.7, "lon": -9.1},
        {"time": T0 + 60, "user": "megan@contoso.com", "ip": "203.0.113.9", "country": "<svg onload=x>", "latitude": 0.0, "longitude": 0.0},
        {"time": T0 + 120, "user": "megan@contoso.com", "ip": "192.0.2.1", "country": None, "lat": None, "lon": None},
        {"time": T0 + 180, "user": EVIL_USER, "ip": "198.51.100.7", "country": "PT", "city": "<b>Lisboa</b>", "lat": 38.71, "lon": -9.14},
    ]  # fmt: skip
    remediations = [
        {"action": "delete_inbox_rule", "target": {"rule_name": EVIL_RULE}, "state": "succeeded", "by": "ana"},
        {"action": "revoke_sessions", "target": EVIL_USER, "state": "pending_approval", "incident_id": inc.incident_id},
    ]
    html = render_report(
        TENANT, (T0, T0 + 7 * 86400), [inc], [sign_in, rule], signins, remediations, generated_at=T0 + 8 * 86400
    )
    return html, [inc, sign_in, rule]


def test_malicious_names_are_escaped(report: tuple[str, list[Any]]) -> None:
    html, _ = report
    assert "<script" not in html.lower()
    assert "<img" not in html.lower()
    assert "<b>1</b>" not in html
    assert "<iframe" not in html.lower()
    assert "&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;" in html
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;@contoso.com" in html
    assert "Mozilla/5.0 &lt;iframe src=//evil.example&gt;&lt;/iframe&gt; &amp; &#39;x&#39;" in html
    assert "&lt;b&gt;Lisboa&lt;/b&gt;" in html
    parser = Tags()
    parser.feed(html)
    assert {t for t, _ in parser.tags} <= {
        "html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "p", "span", "div", "strong", "ol", "li",
        "table", "thead", "tbody", "tr", "th", "td", "br", "svg", "g", "path", "line", "circle", "text", "a", "footer",
    }  # fmt: skip
    assert not [a for _, attrs in parser.tags for a in attrs if a.startswith("on")]
    text = "".join(parser.text)
    assert EVIL_RULE in text and EVIL_USER in text and EVIL_UA in text  # shown as text


def test_self_contained_with_the_db_ip_and_map_credits(report: tuple[str, list[Any]]) -> None:
    html, _ = report
    parser = Tags()
    parser.feed(html)
    assert [a.get("href") for t, a in parser.tags if t == "a"] == ["https://db-ip.com"]
    assert not [a for _, attrs in parser.tags for a in attrs if a in ("src", "srcset")]
    assert "<link" not in html and "@import" not in html and "url(" not in html
    assert "IP Geolocation by DB-IP" in html
    assert (
        "Country outlines: Natural Earth 1:110m (public domain, naturalearthdata.com) "
        "via world-atlas 2.0.2 (ISC licence, © 2013-2019 Michael Bostock)" in html
    )
    assert set(re.findall(r"https?://[^\s\"'<)]+", html)) == {"https://db-ip.com", "http://www.w3.org/2000/svg"}
    assert "content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\"" in html


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def section(html: str, name: str) -> str:
    return html.split(f'<h2 id="{name}">')[1].split("<h2 ")[0]


def test_incidents_lead_then_timelines_evidence_map_and_remediations(report: tuple[str, list[Any]]) -> None:
    html, (inc, sign_in, rule) = report
    assert "Period: 2025-11-24T16:00:00Z – 2025-12-01T16:00:00Z" in html
    heads = re.findall(r'<h2 id="([a-z]+)">', html)
    assert heads == ["incidents", "timelines", "alerts", "signins", "remediations"]
    assert "<span>1 incident</span><span>2 alerts</span>" in html
    incidents = section(html, "incidents")
    assert inc.incident_id in incidents
    assert incidents.index("sign in") < incidents.index("persistence")  # the story in stage order
    assert "stages: sign in → persistence" in incidents
    assert "raised because: risky sign-in followed within 24 h by mail rule / forwarding" in incidents
    assert '<span class="sev sev-high">high</span> <strong>Possible account takeover of' in incidents
    assert "rec-&lt;b&gt;1&lt;/b&gt;, rec-2" in html  # evidence record IDs
    assert sign_in.alert_id in html and rule.alert_id in html
    # the user's timeline: two alerts and two sign-ins, in time order
    timeline = section(html, "timelines")
    assert timeline.count("<h3>") == 1
    rows = re.findall(r'<tr class="(alert|signin)"><td>([^<]*)</td>', timeline)
    assert rows == [
        ("signin", "2025-11-24T16:00:00Z"),
        ("alert", "2025-11-24T16:00:00Z"),
        ("signin", "2025-11-24T16:03:00Z"),
        ("alert", "2025-11-24T17:00:00Z"),
    ]
    # the alert table has an IP column
    alerts = section(html, "alerts")
    assert "<th>User</th><th>IP</th><th>Summary</th>" in alerts
    assert alerts.count("<td>198.51.100.7</td>") == 2
    # a real world map: every shipped country outline, a dot per place, labels per country
    svg = html.split("<svg")[1].split("</svg>")[0]
    countries = json.loads(WORLD.read_text())["countries"]
    assert svg.count("<path d=") == len(countries) == 177
    assert "<title>Portugal</title>" in svg and "<title>Brazil</title>" in svg
    assert svg.count("<circle") == 2  # Lisbon twice (one place), (0, 0) once; the unlocated one not at all
    x, y = project(38.7, -9.1)
    assert f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.4"' in svg  # 3 + sqrt(2) - 1
    assert ">PT (2)</text>" in svg and "&lt;svg onload=x&gt; (1)</text>" in svg
    signins = section(html, "signins")
    assert "3 of 4 sign-ins located; countries: &lt;svg onload=x&gt;, PT" in signins
    assert "showing" not in signins  # nothing capped
    assert "<th>Time</th><th>User</th><th>IP</th><th>Country</th><th>City</th>" in signins
    assert "<td>192.0.2.1</td>" in signins
    rem = section(html, "remediations")
    assert "<th>action</th><th>target</th><th>state</th><th>by</th><th>incident_id</th>" in rem
    assert "delete_inbox_rule" in rem and "pending_approval" in rem and "rule_name=&lt;script&gt;" in rem


def test_capped_views_say_so(make_alert: Any) -> None:
    signins = [
        {
            "time": T0 + i,
            "user": f"u{i}@contoso.com",
            "ip": f"203.0.113.{i % 250}",
            "lat": -60 + (i % 1200) * 0.1,
            "lon": 10.0 + i // 1200,
        }
        for i in range(2500)
    ] + [{"time": T0 + 9999, "user": "x@contoso.com", "ip": "192.0.2.9"}]  # not located
    alerts = [make_alert(Category.UNWANTED_LOGIN, at=T0 + i, evidence=(f"r{i}",)) for i in range(501)]
    html = render_report(TENANT, "scan", incidents=[], alerts=alerts, signins=signins, remediations=[])
    signin_part = section(html, "signins")
    assert "2,500 of 2,501 sign-ins located" in signin_part
    assert "map: showing 2,000 of 2,500 located sign-ins (2,000 of 2,500 places, the busiest)" in signin_part
    assert signin_part.count("<circle") == 2000
    assert "showing 1,000 of 2,501 sign-ins" in signin_part
    assert signin_part.count("<tr><td>") == 1000
    assert "showing 500 of 501 alerts" in section(html, "alerts")
    assert "showing 100 of 501 events" in section(html, "timelines")


def test_a_long_timeline_keeps_the_alerts_and_the_sign_ins_around_them(make_alert: Any) -> None:
    # 300 sign-ins an hour apart; one alert at the 250th hour: its 99 nearest sign-ins are shown around it
    user = "megan@contoso.com"
    signins = [{"time": T0 + i * H, "user": user, "ip": f"203.0.113.{i % 250}"} for i in range(300)]
    alert = make_alert(Category.UNWANTED_LOGIN, at=T0 + 250 * H + 30, user=user)
    html = render_report(TENANT, "scan", incidents=[], alerts=[alert], signins=signins, remediations=[])
    timeline = section(html, "timelines")
    assert "showing 100 of 301 events" in timeline
    times = re.findall(r'<tr class="(alert|signin)"><td>([^<]*)</td>', timeline)
    hours = [h for kind, h in times if kind == "signin"]
    expected = [T0 + i * H for i in range(201, 300)]  # 49 before the alert, the one at 250, 49 after
    assert hours == [_iso(t) for t in expected]
    assert times[50] == ("alert", _iso(T0 + 250 * H + 30))


def test_report_of_dicts_as_itdr_scan_passes_them(make_alert: Any) -> None:
    alert = make_alert(Category.UNWANTED_LOGIN)
    html = render_report(TENANT, "scan", incidents=[], alerts=[alert.to_dict()], signins=[], remediations=[])
    assert "No incidents in this period." in html and alert.alert_id in html
    assert "No remediation actions in this period." in html and "0 of 0 sign-ins located" in html
    assert html.count("<path d=") == 177 and "<circle" not in html  # the map without dots


def test_strict_tenant_refuses_data_of_another_tenant(make_alert: Any) -> None:
    alert = make_alert(Category.UNWANTED_LOGIN, tenant="2c4e6a80-1b3d-4f5e-8a7c-9d0e1f2a3b4c")
    with pytest.raises(BadInputError):
        render_report(TENANT, "week", [], [alert], [], [], strict_tenant=True)


@pytest.mark.parametrize(
    ("lat", "lon", "expected"), [(90, -180, (0.0, 0.0)), (-90, 180, (720.0, 360.0)), (45, 90, (540.0, 90.0))]
)
def test_equirectangular_projection(lat: float, lon: float, expected: tuple[float, float]) -> None:
    assert project(lat, lon) == expected
