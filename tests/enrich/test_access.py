"""Access-method classification on realistic sign-in, mailbox and file records."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from shared.enrich.access import (
    AccessMethod,
    access_of,
    classify_access,
    parse_client_info,
    parse_user_agent,
)
from shared.records.event import Event, parse_raw_record

TENANT = "9f6a3d1e-0c4b-4e8a-9d57-2b1f0c3e4a11"
OID = "c3f3b8b0-1111-2222-3333-444455556666"
EDGE_WIN = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/129.0.0.0 Safari/537.36 Edg/129.0.0.0"
)
SAFARI_IOS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Mobile/15E148 Safari/604.1"
)
CHROME_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/129.0.0.0 Safari/537.36"
)
FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:131.0) Gecko/20100101 Firefox/131.0"
GRAPHRUNNER = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/70.0.3538.102 "
    "Safari/537.36 Edge/18.19042"
)
TEAMFILTRATION = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Teams/1.3.00.24755 "
    "Chrome/69.0.3497.128 Electron/4.2.12 Safari/537.36"
)
TEAMS_NEW = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
    "Safari/537.36 Edg/120.0.0.0 Teams/24215.1007.3082.1590/49"
)
PS51 = "Mozilla/5.0 (Windows NT; Windows NT 10.0; en-US) WindowsPowerShell/5.1.19041.4648"
PS7 = "Mozilla/5.0 (Windows NT 10.0; Microsoft Windows 10.0.22631; en-US) PowerShell/7.4.5"
OUTLOOK_DESKTOP = "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17928; Pro)"

AZ_CLI = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
AZ_PS = "1950a258-227b-4e31-a9cf-717495945fc2"
GRAPH_PS = "14d82eec-204b-4c2f-b7e8-296a70dab67e"
GRAPH_EXPLORER = "de8bc8b5-d9f9-48b1-a8ad-b748da725064"
AAD_PS = "1b730954-1685-4b74-9bfd-dac224a7b894"
EXO_PS = "fb78d390-0c51-40cd-8e17-fdbfab77341b"
OFFICE = "d3590ed6-52b3-4102-aeff-aad2292ab01c"
OFFICE_HOME = "4765445b-32c6-49b0-83e6-1d93765276ca"
OUTLOOK_MOBILE = "27922004-5251-4030-b22d-91ecd9a37ea4"
TEAMS = "1fec8e78-bce4-4aaf-ab1b-5451cc387264"
AUTH_BROKER = "29d9ed98-a469-4536-ade2-f981bc1d605e"
UNKNOWN_APP = "7e5f1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b"


def sts(
    app: str, ua: str, *, request_type: str = "OAuth2:Authorize", extra: list[Any] | None = None, **over: Any
) -> Event:
    rec: dict[str, Any] = {
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
        "ObjectId": "00000002-0000-0ff1-ce00-000000000000",
        "UserId": "megan.bowen@contoso.com",
        "Actor": [{"ID": OID, "Type": 0}, {"ID": "megan.bowen@contoso.com", "Type": 5}],
        "ApplicationId": app,
        "ExtendedProperties": [
            {"Name": "ResultStatusDetail", "Value": "Success"},
            {"Name": "UserAgent", "Value": ua},
            {"Name": "RequestType", "Value": request_type},
            *(extra or []),
        ],
        "DeviceProperties": [{"Name": "IsCompliant", "Value": "False"}],
        "ErrorNumber": "0",
    }
    rec.update(over)
    ev = parse_raw_record(orjson.dumps(rec))
    assert isinstance(ev, Event)
    return ev


def mia(client_info: str, app: str | None) -> Event:
    rec = {
        "CreationTime": "2026-11-24T14:20:00",
        "Id": "0b0f8e8e-6f7e-4d55-9e53-0c7b0f3e2d99",
        "Operation": "MailItemsAccessed",
        "OrganizationId": TENANT,
        "RecordType": 50,
        "ResultStatus": "Succeeded",
        "UserKey": "10032001D6E1A2B3",
        "UserType": 0,
        "Workload": "Exchange",
        "UserId": "megan.bowen@contoso.com",
        "AppId": app,
        "ClientAppId": "",
        "ClientIPAddress": "203.0.113.7",
        "ClientInfoString": client_info,
        "MailboxOwnerUPN": "megan.bowen@contoso.com",
        "OperationProperties": [{"Name": "MailAccessType", "Value": "Bind"}, {"Name": "IsThrottled", "Value": "False"}],
        "OperationCount": 1,
    }
    ev = parse_raw_record(orjson.dumps(rec))
    assert isinstance(ev, Event)
    return ev


def am(**kw: Any) -> AccessMethod:
    base: dict[str, Any] = {
        "client_app_id": None,
        "client_app_name": None,
        "client_kind": "unknown",
        "os": None,
        "browser": None,
        "user_agent_family": None,
        "tool": None,
        "protocol": "modern",
        "is_public_client_tool": False,
        "via": "unknown",
    }
    base.update(kw)
    return AccessMethod(**base)


SIGNIN_CASES = [
    pytest.param(
        sts(OFFICE_HOME, EDGE_WIN, request_type="Login:login"),
        am(
            client_app_id=OFFICE_HOME,
            client_app_name="OfficeHome",
            client_kind="browser",
            os="Windows",
            browser="Edge",
            user_agent_family="Edge",
        ),
        id="browser-office-home-edge-windows",
    ),
    pytest.param(
        sts(OFFICE_HOME, SAFARI_IOS),
        am(
            client_app_id=OFFICE_HOME,
            client_app_name="OfficeHome",
            client_kind="browser",
            os="iOS",
            browser="Safari",
            user_agent_family="Safari",
        ),
        id="browser-safari-ios",
    ),
    pytest.param(
        sts(UNKNOWN_APP, FIREFOX_LINUX),
        am(
            client_app_id=UNKNOWN_APP, client_kind="browser", os="Linux", browser="Firefox", user_agent_family="Firefox"
        ),
        id="third-party-web-app-in-firefox",
    ),
    pytest.param(
        sts(OFFICE, OUTLOOK_DESKTOP, request_type="OAuth2:Token"),
        am(
            client_app_id=OFFICE,
            client_app_name="Microsoft Office",
            client_kind="office",
            os="Windows",
            user_agent_family="Outlook",
        ),
        id="outlook-desktop-via-office-client-id",
    ),
    pytest.param(
        sts(OUTLOOK_MOBILE, "Outlook-iOS/2.0"),
        am(
            client_app_id=OUTLOOK_MOBILE,
            client_app_name="Outlook Mobile",
            client_kind="outlook",
            os="iOS",
            user_agent_family="Outlook",
        ),
        id="outlook-mobile",
    ),
    pytest.param(
        sts(TEAMS, TEAMS_NEW),
        am(
            client_app_id=TEAMS,
            client_app_name="Microsoft Teams",
            client_kind="teams",
            os="Windows",
            user_agent_family="Teams",
        ),
        id="new-teams-is-teams-not-teamfiltration",
    ),
    pytest.param(
        sts(AZ_CLI, "python-requests/2.31.0", request_type="OAuth2:Token"),
        am(
            client_app_id=AZ_CLI,
            client_app_name="Microsoft Azure CLI",
            client_kind="azure_cli",
            user_agent_family="python-requests",
            is_public_client_tool=True,
        ),
        id="azure-cli-keeps-its-kind-with-python-requests",
    ),
    pytest.param(
        sts(AZ_PS, PS51, request_type="OAuth2:Token"),
        am(
            client_app_id=AZ_PS,
            client_app_name="Microsoft Azure PowerShell",
            client_kind="azure_powershell",
            os="Windows",
            user_agent_family="PowerShell",
            is_public_client_tool=True,
        ),
        id="azure-powershell",
    ),
    pytest.param(
        sts(GRAPH_PS, PS7, request_type="OAuth2:Token"),
        am(
            client_app_id=GRAPH_PS,
            client_app_name="Microsoft Graph Command Line Tools",
            client_kind="graph_powershell",
            os="Windows",
            user_agent_family="PowerShell",
            is_public_client_tool=True,
        ),
        id="graph-powershell",
    ),
    pytest.param(
        sts(GRAPH_EXPLORER, EDGE_WIN),
        am(
            client_app_id=GRAPH_EXPLORER,
            client_app_name="Graph Explorer",
            client_kind="graph_explorer",
            os="Windows",
            browser="Edge",
            user_agent_family="Edge",
            is_public_client_tool=True,
        ),
        id="graph-explorer-in-a-browser-is-still-a-tool",
    ),
    pytest.param(
        sts(AAD_PS, ""),
        am(
            client_app_id=AAD_PS,
            client_app_name="Azure Active Directory PowerShell",
            client_kind="aad_powershell",
            is_public_client_tool=True,
        ),
        id="aad-powershell-no-ua",
    ),
    pytest.param(
        sts(EXO_PS, PS51),
        am(
            client_app_id=EXO_PS,
            client_app_name="Microsoft Exchange REST API Based Powershell",
            client_kind="sdk",
            os="Windows",
            user_agent_family="PowerShell",
            is_public_client_tool=True,
        ),
        id="exchange-online-powershell",
    ),
    pytest.param(
        sts(OFFICE, GRAPHRUNNER),
        am(
            client_app_id=OFFICE,
            client_app_name="Microsoft Office",
            client_kind="attack_tool",
            os="Windows",
            user_agent_family="GraphRunner",
            tool="GraphRunner",
            is_public_client_tool=True,
        ),
        id="graphrunner-default-forged-edge18",
    ),
    pytest.param(
        sts(TEAMS, TEAMFILTRATION),
        am(
            client_app_id=TEAMS,
            client_app_name="Microsoft Teams",
            client_kind="attack_tool",
            os="Windows",
            user_agent_family="TeamFiltration",
            tool="TeamFiltration",
            is_public_client_tool=True,
        ),
        id="teamfiltration-teams-1.3-electron-4",
    ),
    pytest.param(
        sts(AZ_CLI, "azurehound/v2.1.7"),
        am(
            client_app_id=AZ_CLI,
            client_app_name="Microsoft Azure CLI",
            client_kind="attack_tool",
            user_agent_family="AzureHound",
            tool="AzureHound",
            is_public_client_tool=True,
        ),
        id="azurehound",
    ),
    pytest.param(
        sts(UNKNOWN_APP, "roadrecon/1.5 Python/3.11 aiohttp/3.9.1"),
        am(
            client_app_id=UNKNOWN_APP,
            client_kind="attack_tool",
            user_agent_family="ROADtools",
            tool="ROADtools",
            is_public_client_tool=True,
        ),
        id="roadrecon",
    ),
    pytest.param(
        sts(UNKNOWN_APP, "axios/1.6.8"),
        am(client_app_id=UNKNOWN_APP, client_kind="script", user_agent_family="axios", is_public_client_tool=True),
        id="axios-script",
    ),
    pytest.param(
        sts(UNKNOWN_APP, "Go-http-client/2.0"),
        am(
            client_app_id=UNKNOWN_APP,
            client_kind="script",
            user_agent_family="Go-http-client",
            is_public_client_tool=True,
        ),
        id="go-http-client",
    ),
    pytest.param(
        sts(UNKNOWN_APP, "curl/8.4.0"),
        am(client_app_id=UNKNOWN_APP, client_kind="script", user_agent_family="curl", is_public_client_tool=True),
        id="curl",
    ),
    pytest.param(
        sts(OFFICE, "BAV2ROPC", request_type="OAuth2:Token"),
        am(
            client_app_id=OFFICE,
            client_app_name="Microsoft Office",
            client_kind="office",
            user_agent_family="BAV2ROPC",
            protocol="ropc",
        ),
        id="ropc-with-office-id",
    ),
    pytest.param(
        sts(EXCHANGE := "00000002-0000-0ff1-ce00-000000000000", "BAV2ROPC", request_type="OAuth2:Token"),
        am(
            client_app_id=EXCHANGE,
            client_app_name="Office 365 Exchange Online",
            client_kind="legacy",
            user_agent_family="BAV2ROPC",
            protocol="ropc",
        ),
        id="ropc-basic-auth-proxy-is-legacy",
    ),
    pytest.param(
        sts(AUTH_BROKER, EDGE_WIN, request_type="Cmsi:Cmsi"),
        am(
            client_app_id=AUTH_BROKER,
            client_app_name="Microsoft Authentication Broker",
            client_kind="mobile_app",
            os="Windows",
            browser="Edge",
            user_agent_family="Edge",
            protocol="device_code",
        ),
        id="device-code-cmsi",
    ),
    pytest.param(
        sts(AZ_CLI, "", request_type="OAuth2:Token", extra=[{"Name": "AuthenticationProtocol", "Value": "deviceCode"}]),
        am(
            client_app_id=AZ_CLI,
            client_app_name="Microsoft Azure CLI",
            client_kind="azure_cli",
            protocol="device_code",
            is_public_client_tool=True,
        ),
        id="device-code-protocol-field",
    ),
    pytest.param(
        sts(UNKNOWN_APP, "", request_type="", extra=[{"Name": "ClientAppUsed", "Value": "IMAP4"}]),
        am(client_app_id=UNKNOWN_APP, client_kind="legacy", protocol="legacy"),
        id="legacy-client-app-used",
    ),
    pytest.param(
        sts(
            OFFICE,
            EDGE_WIN,
            DeviceProperties=[{"Name": "OS", "Value": "Windows10"}, {"Name": "BrowserType", "Value": "Edge"}],
            ObjectId="00000003-0000-0000-c000-000000000000",
        ),
        am(
            client_app_id=OFFICE,
            client_app_name="Microsoft Office",
            client_kind="office",
            os="Windows10",
            browser="Edge",
            user_agent_family="Edge",
            via="graph",
        ),
        id="device-properties-and-graph-resource",
    ),
]


@pytest.mark.parametrize(("event", "expected"), SIGNIN_CASES)
def test_sign_in_access_method(event: Event, expected: AccessMethod) -> None:
    assert classify_access(event) == expected


MAILBOX_CASES = [
    pytest.param(
        "Client=REST;Client=RESTSystem;;",
        GRAPH_PS,
        am(
            client_app_id=GRAPH_PS,
            client_app_name="Microsoft Graph Command Line Tools",
            client_kind="graph_powershell",
            is_public_client_tool=True,
            via="rest",
        ),
        id="graph-powershell-over-rest",
    ),
    pytest.param(
        "Client=REST;;",
        UNKNOWN_APP,
        am(client_app_id=UNKNOWN_APP, via="rest"),
        id="unseen-app-over-rest",
    ),
    pytest.param(
        "Client=OWA;Action=ViaProxy",
        "9199bf20-a13f-4107-85dc-02114787ef48",
        am(
            client_app_id="9199bf20-a13f-4107-85dc-02114787ef48",
            client_app_name="One Outlook Web",
            client_kind="browser",
            via="owa",
        ),
        id="owa",
    ),
    pytest.param(
        "Client=MSExchangeRPC",
        "5d661950-3475-41cd-a2c3-d671a3162bc1",
        am(
            client_app_id="5d661950-3475-41cd-a2c3-d671a3162bc1",
            client_app_name="Microsoft Outlook",
            client_kind="outlook",
            via="outlook",
        ),
        id="outlook-desktop-rpc",
    ),
    pytest.param(
        "Client=WebServices;python-requests/2.31.0;",
        None,
        am(client_kind="script", user_agent_family="python-requests", is_public_client_tool=True, via="ews"),
        id="ews-with-python-requests",
    ),
    pytest.param(
        "Client=WebServices;Mozilla/5.0 (Windows NT 10.0; Win64; x64) azurehound/v2.1.7;",
        None,
        am(
            client_kind="attack_tool",
            os="Windows",
            user_agent_family="AzureHound",
            tool="AzureHound",
            is_public_client_tool=True,
            via="ews",
        ),
        id="ews-with-tool-ua",
    ),
    pytest.param(
        "Client=Exchange ActiveSync",
        None,
        am(protocol="unknown", via="activesync"),
        id="activesync",
    ),
    pytest.param(
        "Client=POP3/IMAP4;Protocol=IMAP4",
        None,
        am(client_kind="legacy", protocol="legacy", via="imap"),
        id="imap",
    ),
    pytest.param(
        "Client=POP3/IMAP4;Protocol=POP3",
        None,
        am(client_kind="legacy", protocol="legacy", via="pop"),
        id="pop",
    ),
]


@pytest.mark.parametrize(("client_info", "app", "expected"), MAILBOX_CASES)
def test_mailbox_access_method(client_info: str, app: str | None, expected: AccessMethod) -> None:
    assert classify_access(mia(client_info, app)) == expected


@pytest.mark.parametrize(
    ("ua", "family", "kind"),
    [
        (PS51, "PowerShell", "script"),
        (PS7, "PowerShell", "script"),
        ("python-requests/2.32.3", "python-requests", "script"),
        ("Python/3.11 aiohttp/3.9.5", "aiohttp", "script"),
        ("fasthttp", "fasthttp", "script"),
        ("PostmanRuntime/7.39.0", "PostmanRuntime", "script"),
        (CHROME_MAC, "Chrome", "browser"),
        ("Mozilla/5.0 (Windows NT 10.0; WOW64; Trident/7.0; rv:11.0) like Gecko", "Internet Explorer", "browser"),
        ("", None, None),
        ("SomethingUnheardOf/1.0", None, None),
    ],
)
def test_user_agent_families(ua: str, family: str | None, kind: str | None) -> None:
    info = parse_user_agent(ua)
    assert (info.family, info.kind) == (family, kind)


def test_client_info_keeps_the_embedded_user_agent() -> None:
    got = parse_client_info(
        "Client=WebServices;Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.4266; Pro);"
    )
    assert (got.via, got.user_agent) == (
        "ews",
        "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.4266; Pro)",
    )


def test_unknown_app_and_no_user_agent_is_unknown_not_guessed() -> None:
    got = classify_access(sts(UNKNOWN_APP, "", request_type=""))
    assert got == am(client_app_id=UNKNOWN_APP, protocol="unknown")


def test_access_of_prefers_the_enriched_value() -> None:
    ev = sts(AZ_CLI, "python-requests/2.31.0")
    assert access_of(ev).client_kind == "azure_cli"
    ev.access = am(client_kind="browser")
    assert access_of(ev) == am(client_kind="browser")


def test_upper_case_app_id_is_normalised() -> None:
    got = classify_access(sts(GRAPH_PS.upper(), PS7))
    assert (got.client_app_id, got.client_kind) == (GRAPH_PS, "graph_powershell")
