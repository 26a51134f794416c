"""Historical inbox rules through msgraph-sdk against the Graph emulator, scored like audit-log rules."""

from __future__ import annotations

import time
from collections.abc import Iterator

import orjson
import pytest

from shared.app import Services, configure
from shared.emulators.graph import GraphEmulator
from shared.ingest.deadletters import list_deadletters
from shared.messages import RaisedAlertsRef
from shared.platform import names
from shared.platform.bus import InProcessBus, OutboundMessage, default_queue_options
from shared.platform.settings import Settings
from shared.platform.storage import StorageClients
from shared.runtime.local import LocalRuntime
from shared.runtime.world import emulator_credentials
from shared.tenants import TenantDirectory, TenantRecord

TENANT = "aaaaaaaa-1111-4111-8111-000000000001"


@pytest.fixture
def svc(storage: StorageClients) -> Iterator[tuple[Services, GraphEmulator]]:
    with GraphEmulator() as g:
        g.add_tenant(TENANT)
        megan = g.add_user(TENANT, user_principal_name="megan@contoso.com", id="0a0a0a0a-0000-4000-8000-00000000a11c")
        g.add_user(TENANT, user_principal_name="lee@contoso.com", id="0b0b0b0b-0000-4000-8000-00000000b0b0")
        g.add_inbox_rule(TENANT, megan, display_name="Newsletters", actions={"moveToFolder": "AAMkNews"})
        g.add_inbox_rule(
            TENANT,
            megan,
            display_name=".",
            conditions={"bodyOrSubjectContains": ["invoice", "wire"]},
            actions={"forwardTo": [{"emailAddress": {"address": "megan.finance@gmail.com"}}], "markAsRead": True},
        )
        g.add_inbox_rule(
            TENANT,
            megan,
            display_name="Team",
            actions={"forwardTo": [{"emailAddress": {"address": "lee@contoso.com"}}]},
        )
        services = Services(
            Settings(ITDR_GRAPH_BASE_URL=g.base_url),
            storage=storage,
            bus=InProcessBus(default_queue_options()),
            credentials=emulator_credentials(time.time),
        )
        TenantDirectory(storage).upsert(
            TenantRecord(tenant_id=TENANT, name="Contoso", detection={"internal_domains": ["contoso.com"]})
        )
        configure(services)
        yield services, g
        configure(None)
        services.close()


def test_existing_rules_are_scored_and_rescans_do_not_double(svc: tuple[Services, GraphEmulator]) -> None:
    services, _ = svc
    first = services.inbox_rule_sweep.scan(TENANT, now=1_800_000_000.0)
    assert (first.mailboxes, first.rules, len(first.alerts)) == (2, 3, 1)
    (alert,) = first.alerts
    assert (alert.detector, alert.severity.value, alert.user, alert.context["rule_name"]) == (
        "exchange_suspicious_inbox_rule",
        "critical",  # external forward + hidden (mark as read) + watched words + obfuscated name
        "megan@contoso.com",
        ".",
    )
    assert alert.context["external_recipients"] == ["megan.finance@gmail.com"]
    assert alert.context["source"] == "graph_historical_scan"
    again = services.inbox_rule_sweep.scan(TENANT, now=1_800_600_000.0)
    assert [a.alert_id for a in again.alerts] == [alert.alert_id]
    assert [s.alert.alert_id for s in services.alert_store.list_alerts(TENANT)] == [alert.alert_id]

    # the incident is opened by the detect function, in the user's session: one message for both scans
    bus = services.bus
    assert isinstance(bus, InProcessBus)
    (msg,) = bus.receive(names.QUEUE_DETECT, max_messages=10)
    assert (msg.session_id, orjson.loads(msg.body)) == (
        TENANT,
        {"kind": "raised_alerts", "tenant_id": TENANT, "alert_ids": [alert.alert_id], "source": "historical_rules"},
    )
    assert services.incident_book.list_incidents(TENANT) == []
    bus.abandon(msg)
    LocalRuntime(bus).run_until_idle()
    (incident,) = services.incident_book.list_incidents(TENANT)
    assert (incident.user_key, incident.alert_ids) == (alert.user_key, [alert.alert_id])


def test_raised_alerts_missing_from_the_store_are_parked_with_a_reason(svc: tuple[Services, GraphEmulator]) -> None:
    services, _ = svc
    body = RaisedAlertsRef(tenant_id=TENANT, alert_ids=["no-such-alert"], source="historical_rules").encode()
    services.bus.send(names.QUEUE_DETECT, [OutboundMessage(body, message_id="raised:x", session_id=TENANT)])
    LocalRuntime(services.bus).run_until_idle()  # type: ignore[arg-type]
    (parked,) = list_deadletters(services)
    assert (parked.queue, parked.reason, parked.tenant_id) == (names.QUEUE_DETECT, "alerts_missing", TENANT)
    assert services.incident_book.list_incidents(TENANT) == []
