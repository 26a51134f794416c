"""``itdr replay``: detection over the raw archive equals ``itdr scan`` over the same records."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from shared.app import Services, configure
from shared.cli.main import main
from shared.cli.replay import replay
from shared.cli.scan import ScanConfig, scan, write_output
from shared.emulators.management_api import ManagementApiEmulator
from shared.functions.fate import Inbound, run_message
from shared.ingest.content import process_content_message
from shared.ingest.onboarding import onboard_tenant
from shared.ingest.poller import poll_tenants
from shared.platform import names
from shared.platform.bus import InProcessBus
from shared.platform.errors import BadInputError

TENANT_A = "8b1c6f3e-6a43-4c8e-9d77-2f1f0f6a0a01"
TENANT_B = "0d9e2c55-1f1e-4a8b-b0b6-6c0c7e3d9b02"
EXO, AAD = "Audit.Exchange", "Audit.AzureActiveDirectory"
SINCE, UNTIL = datetime(2025, 3, 9, 0, 0, tzinfo=UTC), datetime(2025, 3, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
def svc(make_services: Any, emulator: ManagementApiEmulator) -> Services:
    """Services on Azurite, the in-process bus and the emulator (page size 2), tenants A and B onboarded."""
    services: Services = make_services(emulator, records_per_batch=2)
    onboard_tenant(services, tenant_id=TENANT_A, name="Contoso")
    onboard_tenant(services, tenant_id=TENANT_B, name="Fabrikam")
    return services


def forwarding(n: int, when: str, *, tenant: str = TENANT_A) -> dict[str, Any]:
    """A Set-Mailbox that forwards a mailbox outside the tenant (exchange_mailbox_forwarding alerts on it)."""
    return {
        "Id": f"f0000000-0000-4000-8000-{n:012d}",
        "RecordType": 1,
        "CreationTime": when,
        "Operation": "Set-Mailbox",
        "OrganizationId": tenant,
        "Workload": "Exchange",
        "UserId": "mallory@contoso.com",
        "ResultStatus": "True",
        "ObjectId": f"user{n}",
        "ClientIP": "203.0.113.9",
        "Parameters": [
            {"Name": "Identity", "Value": f"user{n}@contoso.com"},
            {"Name": "ForwardingSmtpAddress", "Value": f"smtp:drop{n}@evil.example"},
        ],
    }


def signin(n: int, when: str, *, tenant: str = TENANT_A) -> dict[str, Any]:
    return {
        "Id": f"50000000-0000-4000-8000-{n:012d}",
        "RecordType": 15,
        "CreationTime": when,
        "Operation": "UserLoggedIn",
        "OrganizationId": tenant,
        "UserId": "alice@contoso.com",
        "ClientIP": "198.51.100.4",
        "ResultStatus": "Success",
        "ErrorNumber": "0",
    }


def ingest(
    svc: Services, emulator: ManagementApiEmulator, clock: Any, blobs: list[tuple[str, list[Any], datetime]]
) -> None:
    """Make the blobs available, poll, and run the content function over the queue."""
    for ct, records, created in blobs:
        emulator.add_content(
            TENANT_A if records[0]["OrganizationId"] == TENANT_A else TENANT_B, ct, records, created=created
        )
    poll_tenants(svc)
    assert isinstance(svc.bus, InProcessBus)
    while got := svc.bus.receive(names.QUEUE_CONTENT, max_messages=50):
        for m in got:
            run_message(svc, Inbound(names.QUEUE_CONTENT, m.body, m.message_id), process_content_message)
            svc.bus.complete(m)
    assert list(svc.storage.table(names.TABLE_DEADLETTERS).list_entities()) == []


@pytest.fixture
def archived(svc: Services, emulator, clock) -> list[dict[str, Any]]:
    """Ingest a day of blobs; returns the unique tenant-A records inside [SINCE, UNTIL)."""
    t = clock()
    inside = [
        forwarding(1, "2025-03-09T10:00:00"),
        signin(1, "2025-03-09T11:00:00"),
        forwarding(2, "2025-03-10T09:30:00"),
        signin(2, "2025-03-10T11:59:59"),
    ]
    blobs = [
        (EXO, [inside[0], inside[2]], t - timedelta(hours=5)),
        (AAD, [inside[1], signin(3, "2025-03-10T12:00:00")], t - timedelta(hours=4)),  # signin 3: at UNTIL, excluded
        (AAD, [inside[3], inside[1]], t - timedelta(hours=3)),  # repeats signin 1 in another blob
        (EXO, [forwarding(3, "2025-03-10T10:00:00", tenant=TENANT_B)], t - timedelta(hours=2)),  # another tenant
    ]
    ingest(svc, emulator, clock, blobs)
    return inside


def scan_of(records: list[dict[str, Any]], tmp_path: Path) -> tuple[bytes, dict[str, Any]]:
    path = tmp_path / "records.json"
    path.write_bytes(orjson.dumps(records))
    result = scan([str(path)], ScanConfig(tenants={TENANT_A: {"name": "Contoso", "partner_id": "default"}}))
    out = io.BytesIO()
    write_output(result, "jsonl", out)
    return out.getvalue(), result.summary()


def test_replay_equals_a_scan_of_the_same_records(svc: Services, archived, tmp_path: Path) -> None:
    expected, expected_summary = scan_of(archived, tmp_path)
    out = io.BytesIO()
    result = replay(svc, tenant_id=TENANT_A, since=SINCE, until=UNTIL, output=out)
    assert out.getvalue() == expected
    alerts = [orjson.loads(line) for line in expected.splitlines()]
    assert [a["detector"] for a in alerts] == ["exchange_mailbox_forwarding"] * 2  # the comparison has teeth
    assert (result.blobs, result.records, result.duplicates, result.out_of_range) == (3, 4, 1, 1)
    drop = {"duration_s", "files_read"}  # replay reads one file per archived blob
    assert {k: v for k, v in result.summary.items() if k not in drop} == {
        k: v for k, v in expected_summary.items() if k not in drop
    }


def test_replay_reads_only_the_range_asked_for(svc: Services, archived, tmp_path: Path) -> None:
    out = io.BytesIO()
    result = replay(svc, tenant_id=TENANT_A, since=SINCE, until=datetime(2025, 3, 9, 23, 0, tzinfo=UTC), output=out)
    expected, _ = scan_of([archived[0], archived[1]], tmp_path)
    assert out.getvalue() == expected
    assert result.records == 2


def test_the_replay_command_writes_like_scan(svc: Services, archived, tmp_path: Path) -> None:
    expected, expected_summary = scan_of(archived, tmp_path)
    output, summary = tmp_path / "out.jsonl", tmp_path / "summary.json"
    configure(svc)
    try:
        rc = main(
            [
                "replay",
                "--tenant",
                TENANT_A,
                "--since",
                "2025-03-09T00:00:00Z",
                "--until",
                "2025-03-10T12:00:00",
                "--format",
                "jsonl",
                "--output",
                str(output),
                "--summary",
                str(summary),
            ]
        )
    finally:
        configure(None)
    assert rc == 0
    assert output.read_bytes() == expected
    written = orjson.loads(summary.read_bytes())
    assert written["alerts"] == expected_summary["alerts"] == 2
    assert written["records_read"] == expected_summary["records_read"] == 4
    assert written["replay"]["blobs"] == 3


def test_a_bad_range_is_refused(svc: Services) -> None:
    with pytest.raises(BadInputError):
        replay(svc, tenant_id=TENANT_A, since=UNTIL, until=SINCE, output=io.BytesIO())
    with pytest.raises(BadInputError):
        replay(svc, tenant_id=TENANT_A, since=SINCE - timedelta(days=100), until=UNTIL, output=io.BytesIO())


def test_a_hostile_record_in_an_archived_blob_does_not_stop_the_replay(
    svc: Services, emulator: ManagementApiEmulator, clock: Any, tmp_path: Path
) -> None:
    # issue #18: a record nested 100,000 deep (or a NaN) in a blob made the split raise; it is one record now
    good = [forwarding(1, "2025-03-09T10:00:00"), forwarding(2, "2025-03-10T09:30:00")]
    deep = b'{"Id":"deep","CreationTime":"2025-03-09T11:00:00","X":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    nan = orjson.dumps(signin(1, "2025-03-09T12:00:00"))[:-1] + b',"Score":NaN}'
    body = b"[" + b",".join([orjson.dumps(good[0]), deep, nan, orjson.dumps(good[1])]) + b"]"
    emulator.add_content(TENANT_A, EXO, body, created=clock() - timedelta(hours=5))
    poll_tenants(svc)
    assert isinstance(svc.bus, InProcessBus)
    while got := svc.bus.receive(names.QUEUE_CONTENT, max_messages=50):
        for m in got:
            run_message(svc, Inbound(names.QUEUE_CONTENT, m.body, m.message_id), process_content_message)
            svc.bus.complete(m)
    assert list(svc.storage.table(names.TABLE_DEADLETTERS).list_entities()) == []
    out = io.BytesIO()
    result = replay(svc, tenant_id=TENANT_A, since=SINCE, until=UNTIL, output=out)
    expected, _ = scan_of(good, tmp_path)
    assert out.getvalue() == expected
    assert (result.blobs, result.records, result.out_of_range) == (1, 2, 2)
