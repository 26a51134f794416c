"""The partner's cross-tenant view: one indicator in several tenants of a partner, never across partners."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from shared.alert_model import Category, Severity
from shared.alerts.crosstenant import (
    IndicatorKind,
    InMemoryCrossTenantCorrelator,
    Sighting,
    TableCrossTenantCorrelator,
    indicators_of,
    partner_incident_id_for,
)
from shared.alerts.incidents import TableIncidentBook
from shared.platform import names

T0 = 1_764_000_000.0
H = 3600.0
A = "9f6a3d1e-0c4b-4e8a-9d57-2b1f0c3e4a11"
B = "2c4e6a80-1b3d-4f5e-8a7c-9d0e1f2a3b4c"
C = "7d8e9f00-aaaa-4bbb-8ccc-dddddddddddd"
D = "11111111-2222-4333-8444-555555555555"
PARTNERS = {A: "msp-1", B: "msp-1", C: "msp-1", D: "msp-2"}
ATTACKER = "203.0.113.50"


@pytest.fixture(params=["table", "memory"])
def corr(request: pytest.FixtureRequest, clock: Any) -> Any:
    if request.param == "memory":
        return InMemoryCrossTenantCorrelator(PARTNERS, now=clock)
    return TableCrossTenantCorrelator.from_storage(request.getfixturevalue("storage"), PARTNERS, now=clock)


def signin(make_alert: Any, tenant: str, hours: float = 0, **kw: Any) -> Any:
    kw.setdefault("ip", ATTACKER)
    kw.setdefault("user", f"user@{tenant[:4]}.example")
    kw.setdefault("evidence", (f"rec-{tenant[:4]}-{hours}",))
    return make_alert(Category.UNWANTED_LOGIN, tenant=tenant, at=T0 + hours * H, **kw)


def test_the_same_ip_in_two_tenants_of_one_partner_raises_one_incident(corr: Any, make_alert: Any) -> None:
    a = signin(make_alert, A, 0, severity=Severity.MEDIUM)
    b = signin(make_alert, B, 5, severity=Severity.LOW)
    assert corr.add_alerts([a]) == []  # one tenant: kept, not raised
    (inc,) = corr.add_alerts([b])
    first = Sighting.from_alert(a)
    assert inc.incident_id == partner_incident_id_for("msp-1", IndicatorKind.IP, ATTACKER, first)
    assert inc.to_dict() == {
        "incident_id": inc.incident_id,
        "partner_id": "msp-1",
        "indicator_kind": "ip",
        "indicator": ATTACKER,
        "title": f"IP address {ATTACKER} seen in alerts of 2 tenants",
        "severity": "high",
        "raised": True,
        "tenant_ids": sorted([A, B]),
        "first_seen": "2025-11-24T16:00:00Z",
        "last_seen": "2025-11-24T21:01:00Z",
        "revision": 2,
        "updated_at": "2025-11-24T17:00:00Z",
        "alerts": [
            {
                "tenant_id": A,
                "alert_id": a.alert_id,
                "detector": "test_unwanted_login",
                "title": a.title,
                "user": a.user,
                "severity": "medium",
                "first_seen": "2025-11-24T16:00:00Z",
                "last_seen": "2025-11-24T16:01:00Z",
            },
            {
                "tenant_id": B,
                "alert_id": b.alert_id,
                "detector": "test_unwanted_login",
                "title": b.title,
                "user": b.user,
                "severity": "low",
                "first_seen": "2025-11-24T21:00:00Z",
                "last_seen": "2025-11-24T21:01:00Z",
            },
        ],
    }
    assert [i.incident_id for i in corr.list_partner_incidents("msp-1")] == [inc.incident_id]
    assert corr.get_partner_incident("msp-1", inc.incident_id).to_dict() == inc.to_dict()
    assert corr.add_alerts([a, b]) == []  # a replay changes nothing
    assert corr.get_partner_incident("msp-1", inc.incident_id).revision == 2


def test_never_across_partners(corr: Any, make_alert: Any) -> None:
    assert corr.add_alerts([signin(make_alert, A), signin(make_alert, D, 1)]) == []
    assert corr.list_partner_incidents("msp-1") == []
    assert corr.list_partner_incidents("msp-2") == []
    assert [len(i.tenant_ids) for i in corr.list_partner_incidents("msp-1", include_unraised=True)] == [1]
    assert [len(i.tenant_ids) for i in corr.list_partner_incidents("msp-2", include_unraised=True)] == [1]


def test_a_third_tenant_raises_the_severity(corr: Any, make_alert: Any) -> None:
    low = {"severity": Severity.LOW}
    (two,) = corr.add_alerts([signin(make_alert, A, 0, **low), signin(make_alert, B, 1, **low)])
    assert (two.severity, two.tenant_ids) == (Severity.MEDIUM, sorted([A, B]))
    (three,) = corr.add_alerts([signin(make_alert, C, 2, **low)])
    assert (three.incident_id, three.severity, three.revision, len(three.tenant_ids)) == (
        two.incident_id,
        Severity.HIGH,
        two.revision + 1,
        3,
    )


@pytest.mark.parametrize(
    ("alert_kw", "expected"),
    [
        pytest.param({"ip": "10.1.2.3"}, [], id="private-ip"),
        pytest.param({"ip": "192.168.1.1"}, [], id="rfc1918"),
        pytest.param({"ip": "fe80::1"}, [], id="link-local"),
        pytest.param({"ip": "127.0.0.1"}, [], id="loopback"),
        pytest.param({"ip": "[2001:DB8::7]:443"}, [(IndicatorKind.IP, "2001:db8::7")], id="ipv6-normalised"),
        pytest.param(
            {"ip": None, "context": {"ip_info": {"asn": 64500}}}, [(IndicatorKind.ASN, "64500")], id="asn-from-ip-info"
        ),
        pytest.param(
            {"ip": None, "context": {"client_id": "ABCD-1234"}}, [(IndicatorKind.APP, "abcd-1234")], id="app-id"
        ),
    ],
)
def test_indicators_of_alerts(make_alert: Any, alert_kw: dict[str, Any], expected: list[Any]) -> None:
    assert indicators_of(make_alert(Category.ROGUE_APP, **alert_kw)) == expected


@pytest.mark.parametrize(
    ("category", "app_id"),
    [
        pytest.param(
            Category.UNWANTED_LOGIN, "0f1e2d3c-0000-4000-8000-00000000beef", id="sign-in-client-is-not-an-indicator"
        ),
        pytest.param(Category.ROGUE_APP, "d3590ed6-52b3-4102-aeff-aad2292ab01c", id="microsoft-office-first-party"),
    ],
)
def test_client_apps_of_sign_ins_and_first_party_apps_do_not_link_tenants(
    make_alert: Any, category: Category, app_id: str
) -> None:
    assert indicators_of(make_alert(category, ip=None, context={"app_id": app_id})) == []


def test_asn_and_app_indicators_link_tenants(corr: Any, make_alert: Any) -> None:
    app = {"ip": None, "context": {"app_id": "0f1e2d3c-0000-4000-8000-00000000beef", "asn": 64500}}
    changed = corr.add_alerts([make_alert(Category.ROGUE_APP, tenant=t, **app) for t in (A, B)])
    assert sorted((i.kind.value, i.indicator) for i in changed) == [
        ("app", "0f1e2d3c-0000-4000-8000-00000000beef"),
        ("asn", "64500"),
    ]


def test_ignored_asns_kinds_and_tenants_without_partner(clock: Any, make_alert: Any) -> None:
    corr = InMemoryCrossTenantCorrelator(
        lambda t: PARTNERS.get(t), kinds=[IndicatorKind.ASN], ignore_asns=[8075], now=clock
    )
    microsoft = {"context": {"asn": 8075}}
    other = {"context": {"asn": 64500}}
    stranger = "99999999-0000-4000-8000-000000000000"
    alerts = [signin(make_alert, t, i, **kw) for i, (t, kw) in enumerate([(A, microsoft), (B, microsoft)])]
    alerts += [signin(make_alert, A, 3, **other), signin(make_alert, stranger, 4, **other)]
    assert corr.add_alerts(alerts) == []  # the IPs are not looked at, 8075 is ignored, the stranger has no partner
    assert [(i.indicator, i.tenant_ids) for i in corr.list_partner_incidents("msp-1", include_unraised=True)] == [
        ("64500", [A])
    ]


def test_outside_the_window_is_another_incident(clock: Any, make_alert: Any) -> None:
    corr = InMemoryCrossTenantCorrelator(PARTNERS, window=timedelta(days=1), now=clock)
    (first,) = corr.add_alerts([signin(make_alert, A, 0), signin(make_alert, B, 1)])
    assert corr.add_alerts([signin(make_alert, C, 72)]) == []
    later = corr.list_partner_incidents("msp-1", include_unraised=True)
    assert [(i.incident_id == first.incident_id, i.tenant_ids) for i in later] == [(True, sorted([A, B])), (False, [C])]


def test_partner_incidents_live_in_their_own_partition(storage: Any, make_alert: Any, clock: Any) -> None:
    corr = TableCrossTenantCorrelator.from_storage(storage, PARTNERS, now=clock)
    book = TableIncidentBook.from_storage(storage, now=clock)
    alerts = [signin(make_alert, A, 0), signin(make_alert, B, 1)]
    book.add_alerts(alerts)
    (inc,) = corr.add_alerts(alerts)
    rows = list(storage.table(names.TABLE_INCIDENTS).list_entities())
    assert sorted((r["PartitionKey"], r["kind"]) for r in rows) == sorted(
        [(A, "user"), (B, "user"), ("partner:msp-1", "partner")]
    )
    assert [i.tenant_id for i in book.list_incidents(A)] == [A]
    assert book.list_incidents("partner:msp-1") == []
    assert inc.scope == "partner:msp-1"
