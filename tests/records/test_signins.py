"""Entra sign-in logs read into the typed sign-in events detectors use (issue #23 item 1).

Fixtures: tests/records/signin_fixtures.py, written from Microsoft's documented examples (sources in its header).
"""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from shared.alert_model import iso
from shared.records.event import Event, Quarantined, parse_raw_record
from shared.records.shapes import parse_any
from shared.records.signins import is_signin, is_signin_csv, map_signin, map_signin_csv
from tests.records.signin_fixtures import (
    DIAGNOSTIC,
    GRAPH_BETA,
    GRAPH_BETA_SP,
    GRAPH_V1,
    PORTAL_CSV_HEADER,
    SENTINEL_ROW,
    TENANT,
    portal_csv_row,
)


def one(obj: Any) -> Event:
    got = parse_any(orjson.dumps(obj))
    assert len(got) == 1 and isinstance(got[0], Event), got
    return got[0]


def test_graph_v1_signin_is_a_typed_successful_signin() -> None:
    ev = one(GRAPH_V1)
    assert (ev.op, ev.record_id, ev.tenant_id) == ("userloggedin", GRAPH_V1["id"], TENANT)
    assert iso(ev.time) == "2020-03-13T19:15:41Z"
    assert (ev.upn, ev.object_id, ev.user_key) == (
        "testaccount1@contoso.com",
        "26be570a-ae82-4189-b4e2-a37c6808512d",
        "26be570a-ae82-4189-b4e2-a37c6808512d",
    )
    assert ev.ip == "131.107.159.37"
    assert ev.client_app_id == "de8bc8b5-d9f9-48b1-a8ad-b748da725064"
    assert ev.error_number == 0 and ev.succeeded
    assert ev.device_properties["os"] == "Windows 10"
    d = ev.signin
    assert d is not None
    assert (d.source, d.category, d.is_interactive) == ("graph", "interactive", True)
    assert d.request_id == ev.signin_request_id == "66ea54eb-6301-4ee5-be62-ff5a759b0100"
    assert d.correlation_id == "d79f5bee-5860-4832-928f-3133e22ae912"
    assert (d.ca_status, d.ca_policies) == ("notApplied", None)
    assert (d.risk_level_during, d.risk_level_aggregated, d.risk_state) == ("none", "none", "none")
    assert (d.country, d.city, d.client_app_used) == ("US", "Redmond", "Browser")
    assert d.resource_display_name == "Microsoft Graph"


def test_graph_beta_signin_keeps_the_richer_fields() -> None:
    ev = one(GRAPH_BETA)
    d = ev.signin
    assert d is not None
    assert ev.aad_session_id == d.session_id == "0a1c2f6e-3b4d-4c5e-8f70-91a2b3c4d5e6"
    assert ev.user_agent.startswith("Mozilla/5.0 (Windows NT 10.0")
    assert d.ca_status == "success"
    assert [(p.name, p.result, p.grant_controls) for p in d.ca_policies or ()] == [
        ("Require MFA for admins", "success", ["Mfa"]),
        ("Block legacy authentication", "notApplied", ["Block"]),
    ]
    assert d.auth_requirement == "multiFactorAuthentication"
    assert [(s.method, s.succeeded, s.detail) for s in d.auth_steps or ()] == [
        ("Password", True, "Correct password"),
        ("Mobile app notification", True, "MFA successfully completed"),
    ]
    assert d.mfa_method == "Mobile app notification"
    assert (d.device_compliant, d.device_managed) == (False, False)
    assert (d.token_issuer_type, d.cross_tenant_access_type) == ("AzureAD", "none")
    assert (d.home_tenant_id, d.resource_tenant_id) == (TENANT, TENANT)
    assert d.original_request_id == GRAPH_BETA["id"]
    assert d.unique_token_id == "ZTE0OTk3NTQtNzNhZC00ZGZjLWFkZjQtNzkzM2U0ZmE"
    assert d.additional_details == "MFA requirement satisfied by claim in the token"


def test_service_principal_signin_is_keyed_by_the_service_principal() -> None:
    ev = one(GRAPH_BETA_SP)
    assert ev.op == "serviceprincipalloggedin"
    assert (ev.upn, ev.user_key) == (None, "0e4c2a18-6b3d-4f5e-9a7c-8d1e2f3a4b5c")
    assert ev.record.UserId == "Contoso Payroll Sync"
    d = ev.signin
    assert d is not None and (d.category, d.service_principal_name) == ("serviceprincipal", "Contoso Payroll Sync")
    failed = one({**GRAPH_BETA_SP, "status": {"errorCode": 7000215, "failureReason": "Invalid client secret"}})
    assert failed.op == "serviceprincipalloginfailed" and failed.error_number == 7000215


def test_diagnostic_settings_entry_reads_properties_and_the_category() -> None:
    ev = one(DIAGNOSTIC)
    assert (ev.op, ev.record_id, ev.tenant_id) == ("userloginfailed", "0231f922-93fa-4005-bb11-b344eca03c01", TENANT)
    assert ev.error_number == 50140
    assert ev.record.LogonError == DIAGNOSTIC["resultDescription"]
    assert (ev.upn, ev.ip) == ("timothy.perkins@contoso.com", "198.51.100.23")
    d = ev.signin
    assert d is not None and (d.source, d.category) == ("diagnostic", "interactive")
    assert d.correlation_id == "a75a10bd-c126-486b-9742-c03110d36262"
    assert [(p.name, p.result) for p in d.ca_policies or ()] == [("Hr app access policy", "notApplied")]
    assert (d.country, d.city, d.token_issuer_type) == ("US", "Bellevue", "AzureAD")


@pytest.mark.parametrize(
    ("category", "op", "kind"),
    [
        ("NonInteractiveUserSignInLogs", "userloggedin", "noninteractive"),
        ("ServicePrincipalSignInLogs", "serviceprincipalloggedin", "serviceprincipal"),
        ("ManagedIdentitySignInLogs", "serviceprincipalloggedin", "managedidentity"),
    ],
)
def test_every_diagnostic_category(category: str, op: str, kind: str) -> None:
    entry = copy.deepcopy(DIAGNOSTIC)
    entry["category"] = category
    entry["resultType"] = "0"
    entry["properties"]["status"] = {"errorCode": 0}
    entry["properties"]["servicePrincipalId"] = "0e4c2a18-6b3d-4f5e-9a7c-8d1e2f3a4b5c"
    ev = one(entry)
    assert ev.op == op
    assert ev.signin is not None and ev.signin.category == kind


def test_event_hub_records_wrapper_and_graph_page() -> None:
    hub = parse_any(orjson.dumps({"records": [DIAGNOSTIC, DIAGNOSTIC | {"time": "2019-03-12T16:02:16Z"}]}))
    assert [type(x) for x in hub] == [Event, Event]
    page = parse_any(
        orjson.dumps(
            {
                "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#auditLogs/signIns",
                "value": [GRAPH_V1, GRAPH_BETA, GRAPH_BETA_SP],
                "@odata.nextLink": "https://graph.microsoft.com/v1.0/auditLogs/signIns?$skiptoken=x",
            }
        )
    )
    assert [e.op for e in page if isinstance(e, Event)] == ["userloggedin", "userloggedin", "serviceprincipalloggedin"]


def test_log_analytics_row_with_json_text_columns() -> None:
    ev = one(SENTINEL_ROW)
    assert (ev.op, ev.record_id, ev.tenant_id, ev.ip) == (
        "userloggedin",
        "7aeca226-b3e7-4033-9a7f-d067622e8d00",
        TENANT,
        "198.51.100.10",
    )
    d = ev.signin
    assert d is not None and d.source == "diagnostic"
    assert ev.aad_session_id == "4e1f5b3c-2a6d-4c8e-9f0a-1b2c3d4e5f60"
    assert [(p.name, p.result) for p in d.ca_policies or ()] == [("Require MFA", "success")]
    assert (d.device_compliant, d.device_managed, d.device_trust_type) == (True, True, "Azure AD joined")
    assert [(s.method, s.detail) for s in d.auth_steps or ()] == [
        ("Mobile app notification", "MFA successfully completed")
    ]
    assert (d.country, d.city) == ("DE", "Berlin")


def test_portal_csv_row() -> None:
    assert is_signin_csv(PORTAL_CSV_HEADER)
    assert not is_signin_csv(["CreationDate", "UserIds", "Operations", "AuditData"])
    row = dict(zip(PORTAL_CSV_HEADER, portal_csv_row(), strict=True))
    mapped = map_signin_csv(row, file_name="InteractiveSignIns_2024-05-01_2024-05-02.csv")
    assert mapped is not None
    ev = parse_raw_record(orjson.dumps(mapped))
    assert isinstance(ev, Event)
    assert (ev.op, ev.upn, ev.ip, ev.tenant_id) == ("userloggedin", "alice@contoso.com", "198.51.100.10", TENANT)
    d = ev.signin
    assert d is not None and (d.source, d.category, d.ca_status) == ("csv", "interactive", "success")
    assert (d.country, d.city, d.auth_requirement) == ("DE", "Berlin", "multiFactorAuthentication")
    assert ev.aad_session_id == "4e1f5b3c-2a6d-4c8e-9f0a-1b2c3d4e5f60"
    failed = dict(
        zip(
            PORTAL_CSV_HEADER,
            portal_csv_row(
                Status="Failure",
                **{
                    "Sign-in error code": "500121",
                    "Failure reason": "Authentication failed during strong authentication request.",
                    "Multifactor authentication result": "MFA denied; user declined the authentication",
                    "Conditional Access": "Not Applied",
                },
            ),
            strict=True,
        )
    )
    ev2 = parse_raw_record(orjson.dumps(map_signin_csv(failed, file_name="NonInteractiveSignIns.csv")))
    assert isinstance(ev2, Event) and ev2.op == "userloginfailed" and ev2.error_number == 500121
    assert ev2.signin is not None and (ev2.signin.category, ev2.signin.ca_status) == ("noninteractive", "notApplied")


def test_audit_records_are_not_taken_for_signins_and_the_audit_signin_names_its_request() -> None:
    audit = {
        "CreationTime": "2024-05-01T08:00:00",
        "Id": "a1",
        "Operation": "UserLoggedIn",
        "OrganizationId": TENANT,
        "RecordType": 15,
        "UserId": "alice@contoso.com",
        "ClientIP": "198.51.100.10",
        "IntraSystemId": "7AECA226-B3E7-4033-9A7F-D067622E8D00",
        "InterSystemsId": "a3798792-fef1-4b53-bd44-bbbd94cf0e5c",
    }
    assert not is_signin(audit) and map_signin(audit) is None
    ev = parse_raw_record(orjson.dumps(audit))
    assert isinstance(ev, Event) and ev.signin is None
    assert ev.signin_request_id == "7aeca226-b3e7-4033-9a7f-d067622e8d00"
    other = parse_raw_record(orjson.dumps({**audit, "Operation": "Add member to role."}))
    assert isinstance(other, Event) and other.signin_request_id is None


def test_a_signin_without_tenant_or_time_is_quarantined_with_its_reason() -> None:
    no_tenant = {k: v for k, v in GRAPH_V1.items() if k != "resourceTenantId"}
    got = parse_any(orjson.dumps(no_tenant))
    assert [q.reason for q in got if isinstance(q, Quarantined)] == ["missing_tenant"]
    bad_time = {**GRAPH_V1, "createdDateTime": "yesterday"}
    got = parse_any(orjson.dumps(bad_time))
    assert [q.reason for q in got if isinstance(q, Quarantined)] == ["bad_creation_time"]


@pytest.mark.parametrize(
    ("fields", "protocol"),
    [
        ({"authenticationProtocol": "deviceCode"}, "device_code"),
        ({"originalTransferMethod": "deviceCodeFlow"}, "device_code"),
        ({"authenticationProtocol": "ropc"}, "ropc"),
        ({"clientAppUsed": "IMAP4"}, "legacy"),
        ({"clientAppUsed": "Authenticated SMTP"}, "legacy"),
        # a browser with Graph's "none" protocol: nothing says legacy, ROPC or device code (the audit log's
        # RequestType, which makes it "modern" there, is not in the sign-in log)
        ({"clientAppUsed": "Browser", "authenticationProtocol": "none"}, "unknown"),
    ],
)
def test_the_access_method_reads_the_sign_in_logs_protocol_and_client(fields: dict[str, str], protocol: str) -> None:
    """So the audit-log detectors of ROPC, legacy and device-code sign-ins read the sign-in log too."""
    from shared.enrich.access import classify_access

    ev = one({**GRAPH_BETA, "userAgent": None, **fields})
    assert classify_access(ev).protocol == protocol
