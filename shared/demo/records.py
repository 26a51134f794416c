"""Builders of schema-shaped audit records (the shapes of Microsoft's schema page and live tenants).

Used by the demo generator, the benchmark corpus and the chaos workload. Deterministic: every
random choice comes from the ``random.Random`` passed in.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

EXCHANGE_APP = "00000002-0000-0ff1-ce00-000000000000"
GRAPH_APP = "00000003-0000-0000-c000-000000000000"
OFFICE_APP = "d3590ed6-52b3-4102-aeff-aad2292ab01c"
OUTLOOK_APP = "5d661950-3475-41cd-a2c3-d671a3162bc1"
TEAMS_APP = "1fec8e78-bce4-4aaf-ab1b-5451cc387264"
GRAPH_POWERSHELL_APP = "14d82eec-204b-4c2f-b7e8-296a70dab67e"

UA_EDGE = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/129.0.0.0 Safari/537.36 Edg/129.0.0.0"
)
UA_CHROME_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/129.0.0.0 Safari/537.36"
)
UA_POWERSHELL = "Mozilla/5.0 (Windows NT 10.0; Microsoft Windows 10.0.22631; en-US) PowerShell/7.4.5"


@dataclass(frozen=True)
class User:
    upn: str
    object_id: str
    puid: str
    display_name: str
    home_ip: str
    os: str
    browser: str
    user_agent: str


def stable_guid(*parts: object) -> str:
    """A GUID derived from ``parts``: the same inputs give the same ID in every run."""
    return str(uuid.UUID(hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:32]))


def rid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def ts(t: datetime) -> str:
    """CreationTime as the API writes it: UTC, seconds, no zone."""
    return t.strftime("%Y-%m-%dT%H:%M:%S")


def _common(rng: random.Random, t: datetime, tenant: str, op: str, rtype: int, workload: str) -> dict[str, Any]:
    return {
        "CreationTime": ts(t),
        "Id": rid(rng),
        "Operation": op,
        "OrganizationId": tenant,
        "RecordType": rtype,
        "UserType": 0,
        "Version": 1,
        "Workload": workload,
    }


def signin(
    rng: random.Random,
    t: datetime,
    tenant: str,
    user: User,
    *,
    ip: str,
    app: str = OFFICE_APP,
    user_agent: str | None = None,
    os: str | None = None,
    browser: str | None = None,
    error: int = 0,
    request_type: str = "OAuth2:Authorize",
) -> dict[str, Any]:
    rec = _common(rng, t, tenant, "UserLoggedIn" if error == 0 else "UserLoginFailed", 15, "AzureActiveDirectory")
    ua = user_agent or user.user_agent
    rec.update(
        {
            "ResultStatus": "Success" if error == 0 else "Failed",
            "UserKey": user.object_id,
            "ClientIP": ip,
            "ObjectId": EXCHANGE_APP,
            "UserId": user.upn,
            "AzureActiveDirectoryEventType": 1,
            "ExtendedProperties": [
                {"Name": "ResultStatusDetail", "Value": "Success" if error == 0 else "UserError"},
                {"Name": "UserAgent", "Value": ua},
                {"Name": "RequestType", "Value": request_type},
            ],
            "ModifiedProperties": [],
            "Actor": [{"ID": user.object_id, "Type": 0}, {"ID": user.upn, "Type": 5}],
            "ActorContextId": tenant,
            "ActorIpAddress": ip,
            "InterSystemsId": rid(rng),
            "IntraSystemId": rid(rng),
            "SupportTicketId": "",
            "Target": [{"ID": EXCHANGE_APP, "Type": 0}],
            "TargetContextId": tenant,
            "ApplicationId": app,
            "DeviceProperties": [
                {"Name": "OS", "Value": os or user.os},
                {"Name": "BrowserType", "Value": browser or user.browser},
                {"Name": "IsCompliant", "Value": "False"},
                {"Name": "SessionId", "Value": rid(rng)},
            ],
            "ErrorNumber": str(error),
        }
    )
    if error:
        rec["LogonError"] = {50126: "InvalidUserNameOrPassword", 500121: "AuthenticationFailedSasError"}.get(
            error, "UserStrongAuthClientAuthNRequiredInterrupt"
        )
    return rec


def mail_access(
    rng: random.Random,
    t: datetime,
    tenant: str,
    user: User,
    *,
    ip: str,
    client_info: str = "Client=MSExchangeRPC",
    app: str = OUTLOOK_APP,
    items: int = 1,
) -> dict[str, Any]:
    rec = _common(rng, t, tenant, "MailItemsAccessed", 50, "Exchange")
    domain = user.upn.split("@")[1]
    rec.update(
        {
            "ResultStatus": "Succeeded",
            "UserKey": user.puid,
            "UserId": user.upn,
            "AppId": app,
            "ClientAppId": "",
            "ClientIPAddress": ip,
            "ClientInfoString": client_info,
            "ExternalAccess": False,
            "InternalLogonType": 0,
            "LogonType": 0,
            "LogonUserSid": "S-1-5-21-1180699209-877415012-3182924384-" + str(rng.randint(1000, 99999)),
            "MailboxGuid": rid(rng),
            "MailboxOwnerUPN": user.upn,
            "OperationProperties": [
                {"Name": "MailAccessType", "Value": "Bind"},
                {"Name": "IsThrottled", "Value": "False"},
            ],
            "OrganizationName": domain.split(".")[0] + ".onmicrosoft.com",
            "OriginatingServer": "BN8PR12MB3570 (15.20.7918.024)",
            "SessionId": rid(rng),
            "OperationCount": items,
            "Folders": [
                {
                    "FolderItems": [
                        {"InternetMessageId": f"<{rid(rng)}@{domain}>", "SizeInBytes": rng.randint(4000, 90000)}
                        for _ in range(items)
                    ],
                    "Path": "\\Inbox",
                }
            ],
        }
    )
    return rec


def file_op(
    rng: random.Random, t: datetime, tenant: str, user: User, *, ip: str, op: str = "FileAccessed"
) -> dict[str, Any]:
    rec = _common(rng, t, tenant, op, 6, "SharePoint")
    org = user.upn.split("@")[1].split(".")[0]
    name = rng.choice(["Q3 forecast.xlsx", "Board deck.pptx", "Onboarding.docx", "Pricing 2026.xlsx", "Notes.docx"])
    site = f"https://{org}.sharepoint.com/sites/{rng.choice(['finance', 'sales', 'hr', 'projects'])}/"
    rec.update(
        {
            "UserKey": f"i:0h.f|membership|{user.puid.lower()}@live.com",
            "ClientIP": ip,
            "ObjectId": f"{site}Shared Documents/{name}",
            "UserId": user.upn,
            "CorrelationId": rid(rng),
            "EventSource": "SharePoint",
            "ItemType": "File",
            "ListId": rid(rng),
            "ListItemUniqueId": rid(rng),
            "Site": rid(rng),
            "UserAgent": user.user_agent,
            "WebId": rid(rng),
            "SourceFileExtension": name.rsplit(".", 1)[1],
            "SiteUrl": site,
            "SourceFileName": name,
            "SourceRelativeUrl": "Shared Documents",
        }
    )
    return rec


def inbox_rule(
    rng: random.Random,
    t: datetime,
    tenant: str,
    user: User,
    *,
    ip: str,
    parameters: list[dict[str, str]],
    op: str = "New-InboxRule",
) -> dict[str, Any]:
    rec = _common(rng, t, tenant, op, 1, "Exchange")
    name = next((p["Value"] for p in parameters if p["Name"] == "Name"), "")
    rec.update(
        {
            "ResultStatus": "True",
            "UserKey": user.puid,
            "ClientIP": f"[{ip}]:{rng.randint(1024, 65000)}",
            "ObjectId": f"{user.upn.split('@')[0]}\\{name}",
            "UserId": user.upn,
            "AppId": EXCHANGE_APP,
            "ClientAppId": "",
            "ExternalAccess": False,
            "OrganizationName": user.upn.split("@")[1].split(".")[0] + ".onmicrosoft.com",
            "OriginatingServer": "SA1PR12MB7272 (15.20.7918.024)",
            "Parameters": parameters,
            "SessionId": rid(rng),
        }
    )
    return rec


def consent(
    rng: random.Random,
    t: datetime,
    tenant: str,
    user: User,
    *,
    app_id: str,
    app_name: str,
    scopes: str,
    sp_id: str,
    admin: bool = False,
    all_principals: bool = False,
) -> dict[str, Any]:
    rec = _common(rng, t, tenant, "Consent to application.", 8, "AzureActiveDirectory")
    grant = (
        f"[] => [[Id: {rid(rng)}, ClientId: {sp_id}, PrincipalId: {user.object_id}, "
        f"ResourceId: {rid(rng)}, ConsentType: {'AllPrincipals' if all_principals else 'Principal'}, "
        f"Scope:  {scopes}, CreatedDateTime: , LastModifiedDateTime ]]; "
    )
    rec.update(
        {
            "ResultStatus": "Success",
            "UserKey": f"{user.puid}@{user.upn.split('@')[1]}",
            "ObjectId": sp_id,
            "UserId": user.upn,
            "AzureActiveDirectoryEventType": 1,
            "ExtendedProperties": [
                {"Name": "additionalDetails", "Value": '{"User-Agent":"' + user.user_agent + '"}'},
                {"Name": "extendedAuditEventCategory", "Value": "ServicePrincipal"},
            ],
            "ModifiedProperties": [
                {"Name": "ConsentContext.IsAdminConsent", "NewValue": str(admin), "OldValue": ""},
                {"Name": "ConsentContext.IsAppOnly", "NewValue": "False", "OldValue": ""},
                {"Name": "ConsentContext.OnBehalfOfAll", "NewValue": str(all_principals), "OldValue": ""},
                {"Name": "ConsentContext.Tags", "NewValue": "WindowsAzureActiveDirectoryIntegratedApp", "OldValue": ""},
                {"Name": "ConsentAction.Permissions", "NewValue": grant, "OldValue": ""},
                {"Name": "TargetId.ServicePrincipalNames", "NewValue": app_id, "OldValue": ""},
            ],
            "Actor": [
                {"ID": user.upn, "Type": 5},
                {"ID": user.puid, "Type": 3},
                {"ID": f"User_{user.object_id}", "Type": 2},
                {"ID": user.object_id, "Type": 2},
                {"ID": "User", "Type": 2},
            ],
            "ActorContextId": tenant,
            "InterSystemsId": rid(rng),
            "IntraSystemId": rid(rng),
            "SupportTicketId": "",
            "Target": [
                {"ID": f"ServicePrincipal_{sp_id}", "Type": 2},
                {"ID": sp_id, "Type": 2},
                {"ID": "ServicePrincipal", "Type": 2},
                {"ID": app_name, "Type": 1},
                {"ID": app_id, "Type": 2},
            ],
            "TargetContextId": tenant,
        }
    )
    return rec
