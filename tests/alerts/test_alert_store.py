"""The alert lifecycle store: upsert by ID, statuses with who/why/when, in Table Storage and in memory."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from shared.alert_model import Category, Severity
from shared.alerts.store import AlertStatus, InMemoryAlertStore, TableAlertStore
from shared.platform.errors import BadInputError, NotFoundError

T0 = 1_764_000_000.0
TENANT = "9f6a3d1e-0c4b-4e8a-9d57-2b1f0c3e4a11"
OTHER = "2c4e6a80-1b3d-4f5e-8a7c-9d0e1f2a3b4c"


@pytest.fixture(params=["table", "memory"])
def store(request: pytest.FixtureRequest, clock: Any) -> Any:
    if request.param == "memory":
        return InMemoryAlertStore(now=clock)
    return TableAlertStore.from_storage(request.getfixturevalue("storage"), now=clock)


def test_replayed_upserts_keep_one_row_per_alert(store: Any, make_alert: Any) -> None:
    alerts = [make_alert(Category.SHADOW_WORKFLOW, at=T0 + i * 600, evidence=(f"rec-{i}",)) for i in range(3)]
    store.upsert_alerts(alerts)
    store.upsert_alerts(alerts)
    listed = store.list_alerts(TENANT)
    assert [r.alert.to_dict() for r in listed] == [a.to_dict() for a in alerts]
    assert [r.status for r in listed] == [AlertStatus.NEW] * 3
    assert store.get_alert(TENANT, alerts[1].alert_id).to_dict() == alerts[1].to_dict()


def test_roundtrip_keeps_every_field_and_a_large_context(store: Any, make_alert: Any) -> None:
    context = {"rule_name": "<script>alert(1)</script>", "blob": "x" * 70_000, "nested": {"asn": 64500}}
    alert = make_alert(
        Category.SHADOW_WORKFLOW, context=context, evidence=tuple(f"r{i}" for i in range(100)), ip=None, user_key=None
    )
    alert.count = 4
    store.upsert_alerts([alert])
    got = store.get_alert(TENANT, alert.alert_id)
    assert got.to_dict() == alert.to_dict()
    assert got.mitre == ("T1564.008", "T1114.003")


def test_upserts_batch_per_partition_at_most_100(storage: Any, make_alert: Any) -> None:
    store = TableAlertStore.from_storage(storage)
    alerts = [make_alert(Category.UNWANTED_LOGIN, at=T0 + i, evidence=(f"e{i}",)) for i in range(150)]
    alerts += [make_alert(Category.UNWANTED_LOGIN, tenant=OTHER, at=T0 + i, evidence=(f"o{i}",)) for i in range(5)]
    store.upsert_alerts(alerts)
    assert store.transactions == 3  # 100 + 50 for TENANT, 5 for OTHER
    assert (len(store.list_alerts(TENANT)), len(store.list_alerts(OTHER))) == (150, 5)


def test_status_changes_record_who_why_and_when(store: Any, make_alert: Any, clock: Any) -> None:
    alert = make_alert(Category.ROGUE_APP)
    store.upsert_alerts([alert])
    store.set_status(TENANT, alert.alert_id, "acknowledged", by="ana", reason="")
    clock.advance(120)
    store.set_status(TENANT, alert.alert_id, AlertStatus.CONFIRMED, by="ana", reason="user did not consent")
    again = store.set_status(TENANT, alert.alert_id, "confirmed", by="bob", reason="double click")
    assert again.status is AlertStatus.CONFIRMED
    record = store.get_alert_record(TENANT, alert.alert_id)
    assert [h.to_dict() for h in record.history] == [
        {"status": "acknowledged", "by": "ana", "reason": "", "at": T0 + 3600},
        {"status": "confirmed", "by": "ana", "reason": "user did not consent", "at": T0 + 3720},
    ]
    assert record.to_dict()["history"][1] == {
        "status": "confirmed",
        "by": "ana",
        "reason": "user did not consent",
        "at": "2025-11-24T17:02:00Z",
    }


def test_a_replayed_alert_keeps_the_analysts_status(store: Any, make_alert: Any) -> None:
    alert = make_alert(Category.SHADOW_WORKFLOW)
    store.upsert_alerts([alert])
    store.set_status(TENANT, alert.alert_id, "dismissed", by="ana", reason="approved forwarding to the accountant")
    merged = replace(alert, last_seen=alert.last_seen + 300, count=2, severity=Severity.HIGH)
    store.upsert_alerts([merged])
    record = store.get_alert_record(TENANT, alert.alert_id)
    assert (record.status, record.alert.count, record.alert.severity) == (AlertStatus.DISMISSED, 2, Severity.HIGH)
    assert [h.by for h in record.history] == ["ana"]


@pytest.mark.parametrize(
    ("status", "by", "reason", "error"),
    [
        ("dismissed", "ana", "", BadInputError),
        ("confirmed", "ana", "  ", BadInputError),
        ("acknowledged", " ", "", BadInputError),
        ("closed", "ana", "done", BadInputError),
    ],
)
def test_invalid_status_changes_are_refused(
    store: Any, make_alert: Any, status: str, by: str, reason: str, error: type[Exception]
) -> None:
    alert = make_alert(Category.UNWANTED_LOGIN)
    store.upsert_alerts([alert])
    with pytest.raises(error):
        store.set_status(TENANT, alert.alert_id, status, by=by, reason=reason)
    assert store.get_alert_record(TENANT, alert.alert_id).history == []


def test_unknown_alerts_and_other_tenants(store: Any, make_alert: Any) -> None:
    alert = make_alert(Category.UNWANTED_LOGIN, tenant=OTHER)
    store.upsert_alerts([alert])
    assert store.get_alert(TENANT, alert.alert_id) is None
    assert store.list_alerts(TENANT) == []
    with pytest.raises(NotFoundError):
        store.get_alert_record(TENANT, alert.alert_id)
    with pytest.raises(NotFoundError):
        store.set_status(TENANT, alert.alert_id, "acknowledged", by="ana")


def test_list_filters_by_status_and_time(store: Any, make_alert: Any) -> None:
    old, mid, new = (make_alert(Category.UNWANTED_LOGIN, at=T0 + d * 86400, evidence=(f"d{d}",)) for d in (0, 1, 2))
    store.upsert_alerts([new, old, mid])
    store.set_status(TENANT, mid.alert_id, "acknowledged", by="ana")
    assert [r.alert.alert_id for r in store.list_alerts(TENANT, since=T0 + 86400)] == [mid.alert_id, new.alert_id]
    assert [r.alert.alert_id for r in store.list_alerts(TENANT, status="new")] == [old.alert_id, new.alert_id]
    assert [r.alert.alert_id for r in store.list_alerts(TENANT, status="acknowledged", since=T0)] == [mid.alert_id]


def test_in_memory_store_is_an_alert_sink_and_copies(make_alert: Any) -> None:
    store = InMemoryAlertStore()
    alert = make_alert(Category.UNWANTED_LOGIN)
    store.upsert_alerts([alert])
    alert.count = 99  # the caller's object is not the stored one
    got = store.get_alert(TENANT, alert.alert_id)
    assert got is not None and got.count == 1
    got.count = 7
    assert store.get_alert(TENANT, alert.alert_id).count == 1  # type: ignore[union-attr]
