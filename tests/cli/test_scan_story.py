"""`itdr scan` tells the story: incidents (``--incidents``, first in table and html) and gaps in the input.

Records follow the Office 365 Management Activity API schema (Learn: "Office 365 Management Activity API
schema": common schema, Azure Active Directory sign-in schema (RecordType 15, ``ExtendedProperties``
and ``DeviceProperties`` as Name/Value lists), Exchange admin schema (RecordType 1, ``Parameters``),
Exchange mailbox schema (RecordType 2, ``MailboxOwnerUPN``, ``ClientIPAddress``)), with
``CreationTime`` without a zone as the API writes it. Addresses are from the documentation ranges
(RFC 5737), so no geolocation data decides anything here; the Tor exit comes from a feed file.
"""

from __future__ import annotations

import hashlib
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from shared.cli.main import main

TENANT = "9f6a3d1e-0c4b-4e8a-9d57-2b1f0c3e4a11"
UPN = "megan@contoso.com"
OID = "5b0e9a3c-1111-4c2d-9e8f-0a1b2c3d4e5f"
HOME_IP = "198.51.100.10"
TOR_IP = "198.51.100.66"
EDGE_UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36 Edg/124.0"
EXCHANGE_RESOURCE = "00000002-0000-0ff1-ce00-000000000000"
OFFICE_APP = "d3590ed6-52b3-4102-aeff-aad2292ab01c"
EVIL_RULE = "<script>alert(1)</script>"


def ct(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S")


def signin(rid: str, when: datetime, ip: str, ua: str, *, upn: str = UPN, oid: str = OID) -> dict[str, Any]:
    return {
        "CreationTime": ct(when),
        "Id": rid,
        "Operation": "UserLoggedIn",
        "OrganizationId": TENANT,
        "RecordType": 15,
        "ResultStatus": "Success",
        "UserKey": "10032001D6E1A2B3",
        "UserType": 0,
        "Version": 1,
        "Workload": "AzureActiveDirectory",
        "ClientIP": ip,
        "ObjectId": EXCHANGE_RESOURCE,
        "UserId": upn,
        "AzureActiveDirectoryEventType": 1,
        "ExtendedProperties": [
            {"Name": "ResultStatusDetail", "Value": "Success"},
            {"Name": "UserAgent", "Value": ua},
            {"Name": "RequestType", "Value": "OAuth2:Authorize"},
        ],
        "ModifiedProperties": [],
        "Actor": [{"ID": oid, "Type": 0}, {"ID": upn, "Type": 5}],
        "ActorContextId": TENANT,
        "ActorIpAddress": ip,
        "Target": [{"ID": EXCHANGE_RESOURCE, "Type": 0}],
        "TargetContextId": TENANT,
        "ApplicationId": OFFICE_APP,
        "DeviceProperties": [{"Name": "OS", "Value": "Windows 10"}, {"Name": "BrowserType", "Value": "Edge"}],
        "ErrorNumber": "0",
    }


def new_inbox_rule(rid: str, when: datetime, ip: str, name: str, *, upn: str = UPN) -> dict[str, Any]:
    return {
        "CreationTime": ct(when),
        "Id": rid,
        "Operation": "New-InboxRule",
        "OrganizationId": TENANT,
        "RecordType": 1,
        "ResultStatus": "True",
        "UserKey": "10032001D6E1A2B3",
        "UserType": 2,
        "Version": 1,
        "Workload": "Exchange",
        "ClientIP": f"{ip}:50001",
        "ObjectId": f"megan\\{name}",
        "UserId": upn,
        "AppId": EXCHANGE_RESOURCE,
        "Parameters": [
            {"Name": "Name", "Value": name},
            {"Name": "MoveToFolder", "Value": "RSS Feeds"},
            {"Name": "MarkAsRead", "Value": "True"},
        ],
    }


def mail_sent(rid: str, when: datetime, upn: str) -> dict[str, Any]:
    return {
        "CreationTime": ct(when),
        "Id": rid,
        "Operation": "Send",
        "OrganizationId": TENANT,
        "RecordType": 2,
        "ResultStatus": "Succeeded",
        "UserKey": "10032001D6E1A2B3",
        "UserType": 0,
        "Version": 1,
        "Workload": "Exchange",
        "UserId": upn,
        "ClientIPAddress": HOME_IP,
        "ClientInfoString": "Client=OWA;Mozilla/5.0",
        "LogonType": 0,
        "MailboxOwnerUPN": upn,
        "Item": {"Id": f"item-{rid}", "Subject": "status"},
    }


def write_config(tmp_path: Path) -> Path:
    (tmp_path / "tor.txt").write_text(TOR_IP + "\n")
    cfg = tmp_path / "config.json"
    cfg.write_bytes(
        orjson.dumps({"tenants": {TENANT: {"internal_domains": ["contoso.com"]}}, "intel": {"tor_feeds": ["tor.txt"]}})
    )
    return cfg


def lines(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(x) for x in path.read_bytes().splitlines()]


# --------------------------------------------------------------------------- the takeover chain

T_HOME = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
T_TOR = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)
T_RULE = datetime(2026, 11, 24, 14, 5, tzinfo=UTC)
TAKEOVER = [
    signin("signin-1", T_HOME, HOME_IP, EDGE_UA),
    signin("signin-2", T_TOR, TOR_IP, "python-requests/2.31.0"),
    new_inbox_rule("rule-3", T_RULE, TOR_IP, EVIL_RULE),
]


def scan(tmp_path: Path, records: list[dict[str, Any]], fmt: str, *extra: str) -> tuple[int, Path]:
    src = tmp_path / "export.json"
    src.write_bytes(orjson.dumps(records))
    out = tmp_path / f"out.{fmt}"
    rc = main(["scan", str(src), "--format", fmt, "--output", str(out), *extra])
    return rc, out


@pytest.fixture
def takeover(tmp_path: Path) -> tuple[int, list[dict[str, Any]], list[dict[str, Any]]]:
    incidents = tmp_path / "incidents.jsonl"
    rc, out = scan(tmp_path, TAKEOVER, "jsonl", "--config", str(write_config(tmp_path)), "--incidents", str(incidents))
    return rc, lines(out), lines(incidents)


def test_takeover_chain_alerts(takeover: tuple[int, list[dict[str, Any]], list[dict[str, Any]]]) -> None:
    rc, alerts, _ = takeover
    assert rc == 0
    assert sorted((a["detector"], a["category"], a["severity"], a["evidence_record_ids"], a["ip"]) for a in alerts) == [
        ("evasive_attack_tool_user_agent", "evasive_access", "high", ["signin-2"], TOR_IP),
        ("exchange_suspicious_inbox_rule", "shadow_workflow", "high", ["rule-3"], TOR_IP),
        ("signin_anonymizer", "unwanted_login", "high", ["signin-2"], TOR_IP),
    ]


def test_incidents_file_holds_the_one_incident_exactly(
    takeover: tuple[int, list[dict[str, Any]], list[dict[str, Any]]],
) -> None:
    _, alerts, incidents = takeover
    by = {a["detector"]: a for a in alerts}
    sign_in, tool, rule = (
        by["signin_anonymizer"],
        by["evasive_attack_tool_user_agent"],
        by["exchange_suspicious_inbox_rule"],
    )
    # the incident is opened by the earliest alert (ties: the smaller alert ID); its ID is sha256(tenant|user key|alert)
    opener = min((sign_in, tool, rule), key=lambda a: (a["first_seen"], a["alert_id"]))["alert_id"]
    incident_id = "inc-" + hashlib.sha256(f"{TENANT}|{OID}|{opener}".encode()).hexdigest()[:24]

    def entry(a: dict[str, Any], stage: str) -> dict[str, Any]:
        return {
            "alert_id": a["alert_id"],
            "detector": a["detector"],
            "title": a["title"],
            "category": a["category"],
            "stage": stage,
            "severity": "high",
            "first_seen": a["first_seen"],
            "last_seen": a["last_seen"],
            "summary": a["summary"],
            "user": UPN,
            "ip": TOR_IP,
            "asn": None,
            "country": None,
            "app_id": OFFICE_APP if a is sign_in else None,  # only the anonymiser's context names the app
            "mitre": a["mitre"],
            "evidence_record_ids": a["evidence_record_ids"],
            "count": 1,
        }

    assert incidents == [
        {
            "incident_id": incident_id,
            "tenant_id": TENANT,
            "user_key": OID,
            "user": UPN,
            "title": f"Possible account takeover of {UPN}: Sign-in → Mail rule / forwarding → Access",
            "severity": "critical",  # every alert is high: raised by the combination
            "severity_reasons": ["3 attack stages: Sign-in → Mail rule / forwarding → Access"],
            "status": "new",
            "triage": "awaiting_verdict",  # the scan has no SOC: no analyst's verdict yet
            "escalations": [],
            "stages": ["sign_in", "persistence", "access"],
            "first_seen": "2026-11-24T14:00:00Z",
            "last_seen": "2026-11-24T14:05:00Z",
            "revision": 1,
            "updated_at": "2026-11-24T14:05:00Z",
            "alerts": [entry(sign_in, "sign_in"), entry(rule, "persistence"), entry(tool, "access")],
            "history": [],
            "remediation": [],
        }
    ]
    assert rule["summary"].startswith(f"Inbox rule '{EVIL_RULE}' created on {UPN}")


def test_table_leads_with_the_incident(tmp_path: Path) -> None:
    rc, out = scan(tmp_path, TAKEOVER, "table", "--config", str(write_config(tmp_path)))
    assert rc == 0
    text = out.read_text()
    head, alerts = text.split("\n\nALERTS\n")
    rows = head.splitlines()
    assert rows[0] == "INCIDENTS (1)"
    assert rows[1].startswith("CRITICAL  inc-") and rows[1].endswith(
        f"9f6a3d1e  2026-11-24T14:00:00Z – 2026-11-24T14:05:00Z  Possible account takeover of {UPN}: "
        "Sign-in → Mail rule / forwarding → Access"
    )
    assert rows[2:] == [
        "          stages: Sign-in → Mail rule / forwarding → Access",
        "          raised because: 3 attack stages: Sign-in → Mail rule / forwarding → Access",
        f"          2026-11-24T14:00:00Z  Sign-in                 high      Sign-in through an anonymiser (VPN, Tor or proxy) [{TOR_IP}]",
        f"          2026-11-24T14:05:00Z  Mail rule / forwarding  high      Suspicious inbox rule [{TOR_IP}]",
        f"          2026-11-24T14:00:00Z  Access                  high      Attack tool or script user agent [{TOR_IP}]",
    ]
    table = alerts.splitlines()
    assert table[0].split() == ["SEVERITY", "DETECTOR", "TENANT", "USER", "IP", "FIRST", "SEEN", "SUMMARY"]
    assert len(table) == 4
    assert [row.split()[:6] for row in table[1:]] == [
        ["high", "evasive_attack_tool_user_agent", "9f6a3d1e", UPN, TOR_IP, "2026-11-24T14:00:00Z"],
        ["high", "signin_anonymizer", "9f6a3d1e", UPN, TOR_IP, "2026-11-24T14:00:00Z"],
        ["high", "exchange_suspicious_inbox_rule", "9f6a3d1e", UPN, TOR_IP, "2026-11-24T14:05:00Z"],
    ]


def test_table_never_passes_terminal_escapes(tmp_path: Path) -> None:
    evil = "megan\x1b]0;pwned\x07\x1b[2J@contoso.com"  # an OSC title change and a screen clear in the UPN
    records = [
        signin("signin-2", T_TOR, TOR_IP, "python-requests/2.31.0", upn=evil),
        new_inbox_rule("rule-3", T_RULE, TOR_IP, "\x1b[31mred", upn=evil),
    ]
    rc, out = scan(tmp_path, records, "table", "--config", str(write_config(tmp_path)))
    assert rc == 0
    text = out.read_text()
    assert "\x1b" not in text and "\x07" not in text
    shown = "megan@contoso.com"  # the escape sequences removed whole (shared.cli.terminal.safe)
    # the sign-in is keyed on the user's object ID and kept; the rule record, keyed on that UPN, is quarantined
    # (control characters in an identifier: no real UPN holds them, and storage keys refuse them)
    assert f"Possible account takeover of {shown}: Sign-in → Access" in text
    assert text.count(f"  {shown}  ") == 2  # the USER column of the sign-in's two alerts


def test_html_leads_with_the_incident_and_escapes(tmp_path: Path) -> None:
    rc, out = scan(tmp_path, TAKEOVER, "html", "--config", str(write_config(tmp_path)))
    assert rc == 0
    html = out.read_text()
    assert "<script" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    body = html.split("<body>")[1]
    assert body.index('<h2 id="incidents">') < body.index('<h2 id="timelines">') < body.index('<h2 id="alerts">')
    incidents = body.split('<h2 id="incidents">')[1].split("<h2 ")[0]
    assert f"Possible account takeover of {UPN}: Sign-in → Mail rule / forwarding → Access" in incidents
    assert '<span class="sev sev-critical">critical</span>' in incidents
    assert "raised because: 3 attack stages: Sign-in → Mail rule / forwarding → Access" in incidents
    assert "<span>1 incident</span><span>3 alerts</span>" in html
    alerts = body.split('<h2 id="alerts">')[1].split("<h2 ")[0]
    assert "<th>IP</th>" in alerts and alerts.count(f"<td>{TOR_IP}</td>") == 3
    signins = body.split('<h2 id="signins">')[1].split("<h2 ")[0]
    assert "0 of 2 sign-ins located" in signins  # documentation addresses have no location
    assert signins.count("<path d=") == 177 and f"<td>{HOME_IP}</td>" in signins
    timeline = body.split('<h2 id="timelines">')[1].split("<h2 ")[0]
    assert f"<h3>{UPN}</h3>" in timeline
    assert timeline.count('<tr class="signin">') == 2 and timeline.count('<tr class="alert">') == 3


# --------------------------------------------------------------------------- gaps in the input

START = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday


def busy_tenant(days: int, silent: tuple[datetime, datetime]) -> list[dict[str, Any]]:
    """Sign-ins every 20 minutes and mail sent every 30 minutes, day and night; no mail in ``silent``."""
    recs: list[dict[str, Any]] = []
    for i in range(days * 72):
        t = START + timedelta(minutes=20 * i, seconds=7)
        recs.append(signin(f"s-{i}", t, HOME_IP, EDGE_UA))
    for i in range(days * 48):
        t = START + timedelta(minutes=30 * i)
        if not silent[0] <= t < silent[1]:
            recs.append(mail_sent(f"m-{i}", t, UPN))
    return recs


def test_exchange_silent_three_days_is_one_integration_health_alert(tmp_path: Path) -> None:
    silent = (START + timedelta(days=6), START + timedelta(days=9))
    records = busy_tenant(14, silent)
    incidents = tmp_path / "incidents.jsonl"
    summary = tmp_path / "summary.json"
    rc, out = scan(tmp_path, records, "jsonl", "--incidents", str(incidents), "--summary", str(summary))
    assert rc == 0
    (alert,) = lines(out)
    last_before = silent[0] - timedelta(minutes=30)  # the last mail before the silence, the first after
    assert (alert["detector"], alert["category"], alert["severity"], alert["title"]) == (
        "integration_feed_health",
        "integration_health",
        "medium",
        "Audit records missing: Exchange silent for 72.5 h",
    )
    assert (alert["tenant_id"], alert["user"], alert["first_seen"], alert["last_seen"]) == (
        TENANT,
        "",
        "2026-11-07T23:30:00Z",
        "2026-11-11T00:00:00Z",
    )
    assert last_before.strftime("%Y-%m-%dT%H:%M:%SZ") == alert["first_seen"]
    assert alert["evidence_record_ids"] == ["feed:Audit.Exchange:2026-11-07"]
    hours_inside = 72  # whole clock hours strictly inside the silence: 2026-11-08T00 .. 2026-11-10T23
    sign_ins_inside = 1 + 3 * 72  # the 20-minute sign-ins after 23:30:00 on the 7th (23:40:07) to 23:40:07 on the 10th
    assert alert["context"] == {
        "kind": "input_gap",
        "content_type": "Audit.Exchange",
        "workload": "Exchange",
        "silent_from": "2026-11-07T23:30:00Z",
        "silent_to": "2026-11-11T00:00:00Z",
        "silent_hours": 72.5,
        "edge": None,
        "expected_active_hours": float(hours_inside),
        "usual_silence_active_hours": 0.125,
        "other_records_inside": sign_ins_inside,
        "other_active_hours_inside": 72,  # sign-ins in every clock hour of the 8th, 9th and 10th
    }
    assert alert["summary"].startswith(
        f"No Exchange records of tenant {TENANT} from 2026-11-07T23:30:00Z to 2026-11-11T00:00:00Z: 72.5 h, "
        f"while its other workloads kept flowing ({sign_ins_inside} records)."
    )
    assert alert["mitre"] == ["T1562.008"]
    s = orjson.loads(summary.read_bytes())
    assert (s["alerts_by_category"], s["incidents"]) == ({"integration_health": 1}, 1)
    (inc,) = lines(incidents)
    assert (inc["user_key"], inc["stages"], inc["severity"], inc["severity_reasons"]) == (
        "_tenant",
        ["integration_health"],
        "medium",
        [],
    )
    assert [a["alert_id"] for a in inc["alerts"]] == [alert["alert_id"]]


def small_tenant(weeks: int, seed: int) -> list[dict[str, Any]]:
    """Three people, office hours Mon-Fri (08:00-18:00 UTC), a sign-in or mail in most office hours;
    nothing at night or at weekends."""
    rng = random.Random(seed)
    people = [("megan@contoso.com", OID), ("alex@contoso.com", "7c1d2e3f-2222-4c2d-9e8f-0a1b2c3d4e5f")]
    people.append(("ana@contoso.com", "8d2e3f40-3333-4c2d-9e8f-0a1b2c3d4e5f"))
    recs: list[dict[str, Any]] = []
    n = 0
    for day in range(weeks * 7):
        date = START + timedelta(days=day)
        if date.weekday() >= 5:
            continue
        for hour in range(8, 18):
            for upn, oid in people:
                if rng.random() < 0.3:
                    t = date + timedelta(hours=hour, seconds=rng.randrange(3600))
                    recs.append(signin(f"s-{n}", t, HOME_IP, EDGE_UA, upn=upn, oid=oid))
                    n += 1
                if rng.random() < 0.4:
                    t = date + timedelta(hours=hour, seconds=rng.randrange(3600))
                    recs.append(mail_sent(f"m-{n}", t, upn))
                    n += 1
    return recs


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_quiet_nights_and_weekends_of_a_small_tenant_are_not_gaps(tmp_path: Path, seed: int) -> None:
    records = small_tenant(3, seed)
    summary = tmp_path / "summary.json"
    rc, out = scan(tmp_path, records, "jsonl", "--summary", str(summary))
    assert rc == 0
    assert out.read_bytes() == b""
    s = orjson.loads(summary.read_bytes())
    assert (s["records_processed"], s["alerts"], s["incidents"]) == (len(records), 0, 0)


def test_the_same_small_tenant_losing_exchange_for_three_workdays_is_a_gap(tmp_path: Path) -> None:
    # Tuesday 00:00 to Friday 00:00 of the second week: 30 office hours without mail
    lost = (START + timedelta(days=8), START + timedelta(days=11))
    records = [
        r
        for r in small_tenant(3, 1)
        if not (
            r["Workload"] == "Exchange" and lost[0] <= datetime.fromisoformat(r["CreationTime"] + "+00:00") < lost[1]
        )
    ]
    rc, out = scan(tmp_path, records, "jsonl")
    assert rc == 0
    (alert,) = lines(out)
    assert alert["context"]["workload"] == "Exchange" and alert["context"]["edge"] is None
    sent = sorted(datetime.fromisoformat(r["CreationTime"] + "+00:00") for r in records if r["Workload"] == "Exchange")
    before = max(t for t in sent if t < lost[0])
    after = min(t for t in sent if t >= lost[1])
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    assert (alert["first_seen"], alert["last_seen"]) == (before.strftime(fmt), after.strftime(fmt))
