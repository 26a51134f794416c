"""Builders of schema-shaped audit records for detector tests (shared by every detector's tests).

Records follow the Management Activity API schema and the live shapes described in
management-activity-api.md §8–§9: ``ErrorNumber`` as a string, ``ExtendedProperties`` /
``DeviceProperties`` as Name/Value lists, ``Actor`` with the object ID (Type 0) and the UPN (Type 5),
``CreationTime`` without a zone. Record IDs are deterministic so tests can assert whole alerts.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from shared.alert_model import Category, DetectorMeta, Finding, Severity, alert_id_for
from shared.detection.base import DetectionContext, Detector
from shared.detection.signals import mark_risky_signin
from shared.detection.testing import TEST_TENANT, StaticEnricher
from shared.enrich.access import classify_access
from shared.enrich.ipintel import IpInfo
from shared.records.event import Event

RECORD_NS = uuid.UUID("5d0c6f0e-8a47-4f55-9d3e-0b6a1c2e7f10")
BASE_TIME = datetime(2024, 5, 1, 8, 0, 0, tzinfo=UTC)
OFFICE_APP = "d3590ed6-52b3-4102-aeff-aad2292ab01c"
EXCHANGE_RESOURCE = "00000002-0000-0ff1-ce00-000000000000"
EDGE_UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36 Edg/124.0"

LOGON_ERRORS = {
    0: None,
    50126: "InvalidUserNameOrPassword",
    50053: "IdsLocked",
    50055: "InvalidPasswordExpiredPassword",
    50057: "UserDisabled",
    50074: "UserStrongAuthClientAuthNRequiredInterrupt",
    50076: "UserStrongAuthClientAuthNRequired",
    500121: "AuthenticationFailedDuringStrongAuthRequest",
    50158: "ExternalSecurityChallenge",
    53003: "BlockedByConditionalAccess",
    50140: "KmsiInterrupt",
}


def at(*, days: float = 0, hours: float = 0, minutes: float = 0, seconds: float = 0) -> str:
    """A zone-less CreationTime (the messy live form) offset from BASE_TIME."""
    t = BASE_TIME + timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    return t.strftime("%Y-%m-%dT%H:%M:%S")


def epoch(creation_time: str) -> float:
    """Epoch seconds of a zone-less CreationTime made by :func:`at`."""
    return datetime.fromisoformat(creation_time).replace(tzinfo=UTC).timestamp()


def oid_of(upn: str) -> str:
    """A stable Entra object ID for a test user."""
    return str(uuid.uuid5(RECORD_NS, "oid|" + upn.lower()))


def signin(
    upn: str = "alice@contoso.com",
    *,
    when: str | None = None,
    ip: str = "198.51.100.10",
    error: int = 0,
    app: str = OFFICE_APP,
    os: str | None = "Windows 10",
    browser: str | None = "Edge",
    user_agent: str = EDGE_UA,
    user_id: str | None = None,
    actor: bool = True,
    tenant: str = TEST_TENANT,
    seq: int = 0,
    request_type: str = "OAuth2:Authorize",
) -> dict[str, Any]:
    """A RecordType 15 sign-in: ``UserLoggedIn`` when ``error`` is 0, else ``UserLoginFailed``.

    ``user_id`` overrides ``UserId`` (e.g. "Not Available"); ``actor=False`` drops the Actor list
    (an unknown user: the record then has no user at all unless ``user_id`` names one).
    """
    when = when or at()
    ok = error == 0
    oid = oid_of(upn)
    rid = str(uuid.uuid5(RECORD_NS, f"{tenant}|{upn}|{when}|{ip}|{error}|{seq}|{app}"))
    ext = [
        {"Name": "ResultStatusDetail", "Value": "Success" if ok else "UserError"},
        {"Name": "UserAgent", "Value": user_agent},
        {"Name": "UserAuthenticationMethod", "Value": "1"},
        {"Name": "RequestType", "Value": request_type},
    ]
    dev: list[dict[str, str]] = []
    if os is not None:
        dev.append({"Name": "OS", "Value": os})
    if browser is not None:
        dev.append({"Name": "BrowserType", "Value": browser})
    dev += [
        {"Name": "IsCompliant", "Value": "False"},
        {"Name": "IsCompliantAndManaged", "Value": "False"},
        {"Name": "SessionId", "Value": str(uuid.uuid5(RECORD_NS, "session|" + upn + ip))},
    ]
    rec: dict[str, Any] = {
        "CreationTime": when,
        "Id": rid,
        "Operation": "UserLoggedIn" if ok else "UserLoginFailed",
        "OrganizationId": tenant,
        "RecordType": 15,
        "ResultStatus": "Success" if ok else "Failed",
        "UserKey": "10032001D6E1A2B3" if actor else "Not Available",
        "UserType": 0,
        "Version": 1,
        "Workload": "AzureActiveDirectory",
        "ClientIP": ip,
        "ObjectId": EXCHANGE_RESOURCE,
        "UserId": upn if user_id is None else user_id,
        "AzureActiveDirectoryEventType": 1,
        "ExtendedProperties": ext,
        "ModifiedProperties": [],
        "Actor": [{"ID": oid, "Type": 0}, {"ID": upn, "Type": 5}] if actor else [],
        "ActorContextId": tenant,
        "ActorIpAddress": ip,
        "InterSystemsId": str(uuid.uuid5(RECORD_NS, "isid|" + rid)),
        "IntraSystemId": str(uuid.uuid5(RECORD_NS, "intra|" + rid)),
        "SupportTicketId": "",
        "Target": [{"ID": EXCHANGE_RESOURCE, "Type": 0}],
        "TargetContextId": tenant,
        "ApplicationId": app,
        "DeviceProperties": dev,
        "ErrorNumber": str(error),
    }
    logon_error = LOGON_ERRORS.get(error)
    if logon_error:
        rec["LogonError"] = logon_error
    return rec


# Exchange, mailbox, directory and file records (shadow workflows, evasive access, rogue apps) -------

GRAPH_POWERSHELL_APP = "14d82eec-204b-4c2f-b7e8-296a70dab67e"
OUTLOOK_APP = "5d661950-3475-41cd-a2c3-d671a3162bc1"
SYSTEM_ACCOUNT = "NT AUTHORITY\\SYSTEM (Microsoft.Exchange.ServiceHost)"


def _rid(*parts: object) -> str:
    return str(uuid.uuid5(RECORD_NS, "|".join(str(p) for p in parts)))


def exchange_cmdlet(
    operation: str,
    parameters: list[dict[str, str]] | dict[str, str],
    upn: str = "alice@contoso.com",
    *,
    when: str | None = None,
    ip: str = "198.51.100.10",
    result: str = "True",
    object_id: str | None = None,
    params_as_string: bool = False,
    user_id: str | None = None,
    tenant: str = TEST_TENANT,
    seq: int = 0,
) -> dict[str, Any]:
    """A RecordType 1 Exchange admin record (``New-InboxRule``, ``Set-Mailbox``...).

    ``parameters`` as a dict becomes the Name/Value list; ``params_as_string`` serialises that list
    to a JSON string (the re-serialised form); ``ClientIP`` is the ``[ip]:port`` live form.
    """
    when = when or at()
    pairs = [{"Name": k, "Value": v} for k, v in parameters.items()] if isinstance(parameters, dict) else parameters
    alias = upn.split("@", 1)[0]
    name = next((p["Value"] for p in pairs if p["Name"].lower() in ("name", "identity")), "")
    rec: dict[str, Any] = {
        "CreationTime": when,
        "Id": _rid(tenant, operation, upn, when, seq, orjson.dumps(pairs).decode()),
        "Operation": operation,
        "OrganizationId": tenant,
        "RecordType": 1,
        "ResultStatus": result,
        "UserKey": "10032001D6E1A2B3",
        "UserType": 2,
        "Version": 1,
        "Workload": "Exchange",
        "ClientIP": f"[{ip}]:{50000 + seq}" if ":" in ip else f"{ip}:{50000 + seq}",
        "ObjectId": object_id if object_id is not None else f"{alias}\\{name}",
        "UserId": upn if user_id is None else user_id,
        "AppId": EXCHANGE_RESOURCE,
        "ClientAppId": "",
        "ExternalAccess": False,
        "OrganizationName": "contoso.onmicrosoft.com",
        "OriginatingServer": "SA1PR12MB7272 (15.20.7918.024)",
        "Parameters": orjson.dumps(pairs).decode() if params_as_string else pairs,
        "SessionId": _rid("session", upn),
    }
    return rec


def mailbox_record(
    operation: str,
    upn: str = "alice@contoso.com",
    *,
    when: str | None = None,
    ip: str = "198.51.100.10",
    app: str = OUTLOOK_APP,
    client_info: str = "Client=MSExchangeRPC",
    operation_properties: list[dict[str, str]] | None = None,
    items: int = 0,
    folder: str = "\\Inbox",
    access_type: str = "Bind",
    throttled: bool = False,
    tenant: str = TEST_TENANT,
    seq: int = 0,
    record_type: int | None = None,
) -> dict[str, Any]:
    """A mailbox-audit record: ``MailItemsAccessed`` (RecordType 50) or ``UpdateInboxRules`` (RecordType 2).

    For ``MailItemsAccessed`` ``items`` message ids are listed in one folder (a Bind) unless
    ``access_type`` is "Sync" (no item list); ``throttled`` sets ``IsThrottled``.
    """
    when = when or at()
    domain = upn.split("@", 1)[1]
    rid = _rid(tenant, operation, upn, when, seq, client_info, app)
    rec: dict[str, Any] = {
        "CreationTime": when,
        "Id": rid,
        "Operation": operation,
        "OrganizationId": tenant,
        "RecordType": record_type if record_type is not None else (50 if operation == "MailItemsAccessed" else 2),
        "ResultStatus": "Succeeded",
        "UserKey": "10032001D6E1A2B3",
        "UserType": 0,
        "Version": 1,
        "Workload": "Exchange",
        "UserId": upn,
        "AppId": app,
        "ClientAppId": "",
        "ClientIPAddress": ip,
        "ClientInfoString": client_info,
        "ExternalAccess": False,
        "InternalLogonType": 0,
        "LogonType": 0,
        "LogonUserSid": "S-1-5-21-1180699209-877415012-3182924384-4112",
        "MailboxGuid": _rid("mailbox", upn),
        "MailboxOwnerUPN": upn,
        "OrganizationName": "contoso.onmicrosoft.com",
        "OriginatingServer": "BN8PR12MB3570 (15.20.7918.024)",
        "SessionId": _rid("session", upn, ip),
    }
    if operation == "MailItemsAccessed":
        rec["OperationProperties"] = [
            {"Name": "MailAccessType", "Value": access_type},
            {"Name": "IsThrottled", "Value": "True" if throttled else "False"},
        ]
        rec["OperationCount"] = items if access_type == "Bind" else 1
        if access_type == "Bind":
            rec["Folders"] = [
                {
                    "FolderItems": [
                        {"InternetMessageId": f"<{_rid(rid, i)}@{domain}>", "SizeInBytes": 12000 + i}
                        for i in range(items)
                    ],
                    "Path": folder,
                }
            ]
        else:
            rec["Folders"] = [{"Path": folder}]
    if operation_properties is not None:
        rec["OperationProperties"] = operation_properties
    return rec


def directory_record(
    operation: str,
    actor_upn: str = "admin@contoso.com",
    *,
    when: str | None = None,
    modified: list[dict[str, str]] | None = None,
    target: list[dict[str, Any]] | None = None,
    object_id: str | None = None,
    result: str = "Success",
    extended: list[dict[str, str]] | None = None,
    actor: list[dict[str, Any]] | None = None,
    user_type: int = 0,
    tenant: str = TEST_TENANT,
    seq: int = 0,
) -> dict[str, Any]:
    """A RecordType 8 Entra directory change ("Consent to application.", "Add member to role."...)."""
    when = when or at()
    oid = oid_of(actor_upn)
    return {
        "CreationTime": when,
        "Id": _rid(tenant, operation, actor_upn, when, seq),
        "Operation": operation,
        "OrganizationId": tenant,
        "RecordType": 8,
        "ResultStatus": result,
        "UserKey": f"10032001D6E1A2B3@{actor_upn.split('@', 1)[-1]}",
        "UserType": user_type,
        "Version": 1,
        "Workload": "AzureActiveDirectory",
        "ObjectId": object_id if object_id is not None else "",
        "UserId": actor_upn,
        "AzureActiveDirectoryEventType": 1,
        "ExtendedProperties": extended
        if extended is not None
        else [
            {"Name": "additionalDetails", "Value": "{}"},
            {"Name": "extendedAuditEventCategory", "Value": "User"},
        ],
        "ModifiedProperties": modified or [],
        "Actor": actor
        if actor is not None
        else [
            {"ID": actor_upn, "Type": 5},
            {"ID": "10032001D6E1A2B3", "Type": 3},
            {"ID": f"User_{oid}", "Type": 2},
            {"ID": oid, "Type": 2},
            {"ID": "User", "Type": 2},
        ],
        "ActorContextId": tenant,
        "InterSystemsId": _rid("isid", operation, when, seq),
        "IntraSystemId": _rid("intra", operation, when, seq),
        "SupportTicketId": "",
        "Target": target or [],
        "TargetContextId": tenant,
    }


def consent_record(
    upn: str = "alice@contoso.com",
    *,
    app_id: str,
    app_name: str,
    scopes: str,
    when: str | None = None,
    admin: bool = False,
    all_principals: bool = False,
    seq: int = 0,
    tenant: str = TEST_TENANT,
    old_grants: str = "[]",
) -> dict[str, Any]:
    """A "Consent to application." record as Entra writes it (scope list in ConsentAction.Permissions)."""
    sp_id = _rid("sp", app_id)
    grant = (
        f"{old_grants} => [[Id: {_rid('grant', app_id, upn)[:22]}, ClientId: {sp_id}, PrincipalId: "
        f"{'' if all_principals else oid_of(upn)}, ResourceId: {_rid('graph-sp')}, "
        f"ConsentType: {'AllPrincipals' if all_principals else 'Principal'}, Scope:  {scopes}, "
        "CreatedDateTime: , LastModifiedDateTime ]]; "
    )
    return directory_record(
        "Consent to application.",
        upn,
        when=when,
        object_id=sp_id,
        seq=seq,
        tenant=tenant,
        extended=[
            {"Name": "additionalDetails", "Value": '{"User-Agent":"' + EDGE_UA + '","AppId":"' + app_id + '"}'},
            {"Name": "extendedAuditEventCategory", "Value": "ServicePrincipal"},
        ],
        modified=[
            {"Name": "ConsentContext.IsAdminConsent", "NewValue": str(admin), "OldValue": ""},
            {"Name": "ConsentContext.IsAppOnly", "NewValue": "False", "OldValue": ""},
            {"Name": "ConsentContext.OnBehalfOfAll", "NewValue": str(all_principals), "OldValue": ""},
            {"Name": "ConsentContext.Tags", "NewValue": "WindowsAzureActiveDirectoryIntegratedApp", "OldValue": ""},
            {"Name": "ConsentAction.Permissions", "NewValue": grant, "OldValue": ""},
            {"Name": "TargetId.ServicePrincipalNames", "NewValue": f"{app_id};https://app.example/", "OldValue": ""},
        ],
        target=[
            {"ID": f"ServicePrincipal_{sp_id}", "Type": 2},
            {"ID": sp_id, "Type": 2},
            {"ID": "ServicePrincipal", "Type": 2},
            {"ID": app_name, "Type": 1},
            {"ID": app_id, "Type": 2},
        ],
    )


def file_record(
    operation: str = "FileDownloaded",
    upn: str = "alice@contoso.com",
    *,
    when: str | None = None,
    ip: str = "198.51.100.10",
    file_name: str = "Report.docx",
    user_agent: str = EDGE_UA,
    seq: int = 0,
    tenant: str = TEST_TENANT,
) -> dict[str, Any]:
    """A RecordType 6 SharePoint/OneDrive file operation."""
    when = when or at()
    site = "https://contoso.sharepoint.com/sites/finance/"
    return {
        "CreationTime": when,
        "Id": _rid(tenant, operation, upn, when, seq, file_name),
        "Operation": operation,
        "OrganizationId": tenant,
        "RecordType": 6,
        "UserKey": "i:0h.f|membership|10032001d6e1a2b3@live.com",
        "UserType": 0,
        "Version": 1,
        "Workload": "SharePoint",
        "ClientIP": ip,
        "ObjectId": f"{site}Shared Documents/{file_name}",
        "UserId": upn,
        "CorrelationId": _rid("corr", when, seq),
        "EventSource": "SharePoint",
        "ItemType": "File",
        "ListId": _rid("list"),
        "ListItemUniqueId": _rid("item", file_name, seq),
        "Site": _rid("site"),
        "UserAgent": user_agent,
        "WebId": _rid("web"),
        "SourceFileExtension": file_name.rsplit(".", 1)[-1],
        "SiteUrl": site,
        "SourceFileName": file_name,
        "SourceRelativeUrl": "Shared Documents",
    }


# --- IP context for sign-in tests ---------------------------------------------------------------------


def ip_info(ip: str, **values: Any) -> IpInfo:
    """An ``IpInfo`` with every field unknown (None) except ``values`` (geo provider "dbip" by default)."""
    fields: dict[str, Any] = {name: None for name in IpInfo.__struct_fields__}
    fields.update(ip=ip, version=6 if ":" in ip else 4, tags=(), sources=())
    if values.get("latitude") is not None or values.get("country") is not None:
        fields["geo_provider"] = "dbip"
    fields.update(values)
    return IpInfo(**fields)


# Addresses (documentation and well-known ranges) with the facts a lookup would give.
HOME_DE = "198.51.100.10"  # the users' home broadband in Berlin
HOME_DE_2 = "198.51.100.11"
OFFICE_DE = "203.0.113.7"  # the office in Munich (a trusted range in some tests)
VPN_NL = "146.70.12.34"  # NordVPN on M247, Amsterdam
TOR_DE = "185.220.101.1"  # Tor exit
RESI_PROXY_US = "73.12.5.9"  # residential proxy on Comcast
PUBLIC_PROXY_BR = "177.54.144.10"
HOSTING_US = "159.89.10.20"  # a DigitalOcean droplet in New York
HOSTING_SG = "139.59.1.2"  # a DigitalOcean droplet in Singapore
AZURE_VPN = "20.50.1.1"  # the company's own VPN gateway on Azure compute (Amsterdam)
MS_SERVICE = "20.190.128.1"  # Entra ID service endpoint
ICLOUD_RELAY = "172.224.226.1"  # Apple iCloud Private Relay egress
MOBILE_HH = "80.187.2.2"  # Telekom mobile, placed in Hamburg
MOBILE_M = "80.187.99.3"  # Telekom mobile, placed in Munich minutes later
HOME_FR = "90.84.1.1"  # Orange, Paris
NY_US = "192.0.2.50"  # Comcast, New York
LONDON_GB = "81.2.69.142"  # BT, London
SPRAY_IP = "45.140.13.7"  # a VPS used for spraying (hosting, Russia)
SPRAY_ASN_IPS = tuple(f"45.140.14.{i}" for i in range(1, 13))  # one hosting ASN, many addresses
HOME_DE_V6 = "2001:db8:1:2::10"

SIGNIN_IPS: dict[str, IpInfo] = {
    HOME_DE: ip_info(
        HOME_DE, country="DE", city="Berlin", latitude=52.52, longitude=13.40, asn=3320, asn_org="Deutsche Telekom AG"
    ),
    HOME_DE_2: ip_info(
        HOME_DE_2, country="DE", city="Berlin", latitude=52.52, longitude=13.40, asn=3320, asn_org="Deutsche Telekom AG"
    ),
    HOME_DE_V6: ip_info(
        HOME_DE_V6,
        country="DE",
        city="Berlin",
        latitude=52.52,
        longitude=13.40,
        asn=3320,
        asn_org="Deutsche Telekom AG",
    ),
    OFFICE_DE: ip_info(
        OFFICE_DE, country="DE", city="Munich", latitude=48.14, longitude=11.58, asn=3209, asn_org="Vodafone GmbH"
    ),
    VPN_NL: ip_info(
        VPN_NL,
        country="NL",
        city="Amsterdam",
        latitude=52.37,
        longitude=4.90,
        asn=9009,
        asn_org="M247 Europe SRL",
        is_vpn=True,
        vpn_operator="NordVPN",
        is_hosting=True,
    ),
    TOR_DE: ip_info(
        TOR_DE,
        country="DE",
        city="Brandenburg",
        latitude=52.41,
        longitude=12.53,
        asn=60729,
        asn_org="Stiftung Erneuerbare Freiheit",
        is_tor=True,
        is_vpn=True,
        is_hosting=True,
    ),
    RESI_PROXY_US: ip_info(
        RESI_PROXY_US,
        country="US",
        city="Chicago",
        latitude=41.88,
        longitude=-87.63,
        asn=7922,
        asn_org="Comcast Cable Communications, LLC",
        is_residential_proxy=True,
    ),
    PUBLIC_PROXY_BR: ip_info(
        PUBLIC_PROXY_BR,
        country="BR",
        city="Sao Paulo",
        latitude=-23.55,
        longitude=-46.63,
        asn=262287,
        asn_org="Latitude.sh",
        is_proxy=True,
    ),
    HOSTING_US: ip_info(
        HOSTING_US,
        country="US",
        city="New York",
        latitude=40.71,
        longitude=-74.01,
        asn=14061,
        asn_org="DigitalOcean, LLC",
        is_hosting=True,
        cloud_provider="digitalocean",
    ),
    HOSTING_SG: ip_info(
        HOSTING_SG,
        country="SG",
        city="Singapore",
        latitude=1.29,
        longitude=103.85,
        asn=14061,
        asn_org="DigitalOcean, LLC",
        is_hosting=True,
        cloud_provider="digitalocean",
    ),
    AZURE_VPN: ip_info(
        AZURE_VPN,
        country="NL",
        city="Amsterdam",
        latitude=52.37,
        longitude=4.90,
        asn=8075,
        asn_org="Microsoft Corporation",
        is_hosting=True,
        cloud_provider="azure",
        cloud_service="AzureCloud",
    ),
    MS_SERVICE: ip_info(
        MS_SERVICE,
        country="US",
        city="Redmond",
        latitude=47.67,
        longitude=-122.12,
        asn=8075,
        asn_org="Microsoft Corporation",
        is_hosting=True,
        cloud_provider="azure",
        cloud_service="AzureActiveDirectory",
        is_microsoft_service=True,
    ),
    ICLOUD_RELAY: ip_info(
        ICLOUD_RELAY,
        country="DE",
        city="Frankfurt",
        latitude=50.11,
        longitude=8.68,
        asn=36183,
        asn_org="Akamai Technologies, Inc.",
        is_icloud_relay=True,
        is_hosting=True,
    ),
    MOBILE_HH: ip_info(
        MOBILE_HH,
        country="DE",
        city="Hamburg",
        latitude=53.55,
        longitude=9.99,
        asn=3320,
        asn_org="Deutsche Telekom AG",
        is_mobile=True,
    ),
    MOBILE_M: ip_info(
        MOBILE_M,
        country="DE",
        city="Munich",
        latitude=48.14,
        longitude=11.58,
        asn=3320,
        asn_org="Deutsche Telekom AG",
        is_mobile=True,
    ),
    HOME_FR: ip_info(
        HOME_FR, country="FR", city="Paris", latitude=48.86, longitude=2.35, asn=3215, asn_org="Orange S.A."
    ),
    NY_US: ip_info(
        NY_US,
        country="US",
        city="New York",
        latitude=40.71,
        longitude=-74.01,
        asn=7922,
        asn_org="Comcast Cable Communications, LLC",
    ),
    LONDON_GB: ip_info(
        LONDON_GB,
        country="GB",
        city="London",
        latitude=51.51,
        longitude=-0.13,
        asn=2856,
        asn_org="British Telecommunications PLC",
    ),
    SPRAY_IP: ip_info(
        SPRAY_IP,
        country="RU",
        city="Moscow",
        latitude=55.75,
        longitude=37.62,
        asn=204601,
        asn_org="Zomro B.V.",
        is_hosting=True,
    ),
    **{
        ip: ip_info(
            ip,
            country="RU",
            city="Moscow",
            latitude=55.75,
            longitude=37.62,
            asn=204602,
            asn_org="Spray Hosting LLC",
            is_hosting=True,
        )
        for ip in SPRAY_ASN_IPS
    },
}


def signin_enricher(extra: dict[str, IpInfo] | None = None) -> StaticEnricher:
    """The test enricher for sign-ins: SIGNIN_IPS (plus ``extra``) and the real access classifier."""
    return StaticEnricher({**SIGNIN_IPS, **(extra or {})}, classify=classify_access)


def history(
    upn: str = "alice@contoso.com",
    *,
    days: int = 15,
    ip: str = HOME_DE,
    start_day: float = 0,
    per_day: int = 1,
    **kw: Any,
) -> list[dict[str, Any]]:
    """Daily successful sign-ins from the same place: a user who has learned (15 days by default)."""
    out = []
    for d in range(days):
        for i in range(per_day):
            out.append(signin(upn, when=at(days=start_day + d, hours=i), ip=ip, **kw))
    return out


def expected_alert(
    detector: type[Detector],
    *,
    records: list[dict[str, Any]],
    severity: str,
    summary: str,
    dedup_key: str,
    context: dict[str, Any],
    user: str | None = None,
    user_key: str | bool | None = True,
    ip: str | bool | None = True,
    count: int = 1,
    first_seen: str | None = None,
    last_seen: str | None = None,
    tenant: str = TEST_TENANT,
) -> dict[str, Any]:
    """The whole ``Alert.to_dict()`` expected for ``records`` (the evidence, first one opening the alert).

    ``user``/``user_key``/``ip`` default to the first record's UPN, object ID and ClientIP; pass
    ``user_key=None`` (and ``user``/``ip``) for tenant-level alerts.
    """
    meta = detector.meta
    first = records[0]
    upn = next((str(a["ID"]) for a in first.get("Actor") or [] if a.get("Type") == 5), str(first["UserId"])).lower()
    ids = [r["Id"] for r in records]
    times = sorted(r["CreationTime"] for r in records)
    return {
        "alert_id": alert_id_for(tenant, meta.id, dedup_key, ids[0]),
        "detector": meta.id,
        "title": meta.title,
        "category": meta.category.value,
        "severity": severity,
        "tenant_id": tenant,
        "user": user if user is not None else upn,
        "user_key": oid_of(upn) if user_key is True else user_key,
        "first_seen": first_seen or times[0] + "Z",
        "last_seen": last_seen or times[-1] + "Z",
        "evidence_record_ids": ids,
        "mitre": list(meta.mitre),
        "summary": summary,
        "ip": records[-1]["ClientIP"] if ip is True else ip,
        "count": count,
        "context": context,
        "dedup_key": dedup_key,
        "runbook": meta.runbook,
    }


def signin_ctx(record: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """The ``signin_context`` part of a sign-in finding's context for ``record`` (plus ``extra``)."""
    info = SIGNIN_IPS.get(record["ClientIP"])
    return {
        "ip": record["ClientIP"],
        "country": info.country if info else None,
        "city": info.city if info else None,
        "asn": info.asn if info else None,
        "asn_org": info.asn_org if info else None,
        "geo_provider": info.geo_provider if info else None,
        "application_id": record["ApplicationId"],
        "user_agent": record["ExtendedProperties"][1]["Value"],
        "error_number": int(record["ErrorNumber"]),
        **extra,
    }


# Risky-session set-up for later-stage detectors ---------------------------------------------------


RISKY_IP = "185.220.101.33"
"""The test attacker's exit address: sign-ins from it are marked risky by `RiskySigninMarker`."""


class RiskySigninMarker(Detector):
    """Test stand-in for the sign-in detectors: marks sign-ins from ``RISKY_IP`` as risky ("vpn"), never alerts."""

    meta = DetectorMeta(
        id="test_risky_signin_marker",
        title="Test risky sign-in marker",
        description="Marks sign-ins from the test VPN address as risky.",
        category=Category.UNWANTED_LOGIN,
        severity=Severity.LOW,
        mitre=("T1078",),
        dedup_window=timedelta(hours=1),
        operations=frozenset({"userloggedin"}),
        runbook="Test only. Not registered. Never alerts.",
        reference="https://attack.mitre.org/techniques/T1078/",
    )

    def detect(self, event: Event, ctx: DetectionContext) -> Iterable[Finding]:
        if event.ip == RISKY_IP:
            mark_risky_signin(ctx, event, "vpn")
        return ()


def identity_enricher(extra: dict[str, IpInfo] | None = None) -> Any:
    """The deployed in-process enricher over SIGNIN_IPS (plus ``extra``): it also learns object id ↔ UPN
    from sign-ins, so a later Exchange record of the same user shares the sign-in's state key."""
    from shared.detection.testing import StaticIntel
    from shared.enrich.enricher import LocalEnricher

    return LocalEnricher(StaticIntel({**SIGNIN_IPS, **(extra or {})}), classify=classify_access)
