"""Content-search exports, mailbox exports and Search-Mailbox copies.

Record shapes: Security & Compliance Center cmdlet records (RecordType 18, SecurityComplianceCenterEOPCmdlet) with
``Parameters`` as one string, ``StartTime``, ``ClientRequestId``, ``CmdletVersion``, ``EffectiveOrganization``,
``UserServicePlan`` and ``NonPiiParameters`` per the "Security and Compliance Center schema" of the Office 365
Management Activity API schema (the schema types ``Parameters`` as a string; the ``-Name "value"`` rendering is
inferred from how the cmdlets are written, no public sample was found); eDiscovery activity records (RecordType 24, Discovery: ``SearchExported``,
``SearchExportDownloaded`` with the search name in ``ObjectId``) per Microsoft Purview "Search for eDiscovery
activities in the audit log" (the ``Case`` and ``ObjectType`` fields are inferred); Exchange admin records (``New-MailboxExportRequest``, ``Search-Mailbox``) as in
records.exchange_cmdlet.
"""

from __future__ import annotations

from typing import Any

from records import (
    RISKY_IP,
    TEST_TENANT,
    RiskySigninMarker,
    _rid,
    at,
    exchange_cmdlet,
    expected_alert,
    identity_enricher,
    oid_of,
    signin,
)

from detectors.exfil_ediscovery_export import ExfilEdiscoveryExport
from shared.detection.testing import run_detector
from shared.tenant_config import TenantConfig

ALICE = "alice@contoso.com"
OFFICER = "compliance.officer@contoso.com"
IP = "198.51.100.10"


def run(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    got = run_detector(
        [RiskySigninMarker, ExfilEdiscoveryExport],
        records,
        tenant=TenantConfig(tenant_id=TEST_TENANT),
        enricher=identity_enricher(),
    )
    assert got.quarantined == []
    return [a.to_dict() for a in got.alerts]


def scc_cmdlet(operation: str, parameters: str, upn: str = ALICE, *, when: str, seq: int = 0) -> dict[str, Any]:
    return {
        "CreationTime": when,
        "Id": _rid(TEST_TENANT, operation, upn, when, seq, parameters),
        "Operation": operation,
        "OrganizationId": TEST_TENANT,
        "RecordType": 18,
        "UserKey": "10032001D6E1A2B3",
        "UserType": 2,
        "Version": 1,
        "Workload": "SecurityComplianceCenter",
        "ClientIP": IP,
        "ObjectId": "",
        "UserId": upn,
        "StartTime": when,
        "ClientRequestId": _rid("req", operation, when),
        "CmdletVersion": "16.00.7916.000",
        "EffectiveOrganization": "contoso.onmicrosoft.com",
        "UserServicePlan": "Microsoft 365 E5",
        "ClientApplication": "",
        "Parameters": parameters,
        "NonPiiParameters": parameters,
    }


def discovery(operation: str, search: str, upn: str = ALICE, *, when: str) -> dict[str, Any]:
    return {
        "CreationTime": when,
        "Id": _rid(TEST_TENANT, operation, upn, when, search),
        "Operation": operation,
        "OrganizationId": TEST_TENANT,
        "RecordType": 24,
        "UserKey": "10032001D6E1A2B3",
        "UserType": 2,
        "Version": 1,
        "Workload": "SecurityComplianceCenter",
        "ClientIP": IP,
        "ObjectId": search,
        "UserId": upn,
        "Case": "",
        "ObjectType": "ContentSearch",
    }


NEW_ALL = '-Name "Q3 payments" -ExchangeLocation "All" -ContentMatchQuery "invoice OR payment"'


def test_an_all_mailbox_search_exported_after_a_risky_sign_in_is_critical() -> None:
    login = signin(ALICE, when=at(minutes=0), ip=RISKY_IP)
    search = scc_cmdlet("New-ComplianceSearch", NEW_ALL, when=at(minutes=10))
    action = scc_cmdlet(
        "New-ComplianceSearchAction", '-SearchName "Q3 payments" -Export -Format "FxStream"', when=at(minutes=25)
    )
    assert run([login, search, action]) == [
        expected_alert(
            ExfilEdiscoveryExport,
            records=[action],
            severity="critical",
            summary=f"{ALICE} exported content search Q3 payments spanning every mailbox or site "
            f"(New-ComplianceSearchAction) after a risky sign-in (vpn from {RISKY_IP})",
            dedup_key=f"{oid_of(ALICE)}|search|q3 payments",
            context={
                "kind": "content search export",
                "search": "Q3 payments",
                "all_locations": True,
                "query": "invoice OR payment",
                "operation": "New-ComplianceSearchAction",
                "risk": {
                    "source": "risky_signin",
                    "reason": "vpn",
                    "ip": RISKY_IP,
                    "time": 1714550400.0,
                    "record_id": login["Id"],
                },
            },
        )
    ]


def test_ordinary_compliance_search_without_export_and_purge_actions_are_silent() -> None:
    search = scc_cmdlet("New-ComplianceSearch", NEW_ALL, OFFICER, when=at(minutes=0))
    start = scc_cmdlet("Start-ComplianceSearch", '-Identity "Q3 payments"', OFFICER, when=at(minutes=1))
    preview = scc_cmdlet(
        "New-ComplianceSearchAction", '-SearchName "Q3 payments" -Preview', OFFICER, when=at(minutes=5)
    )
    purge = scc_cmdlet(
        "New-ComplianceSearchAction",
        '-SearchName "Q3 payments" -Purge -PurgeType SoftDelete',
        OFFICER,
        when=at(minutes=9),
    )
    assert run([search, start, preview, purge]) == []


def test_an_export_downloaded_by_an_officer_is_medium_one_search() -> None:
    narrow = scc_cmdlet(
        "New-ComplianceSearch", '-Name "DSAR 114" -ExchangeLocation "bob@contoso.com"', OFFICER, when=at(minutes=0)
    )
    exported = discovery("SearchExported", "DSAR 114", OFFICER, when=at(minutes=30))
    downloaded = discovery("SearchExportDownloaded", "DSAR 114", OFFICER, when=at(minutes=40))
    got = run([narrow, exported, downloaded])
    assert [(a["severity"], a["count"], a["context"]["all_locations"], a["evidence_record_ids"]) for a in got] == [
        ("medium", 2, False, [exported["Id"], downloaded["Id"]])
    ]


def test_mailbox_export_request_and_search_mailbox_copy_are_high() -> None:
    export = exchange_cmdlet(
        "New-MailboxExportRequest",
        {"Mailbox": "ceo@contoso.com", "FilePath": "\\\\fs01\\pst\\ceo.pst"},
        when=at(minutes=0),
    )
    copy = exchange_cmdlet(
        "Search-Mailbox",
        {
            "Identity": "cfo@contoso.com",
            "SearchQuery": "wire",
            "TargetMailbox": "alice@contoso.com",
            "TargetFolder": "x",
        },
        when=at(minutes=5),
    )
    no_target = exchange_cmdlet(
        "Search-Mailbox",
        {"Identity": "cfo@contoso.com", "SearchQuery": "wire", "EstimateResultOnly": "True"},
        when=at(minutes=9),
    )
    got = run([export, copy, no_target])
    assert [(a["severity"], a["summary"]) for a in got] == [
        ("high", f"{ALICE} started a mailbox export of ceo@contoso.com to \\\\fs01\\pst\\ceo.pst"),
        ("high", f"{ALICE} started a Search-Mailbox copy of cfo@contoso.com into alice@contoso.com"),
    ]
