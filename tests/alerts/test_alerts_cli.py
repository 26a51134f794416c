"""`itdr alerts ...` and `itdr suppressions ...` against Table Storage (Azurite), tables and JSON."""

from __future__ import annotations

import argparse
import io
from typing import Any

import orjson
import pytest

from shared.alert_model import Category
from shared.alerts.incidents import TableIncidentBook
from shared.alerts.store import AlertStatus, TableAlertStore
from shared.alerts.suppressions import TableSuppressionStore
from shared.cli.alerts_cmd import dispatch, parse_duration, parse_when, register
from shared.platform.errors import BadInputError, NotFoundError

T0 = 1_764_000_000.0
H = 3600.0
TENANT = "9f6a3d1e-0c4b-4e8a-9d57-2b1f0c3e4a11"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="itdr")
    register(p.add_subparsers(dest="command", required=True))
    return p


@pytest.fixture
def seeded(storage: Any, make_alert: Any, clock: Any) -> Any:
    alerts = [
        make_alert(Category.UNWANTED_LOGIN, at=T0, summary="Sign-in from Tor exit 198.51.100.7"),
        make_alert(Category.SHADOW_WORKFLOW, at=T0 + H, summary="Inbox rule '.' forwards to evil@example.net"),
    ]
    TableAlertStore.from_storage(storage, now=clock).upsert_alerts(alerts)
    (inc,) = TableIncidentBook.from_storage(storage, now=clock).add_alerts(alerts)
    return alerts, inc


def run(storage: Any, *argv: str) -> tuple[int, str]:
    args = parser().parse_args(list(argv))
    out = io.StringIO()
    rc = dispatch(args, storage, out=out, now=lambda: T0 + 2 * H)
    return rc, out.getvalue()


def test_alerts_list_as_a_table_and_as_json(storage: Any, seeded: Any) -> None:
    (a, b), _ = seeded
    rc, text = run(storage, "alerts", "list", "--tenant", TENANT)
    assert rc == 0
    lines = text.splitlines()
    assert lines[0].split() == ["ALERT", "STATUS", "SEVERITY", "DETECTOR", "USER", "LAST", "SEEN", "SUMMARY"]
    assert lines[1].split()[:6] == [
        a.alert_id,
        "new",
        "medium",
        "test_unwanted_login",
        "megan@contoso.com",
        "2025-11-24T16:01:00Z",
    ]
    assert lines[1].endswith("Sign-in from Tor exit 198.51.100.7")
    assert lines[-1] == "2 alert(s)"
    rc, text = run(storage, "alerts", "list", "--tenant", TENANT, "--format", "json")
    assert [r["alert_id"] for r in orjson.loads(text)] == [a.alert_id, b.alert_id]
    assert orjson.loads(text)[0] == {**a.to_dict(), "status": "new", "history": []}


def test_ack_confirm_dismiss_record_who_and_why_and_reach_the_incident(storage: Any, seeded: Any) -> None:
    (a, b), inc = seeded
    assert run(storage, "alerts", "ack", "--tenant", TENANT, a.alert_id, "--by", "ana")[0] == 0
    rc, text = run(storage, "alerts", "confirm", "--tenant", TENANT, b.alert_id, "--by", "ana", "--reason", "not hers")
    assert (rc, text.splitlines()) == (
        0,
        [
            f"{b.alert_id}: confirmed (by ana)",
            f"incident {inc.incident_id}: confirmed, revision 3, not sent for delivery (no Service Bus configured)",
        ],
    )
    rc, text = run(storage, "alerts", "show", "--tenant", TENANT, b.alert_id, "--format", "json")
    shown = orjson.loads(text)
    assert (shown["status"], [(h["status"], h["by"], h["reason"]) for h in shown["history"]]) == (
        "confirmed",
        [("confirmed", "ana", "not hers")],
    )
    rc, text = run(storage, "alerts", "show", "--tenant", TENANT, a.alert_id)
    assert "status      acknowledged\n" in text
    assert text.endswith("history     2025-11-24T18:00:00Z acknowledged by ana\n")
    book = TableIncidentBook.from_storage(storage)
    assert book.get_incident(TENANT, inc.incident_id).status is AlertStatus.CONFIRMED
    rc, text = run(storage, "alerts", "list", "--tenant", TENANT, "--status", "acknowledged", "--format", "json")
    assert [r["alert_id"] for r in orjson.loads(text)] == [a.alert_id]


def test_dismiss_with_suppress_creates_a_suppression(storage: Any, seeded: Any, clock: Any) -> None:
    (a, _), _ = seeded
    rc, text = run(
        storage, "alerts", "dismiss", "--tenant", TENANT, a.alert_id, "--by", "ana", "--reason", "office VPN",
        "--suppress", "ip,detector", "--ttl", "7d", "--format", "json",
    )  # fmt: skip
    assert rc == 0
    out = orjson.loads(text)
    assert out["alert"]["status"] == "dismissed"
    assert {k: out["suppression"][k] for k in ("ip", "detector", "user", "reason", "created_by")} == {
        "ip": "198.51.100.7",
        "detector": "test_unwanted_login",
        "user": None,
        "reason": "office VPN",
        "created_by": "ana",
    }
    (listed,) = TableSuppressionStore.from_storage(storage).list_suppressions(TENANT, now=T0 + 3 * H)
    assert listed.expires_at == T0 + 2 * H + 7 * 86400
    assert listed.suppression_id == out["suppression"]["suppression_id"]


def test_suppressions_add_list_remove(storage: Any) -> None:
    rc, text = run(
        storage, "suppressions", "add", "--tenant", TENANT, "--ip", "203.0.113.0/24", "--reason", "branch office",
        "--by", "ana", "--ttl", "never", "--format", "json",
    )  # fmt: skip
    added = orjson.loads(text)
    assert (rc, added["ip"], added["expires_at"]) == (0, "203.0.113.0/24", None)
    rc, text = run(storage, "suppressions", "list", "--tenant", TENANT)
    lines = text.splitlines()
    assert lines[1].split()[:7] == [added["suppression_id"], "active", "-", "203.0.113.0/24", "-", "-", "never"]
    assert lines[-1] == "1 suppression(s)"
    rc, text = run(storage, "suppressions", "remove", "--tenant", TENANT, added["suppression_id"], "--by", "bob")
    assert (rc, text) == (0, f"suppression {added['suppression_id']} revoked by bob\n")
    assert run(storage, "suppressions", "list", "--tenant", TENANT)[1].splitlines()[-1] == "0 suppression(s)"
    rc, text = run(storage, "suppressions", "list", "--tenant", TENANT, "--all", "--format", "json")
    assert [(s["suppression_id"], s["revoked_by"]) for s in orjson.loads(text)] == [(added["suppression_id"], "bob")]


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["alerts", "show", "--tenant", TENANT, "al-000000000000000000000000"], NotFoundError),
        (["alerts", "ack", "--tenant", TENANT, "al-000000000000000000000000", "--by", "ana"], NotFoundError),
        (["suppressions", "add", "--tenant", TENANT, "--reason", "r", "--by", "ana"], BadInputError),
        (["suppressions", "add", "--tenant", TENANT, "--ip", "nope", "--reason", "r", "--by", "a"], BadInputError),
        (["suppressions", "remove", "--tenant", TENANT, "sup-0000000000000000", "--by", "ana"], NotFoundError),
        (["alerts", "list", "--tenant", TENANT, "--since", "yesterday"], BadInputError),
    ],
)
def test_errors_are_itdr_errors(storage: Any, argv: list[str], error: type[Exception]) -> None:
    with pytest.raises(error):
        run(storage, *argv)


@pytest.mark.parametrize(
    "argv",
    [
        ["alerts", "confirm", "--tenant", TENANT, "al-x", "--by", "ana"],  # a reason is required
        ["alerts", "dismiss", "--tenant", TENANT, "al-x", "--reason", "r"],  # so is --by
        [
            "suppressions",
            "add",
            "--tenant",
            TENANT,
            "--ttl",
            "1d",
            "--expires",
            "2026-01-01",
            "--reason",
            "r",
            "--by",
            "a",
        ],
    ],
)
def test_usage_errors(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        parser().parse_args(argv)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("30d", 30 * 86400.0), ("12h", 43200.0), ("90m", 5400.0), ("2w", 14 * 86400.0), ("never", None)],
)
def test_durations(text: str, expected: float | None) -> None:
    got = parse_duration(text)
    assert (got.total_seconds() if got is not None else None) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("24h", T0 - 86400), ("2025-11-24T16:00Z", T0), ("2025-11-24T17:00:00+01:00", T0), ("2025-11-24", T0 - 16 * H)],
)
def test_times(text: str, expected: float) -> None:
    assert parse_when(text, now=T0) == expected


def test_a_verdict_that_changes_the_incident_sends_its_new_revision(storage: Any, seeded: Any) -> None:
    (_, b), inc = seeded
    sent: list[tuple[str, int, str]] = []
    args = parser().parse_args(["alerts", "confirm", "--tenant", TENANT, b.alert_id, "--by", "ana", "--reason", "x"])
    out = io.StringIO()

    def publish(incident: Any) -> None:
        sent.append((incident.incident_id, incident.revision, incident.status.value))

    assert dispatch(args, storage, out=out, now=lambda: T0 + 2 * H, publish=publish) == 0
    assert sent == [(inc.incident_id, 2, "confirmed")]
    assert out.getvalue().splitlines()[-1] == f"incident {inc.incident_id}: confirmed, revision 2, sent for delivery"
    again = parser().parse_args(["alerts", "confirm", "--tenant", TENANT, b.alert_id, "--by", "ana", "--reason", "x"])
    assert dispatch(again, storage, out=io.StringIO(), now=lambda: T0 + 2 * H, publish=publish) == 0
    assert sent == [(inc.incident_id, 2, "confirmed")]  # the incident did not change: nothing more to send


# --- hostile text from the tenant through every table view ---------------------------------------

HOSTILE_UPN = "megan\x1b[2J\x1b[H@contoso.com"  # clear screen, cursor home
HOSTILE_RULE = "\x1b]0;pwned\x07.\x1b[8m"  # window title, then hidden text
HOSTILE_UA = "Mozilla/5.0\r\x1b]8;;https://evil.example/\x1b\\click\x1b]8;;\x1b\\\u202eexe\x9b31m"
UNSAFE = "\x1b\x07\r\x9b\x9d\u202e"


def test_tables_strip_escape_sequences_from_upns_rule_names_and_user_agents(storage: Any, make_alert: Any) -> None:
    alert = make_alert(
        Category.SHADOW_WORKFLOW,
        at=T0,
        user=HOSTILE_UPN,
        user_key=None,
        summary=f"Inbox rule '{HOSTILE_RULE}' created from {HOSTILE_UA}",
    )
    TableAlertStore.from_storage(storage).upsert_alerts([alert])
    rc, listed = run(storage, "alerts", "list", "--tenant", TENANT)
    assert rc == 0
    assert not set(listed) & set(UNSAFE)
    assert listed.splitlines()[1].split("  ")[-3:] == [
        "megan@contoso.com",
        "2025-11-24T16:01:00Z",
        "Inbox rule '.' created from Mozilla/5.0clickexe",
    ]
    rc, shown = run(storage, "alerts", "show", "--tenant", TENANT, alert.alert_id)
    assert not set(shown) & set(UNSAFE)
    assert "user        megan@contoso.com\n" in shown
    assert "summary     Inbox rule '.' created from Mozilla/5.0clickexe\n" in shown
    rc, text = run(
        storage, "alerts", "dismiss", "--tenant", TENANT, alert.alert_id, "--by", "ana\x1b[8m", "--reason",
        f"rule {HOSTILE_RULE}", "--suppress", "user",
    )  # fmt: skip
    assert rc == 0
    assert not set(text) & set(UNSAFE)
    assert text.splitlines()[0] == f"{alert.alert_id}: dismissed (by ana)"
    rc, shown = run(storage, "alerts", "show", "--tenant", TENANT, alert.alert_id)
    assert shown.splitlines()[-1].endswith(" dismissed by ana: rule .")
    rc, sups = run(storage, "suppressions", "list", "--tenant", TENANT)
    assert not set(sups) & set(UNSAFE)
    row = sups.splitlines()[1].split()
    assert row[1:3] + row[-3:] == ["active", "megan@contoso.com", "ana", "rule", "."]
    # JSON keeps the exact text, escaped by the encoder (a script sees what the tenant sent).
    rc, text = run(storage, "alerts", "show", "--tenant", TENANT, alert.alert_id, "--format", "json")
    assert orjson.loads(text)["user"] == HOSTILE_UPN
    assert "\x1b" not in text


def test_alerts_list_spans_every_tenant_by_default_with_tenant_names(storage: Any, make_alert: Any, clock: Any) -> None:
    from shared.tenants import TenantDirectory, TenantRecord

    other = "0d9e2c55-1f1e-4a8b-b0b6-6c0c7e3d9b02"
    directory = TenantDirectory(storage)
    directory.upsert(TenantRecord(tenant_id=TENANT, name="Contoso"))
    directory.upsert(TenantRecord(tenant_id=other, name="Fabrikam"))
    mine = make_alert(Category.UNWANTED_LOGIN, at=T0, summary="Tor sign-in")
    theirs = make_alert(Category.UNWANTED_LOGIN, at=T0 + H, tenant=other, summary="VPN sign-in")
    TableAlertStore.from_storage(storage, now=clock).upsert_alerts([mine, theirs])
    rc, text = run(storage, "alerts", "list")
    lines = text.splitlines()
    assert rc == 0 and lines[0].split()[:2] == ["TENANT", "ALERT"]
    assert [line.split()[:2] for line in lines[1:3]] == [["Contoso", mine.alert_id], ["Fabrikam", theirs.alert_id]]
    assert lines[-1] == "2 alert(s) in 2 tenant(s)"
    rc, text = run(storage, "alerts", "list", "--format", "json")
    assert [(r["tenant_id"], r["tenant_name"]) for r in orjson.loads(text)] == [(TENANT, "Contoso"), (other, "Fabrikam")]
    rc, text = run(storage, "alerts", "list", "--tenant", other, "--format", "json")  # one tenant: as before
    assert [r["alert_id"] for r in orjson.loads(text)] == [theirs.alert_id]
