"""Builders of Entra sign-in log entries for detector tests (Graph beta ``signIn`` shape, mapped to the record
the detectors read by ``shared.records.signins.map_signin``, as `itdr scan` and the sign-in poller do).

Field names and values follow Microsoft Graph's signIn resource (beta): ``status.errorCode`` /
``additionalDetails``, ``conditionalAccessStatus``, ``appliedConditionalAccessPolicies``, ``authenticationDetails``,
``riskLevelDuringSignIn`` / ``riskLevelAggregated`` / ``riskState`` / ``riskEventTypes_v2``, ``clientAppUsed``,
``signInEventTypes``, ``servicePrincipalId`` (tests/records/signin_fixtures.py cites the sources).
"""

from __future__ import annotations

import uuid
from typing import Any

from records import RECORD_NS, at, oid_of

from shared.detection.testing import TEST_TENANT
from shared.records.signins import map_signin


def log_signin(
    upn: str = "alice@contoso.com",
    *,
    when: str | None = None,
    ip: str = "198.51.100.10",
    error: int = 0,
    failure: str | None = None,
    details: str | None = None,
    ca_status: str = "success",
    policies: list[dict[str, Any]] | None = None,
    risk_during: str = "none",
    risk_aggregated: str = "none",
    risk_state: str = "none",
    risk_types: tuple[str, ...] = (),
    client_app: str = "Browser",
    category: str = "interactiveUser",
    steps: list[dict[str, Any]] | None = None,
    session: str | None = None,
    seq: int = 0,
) -> dict[str, Any]:
    """A user's sign-in as the sign-in log gives it (interactive, browser, CA success, no risk by default)."""
    when = when or at()
    rid = str(uuid.uuid5(RECORD_NS, f"log|{upn}|{when}|{ip}|{error}|{seq}"))
    signin: dict[str, Any] = {
        "id": rid,
        "createdDateTime": when + "Z",
        "userDisplayName": upn.split("@")[0].title(),
        "userPrincipalName": upn,
        "userId": oid_of(upn),
        "appId": "00000002-0000-0ff1-ce00-000000000000",
        "appDisplayName": "Office 365 Exchange Online",
        "ipAddress": ip,
        "clientAppUsed": client_app,
        "userAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/124.0 Safari/537.36",
        "correlationId": str(uuid.uuid5(RECORD_NS, "corr|" + rid)),
        "sessionId": session or str(uuid.uuid5(RECORD_NS, f"session|{upn}|{ip}")),
        "conditionalAccessStatus": ca_status,
        "appliedConditionalAccessPolicies": policies or [],
        "isInteractive": category == "interactiveUser",
        "signInEventTypes": [category],
        "resourceTenantId": TEST_TENANT,
        "riskLevelDuringSignIn": risk_during,
        "riskLevelAggregated": risk_aggregated,
        "riskState": risk_state,
        "riskEventTypes_v2": list(risk_types),
        "tokenIssuerType": "AzureAD",
        "status": {"errorCode": error, "failureReason": failure, "additionalDetails": details},
        "deviceDetail": {"operatingSystem": "Windows 10", "browser": "Chrome 124.0", "isCompliant": False},
        "authenticationDetails": steps or [],
    }
    got = map_signin(signin)
    assert got is not None
    return got


def sp_signin(
    name: str = "Contoso Payroll Sync",
    *,
    when: str | None = None,
    ip: str = "198.51.100.77",
    error: int = 0,
    category: str = "servicePrincipal",
) -> dict[str, Any]:
    """A service principal's sign-in with its own credentials (``ServicePrincipalSignInLogs``)."""
    when = when or at()
    sp_id = str(uuid.uuid5(RECORD_NS, "sp|" + name))
    got = map_signin(
        {
            "id": str(uuid.uuid5(RECORD_NS, f"sp-log|{name}|{when}|{ip}|{error}")),
            "createdDateTime": when + "Z",
            "appId": str(uuid.uuid5(RECORD_NS, "app|" + name)),
            "appDisplayName": name,
            "ipAddress": ip,
            "correlationId": str(uuid.uuid5(RECORD_NS, f"sp-corr|{name}|{when}")),
            "conditionalAccessStatus": "notApplied",
            "isInteractive": False,
            "signInEventTypes": [category],
            "servicePrincipalId": sp_id,
            "servicePrincipalName": name,
            "resourceDisplayName": "Microsoft Graph",
            "resourceId": "00000003-0000-0000-c000-000000000000",
            "resourceTenantId": TEST_TENANT,
            "status": {"errorCode": error},
        }
    )
    assert got is not None
    return got


def sp_id_of(name: str) -> str:
    return str(uuid.uuid5(RECORD_NS, "sp|" + name))
