"""One sign-in, one event: the audit record and the sign-in log entry of a sign-in reach each detector once
(issue #23 item 3), in one batch (merged into one event) and across batches (either order)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any, ClassVar

import orjson
import pytest

from shared.alert_model import Category, DetectorMeta, Finding, Need, Severity
from shared.detection.base import DetectionContext, Detector
from shared.detection.signin_merge import MAX_IDS, SECTION
from shared.detection.testing import TEST_TENANT, run_detector
from shared.records.event import Event
from shared.records.signins import map_signin
from tests.cli.test_scan_signins import audit_of, graph_signin

ALICE_ID = "5f09333a-842c-47da-a157-57da27fcbca5"


class _Seen(Detector):
    seen: ClassVar[list[tuple[str, str | None, str | None]]] = []

    def detect(self, event: Event, ctx: DetectionContext) -> Iterable[Finding]:
        d = event.signin
        type(self).seen.append((event.record_id, d.audit_record_id if d else None, event.aad_session_id))
        return ()


def _meta(det_id: str, needs: tuple[Need, ...]) -> DetectorMeta:
    return DetectorMeta(
        id=det_id,
        title="Test sign-in counter",
        description="Counts the sign-ins it is given.",
        category=Category.UNWANTED_LOGIN,
        severity=Severity.LOW,
        mitre=("T1078",),
        dedup_window=timedelta(hours=1),
        operations=frozenset({"userloggedin", "userloginfailed"}),
        needs=needs,
        runbook="Test only. Not registered. Never alerts.",
        reference="https://attack.mitre.org/techniques/T1078/",
    )


class AuditReader(_Seen):
    """Reads what both sources carry (like the audit-log sign-in detectors)."""

    meta = _meta("test_audit_reader", (Need.SIGNINS,))
    seen: ClassVar[list[tuple[str, str | None, str | None]]] = []


class LogReader(_Seen):
    """Reads the sign-in log's own fields (like the detectors of issue #23)."""

    meta = _meta("test_log_reader", (Need.SIGNINS, Need.SIGNIN_LOG))
    seen: ClassVar[list[tuple[str, str | None, str | None]]] = []


def log(i: int, *, minute: int = 0, at: str | None = None) -> dict[str, Any]:
    signin = graph_signin(i, minute=minute) | {"resourceTenantId": TEST_TENANT}
    if at is not None:
        signin["createdDateTime"] = at
    got = map_signin(signin)
    assert got is not None
    return got


def audit(i: int, *, minute: int = 0, seconds_later: int = 0) -> dict[str, Any]:
    rec = audit_of(graph_signin(i, minute=minute)) | {"OrganizationId": TEST_TENANT}
    if seconds_later:
        rec["CreationTime"] = f"2024-05-01T08:{minute:02d}:{(i % 60) + seconds_later:02d}"
    return rec


def run(records: list[dict[str, Any]], *, batch_size: int = 0) -> tuple[list[Any], list[Any], Any]:
    AuditReader.seen.clear()
    LogReader.seen.clear()
    got = run_detector([AuditReader, LogReader], records, batch_size=batch_size)
    assert got.quarantined == []
    return list(AuditReader.seen), list(LogReader.seen), got.store


LOG_ID = "0b5e7c1a-1111-4222-8333-000000000001"
SESSION = "9d8c7b6a-5f4e-4d3c-8b2a-190817263544"


def test_in_one_batch_the_pair_is_one_event_with_the_richer_fields_merged() -> None:
    audit_seen, log_seen, _ = run([audit(1), log(1)])
    # the log's id, the audit record's id kept, and the session id only the audit record had (v1.0 has none)
    assert audit_seen == log_seen == [(LOG_ID, "ual-" + LOG_ID, SESSION)]


@pytest.mark.parametrize("audit_first", [True, False])
def test_across_batches_each_detector_sees_the_sign_in_once(audit_first: bool) -> None:
    earlier = log(0, at="2024-05-01T07:00:00Z")  # the tenant sends sign-in logs
    # audit first: the log entry arrives in a later batch; log first: the audit record 30 s later
    pair = [audit(1), log(1, at="2024-05-01T08:05:00Z")] if audit_first else [log(1), audit(1, seconds_later=30)]
    audit_seen, log_seen, _ = run([earlier, *pair], batch_size=1)
    zero = ("0b5e7c1a-1111-4222-8333-000000000000", None, None)
    if audit_first:
        assert audit_seen == [zero, ("ual-" + LOG_ID, None, SESSION)]  # the audit record; the late log entry not again
        assert log_seen == [zero, ("ual-" + LOG_ID, None, SESSION), (LOG_ID, None, None)]
    else:
        assert audit_seen == log_seen == [zero, (LOG_ID, None, None)]  # the late audit record is dropped


def test_other_sign_ins_and_tenants_without_sign_in_logs_are_untouched() -> None:
    audit_seen, log_seen, store = run([audit(1), audit(2), log(3)], batch_size=1)
    assert [x[0] for x in audit_seen] == [
        "ual-" + LOG_ID,
        "ual-0b5e7c1a-1111-4222-8333-000000000002",
        "0b5e7c1a-1111-4222-8333-000000000003",
    ]
    assert len(log_seen) == 3
    # before the tenant's first sign-in log entry no audit id is kept; afterwards the log's id waits for its twin
    doc = orjson.loads(store.load(TEST_TENANT, [ALICE_ID])[ALICE_ID].encode())
    assert doc[SECTION] == {"l": doc[SECTION]["l"]} and len(doc[SECTION]["l"]) == 10


def test_the_ids_kept_per_user_are_bounded() -> None:
    records = [log(i, minute=i // 60) for i in range(MAX_IDS + 20)]
    _, _, store = run(records, batch_size=7)
    doc = orjson.loads(store.load(TEST_TENANT, [ALICE_ID])[ALICE_ID].encode())
    assert len(doc[SECTION]["l"]) == MAX_IDS * 10
