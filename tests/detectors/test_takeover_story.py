"""The second detection wave end to end: an AiTM takeover seen only through the audit log, through every registered
detector and the incident book, becomes one incident of the victim with its stages in order.

Records come from the builders the detectors' own tests use (each cites its public sample).
"""

from __future__ import annotations

from typing import Any

from records import (
    HOME_DE,
    HOSTING_US,
    TEST_TENANT,
    at,
    epoch,
    exchange_cmdlet,
    history,
    identity_enricher,
    oid_of,
    signin,
)
from test_defender_alert_policy import alert_record
from test_defense_device_registration import registration
from test_defense_mail_deletion import deleted
from test_signin_session_replay import in_session

from detectors import ALL_DETECTORS
from shared.alert_model import Severity
from shared.alerts.incidents import InMemoryIncidentBook, Stage
from shared.detection.testing import run_detector
from shared.tenant_config import TenantConfig

ALICE = "alice@contoso.com"


def test_session_replay_then_persistence_and_cover_up_make_one_critical_incident() -> None:
    learned = history(ALICE, days=15, ip=HOME_DE)  # a user with a known home
    start = 15 * 24 * 60
    phished = in_session(signin(ALICE, when=at(minutes=start), ip=HOME_DE))  # relayed by the AiTM proxy
    replay = in_session(signin(ALICE, when=at(minutes=start + 20), ip=HOSTING_US))  # the stolen cookie reused
    share = exchange_cmdlet(
        "Add-MailboxFolderPermission",
        {"Identity": f"{ALICE}:\\Inbox", "User": "collector@proton.me", "AccessRights": "Reviewer"},
        ALICE,
        when=at(minutes=start + 30),
        ip=HOSTING_US,
    )
    register, owner = registration(start + 35)
    cover_up = deleted("HardDelete", [("New device registered", "\\Inbox")], when=at(minutes=start + 40))
    restricted = alert_record("AlertTriggered", "User restricted from sending email", when=at(minutes=start + 90))
    records: list[dict[str, Any]] = [*learned, phished, replay, share, register, owner, cover_up, restricted]

    got = run_detector(
        list(ALL_DETECTORS),
        records,
        tenant=TenantConfig(tenant_id=TEST_TENANT, internal_domains=["contoso.com"]),
        enricher=identity_enricher(),
    )
    assert got.quarantined == []
    mine = {
        "signin_session_replay",
        "exchange_mailbox_permission_grant",
        "defense_device_registration",
        "defense_mail_deletion",
        "defender_alert_policy",
    }
    wave2 = {a.detector: a for a in got.alerts if a.detector in mine}
    assert {d: (a.severity, a.user_key) for d, a in wave2.items()} == {
        "signin_session_replay": (Severity.HIGH, oid_of(ALICE)),
        "exchange_mailbox_permission_grant": (Severity.CRITICAL, oid_of(ALICE)),
        "defense_device_registration": (Severity.HIGH, oid_of(ALICE)),
        "defense_mail_deletion": (Severity.HIGH, oid_of(ALICE)),
        "defender_alert_policy": (Severity.CRITICAL, oid_of(ALICE)),
    }

    book = InMemoryIncidentBook(now=lambda: epoch(at(minutes=start + 120)))
    incidents = book.add_alerts([a for a in got.alerts if a.user_key == oid_of(ALICE)])
    assert len(incidents) == 1
    incident = incidents[0]
    assert set(wave2[d].alert_id for d in mine) <= set(incident.alert_ids)
    assert [s for s in incident.stages if s is not Stage.INTEGRATION_HEALTH] == [
        Stage.SIGN_IN,
        Stage.PERSISTENCE,
        Stage.DEFENSE_EVASION,
    ]
    assert incident.severity is Severity.CRITICAL
