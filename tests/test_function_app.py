"""The registered functions of function_app.py, called directly over the in-process bus and Azurite."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from shared.app import Services, configure
from shared.messages import RecordBatchRef
from shared.platform import names
from shared.platform.bus import InProcessBus, OutboundMessage, ReceivedMessage, default_queue_options
from shared.platform.settings import Settings
from shared.platform.storage import StorageClients
from shared.runtime.local import LocalRuntime, registered_functions

TENANT = "9f6a3d1e-0c4b-4e8a-9d57-2b1f0c3e4a11"


def test_functions_and_triggers_are_wired_as_bicep_declares_them() -> None:
    fns = registered_functions()
    triggers = {n: json.loads(f.get_function_json())["bindings"][0] for n, f in fns.items()}
    assert {n: t["type"] for n, t in triggers.items()} == {
        "poll_content": "timerTrigger",
        "poll_signins": "timerTrigger",
        "o365_webhook": "httpTrigger",
        "admin_tenants": "httpTrigger",
        "admin_tenant": "httpTrigger",
        "admin_consent": "httpTrigger",
        "admin_remediation": "httpTrigger",
        "consent_callback": "httpTrigger",
        "process_content": "serviceBusTrigger",
        "enrich_records": "serviceBusTrigger",
        "detect_records": "serviceBusTrigger",
        "deliver_alerts": "serviceBusTrigger",
        "remediate": "serviceBusTrigger",
        "feed_health": "timerTrigger",
        "refresh_intel": "timerTrigger",
        "weekly_report": "timerTrigger",
    }
    sessions = {n for n, t in triggers.items() if t.get("isSessionsEnabled")}
    assert sessions == {"enrich_records", "detect_records"}
    assert {triggers[n]["queueName"] for n in sessions} == set(names.SESSION_QUEUES)
    assert all(t["connection"] == "ServiceBusConnection" for t in triggers.values() if t["type"] == "serviceBusTrigger")
    assert triggers["poll_content"]["schedule"] == "%ITDR_POLL_SCHEDULE%"
    assert triggers["poll_signins"]["schedule"] == "%ITDR_SIGNIN_POLL_SCHEDULE%"


def rule(i: int) -> dict[str, Any]:
    return {
        "CreationTime": f"2026-11-24T14:{i:02d}:00",
        "Id": f"rule-{i}",
        "Operation": "New-InboxRule",
        "OrganizationId": TENANT,
        "RecordType": 1,
        "ResultStatus": "True",
        "Workload": "Exchange",
        "ClientIP": "[198.51.100.7]:51234",
        "UserId": "megan@contoso.com",
        "Parameters": [{"Name": "Name", "Value": "."}, {"Name": "ForwardTo", "Value": "exfil@gmail.com"}],
    }


@pytest.fixture
def svc(storage: StorageClients) -> Iterator[Services]:
    bus = InProcessBus(default_queue_options())
    services = Services(Settings(), storage=storage, bus=bus)
    configure(services)
    yield services
    configure(None)


def stage(svc: Services, records: list[dict[str, Any]], content_id: str = "c1") -> RecordBatchRef:
    name = f"{TENANT}/Audit.Exchange/2026-11-24/{content_id}.batch0.json"
    svc.storage.container(names.CONTAINER_BATCHES).upload_blob(name, orjson.dumps(records), overwrite=True)
    ref = RecordBatchRef(
        tenant_id=TENANT,
        content_type="Audit.Exchange",
        content_id=content_id,
        batch_blob=name,
        batch_id=f"{content_id}#0",
        records=len(records),
    )
    svc.bus.send(
        names.QUEUE_RECORDS, [OutboundMessage(ref.encode(), message_id=f"records:{content_id}", session_id=TENANT)]
    )
    return ref


def test_redelivery_after_a_crash_does_not_double_the_alert(svc: Services) -> None:
    crashed: list[str] = []

    def crash_detect_once(queue: str, m: ReceivedMessage) -> str | None:
        if queue == names.QUEUE_DETECT and not crashed:
            crashed.append(m.message_id)
            return "crash"
        return None

    assert isinstance(svc.bus, InProcessBus)
    stage(svc, [rule(1), rule(2)])
    runtime = LocalRuntime(svc.bus, fault_hook=crash_detect_once)
    runtime.run_until_idle()
    assert crashed and runtime.stats.failures == {"detect_records": 1}
    assert runtime.stats.invocations["detect_records"] == 2
    # the same batch delivered a third time (at-least-once): still one alert with both records
    ref = stage(svc, [rule(1), rule(2)])
    runtime.run_until_idle()
    (stored,) = svc.alert_store.list_alerts(TENANT)
    assert stored.alert.detector == "exchange_suspicious_inbox_rule"
    assert stored.alert.evidence_record_ids == ["rule-1", "rule-2"]
    assert ref.batch_id == "c1#0"


def test_poison_message_is_dead_lettered_with_its_reason(svc: Services) -> None:
    assert isinstance(svc.bus, InProcessBus)
    svc.bus.send(
        names.QUEUE_RECORDS,
        [OutboundMessage(b'{"tenant_id": "' + TENANT.encode() + b'", "junk": 1}', message_id="bad", session_id=TENANT)],
    )
    missing = RecordBatchRef(
        tenant_id=TENANT,
        content_type="Audit.Exchange",
        content_id="gone",
        batch_blob="nope.json",
        batch_id="gone#0",
        records=1,
    )
    svc.bus.send(names.QUEUE_RECORDS, [OutboundMessage(missing.encode(), message_id="gone", session_id=TENANT)])
    runtime = LocalRuntime(svc.bus)
    runtime.run_until_idle()
    rows = sorted(svc.storage.table(names.TABLE_DEADLETTERS).list_entities(), key=lambda r: r["message_id"])
    assert [(r["message_id"], r["queue"], r["reason"]) for r in rows] == [
        ("bad", "records", "invalid_message"),
        ("gone", "records", "batch_missing"),
    ]
    assert all(r["description"] and r["PartitionKey"] == TENANT for r in rows)
    assert svc.bus.pending() == 0 and svc.bus.dead_letters() == []


def test_an_unexpected_failure_is_retried_then_dead_lettered_by_the_bus(svc: Services) -> None:
    assert isinstance(svc.bus, InProcessBus)
    stage(svc, [rule(1)])
    runtime = LocalRuntime(svc.bus, fault_hook=lambda q, m: "crash" if q == names.QUEUE_DETECT else None)
    runtime.run_until_idle()
    (dead,) = svc.bus.dead_letters(names.QUEUE_DETECT)
    assert (dead.reason, dead.delivery_count) == ("MaxDeliveryCountExceeded", 10)
    assert svc.alert_store.list_alerts(TENANT) == []


def test_crash_between_alert_write_and_state_save_replays_to_the_same_alert(svc: Services) -> None:
    from shared.platform.faults import CrashInjector, install

    class Once(CrashInjector):
        def __call__(self, name: str) -> None:
            if name == "detect.before_state" and not self.crashes:
                self.crashes[name] += 1
                raise RuntimeError("died after writing alerts, before saving state")

    injector = Once(seed=1, rate=0.0)
    install(injector)
    try:
        assert isinstance(svc.bus, InProcessBus)
        stage(svc, [rule(1), rule(2)])
        runtime = LocalRuntime(svc.bus)
        runtime.run_until_idle()
    finally:
        install(None)
    assert injector.crashes["detect.before_state"] == 1
    assert runtime.stats.failures == {"detect_records": 1}
    (stored,) = svc.alert_store.list_alerts(TENANT)
    assert stored.alert.evidence_record_ids == ["rule-1", "rule-2"]
    assert stored.alert.count == 2  # two findings merged once each, not four
