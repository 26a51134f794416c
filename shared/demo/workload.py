"""A deterministic multi-tenant workload: days of benign activity and business-email-compromise chains.

The same seed gives the same records, content blobs and expected attacks. Used by `make demo`
and `make chaos` (which checks that every attack is alerted).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.demo import records as R

ATTACKER_IP = "146.70.133.30"
"""An M247 (hosting, VPN) address the demo's VPN feed lists: the attacker's exit."""
ATTACKER_RANGE = "146.70.133.0/24"
ROGUE_APP_ID = "e9a7fea1-1cc0-4cd9-a31b-9137ca5deedd"
"""eM Client, listed in the public RogueApps feed as abused for BEC."""

CT_AAD = "Audit.AzureActiveDirectory"
CT_EXCHANGE = "Audit.Exchange"
CT_SHAREPOINT = "Audit.SharePoint"
_CONTENT_TYPE = {"AzureActiveDirectory": CT_AAD, "Exchange": CT_EXCHANGE, "SharePoint": CT_SHAREPOINT}


@dataclass(frozen=True)
class DemoTenant:
    tenant_id: str
    name: str
    domain: str
    country: str
    users: tuple[R.User, ...]

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "internal_domains": [self.domain, f"{self.name.lower()}.onmicrosoft.com"]}


@dataclass(frozen=True)
class Blob:
    tenant_id: str
    content_type: str
    created: datetime
    records: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class Attack:
    tenant_id: str
    user: str
    description: str
    expected_detectors: tuple[str, ...]


@dataclass
class Workload:
    seed: int
    start: datetime
    tenants: list[DemoTenant]
    blobs: list[Blob] = field(default_factory=list)
    attacks: list[Attack] = field(default_factory=list)
    attack_time: datetime | None = None
    """When the attacker creates the inbox rule (what Graph shows from then on)."""

    @property
    def records(self) -> int:
        return sum(len(b.records) for b in self.blobs)

    def scan_config(self, vpn_feed: str, rogue_feed: str) -> dict[str, Any]:
        return {
            "tenants": {t.tenant_id: t.config() for t in self.tenants},
            "intel": {"vpn_feeds": [vpn_feed], "rogue_app_feeds": [rogue_feed]},
        }


_TENANTS = (
    ("Contoso", "contoso.com", "US", ("73.15.22.", "73.162.40.", "98.207.11.", "24.5.77."), R.UA_EDGE),
    ("Fabrikam", "fabrikam.co.uk", "GB", ("86.134.20.", "81.2.69."), R.UA_CHROME_MAC),
    ("Northwind", "northwind.de", "DE", ("79.192.10.", "91.64.3."), R.UA_EDGE),
)
_FIRST = ("megan", "alex", "diego", "adele", "lynne", "nestor", "patti", "isaiah", "johanna", "lee", "grady", "irvin")
_LAST = ("bowen", "wilber", "siciliani", "vance", "robbins", "wilke", "fernandez", "langer", "lauer", "gu", "archie")


def sp_id_for(wl: Workload, tenant_id: str) -> str:
    """The object ID of the rogue app's service principal in a tenant."""
    return R.stable_guid("sp", wl.seed, tenant_id, ROGUE_APP_ID)


def build_tenants(seed: int, *, users_per_tenant: int) -> list[DemoTenant]:
    rng = random.Random(seed)
    out: list[DemoTenant] = []
    for name, domain, country, prefixes, ua in _TENANTS:
        tid = R.stable_guid("tenant", seed, name)
        users: list[R.User] = []
        for i in range(users_per_tenant):
            first, last = _FIRST[i % len(_FIRST)], _LAST[(i * 7 + 3) % len(_LAST)]
            upn = f"{first}.{last}{'' if i < len(_FIRST) else i}@{domain}"
            mac = ua == R.UA_CHROME_MAC
            users.append(
                R.User(
                    upn=upn,
                    object_id=R.stable_guid("user", seed, upn),
                    puid=f"1003{rng.getrandbits(48):012X}",
                    display_name=f"{first.title()} {last.title()}",
                    home_ip=prefixes[i % len(prefixes)] + str(10 + (i * 13) % 200),
                    os="MacOs" if mac else "Windows10",
                    browser="Chrome" if mac else "Edge",
                    user_agent=ua,
                )
            )
        out.append(DemoTenant(tid, name, domain, country, tuple(users)))
    return out


def generate(seed: int = 7, *, days: int = 5, users_per_tenant: int = 10, blob_hours: int = 6) -> Workload:
    """The demo workload: benign days for every user, one BEC chain, one attacker sign-in elsewhere."""
    rng = random.Random(seed)
    start = datetime(2026, 11, 23, tzinfo=UTC)
    tenants = build_tenants(seed, users_per_tenant=users_per_tenant)
    wl = Workload(seed, start, tenants)
    records: list[tuple[str, dict[str, Any]]] = []
    for tenant in tenants:
        for day in range(days):
            for user in tenant.users:
                records.extend(
                    (tenant.tenant_id, r) for r in _benign_day(rng, tenant, user, start + timedelta(days=day))
                )
        # a benign newsletter rule and internal forwarding: must stay quiet
        u = tenant.users[1]
        t = start + timedelta(days=1, hours=10, minutes=5)
        records.append(
            (
                tenant.tenant_id,
                R.inbox_rule(
                    rng,
                    t,
                    tenant.tenant_id,
                    u,
                    ip=u.home_ip,
                    parameters=[
                        {"Name": "Name", "Value": "Newsletters"},
                        {"Name": "From", "Value": "news@industry-weekly.example"},
                        {"Name": "MoveToFolder", "Value": "Newsletters"},
                        {"Name": "StopProcessingRules", "Value": "False"},
                    ],
                ),
            )
        )
        colleague = tenant.users[2]
        records.append(
            (
                tenant.tenant_id,
                R.inbox_rule(
                    rng,
                    t + timedelta(minutes=30),
                    tenant.tenant_id,
                    u,
                    ip=u.home_ip,
                    parameters=[
                        {"Name": "Name", "Value": "Holiday cover"},
                        {"Name": "ForwardTo", "Value": colleague.upn},
                        {"Name": "SubjectContainsWords", "Value": "support"},
                    ],
                ),
            )
        )
    records.extend(_bec_chain(rng, wl, tenants[0], start + timedelta(days=days - 2, hours=14, minutes=2)))
    records.extend(_second_tenant_signin(rng, wl, tenants[1], start + timedelta(days=days - 1, hours=3, minutes=17)))
    wl.blobs = _to_blobs(records, blob_hours=blob_hours)
    return wl


def _benign_day(rng: random.Random, tenant: DemoTenant, user: R.User, day: datetime) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    tid = tenant.tenant_id
    t = day + timedelta(hours=8, minutes=rng.randint(0, 50))
    out.append(R.signin(rng, t, tid, user, ip=user.home_ip, app=R.OFFICE_APP))
    for _ in range(rng.randint(2, 4)):
        t += timedelta(minutes=rng.randint(20, 90))
        out.append(R.signin(rng, t, tid, user, ip=user.home_ip, app=rng.choice([R.OUTLOOK_APP, R.TEAMS_APP])))
        for _ in range(rng.randint(2, 6)):
            t += timedelta(minutes=rng.randint(1, 9))
            out.append(R.mail_access(rng, t, tid, user, ip=user.home_ip, items=rng.randint(1, 3)))
        for _ in range(rng.randint(1, 5)):
            t += timedelta(minutes=rng.randint(1, 9))
            out.append(R.file_op(rng, t, tid, user, ip=user.home_ip, op=rng.choice(["FileAccessed", "FileModified"])))
    return out


def _bec_chain(rng: random.Random, wl: Workload, tenant: DemoTenant, t: datetime) -> list[tuple[str, dict[str, Any]]]:
    victim = tenant.users[0]
    tid = tenant.tenant_id
    ip = ATTACKER_IP
    wl.attack_time = t + timedelta(minutes=7)
    recs = [
        R.signin(rng, t, tid, victim, ip=ip, app=R.OFFICE_APP, os="Windows10", browser="Chrome"),
        R.inbox_rule(
            rng,
            t + timedelta(minutes=7),
            tid,
            victim,
            ip=ip,
            parameters=[
                {"Name": "AlwaysDeleteOutlookRulesBlob", "Value": "False"},
                {"Name": "Force", "Value": "False"},
                {"Name": "MoveToFolder", "Value": "RSS Feeds"},
                {"Name": "Name", "Value": "."},
                {"Name": "ForwardTo", "Value": f"{victim.upn.split('@')[0]}.finance@gmail.com"},
                {"Name": "MarkAsRead", "Value": "True"},
                {"Name": "SubjectOrBodyContainsWords", "Value": "invoice;payment;wire"},
                {"Name": "StopProcessingRules", "Value": "True"},
            ],
        ),
        R.signin(
            rng,
            t + timedelta(minutes=15),
            tid,
            victim,
            ip=ip,
            app=R.GRAPH_POWERSHELL_APP,
            user_agent=R.UA_POWERSHELL,
            os="Windows10",
            browser="",
            request_type="OAuth2:Token",
        ),
    ]
    for i in range(6):
        recs.append(
            R.mail_access(
                rng,
                t + timedelta(minutes=16 + i),
                tid,
                victim,
                ip=ip,
                client_info="Client=REST;Client=RESTSystem;;",
                app=R.GRAPH_POWERSHELL_APP,
                items=rng.randint(20, 40),
            )
        )
    recs.append(
        R.consent(
            rng,
            t + timedelta(minutes=33),
            tid,
            victim,
            app_id=ROGUE_APP_ID,
            app_name="eM Client",
            scopes="EWS.AccessAsUser.All IMAP.AccessAsUser.All Mail.ReadWrite offline_access openid email",
            sp_id=sp_id_for(wl, tid),
        )
    )
    wl.attacks.append(
        Attack(
            tid,
            victim.upn,
            "BEC chain: VPN sign-in, hiding inbox rule, Graph mailbox access, rogue app consent",
            ("signin_anonymizer", "exchange_suspicious_inbox_rule", "app_risky_consent"),
        )
    )
    return [(tid, r) for r in recs]


def _second_tenant_signin(
    rng: random.Random, wl: Workload, tenant: DemoTenant, t: datetime
) -> list[tuple[str, dict[str, Any]]]:
    victim = tenant.users[3]
    tid = tenant.tenant_id
    recs = [
        R.signin(rng, t - timedelta(minutes=3), tid, victim, ip=ATTACKER_IP, error=50126),
        R.signin(rng, t, tid, victim, ip=ATTACKER_IP, os="Windows10", browser="Chrome"),
    ]
    wl.attacks.append(
        Attack(tid, victim.upn, "the same attacker address signs in to a second tenant", ("signin_anonymizer",))
    )
    return [(tid, r) for r in recs]


def _to_blobs(records: list[tuple[str, dict[str, Any]]], *, blob_hours: int) -> list[Blob]:
    groups: dict[tuple[str, str, datetime], list[dict[str, Any]]] = {}
    for tid, rec in records:
        created = datetime.fromisoformat(rec["CreationTime"]).replace(tzinfo=UTC)
        bucket = created.replace(hour=(created.hour // blob_hours) * blob_hours, minute=0, second=0)
        # content becomes available some time after its events (the API's typical delay)
        available = bucket + timedelta(hours=blob_hours, minutes=40)
        groups.setdefault((tid, _CONTENT_TYPE[rec["Workload"]], available), []).append(rec)
    return [
        Blob(tid, ct, created, tuple(recs))
        for (tid, ct, created), recs in sorted(groups.items(), key=lambda kv: kv[0][2])
    ]
