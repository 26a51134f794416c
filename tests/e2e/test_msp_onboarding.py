"""An MSP onboarding its customers against the deployed shape (#22 items 1-3, 5).

The app runs from the Bicep's settings (``ITDR_ADMIN_PRINCIPAL_AUTH=entra``, the consent key a Key Vault
reference) behind a stand-in of the Functions host's HTTP front (:class:`FunctionsHttpHost`: the real HTTP path
into the registered functions). The operator's CLI code (:class:`AdminApiClient`) signs in with a credential
substitute that returns a user token from the Entra stand-in, as ``InteractiveBrowserCredential`` would; the app
validates it against the stand-in's signing keys over HTTPS. The customer's admin is a browser (httpx) that
opens the consent link at the Entra stand-in, which answers as Entra does: a redirect to the app's
``onboarding/consent-callback``.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from azure.core.credentials import AccessToken

from shared.app import Services, configure
from shared.cli.admin_client import AdminApiClient
from shared.cli.tenants_import import TenantResolver, import_tenants, read_rows
from shared.ingest.consent import sign_state
from shared.platform.bus import InProcessBus, default_queue_options
from shared.platform.errors import PermissionError_
from shared.platform.settings import Settings
from shared.runtime.http_host import FunctionsHttpHost
from shared.runtime.local import LocalRuntime
from tests.e2e.test_deployed_shape import (  # noqa: F401 - the stack fixture
    CLIENT_ID,
    CONSENT_STATE_KEY,
    CUSTOMERS,
    HOST,
    PUBLISHER,
    Stack,
    stack,
)

SCOPE = f"api://{CLIENT_ID}/.default"
AAD = "Audit.AzureActiveDirectory"


class OperatorCredential:
    """The operator's sign-in, substituted: a user token from the Entra stand-in (what the interactive or
    device-code credential gets from Entra), for the admin API's scope only."""

    def __init__(self, deployed: Stack, *, roles: tuple[str, ...] = ("Admin",), partners: tuple[str, ...] = ()) -> None:
        self._stack, self._roles, self._partners = deployed, roles, partners
        self.scopes: list[str] = []

    def get_token(self, *scopes: str, **_: Any) -> AccessToken:
        self.scopes.extend(scopes)
        assert scopes == (SCOPE,)
        token = self._stack.entra.issue_user_token(
            PUBLISHER,
            audience=f"api://{CLIENT_ID}",
            upn="operator@msp.example",
            roles=self._roles,
            partners=self._partners,
        )
        return AccessToken(token, int(time.time()) + 3600)


@dataclass
class App:
    svc: Services
    runtime: LocalRuntime
    host: FunctionsHttpHost
    stack: Stack

    def admin(self, **credential: Any) -> AdminApiClient:
        return AdminApiClient(self.host.base_url, credential=OperatorCredential(self.stack, **credential), scope=SCOPE)

    def open_consent_link(self, url: str) -> httpx.Response:
        """The customer's admin opens the link: Entra (the stand-in) redirects to the app's callback, which the
        platform's front end (here the host stand-in) serves at https://{HOST}."""
        with httpx.Client(timeout=120.0) as browser:  # trusts the test CA through SSL_CERT_FILE
            answer = browser.get(url)
            assert answer.status_code == 302, answer.text
            location = answer.headers["location"]
            assert location.startswith(f"https://{HOST}/api/onboarding/consent-callback?")
            return browser.get(location.replace(f"https://{HOST}", self.host.base_url))


@pytest.fixture
def app(stack: Stack) -> Iterator[App]:  # noqa: F811 - the fixture imported above
    bus = InProcessBus(default_queue_options())
    svc = Services(Settings.from_env(), bus=bus)
    assert svc.substituted == frozenset({"bus"})
    configure(svc)
    with FunctionsHttpHost() as host:
        yield App(svc, LocalRuntime(bus), host, stack)
    svc.close()


def sign_in(tenant: str, when: Any) -> dict[str, Any]:
    return {
        "CreationTime": when.strftime("%Y-%m-%dT%H:%M:%S"),
        "Id": str(uuid.uuid4()),
        "Operation": "UserLoggedIn",
        "OrganizationId": tenant,
        "RecordType": 15,
        "ResultStatus": "Success",
        "UserKey": "u1",
        "UserType": 0,
        "Workload": "AzureActiveDirectory",
        "ClientIP": "198.51.100.7",
        "UserId": "ada@customer.example",
        "ExtendedProperties": [{"Name": "UserAgent", "Value": "Mozilla/5.0"}],
        "ApplicationId": "00000002-0000-0ff1-ce00-000000000000",
    }


def _consent_to_proof_of_life(app: App, customer: str, name: str) -> dict[str, float]:
    """One customer from consent link to proof of life; the seconds of each part."""
    app.stack.graph.add_tenant(customer)
    app.stack.graph.add_user(customer, user_principal_name=f"ada@{name.lower()}.example", usage_location="FR")
    admin = app.admin()
    started = time.perf_counter()
    link = admin.consent_link({"partner_id": "p1", "name": name, "tenant": customer})
    assert link["url"].startswith(f"{app.stack.entra.authority}/{customer}/v2.0/adminconsent?client_id={CLIENT_ID}")
    app.stack.entra.plan_consent(customer, "accept")
    page = app.open_consent_link(link["url"])
    consented = time.perf_counter()
    assert page.status_code == 200, page.text
    assert "<h1>Connected</h1>" in page.text and "text/html" in page.headers["content-type"]
    # the partner sees it at once
    (record,) = [r for r in admin.consent_records() if r["nonce"] == link["nonce"]]
    assert (record["status"], record["tenant_id"], record["partner_id"]) == ("onboarded", customer, "p1")
    (tenant,) = [t for t in admin.list_tenants() if t["tenant_id"] == customer]
    assert (tenant["name"], tenant["state"]) == (name, "waiting_for_first_content")
    assert app.stack.api.subscription(customer, AAD)["webhook"]["status"] == "enabled"

    # the first audit content: listed by the poller, processed, and the partner gets the proof of life
    created = datetime.now(UTC) - timedelta(minutes=2)  # published minutes after its events
    records = [sign_in(customer, created - timedelta(minutes=5))]
    app.stack.api.add_content(customer, AAD, records, created=created, notify=False)
    app.runtime.tick("poll_content")
    app.runtime.run_until_idle()
    done = time.perf_counter()
    lives = [p.json() for p in app.stack.partner.effective_deliveries if p.json().get("kind") == "proof_of_life"]
    assert customer in [b["tenant_id"] for b in lives]
    assert admin.status(customer)["state"] == "active"
    return {
        "consent_to_onboarded_s": round(consented - started, 3),
        "consent_to_proof_of_life_s": round(done - started, 3),
    }


def test_consent_link_to_first_content_and_proof_of_life_is_measured(app: App) -> None:
    cold = _consent_to_proof_of_life(app, CUSTOMERS[0], "Fabrikam")  # a fresh worker: first imports, first clients
    warm = _consent_to_proof_of_life(app, CUSTOMERS[1], "Contoso")  # the next customer on the same worker
    figures = {"first_on_a_fresh_worker": cold, "next_customer": warm, "published_s": 90}
    print(f"\nMEASURED onboarding: {orjson.dumps(figures).decode()}")
    out = os.environ.get("ITDR_MEASURE_OUT")
    if out:
        Path(out).write_bytes(orjson.dumps(figures))


def _link_and_open(app: App, customer: str, decision: str, **body: Any) -> tuple[httpx.Response, dict[str, Any]]:
    admin = app.admin()
    link = admin.consent_link({"partner_id": "p1", **body})
    app.stack.entra.plan_consent(customer, decision)
    page = app.open_consent_link(link["url"])
    (record,) = [r for r in admin.consent_records() if r["nonce"] == link["nonce"]]
    return page, record


@pytest.mark.parametrize(
    ("decision", "condition", "outcome", "advice"),
    [
        ("decline", None, "consent_denied", "choose Accept"),
        ("not_admin", None, "insufficient_role", "Global Administrator or Privileged Role Administrator"),
        ("accept", "audit_off", "audit_log_off", "Start recording user and admin activity"),
        ("accept", "no_exchange", "no_exchange_licence", "Exchange Online"),
    ],
)
def test_each_consent_failure_is_named_with_what_to_do(
    app: App, decision: str, condition: str | None, outcome: str, advice: str
) -> None:
    customer = CUSTOMERS[1]
    if condition:
        app.stack.api.set_tenant_condition(customer, condition)
    page, record = _link_and_open(app, customer, decision)
    assert (page.status_code, record["status"]) == (200, outcome)
    assert advice in record["action"] and advice in page.text.replace("&gt;", ">")
    assert f"<code>{outcome}</code>" in page.text


def test_a_consent_state_is_unforgeable_single_use_and_expires(app: App) -> None:
    customer = CUSTOMERS[2]
    admin = app.admin()
    link = admin.consent_link({"partner_id": "p1", "tenant": customer})
    app.stack.entra.plan_consent(customer, "accept")
    assert app.open_consent_link(link["url"]).status_code == 200
    callback = f"{app.host.base_url}/api/onboarding/consent-callback"
    state = dict(httpx.URL(link["url"]).params)["state"]
    again = httpx.get(callback, params={"admin_consent": "True", "tenant": customer, "state": state})
    assert (again.status_code, "<code>state_used</code>" in again.text) == (409, True)
    partner, nonce, expires, _mac = state.rsplit(".", 3)
    for forged in (
        f"p2.{nonce}.{expires}.{_mac}",  # moved to another partner
        f"{partner}.{nonce}.{int(expires) + 3600}.{_mac}",  # lifetime extended
        sign_state(b"not the key of this deployment 0123456789", partner, nonce, int(expires)),
        "",
    ):
        r = httpx.get(callback, params={"admin_consent": "True", "tenant": customer, "state": forged})
        assert (r.status_code, "<code>state_invalid</code>" in r.text) == (400, True)
    expired = sign_state(CONSENT_STATE_KEY.encode(), "p1", "n0nce", int(time.time()) - 1)
    r = httpx.get(callback, params={"admin_consent": "True", "tenant": customer, "state": expired})
    assert (r.status_code, "<code>state_expired</code>" in r.text) == (400, True)
    # a link made for one tenant does not onboard another (Entra lets only that tenant's admin sign in; the app
    # checks it again: an answer naming another tenant with that link's state is refused)
    link = admin.consent_link({"partner_id": "p1", "tenant": CUSTOMERS[4]})
    state = dict(httpx.URL(link["url"]).params)["state"]
    r = httpx.get(callback, params={"admin_consent": "True", "tenant": CUSTOMERS[3], "state": state})
    assert (r.status_code, "<code>tenant_mismatch</code>" in r.text) == (400, True)
    assert app.svc.tenants.get(CUSTOMERS[3]) is None


def test_the_operator_changes_the_deployment_through_the_api_with_their_own_sign_in(app: App, tmp_path: Path) -> None:
    csv = tmp_path / "customers.csv"
    csv.write_text(
        "tenant,name,partner,cloud,internal_domains,remediation\n"
        f"{CUSTOMERS[5]},Northwind,p1,commercial,northwind.example,\n"
        'customer6.example,Tailspin,p1,,tailspin.example;tailspin.test,"{""default_mode"": ""approval""}"\n'
        f"{CUSTOMERS[7]},Woodgrove,p2,,,\n",
        encoding="utf-8",
    )
    for t in CUSTOMERS[5:8]:  # consented beforehand (a consent link, tested above, or GDAP)
        app.stack.entra.grant_consent(CLIENT_ID, t)
        app.stack.graph.add_tenant(t)
    resolve = TenantResolver(authority=app.stack.entra.authority)
    rows = read_rows(csv.read_text(encoding="utf-8"))

    admin = app.admin()
    first = import_tenants(admin, rows, resolve=resolve, workers=3)
    assert [r.detail for r in first] == ["", "", ""]
    assert [(r.tenant_id, r.result, r.state) for r in first] == [
        (CUSTOMERS[5], "created", "waiting_for_first_content"),
        (CUSTOMERS[6], "created", "waiting_for_first_content"),
        (CUSTOMERS[7], "created", "waiting_for_first_content"),
    ]
    record = app.svc.tenants.get(CUSTOMERS[6])
    assert record is not None and record.detection["internal_domains"] == ["tailspin.example", "tailspin.test"]
    assert record.remediation == {"default_mode": "approval"}
    starts = app.stack.api.stats.by_operation.get("start_subscription", 0)
    again = import_tenants(admin, rows, resolve=resolve, workers=3)
    assert [r.result for r in again] == ["unchanged"] * 3  # re-running changes nothing already right
    assert app.stack.api.stats.by_operation.get("start_subscription", 0) == starts

    # a partner-scoped operator cannot touch another partner's tenant; a wrong or missing token is refused
    scoped = app.admin(roles=("PartnerAdmin",), partners=("p1",))
    renamed = read_rows(csv.read_text(encoding="utf-8").replace("Woodgrove", "Woodgrove Bank"))
    results = import_tenants(scoped, renamed, resolve=resolve, workers=1)
    assert [r.result for r in results] == ["unchanged", "unchanged", "failed"]
    assert "403 forbidden" in results[2].detail
    assert {t["partner_id"] for t in scoped.list_tenants()} == {"p1"}
    with pytest.raises(PermissionError_):
        app.admin(roles=("Reader",)).list_tenants()
    assert httpx.get(f"{app.host.base_url}/api/admin/tenants").status_code == 401
    foreign = app.stack.entra.issue_user_token(
        PUBLISHER, audience="https://graph.microsoft.com", upn="x@msp.example", roles=["Admin"]
    )
    r = httpx.get(f"{app.host.base_url}/api/admin/tenants", headers={"Authorization": f"Bearer {foreign}"})
    assert r.status_code == 401
    other_tenant = app.stack.entra.issue_user_token(
        CUSTOMERS[0], audience=f"api://{CLIENT_ID}", upn="x@c.example", roles=["Admin"]
    )
    r = httpx.get(f"{app.host.base_url}/api/admin/tenants", headers={"Authorization": f"Bearer {other_tenant}"})
    assert r.status_code == 401  # only the partner's own tenant's users administer the deployment

    # policies and status through the API
    out = admin.policy(CUSTOMERS[5], {"triage": {"publish_severities": ["critical"]}})
    assert out["tenant_id"] == CUSTOMERS[5]
    assert [f["subscription"] for f in admin.status(CUSTOMERS[5])["feeds"]] == ["enabled"] * 4


def test_two_hundred_tenants_in_one_import_respecting_per_tenant_throttling(app: App, tmp_path: Path) -> None:
    """Measured; the count comes from ITDR_IMPORT_TENANTS (default 20: the suite stays quick; README reports 200)."""
    count = int(os.environ.get("ITDR_IMPORT_TENANTS", "20"))
    tenants = [str(uuid.uuid5(uuid.NAMESPACE_URL, f"itdr-bulk-{i}")) for i in range(count)]
    app.stack.entra.add_tenants(*tenants)
    for t in tenants:
        app.stack.entra.grant_consent(CLIENT_ID, t)  # consented (the consent flow is tested above)
        app.stack.graph.add_tenant(t)
    csv = tmp_path / "bulk.csv"
    csv.write_text("tenant,name,partner\n" + "".join(f"{t},Customer {i},p{i % 4}\n" for i, t in enumerate(tenants)))
    rows = read_rows(csv.read_text())
    started = time.perf_counter()
    results = import_tenants(
        app.admin(), rows, resolve=TenantResolver(), workers=int(os.environ.get("ITDR_IMPORT_WORKERS", "8"))
    )
    seconds = time.perf_counter() - started
    assert [r.result for r in results] == ["created"] * count, [r.detail for r in results if r.result != "created"]
    assert {r.state for r in results} == {"waiting_for_first_content"}
    api = app.stack.api
    assert api.throttled == 0 and max(api.peak_per_minute.values()) <= 2000
    figures = {
        "tenants": count,
        "seconds": round(seconds, 2),
        "per_tenant_s": round(seconds / count, 3),
        "slowest_tenant_s": round(max(r.seconds for r in results), 3),
        "management_api_requests": sum(api.stats.by_operation.values()),
        "peak_requests_per_tenant_minute": max(api.peak_per_minute.values()),
        "throttled": api.throttled,
    }
    print(f"\nMEASURED import: {orjson.dumps(figures).decode()}")
    rerun = import_tenants(app.admin(), rows, resolve=TenantResolver(), workers=8)
    assert {r.result for r in rerun} == {"unchanged"}


def test_approvals_go_through_the_api_as_the_signed_in_operator(app: App) -> None:
    from datetime import UTC, datetime

    from shared.remediation.ledger import ActionKind, LedgerEntry, RemediationRequest, RemediationState

    customer = CUSTOMERS[3]
    app.stack.entra.grant_consent(CLIENT_ID, customer)
    app.stack.graph.add_tenant(customer)
    admin = app.admin()
    admin.onboard({"tenant_id": customer, "name": "Litware", "partner_id": "p2"})

    def pending(user: str) -> LedgerEntry:
        req = RemediationRequest(
            tenant_id=customer,
            incident_id="inc-1",
            action=ActionKind.ISOLATE_IDENTITY,
            target={"user": user},
            requested_by="itdr",
            approved=False,
        )
        entry = LedgerEntry.new(req, state=RemediationState.PENDING_APPROVAL, at=datetime.now(UTC))
        created: LedgerEntry = app.svc.remediation_ledger.create_entry(entry)
        return created

    a, b = pending("a@litware.example"), pending("b@litware.example")
    approved = admin.decide(customer, a.key[:12], "approve")
    assert (approved["key"], approved["state"], approved["by"]) == (a.key, "pending", "operator@msp.example")
    rejected = admin.decide(customer, b.key, "reject", reason="the CFO is travelling")
    assert (rejected["state"], rejected["by"]) == ("rejected", "operator@msp.example")
    assert "the CFO is travelling" in orjson.dumps(rejected).decode()
    row = app.svc.remediation_ledger.get_entry(customer, a.key)
    assert row is not None and row.approved_by == "operator@msp.example"
    # another partner's operator neither sees nor decides the tenant's actions
    with pytest.raises(Exception, match="404 unknown_tenant"):
        app.admin(roles=("PartnerAdmin",), partners=("p1",)).decide(customer, b.key, "approve")
    with pytest.raises(Exception, match="404 unknown_remediation"):
        admin.decide(customer, "rm-nope", "approve")
