"""Parsing messy, schema-shaped audit records into typed events."""

from __future__ import annotations

import orjson
import pytest

from shared.alert_model import iso
from shared.records.event import Event, Quarantined, parse_blob, parse_raw_record

TENANT = "9f6a3d1e-0c4b-4e8a-9d57-2b1f0c3e4a11"
OID = "c3f3b8b0-1111-2222-3333-444455556666"


def signin(**over: object) -> dict[str, object]:
    rec: dict[str, object] = {
        "CreationTime": "2026-11-24T14:02:11",
        "Id": "5a7c9c2e-6f7e-4d55-9e53-0c7b0f3e2d11",
        "Operation": "UserLoggedIn",
        "OrganizationId": TENANT,
        "RecordType": 15,
        "ResultStatus": "Success",
        "UserKey": OID,
        "UserType": 0,
        "Workload": "AzureActiveDirectory",
        "ClientIP": "203.0.113.7",
        "UserId": "Megan.Bowen@contoso.com",
        "Actor": [{"ID": OID, "Type": 0}, {"ID": "Megan.Bowen@contoso.com", "Type": 5}],
        "ExtendedProperties": [
            {"Name": "UserAgent", "Value": "Mozilla/5.0"},
            {"Name": "RequestType", "Value": "Login:login"},
        ],
        "ErrorNumber": "0",
        "SomeFieldFromTheFuture": {"nested": [1, 2, 3]},
    }
    rec.update(over)
    return rec


def parse_one(rec: dict[str, object]) -> Event:
    got = parse_raw_record(orjson.dumps(rec))
    assert isinstance(got, Event), got
    return got


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        pytest.param({}, ("2026-11-24T14:02:11Z", OID, "megan.bowen@contoso.com", "203.0.113.7"), id="plain"),
        pytest.param(
            {"CreationTime": "2026-11-24T14:02:11.1234567Z"},
            ("2026-11-24T14:02:11Z", OID, "megan.bowen@contoso.com", "203.0.113.7"),
            id="zone-and-7-digit-fraction",
        ),
        pytest.param(
            {"ClientIP": "[2001:DB8::5]:443"},
            ("2026-11-24T14:02:11Z", OID, "megan.bowen@contoso.com", "2001:db8::5"),
            id="ipv6-bracket-port",
        ),
        pytest.param(
            {"ClientIP": "203.0.113.7:51622"},
            ("2026-11-24T14:02:11Z", OID, "megan.bowen@contoso.com", "203.0.113.7"),
            id="ipv4-port",
        ),
        pytest.param(
            {"ClientIP": "::ffff:203.0.113.7"},
            ("2026-11-24T14:02:11Z", OID, "megan.bowen@contoso.com", "203.0.113.7"),
            id="mapped",
        ),
        pytest.param(
            {"ClientIP": "mail.contoso.com"},
            ("2026-11-24T14:02:11Z", OID, "megan.bowen@contoso.com", None),
            id="hostname",
        ),
        pytest.param(
            {"UserId": "Not Available", "Actor": [{"ID": OID, "Type": 0}]},
            ("2026-11-24T14:02:11Z", OID, None, "203.0.113.7"),
            id="userid-not-available-keeps-object-id",
        ),
        pytest.param(
            {"UserId": None, "Actor": None, "UserKey": "Not Available"},
            ("2026-11-24T14:02:11Z", None, None, "203.0.113.7"),
            id="no-identity-at-all",
        ),
        pytest.param(
            {"RecordType": "15", "ClientIP": 42},
            ("2026-11-24T14:02:11Z", OID, "megan.bowen@contoso.com", None),
            id="wrong-types-dropped",
        ),
    ],
)
def test_messy_fields_normalise(override: dict[str, object], expected: tuple[object, ...]) -> None:
    ev = parse_one(signin(**override))
    assert (iso(ev.time), ev.object_id, ev.upn, ev.ip) == expected
    assert ev.tenant_id == TENANT
    assert ev.op == "userloggedin"
    assert ev.user_key == (expected[1] or expected[2])


def test_parameters_as_string_and_in_any_order() -> None:
    params = [{"Name": "ForwardTo", "Value": "x@gmail.com"}, {"Name": "Name", "Value": "."}]
    as_list = parse_one(signin(Operation="New-InboxRule", RecordType=1, Parameters=params))
    as_text = parse_one(signin(Operation="New-InboxRule", RecordType=1, Parameters=orjson.dumps(params[::-1]).decode()))
    assert dict(as_list.parameters) == dict(as_text.parameters) == {"forwardto": "x@gmail.com", "name": "."}


# Parameters in every shape the unified audit log and its exporters write (issue #20, item 14): Name/Value
# pairs (the documented shape, office-365-management-activity-api-schema "ExchangeAdmin schema": Parameters is
# a "Collection of Common.NameValuePair"), the same pairs serialised to a JSON string (search-unifiedauditlog's
# AuditData), "Name:Value" strings, one {name: value} object (SIEM exports that flatten the pairs), and one
# string holding the cmdlet's command line or "Name:Value" pairs.
PARAMETER_SHAPES = {
    "pairs": [
        {"Name": "Name", "Value": "Fwd"},
        {"Name": "ForwardTo", "Value": "x@gmail.com"},
        {"Name": "MoveToFolder", "Value": "alice:\\RSS Feeds"},
        {"Name": "StopProcessingRules", "Value": "True"},
    ],
    "pairs-as-json-string": orjson.dumps(
        [
            {"Name": "StopProcessingRules", "Value": "True"},
            {"Name": "MoveToFolder", "Value": "alice:\\RSS Feeds"},
            {"Name": "ForwardTo", "Value": "x@gmail.com"},
            {"Name": "Name", "Value": "Fwd"},
        ]
    ).decode(),
    "name-colon-value-strings": [
        "Name:Fwd",
        "ForwardTo:x@gmail.com",
        "MoveToFolder:alice:\\RSS Feeds",
        "StopProcessingRules:True",
    ],
    "object": {
        "Name": "Fwd",
        "ForwardTo": "x@gmail.com",
        "MoveToFolder": "alice:\\RSS Feeds",
        "StopProcessingRules": True,
    },
    "object-as-json-string": '{"Name":"Fwd","ForwardTo":"x@gmail.com","MoveToFolder":"alice:\\\\RSS Feeds","StopProcessingRules":true}',
    "one-string-of-pairs": "Name:Fwd;ForwardTo:x@gmail.com;MoveToFolder:alice:\\RSS Feeds;StopProcessingRules:True",
    "one-string-command-line": '-Name "Fwd" -ForwardTo "x@gmail.com" -MoveToFolder "alice:\\RSS Feeds" -StopProcessingRules:True',
}


@pytest.mark.parametrize("shape", list(PARAMETER_SHAPES))
def test_parameters_in_every_shape_read_the_same(shape: str) -> None:
    ev = parse_one(signin(Operation="New-InboxRule", RecordType=1, Parameters=PARAMETER_SHAPES[shape]))
    assert dict(ev.parameters) == {
        "name": "Fwd",
        "forwardto": "x@gmail.com",
        "movetofolder": "alice:\\RSS Feeds",
        "stopprocessingrules": "True",
    }


def test_parameters_of_an_unreadable_shape_are_empty_and_the_record_is_kept() -> None:
    ev = parse_one(signin(Operation="New-InboxRule", RecordType=1, Parameters=42))
    assert dict(ev.parameters) == {}


def test_extended_properties_and_error_number() -> None:
    ev = parse_one(signin(Operation="UserLoginFailed", ErrorNumber="500121"))
    assert ev.error_number == 500121
    assert ev.user_agent == "Mozilla/5.0"
    assert dict(ev.extended_properties) == {"useragent": "Mozilla/5.0", "requesttype": "Login:login"}


DEVICE = [{"Name": "OS", "Value": "Windows10"}, {"Name": "BrowserType", "Value": "Edge 120.0"}]


@pytest.mark.parametrize(
    ("device", "expected"),
    [
        pytest.param(DEVICE, {"os": "Windows10", "browsertype": "Edge 120.0"}, id="list"),
        pytest.param(orjson.dumps(DEVICE).decode(), {"os": "Windows10", "browsertype": "Edge 120.0"}, id="json-string"),
        pytest.param([{"Name": "IsCompliant", "Value": True}], {"iscompliant": "True"}, id="boolean-value"),
        pytest.param(None, {}, id="null"),
        pytest.param(42, {}, id="wrong-type-dropped"),
    ],
)
def test_device_properties_in_every_shape(device: object, expected: dict[str, str]) -> None:
    ev = parse_one(signin(DeviceProperties=device))
    assert dict(ev.device_properties) == expected
    assert parse_one(signin()).device_properties == {}


def test_operation_with_trailing_period_is_normalised() -> None:
    ev = parse_one(signin(Operation="Consent to application.", RecordType=8))
    assert ev.op == "consent to application"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"Id": "x", "CreationTime": "2026-11-24T14:02:11"', "invalid_json"),
        (b"[1, 2]", "not_an_object"),
        (orjson.dumps({k: v for k, v in signin().items() if k != "Id"}), "missing_id"),
        (orjson.dumps(signin(CreationTime="yesterday")), "bad_creation_time"),
        (orjson.dumps({k: v for k, v in signin().items() if k != "OrganizationId"}), "missing_tenant"),
    ],
)
def test_unusable_records_are_quarantined_with_a_reason(raw: bytes, reason: str) -> None:
    got = parse_raw_record(raw)
    assert not isinstance(got, Event)
    assert got.reason == reason
    assert got.raw == raw


@pytest.mark.parametrize(
    ("record", "detail"),
    [
        ({k: v for k, v in signin().items() if k != "CreationTime"}, "record has no CreationTime"),
        (signin(CreationTime=""), "record has no CreationTime"),
        (signin(CreationTime=None), "record has no CreationTime"),
        (signin(CreationTime="yesterday"), "unparseable CreationTime 'yesterday'"),
    ],
    ids=["missing", "empty", "null", "unparseable"],
)
def test_a_record_without_a_usable_creation_time_is_quarantined_alone_with_its_reason(
    record: dict[str, object], detail: str
) -> None:
    raw = orjson.dumps(record)
    got = parse_raw_record(raw)
    assert isinstance(got, Quarantined)
    assert (got.reason, got.detail, got.raw, got.record_id) == ("bad_creation_time", detail, raw, record["Id"])
    res = parse_blob(orjson.dumps([signin(Id="good-1"), record, signin(Id="good-2")]))
    assert [e.record_id for e in res.events] == ["good-1", "good-2"]
    assert [(q.reason, q.detail) for q in res.quarantined] == [("bad_creation_time", detail)]


def test_blob_fast_path_and_fallback_count_every_record() -> None:
    good = [signin(Id=f"id-{i}") for i in range(5)]
    res = parse_blob(orjson.dumps(good))
    assert [e.record_id for e in res.events] == [f"id-{i}" for i in range(5)] and res.quarantined == []
    mixed = [*good, {"Id": "bad", "CreationTime": "no"}, "not a record"]
    res = parse_blob(orjson.dumps(mixed), expected_tenant=TENANT)
    assert res.read == 7
    assert sorted(q.reason for q in res.quarantined) == ["bad_creation_time", "not_an_object"]


def test_record_of_another_tenant_is_quarantined() -> None:
    res = parse_blob(orjson.dumps([signin()]), expected_tenant="11111111-1111-1111-1111-111111111111")
    assert res.events == []
    assert [q.reason for q in res.quarantined] == ["tenant_mismatch"]


def test_truncated_blob_is_one_quarantined_entry() -> None:
    data = orjson.dumps([signin(), signin(Id="b")])[:-30]
    res = parse_blob(data)
    assert res.events == [] and [q.reason for q in res.quarantined] == ["invalid_blob"]
