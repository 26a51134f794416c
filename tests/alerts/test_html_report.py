"""The HTML report: self-contained, every value escaped, timeline, map, evidence IDs, remediations, DB-IP credit."""

from __future__ import annotations

import re
from html.parser import HTMLParser
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
    sign_in = make_alert(Category.UNWANTED_LOGIN, at=T0, user=EVIL_USER)
    (inc,) = InMemoryIncidentBook(now=lambda: T0).add_alerts([sign_in, rule])
    signins = [
        {"time": "2025-11-24T16:00:00Z", "user": EVIL_USER, "ip": "198.51.100.7", "country": "PT", "lat": 38.7, "lon": -9.1},
        {"time": T0 + 60, "user": "megan@contoso.com", "ip": "203.0.113.9", "country": "<svg onload=x>", "latitude": 0.0, "longitude": 0.0},
        {"time": T0 + 120, "user": "megan@contoso.com", "ip": "192.0.2.1", "country": None, "lat": None, "lon": None},
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
    assert "&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt;" in html
    assert "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;@contoso.com" in html
    parser = Tags()
    parser.feed(html)
    assert {t for t, _ in parser.tags} <= {
        "html", "head", "meta", "title", "style", "body", "h1", "h2", "p", "span", "div", "strong", "ol", "li",
        "table", "thead", "tbody", "tr", "th", "td", "br", "svg", "line", "circle", "text", "a", "footer",
    }  # fmt: skip
    assert not [a for _, attrs in parser.tags for a in attrs if a.startswith("on")]
    assert EVIL_RULE in "".join(parser.text)  # shown as text


def test_self_contained_with_the_db_ip_credit(report: tuple[str, list[Any]]) -> None:
    html, _ = report
    parser = Tags()
    parser.feed(html)
    assert [a.get("href") for t, a in parser.tags if t == "a"] == ["https://db-ip.com"]
    assert not [a for _, attrs in parser.tags for a in attrs if a in ("src", "srcset")]
    assert "<link" not in html and "@import" not in html and "url(" not in html
    assert "IP Geolocation by DB-IP" in html
    assert set(re.findall(r"https?://[^\s\"'<)]+", html)) == {"https://db-ip.com", "http://www.w3.org/2000/svg"}
    assert "content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\"" in html


def test_timeline_evidence_map_and_remediations(report: tuple[str, list[Any]]) -> None:
    html, (inc, sign_in, rule) = report
    assert "Period: 2025-11-24T16:00:00Z – 2025-12-01T16:00:00Z" in html
    timeline = html.split("<h2>Incident timeline</h2>")[1].split("<h2>Alerts</h2>")[0]
    assert inc.incident_id in timeline
    assert timeline.index("sign in") < timeline.index("persistence")  # the story in stage order
    assert "raised because: risky sign-in followed within 24 h by mail rule / forwarding" in timeline
    assert "rec-&lt;b&gt;1&lt;/b&gt;, rec-2" in html  # evidence record IDs
    assert sign_in.alert_id in html and rule.alert_id in html
    svg = html.split("<svg")[1].split("</svg>")[0]
    assert svg.count("<circle") == 2  # the sign-in without a location is not plotted
    x, y = project(0.0, 0.0)
    assert f'cx="{x:.1f}" cy="{y:.1f}"' in svg
    assert ">PT (1)</text>" in svg and "&lt;svg onload=x&gt; (1)</text>" in svg
    assert "2 of 3 sign-ins located; countries: &lt;svg onload=x&gt;, PT" in html
    rem = html.split("<h2>Remediation actions taken</h2>")[1]
    assert "<th>action</th><th>target</th><th>state</th><th>by</th><th>incident_id</th>" in rem
    assert "delete_inbox_rule" in rem and "pending_approval" in rem and "rule_name=&lt;script&gt;" in rem


def test_report_of_dicts_as_itdr_scan_passes_them(make_alert: Any) -> None:
    alert = make_alert(Category.UNWANTED_LOGIN)
    html = render_report(TENANT, "scan", incidents=[], alerts=[alert.to_dict()], signins=[], remediations=[])
    assert "No incidents in this period." in html and alert.alert_id in html
    assert "No remediation actions in this period." in html and "0 of 0 sign-ins located" in html


def test_strict_tenant_refuses_data_of_another_tenant(make_alert: Any) -> None:
    alert = make_alert(Category.UNWANTED_LOGIN, tenant="2c4e6a80-1b3d-4f5e-8a7c-9d0e1f2a3b4c")
    with pytest.raises(BadInputError):
        render_report(TENANT, "week", [], [alert], [], [], strict_tenant=True)


@pytest.mark.parametrize(
    ("lat", "lon", "expected"), [(90, -180, (0.0, 0.0)), (-90, 180, (720.0, 360.0)), (45, 90, (540.0, 90.0))]
)
def test_equirectangular_projection(lat: float, lon: float, expected: tuple[float, float]) -> None:
    assert project(lat, lon) == expected
