"""Fields the second detection wave reads, parsed once at the edge.

Shapes: AppAccessContext.AADSessionId (Common schema; Sekoia file_sync_download_full.json), DeviceProperties
SessionId (sign-ins), AffectedItems / Folder (Sekoia exchange_item_group.json), Security and Compliance alert
records (Sekoia security_compliance_alert*.json), Security & Compliance cmdlet ``Parameters`` as one string
(Security and Compliance Center schema), device-owner records of the Device Registration Service (Sekoia
update_device.json, add_member_to_role.json).
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from shared.records.alerts import security_alert_of
from shared.records.event import Event, cmdlet_parameters, parse_blob, parse_raw_record

TENANT = "2d7585dc-97bc-4494-b98c-79f2a4946931"


def parse(rec: dict[str, Any]) -> Event:
    got = parse_raw_record(orjson.dumps(rec))
    assert isinstance(got, Event)
    return got


def base(op: str, **fields: Any) -> dict[str, Any]:
    return {
        "CreationTime": "2022-06-10T12:00:14",
        "Id": "7c13b5d5-aa8d-48d1-b3d1-5f4b657136ba",
        "Operation": op,
        "OrganizationId": TENANT,
        **fields,
    }


def test_session_id_of_a_workload_record_and_of_a_sign_in() -> None:
    file_op = base(
        "FileSyncDownloadedFull",
        RecordType=6,
        UserId="marketing@company.com",
        AppAccessContext={
            "AADSessionId": "0E042318-7C78-4ACB-AE00-5EE74465BCA3",
            "CorrelationId": "c299a0a0-14da-428a-b08d-481d562298cb",
            "UniqueTokenId": "0000000000000000000000",
        },
        MachineId="884ecccb-1e44-4dd4-a2b5-b60517893ce0",
    )
    ev = parse(file_op)
    assert (ev.aad_session_id, ev.record.MachineId) == (
        "0e042318-7c78-4acb-ae00-5ee74465bca3",
        "884ecccb-1e44-4dd4-a2b5-b60517893ce0",
    )
    login = base(
        "UserLoggedIn",
        RecordType=15,
        UserId="a@contoso.com",
        DeviceProperties=[{"Name": "OS", "Value": "Windows 10"}, {"Name": "SessionId", "Value": "8a1f3c2e-55b0-4d7e"}],
    )
    assert parse(login).aad_session_id == "8a1f3c2e-55b0-4d7e"
    zeros = base("FileAccessed", AppAccessContext={"AADSessionId": "00000000-0000-0000-0000-000000000000"})
    assert parse(zeros).aad_session_id is None
    assert parse(base("FileAccessed")).aad_session_id is None


def test_affected_items_and_folders_of_a_mailbox_delete() -> None:
    rec = base(
        "MoveToDeletedItems",
        RecordType=3,
        AffectedItems=[
            {"Id": "RgAAAA", "ParentFolder": {"Id": "LgAAAA", "Path": "\\Sent Items"}, "Subject": "Invoice"},
            {"Id": "RgAAAB", "Subject": "x"},
        ],
        Folder={"Id": "LgAAAA", "Path": "\\Sent Items"},
        DestFolder={"Id": "LgAAAB", "Path": "\\Deleted Items"},
    )
    ev = parse(rec)
    assert [(i.Subject, i.ParentFolder.Path if i.ParentFolder else None) for i in ev.affected_items] == [
        ("Invoice", "\\Sent Items"),
        ("x", None),
    ]
    assert (ev.folder_path, ev.dest_folder_path) == ("\\Sent Items", "\\Deleted Items")
    # a field of an unexpected shape is dropped from the typed view, the record is kept
    odd = parse(base("HardDelete", AffectedItems="not a list", Folder=["x"]))
    assert (odd.affected_items, odd.folder_path) == ([], None)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            '-SearchName "Q3 payments" -Export -Format "FxStream"',
            {"searchname": "Q3 payments", "export": "True", "format": "FxStream"},
        ),
        (
            "-Name 'all mail' -ExchangeLocation All -AllowNotFoundExchangeLocationsEnabled:$true -Force:$false",
            {
                "name": "all mail",
                "exchangelocation": "All",
                "allownotfoundexchangelocationsenabled": "True",
                "force": "False",
            },
        ),
        (
            '-Identity "bob-smith@contoso.com" -Purge -PurgeType HardDelete',
            {"identity": "bob-smith@contoso.com", "purge": "True", "purgetype": "HardDelete"},
        ),
    ],
)
def test_cmdlet_parameters_as_one_line(line: str, expected: dict[str, str]) -> None:
    assert cmdlet_parameters(line) == expected
    ev = parse(base("New-ComplianceSearchAction", RecordType=18, UserId="a@contoso.com", Parameters=line))
    assert dict(ev.parameters) == expected


def alert(op: str, **fields: Any) -> dict[str, Any]:
    return base(
        op,
        RecordType=40,
        UserKey="SecurityComplianceAlerts",
        UserType=4,
        UserId="SecurityComplianceAlerts",
        Workload="SecurityComplianceCenter",
        AlertId="6c88ef80-67f0-4a32-b1c9-4696ba48a3e4",
        AlertType="System",
        Category="ThreatManagement",
        Severity="High",
        Source="Office 365 Security & Compliance",
        Status="Active",
        **fields,
    )


def test_alert_records_are_keyed_on_the_user_they_name() -> None:
    by_data = parse(
        alert(
            "AlertTriggered",
            ObjectId="6c88ef80-67f0-4a32-b1c9-4696ba48a3e4",
            Name="User restricted from sending email",
            Data='{"f3u":"Alice@Contoso.com","ts":"2024-10-24T09:06:19.0000000Z","sev":"High"}',
        )
    )
    assert (by_data.upn, by_data.user_key) == ("alice@contoso.com", "alice@contoso.com")
    got = security_alert_of(by_data)
    assert got is not None
    assert (got.name, got.severity, got.category, got.status, got.source, got.subject) == (
        "User restricted from sending email",
        "High",
        "ThreatManagement",
        "Active",
        "Office 365 Security & Compliance",
        "alice@contoso.com",
    )
    by_entity = parse(
        alert(
            "AlertEntityGenerated",
            ObjectId="bob@contoso.com",
            EntityType="User",
            AlertEntityId="bob@contoso.com",
            Data="{}",
        )
    )
    assert by_entity.user_key == "bob@contoso.com"
    # a DLP entity (an id, not an address) names nobody; the recipient of a threat alert is used last
    dlp = parse(
        alert("AlertEntityGenerated", EntityType="DlpRuleMatch", AlertEntityId="b2358a80", Data='{"to":"x@y.example"}')
    )
    assert dlp.user_key is None
    phish = parse(alert("AlertEntityGenerated", EntityType="MalwareFamily", Data='{"trc":"test.user@example.com"}'))
    assert phish.user_key == "test.user@example.com"
    # a Name of another shape (an object in some workload's record) does not break the record
    assert security_alert_of(parse(alert("AlertTriggered", Name={"x": 1}))) is not None


def test_device_owner_record_of_the_registration_service_belongs_to_the_owner() -> None:
    owner_oid = "46522b15-1bf5-4bed-8a6c-4edc58c05b23"
    rec = base(
        "Add registered owner to device.",
        RecordType=8,
        UserId="Device Registration Service",
        Actor=[
            {"ID": "Device Registration Service", "Type": 1},
            {"ID": "77777777-7777-4777-8777-777777777777", "Type": 2},
            {"ID": "ServicePrincipal", "Type": 2},
        ],
        Target=[
            {"ID": "Device_66666666-6666-4666-8666-666666666666", "Type": 2},
            {"ID": "66666666-6666-4666-8666-666666666666", "Type": 2},
            {"ID": "Device", "Type": 2},
            {"ID": "DESKTOP-1", "Type": 1},
            {"ID": f"User_{owner_oid}", "Type": 2},
            {"ID": owner_oid, "Type": 2},
            {"ID": "User", "Type": 2},
            {"ID": "john.doe@example.com", "Type": 5},
        ],
    )
    ev = parse(rec)
    assert (ev.object_id, ev.upn, ev.user_key) == (owner_oid, "john.doe@example.com", owner_oid)
    # the same operation made by an admin stays the admin's
    rec["UserId"] = "admin@example.com"
    rec["Actor"] = [{"ID": "admin@example.com", "Type": 5}, {"ID": "576409b5-84f3-4791-8e3c-c9677e3bd898", "Type": 2}]
    ev = parse(rec)
    assert (ev.upn, ev.user_key) == ("admin@example.com", "576409b5-84f3-4791-8e3c-c9677e3bd898")


def test_a_blob_with_the_new_fields_takes_the_fast_path_with_the_same_events() -> None:
    recs = [
        alert("AlertTriggered", Name="User restricted from sending email", Data='{"f3u":"a@contoso.com"}'),
        base(
            "HardDelete", Id="d0d7820c-cdbe-4524-bf75-08dbb61736bf", UserId="a@contoso.com", Folder={"Path": "\\Inbox"}
        ),
    ]
    blob = parse_blob(orjson.dumps(recs))
    assert blob.quarantined == []
    assert [(e.op, e.user_key, e.folder_path) for e in blob.events] == [
        ("alerttriggered", "a@contoso.com", None),
        ("harddelete", "a@contoso.com", "\\Inbox"),
    ]
