"""The deployed shape, end to end: the Function App exactly as Azure runs it, against local stand-ins.

The process environment is the app settings of infra/modules/function-app.bicep (deployment parameters
filled in, Key Vault references resolved to test values as the platform resolves them) plus only the
documented development overrides: Azurite's connection string, the Management Activity API and Graph base
URLs, the login authority and the partner stand-in's host. The real azure-identity certificate credential
signs in over HTTPS to an Entra stand-in (a CA made at run time, trusted through the process's CA-bundle
settings; verification stays on), which checks the client assertion; the Management Activity API and Graph
stand-ins accept only the tokens it issued, for the right tenant and audience; the partner endpoint is HTTPS.

``function_app`` is imported as the Python worker imports it and its registered functions are called with
trigger objects shaped as the host passes them. The one substitution is the Service Bus transport (no broker
runs here): the services are built by the same constructor production calls, with the in-process bus.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.functions as func
import orjson
import pytest

from shared.app import Services, configure
from shared.emulators.entra import AppRegistration, EntraStandIn, InvalidAccessToken
from shared.emulators.graph import GraphEmulator
from shared.emulators.management_api import ManagementApiEmulator
from shared.emulators.partner import PartnerEndpoint
from shared.emulators.tls import ClientCertificate, TestCA
from shared.platform import names
from shared.platform.azurite import Azurite
from shared.platform.bus import InProcessBus, default_queue_options
from shared.platform.settings import Settings, setting_names
from shared.remediation.ledger import RemediationState
from shared.runtime.local import LocalRuntime, registered_functions
from tests.e2e.deployed import bicep_app_settings

TENANT = "5b0c9f2e-7d41-4c36-a0e8-3f6d2c1b9a77"
PUBLISHER = "d5c1f7a4-2f7e-4c3b-9a51-6c1e2b3d4f5a"
CLIENT_ID = "3c9e1b5a-8f47-4d2c-b6a1-9e0f7d3c2b18"
MEGAN_ID = "6f2a9c41-1b7e-4d3a-8c55-0e9b7a6d4f21"
MEGAN = "megan@contoso.com"
ATTACKER_IP = "146.70.133.30"
ADMIN_KEY = "e2e-admin-key-not-a-secret"
HOST = "func-itdr-e2e.azurewebsites.net"
VAULT = "https://kv-itdr-e2e.vault.azure.net/"
MANAGE = "https://manage.office.com"
GRAPH = "https://graph.microsoft.com"
NOW = datetime.now(UTC).replace(microsecond=0)
CONSENT_STATE_KEY = "e2e-consent-state-key-not-a-secret-0123456789"
CUSTOMERS = tuple(str(uuid.uuid5(uuid.NAMESPACE_URL, f"itdr-e2e-customer-{i}")) for i in range(8))
"""Customer tenants known to Entra (no app consent yet) for the MSP onboarding tests."""
DOMAINS = {f"customer{i}.example": t for i, t in enumerate(CUSTOMERS)}

# the deployment's parameters of infra/modules/function-app.bicep, as main.bicep passes them
PARAMS = {
    "identityClientId": "a1b2c3d4-0000-4000-8000-00000000e2e1",
    "serviceBusFullyQualifiedNamespace": "sb-itdr-e2e.servicebus.windows.net",
    "keyVaultUri": VAULT,
    "partnerEndpointSecretUri": f"{VAULT}secrets/partner-endpoint",
    "appClientId": CLIENT_ID,
    "publisherTenantId": PUBLISHER,
    "certificateName": "management-api",
    "partnerFormat": "itdr",
    "adminKeySha256": hashlib.sha256(ADMIN_KEY.encode()).hexdigest(),
    "adminPrincipalAuth": "entra",
    "adminApiAudience": f"api://{CLIENT_ID}",
    "consentStateKeySecretName": "consent-state-key",
    "intelFeedUrls": "",
    "ipDataDir": "",
    "maxmindCityDb": "",
    "maxmindAsnDb": "",
    "maxmindAnonymousDb": "",
    "spurFeedPaths": "",
    "spurTokenSecretName": "",
    "recordsPerBatch": "2000",
    "tenantShards": "1",
    "pollSchedule": "0 */5 * * * *",
    "feedHealthSchedule": "0 */30 * * * *",
    "intelRefreshSchedule": "0 15 * * * *",
    "weeklyReportSchedule": "0 0 7 * * 1",
    "signinPollSchedule": "0 */10 * * * *",
    "webhookRoute": "o365/webhook",
}


@dataclass
class Stack:
    """The running stand-ins and the app's process environment."""

    env: dict[str, str]
    api: ManagementApiEmulator
    graph: GraphEmulator
    partner: PartnerEndpoint
    entra: EntraStandIn
    webhook_calls: list[int]
    app_thumbprint: str
    ca: TestCA


def verifier(entra: EntraStandIn, audience: str) -> Any:
    def tenant_of(token: str) -> str | None:
        try:
            return entra.verify_access_token(token, audience=audience).tenant_id
        except InvalidAccessToken:
            return None

    return tenant_of


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    calls: list[int] = []

    def webhook_sender(url: str, headers: Mapping[str, str], body: bytes) -> int:
        """The platform's front end: a POST to the app's webhook URL reaches the registered o365_webhook."""
        if url != f"https://{HOST}/api/o365/webhook":
            return 0
        req = func.HttpRequest(method="POST", url=url, headers=dict(headers), params={}, route_params={}, body=body)
        status = registered_functions()["o365_webhook"].get_user_function()(req).status_code
        calls.append(status)
        return int(status)

    with (
        TestCA.create() as ca,
        Azurite() as azurite,
    ):
        server = ca.issue_server(hostnames=["localhost"], ips=["127.0.0.1"])
        app_cert: ClientCertificate = ca.issue_client_certificate("CN=m365-itdr")
        registration = AppRegistration.with_certificate(CLIENT_ID, app_cert, tenants=[TENANT])
        with (
            EntraStandIn(
                tls=server, tenants=[TENANT, PUBLISHER, *CUSTOMERS], apps=[registration], domains=DOMAINS
            ) as entra,
            ManagementApiEmulator(
                webhook_sender=webhook_sender,
                token_tenant=verifier(entra, MANAGE),
                tenant_rate_limit=2000,  # REF "API throttling": 2,000 requests per minute per tenant
            ) as api,
            GraphEmulator(seed=7, token_tenant=verifier(entra, GRAPH)) as graph,
            PartnerEndpoint(tls=server) as partner,
        ):
            vault = {
                f"{VAULT}secrets/management-api/": app_cert.pfx_base64,
                f"{VAULT}secrets/partner-endpoint": partner.url,
                f"{VAULT}secrets/consent-state-key/": CONSENT_STATE_KEY,
            }
            resources = {
                "storage.name": "stitdre2e",
                "appInsights.properties.ConnectionString": "InstrumentationKey=00000000-0000-0000-0000-000000000000",
                "site.properties.defaultHostName": HOST,
            }
            env = bicep_app_settings(PARAMS, resources, vault)
            env.update(  # the documented development overrides, and nothing else
                {
                    "ITDR_STORAGE_CONNECTION_STRING": azurite.connection_string,
                    "ITDR_MANAGEMENT_API_BASE_URL": api.base_url,
                    "ITDR_GRAPH_BASE_URL": graph.base_url,
                    "ITDR_LOGIN_AUTHORITY": entra.authority,
                    "ITDR_PARTNER_ALLOWED_HOSTS": "127.0.0.1",
                }
            )
            for name in setting_names():
                monkeypatch.delenv(name, raising=False)
            for name, value in env.items():
                monkeypatch.setenv(name, value)
            for name, value in ca.trust_environment().items():  # trust the test CA, verification on
                monkeypatch.setenv(name, value)
            graph.add_tenant(TENANT)
            graph.add_user(TENANT, user_principal_name=MEGAN, id=MEGAN_ID, usage_location="US")
            yield Stack(env, api, graph, partner, entra, calls, app_cert.thumbprint, ca)
    configure(None)


def call(name: str, *args: Any) -> Any:
    return registered_functions()[name].get_user_function()(*args)


def sign_in(record_id: str, when: datetime) -> dict[str, Any]:
    """A UserLoggedIn record as the Management Activity API serves it (Audit.AzureActiveDirectory)."""
    return {
        "CreationTime": when.strftime("%Y-%m-%dT%H:%M:%S"),
        "Id": record_id,
        "Operation": "UserLoggedIn",
        "OrganizationId": TENANT,
        "RecordType": 15,
        "ResultStatus": "Success",
        "UserKey": MEGAN_ID,
        "UserType": 0,
        "Workload": "AzureActiveDirectory",
        "ClientIP": ATTACKER_IP,
        "ObjectId": "00000002-0000-0ff1-ce00-000000000000",
        "UserId": MEGAN,
        "AzureActiveDirectoryEventType": 1,
        "ExtendedProperties": [
            {"Name": "ResultStatusDetail", "Value": "Success"},
            {"Name": "UserAgent", "Value": "Mozilla/5.0 (Windows NT 10.0; Win64; x64)"},
            {"Name": "RequestType", "Value": "OAuth2:Token"},
        ],
        "ApplicationId": "00000002-0000-0ff1-ce00-000000000000",
        "ErrorNumber": "0",
    }


def inbox_rule(record_id: str, when: datetime) -> dict[str, Any]:
    """A New-InboxRule record (Audit.Exchange) that forwards invoices outside and hides them."""
    return {
        "CreationTime": when.strftime("%Y-%m-%dT%H:%M:%S"),
        "Id": record_id,
        "Operation": "New-InboxRule",
        "OrganizationId": TENANT,
        "RecordType": 1,
        "ResultStatus": "True",
        "UserKey": MEGAN_ID,
        "UserType": 0,
        "Workload": "Exchange",
        "ClientIP": f"{ATTACKER_IP}:51234",
        "ObjectId": f"contoso.onmicrosoft.com/Megan\\{record_id}",
        "UserId": MEGAN,
        "Parameters": [
            {"Name": "Name", "Value": "."},
            {"Name": "SubjectOrBodyContainsWords", "Value": "invoice;payment;wire"},
            {"Name": "ForwardTo", "Value": "megan.finance@gmail.com"},
            {"Name": "MarkAsRead", "Value": "True"},
            {"Name": "MoveToFolder", "Value": "RSS Feeds"},
            {"Name": "StopProcessingRules", "Value": "True"},
        ],
    }


def test_the_deployed_app_ingests_detects_delivers_and_remediates(stack: Stack) -> None:
    # production builds the services from the settings alone; the Service Bus transport is the one substitute
    bus = InProcessBus(default_queue_options())
    svc = Services(Settings.from_env(), bus=bus)
    assert svc.substituted == frozenset({"bus"})
    configure(svc)
    runtime = LocalRuntime(bus)

    # 1. onboarding through the admin function: subscriptions with the webhook, identities from Graph
    body = orjson.dumps({"tenant_id": TENANT, "name": "Contoso", "detection": {"internal_domains": ["contoso.com"]}})
    resp = runtime.http(
        "admin_tenants",
        method="POST",
        url=f"https://{HOST}/api/admin/tenants",
        headers={"x-itdr-admin-key": ADMIN_KEY, "content-type": "application/json"},
        body=body,
    )
    status = orjson.loads(resp.get_body())
    assert resp.status_code == 200, status
    assert [(f["content_type"], f["subscription"], f["webhook"]) for f in status["feeds"]] == [
        (ct, "enabled", "enabled")
        for ct in ("Audit.AzureActiveDirectory", "Audit.Exchange", "Audit.SharePoint", "Audit.General")
    ]
    assert status["identity"]["seeded"] is True
    assert stack.webhook_calls[:4] == [200, 200, 200, 200]  # the validation handshake of each webhook
    # the app signed in as itself with its certificate, once per resource (tokens are cached)
    assert sorted({(r.tenant, r.client_id, r.scope, r.status) for r in stack.entra.token_requests}) == [
        (TENANT, CLIENT_ID, f"{GRAPH}/.default", 200),
        (TENANT, CLIENT_ID, f"{MANAGE}/.default", 200),
    ]

    # 2. content arrives: a notification for the Exchange blob, the poller lists the AAD one
    stack.graph.add_inbox_rule(
        TENANT,
        MEGAN_ID,
        display_name=".",
        conditions={"bodyOrSubjectContains": ["invoice", "payment", "wire"]},
        actions={
            "forwardTo": [{"emailAddress": {"address": "megan.finance@gmail.com"}}],
            "moveToFolder": "AAMkRssFeeds",
            "markAsRead": True,
            "stopProcessingRules": True,
        },
    )
    t0 = NOW - timedelta(minutes=30)
    created = t0 + timedelta(minutes=10)  # a blob is published minutes after its events
    stack.api.add_content(
        TENANT, "Audit.AzureActiveDirectory", [sign_in(str(uuid.uuid4()), t0)], created=created, notify=False
    )
    stack.api.add_content(
        TENANT, "Audit.Exchange", [inbox_rule(str(uuid.uuid4()), t0 + timedelta(minutes=4))], created=created
    )
    assert stack.webhook_calls[-1] == 200  # the content notification was accepted
    runtime.tick("poll_content")
    runtime.run_until_idle()

    # the feed-health timer checks the same subscriptions through the same production-built client
    runtime.tick("feed_health")
    health = svc.storage.table(names.TABLE_FEED_HEALTH).list_entities()
    rows = {r["RowKey"]: r for r in health if r["RowKey"].startswith("Audit.")}
    assert {ct: (r["subscription"], r["webhook"]) for ct, r in rows.items()} == {
        ct: ("enabled", "enabled")
        for ct in ("Audit.AzureActiveDirectory", "Audit.Exchange", "Audit.SharePoint", "Audit.General")
    }

    # 3. detected, delivered to the partner over HTTPS; under the default policy the critical takeover is
    #    contained at once (no approval): the identity isolated and the rule removed through Graph
    alerts = [s.alert for s in svc.alert_store.list_alerts(TENANT)]
    rule_alerts = [a for a in alerts if a.detector == "exchange_suspicious_inbox_rule" and a.user == MEGAN]
    assert [a.severity.value for a in rule_alerts] == ["critical"]
    posted = [p.json() for p in stack.partner.effective_deliveries if p.json().get("kind") != "proof_of_life"]
    assert any(b["tenant_id"] == TENANT and b["severity"] == "critical" for b in posted), posted
    rows = svc.remediation_ledger.list_entries(TENANT)
    assert [(e.action.value, e.approved_by) for e in rows if e.state is RemediationState.SUCCEEDED] == [
        (e.action.value, None) for e in rows
    ], rows
    states = {e.action.value: e.state for e in svc.remediation_ledger.list_entries(TENANT)}
    assert states == {"remove_inbox_rule": RemediationState.SUCCEEDED, "isolate_identity": RemediationState.SUCCEEDED}
    assert [r["displayName"] for r in stack.graph.state.inbox_rules(TENANT, MEGAN_ID)] == []  # gone from the mailbox
    user = stack.graph.state.user(TENANT, MEGAN_ID)
    assert user is not None and user["accountEnabled"] is False  # isolated
    assert sorted((a.detector, a.severity.value) for a in alerts) == [
        ("exchange_suspicious_inbox_rule", "critical"),
        # 146.70.133.30 is in 146.70.128.0/18 of the shipped X4BNet VPN list (M247, AS9009): a VPN sign-in from a
        # country new to Megan is HIGH; signin_hosting_provider leaves anonymisers to signin_anonymizer
        ("signin_anonymizer", "high"),
        ("signin_geo_allowlist", "medium"),  # a sign-in from GB; Megan's usageLocation (seeded from Graph) is US
    ]

    (incident,) = svc.incident_book.list_incidents(TENANT)
    assert (incident.severity.value, incident.revision >= 2) == ("critical", True)
    assert sorted(r.state for r in incident.remediation) == ["succeeded", "succeeded"]

    # every token was issued by the Entra stand-in to this app, signed with its certificate, for this tenant
    assert {(r.tenant, r.client_id, r.thumbprint, r.status) for r in stack.entra.token_requests} == {
        (TENANT, CLIENT_ID, stack.app_thumbprint, 200)
    }
    svc.close()


def test_an_injected_client_factory_is_not_how_production_gets_its_clients(stack: Stack) -> None:
    """Built from settings alone, every ingest path gets a real Management Activity API client for the tenant."""
    svc = Services(Settings.from_env(), bus=InProcessBus(default_queue_options()))
    client = svc.management_client(TENANT)
    assert client.list_subscriptions() == []  # signed in with the certificate; the emulator checked the token
    assert [(r.tenant, r.scope) for r in stack.entra.token_requests] == [(TENANT, f"{MANAGE}/.default")]
    svc.close()
