"""A service principal signing in from a network it has not used before (Entra service principal sign-in logs).

Applications sign in with their own credentials (client secret, certificate, federated token) from where they
run: a few fixed networks, usually cloud providers. A stolen app credential is used from the attacker's network.
Per service principal (keyed by its object id) the networks (ASN) and countries of its successful sign-ins are
learned for `LEARN_S`; afterwards a sign-in from an ASN it has never used alerts:

* MEDIUM; HIGH when the network is an anonymiser, or the country is also new for the service principal.

Not alerted: the learning period, networks already used (kept `NETWORK_TTL_S`, at most `MAX_NETWORKS`), Microsoft's
own service addresses (managed identities and first-party services sign in from them), the tenant's trusted
ranges, addresses without intelligence, and failed sign-ins.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from shared.alert_model import Category, DetectorMeta, Finding, Need, Severity
from shared.detection.base import DetectionContext, Detector
from shared.detection.geo import anonymizer_kind
from shared.detection.signin_log import context
from shared.enrich.ipintel import IpInfo
from shared.records.event import Event

DAY_S = 86400.0
LEARN_S = 7 * DAY_S
NETWORK_TTL_S = 90 * DAY_S
MAX_NETWORKS = 16
MAX_COUNTRIES = 8


class SigninSpNewNetwork(Detector):
    meta = DetectorMeta(
        id="signin_sp_new_network",
        title="Service principal signed in from a new network",
        description=(
            "A service principal (application or managed identity) signed in with its own credentials from a network "
            "(ASN) it had not used in its learned history: a stolen client secret or certificate used from elsewhere."
        ),
        category=Category.ROGUE_APP,
        severity=Severity.MEDIUM,
        mitre=("T1078.004", "T1528"),
        dedup_window=timedelta(hours=24),
        operations=frozenset({"serviceprincipalloggedin"}),
        needs=(Need.SIGNIN_LOG, Need.IP_CONTEXT, Need.USER_HISTORY, Need.TENANT_CONFIG),
        runbook=(
            "1. Identify the application (service principal id and name in the alert) and its owner; ask where it "
            "runs. 2. If the network is not theirs: remove the credential used (the sign-in log names its key id), "
            "add a new one, and review what the app did with its permissions (Graph activity, mail, files). "
            "3. Restrict the app with workload identity Conditional Access (locations) where licensed."
        ),
        reference="https://learn.microsoft.com/en-us/entra/identity/monitoring-health/concept-service-principal-sign-ins",
        false_positives=("an app moved to another cloud region or provider", "a CI runner on a new hosted network"),
    )

    def detect(self, event: Event, ctx: DetectionContext) -> Iterable[Finding]:
        detail = event.signin
        if detail is None or event.user_key is None or (event.error_number or 0) != 0:
            return ()
        info: IpInfo | None = event.ip_info
        if info is None or info.is_microsoft_service or ctx.tenant.is_trusted_ip(event.ip) or not info.asn:
            return ()
        asn = str(info.asn)
        country = info.country.upper() if info.country else None
        sec = ctx.state(event, self.meta.id)
        first = sec.get("fs")
        first_seen = float(first) if isinstance(first, (int, float)) else event.time
        sec["fs"] = int(min(first_seen, event.time))
        nets: dict[str, Any] = sec.setdefault("n", {})
        countries: dict[str, Any] = sec.setdefault("c", {})
        known_net = isinstance(nets.get(asn), (int, float)) and event.time - float(nets[asn]) <= NETWORK_TTL_S
        known_country = country is None or (
            isinstance(countries.get(country), (int, float)) and event.time - float(countries[country]) <= NETWORK_TTL_S
        )
        learned = event.time - first_seen >= LEARN_S
        nets[asn] = int(event.time)
        if country is not None:
            countries[country] = int(event.time)
        _trim(nets, MAX_NETWORKS, event.time)
        _trim(countries, MAX_COUNTRIES, event.time)
        if known_net or not learned:
            return ()
        anon = anonymizer_kind(info)
        severity = Severity.HIGH if anon is not None or not known_country else Severity.MEDIUM
        name = detail.service_principal_name or detail.app_display_name or event.user_display
        where = f"AS{asn} {info.asn_org or ''}".strip() + f" ({country or '?'})"
        extra = [x for x in (anon, None if known_country else "new country") if x]
        return (
            self.finding(
                event,
                summary=f"Service principal {name} signed in from {event.ip}, network {where} it had not used before"
                + (f" ({', '.join(extra)})" if extra else ""),
                severity=severity,
                dedup_key=f"{event.user_key}|{asn}",
                context={
                    **context(event),
                    "service_principal_id": detail.service_principal_id or event.object_id,
                    "service_principal_name": name,
                    "known_networks": sorted(k for k in nets if k != asn),
                    "new_country": not known_country,
                    "anonymizer": anon,
                },
            ),
        )


def _trim(table: dict[str, Any], cap: int, now: float) -> None:
    for k in [k for k, v in table.items() if not isinstance(v, (int, float)) or now - float(v) > NETWORK_TTL_S]:
        table.pop(k)
    while len(table) > cap:
        table.pop(min(table, key=lambda k: float(table[k])))
