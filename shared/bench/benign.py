"""The precision workload: three tenants of ordinary people for three weeks, and the attacks they must not hide.

The benign profile holds the ordinary behaviour that trips naive identity rules (issue #19, and the public
false-positive notes of Microsoft's, Elastic's and Splunk's rules for the same detections):

* administrators and developers using Exchange Online, Graph and Azure PowerShell and Azure CLI every day, and a
  newly appointed administrator starting to use the tenant's usual tools in week three;
* colleagues at a conference abroad sharing the venue's address, their phones roaming on the home carrier;
* a corporate VPN whose egress (inside the tenant's trusted ranges) is a cloud address abroad, used by people at
  home and by a traveller; an office egress in a trusted range that geolocates to another country;
* phones on mobile carrier networks whose addresses geolocate far from home;
* mailbox delegations inside the tenant (full access, send-as, send-on-behalf, calendar) to an assistant;
* a single MFA denial followed by a normal sign-in;
* keyword rules filing invoices and newsletters into named folders, and an internal holiday forward;
* from public false-positive reports: a backup application reading every mailbox every day, a new laptop
  registered from home and syncing the user's OneDrive, a compliance search without export, DKIM enabled, an
  administrator adding a named location from the office, one file shared with a known partner, newsletters
  deleted.

The attack cases (`AttackCase`) run on users of their own in the third week, when the baselines are learned:
the demo's business-email-compromise chain, the same attacker in a second tenant, a stolen token used through
Azure CLI from a hosting provider, a sign-in from a new country followed by mailbox forwarding, repeated MFA
denials, a mailbox delegated to an outside account after a risky sign-in, a mass download, and a OneDrive
synced to a new client after a sign-in from a new country.

Deterministic: the same seed gives the same records.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.demo import records as R

TENANTS = 3
USERS = 60
DAYS = 21
START = datetime(2026, 9, 7, tzinfo=UTC)
"""A Monday."""

EXO_POWERSHELL = "fb78d390-0c51-40cd-8e17-fdbfab77341b"
AZURE_POWERSHELL = "1950a258-227b-4e31-a9cf-717495945fc2"
AZURE_CLI = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
VSCODE = "aebc6443-996d-45c2-90f0-388ff96faa56"
OUTLOOK_MOBILE = "27922004-5251-4030-b22d-91ecd9a37ea4"
BACKUP_APP = "2f1d7a55-5c6b-4b8e-9a57-6c0b2d9f0e11"
"""A third-party backup service reading every mailbox every day (application permission)."""
UA_OUTLOOK_IOS = "Outlook-iOS/2.0"
UA_ONEDRIVE = "Microsoft SkyDriveSync 24.201.1006.0005 ship; Windows NT 10.0 (19045)"
ATTACKER_VPN_IP = "146.70.133.30"
"""M247 (hosting, VPN feed of the demo): the BEC attacker's exit."""
ATTACKER_HOSTING_IP = "193.37.32.1"
"""A hosting address in Singapore: where a stolen token is replayed."""


@dataclass(frozen=True)
class TenantProfile:
    name: str
    domain: str
    country: str
    home_prefixes: tuple[str, ...]
    office_ip_prefix: str
    carrier_prefixes: tuple[str, ...]
    """Mobile carrier networks of the staff's phones (addresses geolocating all over the country)."""
    conference_ip: str
    """The venue's address abroad, shared by the colleagues at the conference."""
    hotel_prefix: str
    trusted_ranges: tuple[str, ...]
    vpn_prefix: str | None
    user_agent: str


PROFILES = (
    TenantProfile(
        "Contoso",
        "contoso.com",
        "US",
        ("73.15.22.", "73.162.40.", "98.207.11.", "24.5.77."),
        "73.15.30.",
        ("172.56.20.", "172.58.1.", "172.56.77.", "172.58.140."),
        "88.26.10.50",
        "31.4.200.",
        ("20.50.10.0/24",),
        "20.50.10.",
        R.UA_EDGE,
    ),
    TenantProfile(
        "Fabrikam",
        "fabrikam.co.uk",
        "GB",
        ("86.134.20.", "81.2.69."),
        "151.101.1.",
        ("92.40.10.", "92.40.200."),
        "88.26.10.80",
        "217.130.10.",
        ("151.101.1.0/24",),
        None,
        R.UA_CHROME_MAC,
    ),
    TenantProfile(
        "Northwind",
        "northwind.de",
        "DE",
        ("79.192.10.", "91.64.3."),
        "2.205.10.",
        ("80.187.100.", "80.187.30."),
        "86.134.20.200",
        "81.2.69.",
        (),
        None,
        R.UA_EDGE,
    ),
)
"""Fabrikam's office egress is a CDN range in its trusted ranges that geolocates to Canada; Northwind's staff
attend a conference in London, Contoso's and Fabrikam's one in Madrid."""

ADMINS = (1, 2, 3)
DEVELOPERS = (4, 5)
NEW_ADMIN = 6
"""Starts using the tenant's administration tools on day 15."""
ASSISTANT = 7
EXECUTIVES = (8, 9)
CONFERENCE = tuple(range(10, 16))
CONFERENCE_DAYS = (15, 16, 17)
VPN_USERS = tuple(range(20, 25))
TRAVELLER = 25
PHONE_USERS = tuple(range(10, 40))
ATTACK_USERS = tuple(range(50, 58))
"""Victims of the attack cases: their days are not counted as benign."""


@dataclass(frozen=True)
class AttackCase:
    tenant_id: str
    user: str
    description: str
    day: int


@dataclass
class PrecisionWorkload:
    tenants: list[tuple[str, TenantProfile, tuple[R.User, ...]]]
    records: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    attacks: list[AttackCase] = field(default_factory=list)
    days: int = DAYS

    @property
    def benign_user_days(self) -> int:
        return sum(len(users) - len(ATTACK_USERS) for _, _, users in self.tenants) * self.days

    @property
    def attack_users(self) -> set[tuple[str, str]]:
        return {(a.tenant_id, a.user.lower()) for a in self.attacks}

    def tenant_configs(self) -> dict[str, dict[str, Any]]:
        return {
            tid: {
                "name": p.name,
                "internal_domains": [p.domain, f"{p.name.lower()}.onmicrosoft.com"],
                "trusted_ip_ranges": list(p.trusted_ranges),
            }
            for tid, p, _ in self.tenants
        }

    def blobs(self) -> Iterator[tuple[str, list[dict[str, Any]]]]:
        """(tenant, records) in time order, a blob per tenant and six hours."""
        ordered = sorted(self.records, key=lambda tr: (tr[1]["CreationTime"], tr[1]["Id"]))
        pending: dict[str, list[dict[str, Any]]] = {}
        bucket: str | None = None
        for tid, rec in ordered:
            b = rec["CreationTime"][:11] + str(int(rec["CreationTime"][11:13]) // 6)
            if bucket is not None and b != bucket:
                yield from ((t, recs) for t, recs in pending.items() if recs)
                pending = {}
            bucket = b
            pending.setdefault(tid, []).append(rec)
        yield from ((t, recs) for t, recs in pending.items() if recs)


def _users(rng: random.Random, t: int, p: TenantProfile) -> tuple[R.User, ...]:
    out = []
    mac = p.user_agent == R.UA_CHROME_MAC
    for u in range(USERS):
        upn = f"user{u:02d}@{p.domain}"
        out.append(
            R.User(
                upn=upn,
                object_id=R.stable_guid("precision-user", t, u),
                puid=f"1003{rng.getrandbits(48):012X}",
                display_name=f"{p.name} User {u}",
                home_ip=p.home_prefixes[u % len(p.home_prefixes)] + str(10 + (u * 7) % 200),
                os="MacOs" if mac else "Windows10",
                browser="Chrome" if mac else "Edge",
                user_agent=p.user_agent,
            )
        )
    return tuple(out)


def generate(seed: int = 19, *, days: int = DAYS) -> PrecisionWorkload:
    """The workload for ``seed``: every tenant's benign days, its one-off changes, then the attack cases."""
    rng = random.Random(seed)
    tenants = [(R.stable_guid("precision-tenant", seed, t), p, _users(rng, t, p)) for t, p in enumerate(PROFILES)]
    wl = PrecisionWorkload(tenants, days=days)
    for tid, p, staff in tenants:
        g = _Gen(rng, wl, tid, p, staff)
        for day in range(days):
            g.day(day)
        g.specials()
    _attacks(rng, wl)
    return wl


class _Gen:
    def __init__(
        self, rng: random.Random, wl: PrecisionWorkload, tid: str, p: TenantProfile, staff: tuple[R.User, ...]
    ) -> None:
        self.rng, self.wl, self.tid, self.p, self.staff = rng, wl, tid, p, staff

    def add(self, rec: dict[str, Any]) -> None:
        self.wl.records.append((self.tid, rec))

    def office_ip(self, u: int) -> str:
        return self.p.office_ip_prefix + str(20 + u % 200)

    def phone_ip(self, u: int, day: int) -> str:
        # carrier NAT pools: the address (and its geolocation) changes from day to day
        pre = self.p.carrier_prefixes[(u + day) % len(self.p.carrier_prefixes)]
        return pre + str(1 + (u * 31 + day * 17) % 250)

    def day(self, day: int) -> None:
        rng, staff = self.rng, self.staff
        d0 = START + timedelta(days=day)
        weekend = d0.weekday() >= 5
        for u, user in enumerate(staff):
            if weekend and rng.random() < 0.8:
                continue
            at_conf = (u in CONFERENCE and day in CONFERENCE_DAYS and self.tid == self.wl.tenants[0][0]) or (
                u in CONFERENCE[:4] and day in CONFERENCE_DAYS
            )
            t = d0 + timedelta(hours=8, minutes=rng.randint(0, 50))
            if at_conf:
                self.conference_day(u, user, day, t)
                continue
            in_office = not weekend and u % 3 != 0
            ip = self.office_ip(u) if in_office else user.home_ip
            if u in VPN_USERS and self.p.vpn_prefix and day % 4 == 1:
                ip = self.p.vpn_prefix + str(10 + u)
            if u == TRAVELLER and self.p.vpn_prefix and day in (16, 17, 18):
                self.traveller_day(u, user, day, t)
                continue
            self.work(user, ip, t, u, day)
            if u in PHONE_USERS:
                tp = d0 + timedelta(hours=18, minutes=rng.randint(0, 50))
                self.phone(user, self.phone_ip(u, day), tp)
            if (u in ADMINS or (u == NEW_ADMIN and day >= 15)) and not weekend:
                tools = (EXO_POWERSHELL, R.GRAPH_POWERSHELL_APP, AZURE_POWERSHELL)
                for k, app in enumerate(tools):
                    if u == NEW_ADMIN and k > 0:
                        break
                    self.tool(user, ip, t + timedelta(hours=2, minutes=10 * k), app)
            if u in DEVELOPERS and not weekend:
                self.tool(user, ip, t + timedelta(hours=3), AZURE_CLI)
                self.tool(user, ip, t + timedelta(hours=3, minutes=5), VSCODE)
            if u % 11 == 3 and day % 7 == 2:
                # one MFA denial (a prompt pressed by mistake, a phone left behind), then a normal sign-in
                tf = d0 + timedelta(hours=20)
                self.add(R.signin(rng, tf, self.tid, user, ip=user.home_ip, app=R.OFFICE_APP, error=500121))
                self.add(R.signin(rng, tf + timedelta(minutes=2), self.tid, user, ip=user.home_ip, app=R.OFFICE_APP))
            if u % 5 == 4 and day % 3 == 0:
                # mistyped passwords
                tf = d0 + timedelta(hours=7, minutes=55)
                self.add(R.signin(rng, tf, self.tid, user, ip=user.home_ip, error=50126))
        # the backup service reads every mailbox every night
        tb = d0 + timedelta(hours=1)
        for u, user in enumerate(staff):
            rec = R.mail_access(
                rng, tb + timedelta(seconds=20 * u), self.tid, user, ip="20.190.1.10", app=BACKUP_APP, items=5
            )
            rec["ClientInfoString"] = "Client=WebServices;ExchangeWebServicesClient"
            rec["UserId"] = "S-1-5-21-1180699209-877415012-3182924384-9000"
            rec["UserKey"] = "ServicePrincipal_" + BACKUP_APP
            rec["LogonType"] = 0
            self.add(rec)

    def work(self, user: R.User, ip: str, t: datetime, u: int, day: int) -> None:
        rng, tid = self.rng, self.tid
        self.add(R.signin(rng, t, tid, user, ip=ip, app=R.OFFICE_APP))
        for _ in range(rng.randint(1, 3)):
            t += timedelta(minutes=rng.randint(20, 90))
            self.add(R.signin(rng, t, tid, user, ip=ip, app=rng.choice([R.OUTLOOK_APP, R.TEAMS_APP])))
            for _ in range(rng.randint(1, 3)):
                t += timedelta(minutes=rng.randint(1, 9))
                self.add(R.mail_access(rng, t, tid, user, ip=ip, items=rng.randint(1, 3)))
            for _ in range(rng.randint(1, 3)):
                t += timedelta(minutes=rng.randint(1, 9))
                op = rng.choice(["FileAccessed", "FileModified", "FileAccessed", "FileDownloaded"])
                self.add(R.file_op(rng, t, tid, user, ip=ip, op=op))

    def phone(self, user: R.User, ip: str, t: datetime) -> None:
        rng = self.rng
        self.add(
            R.signin(
                rng,
                t,
                self.tid,
                user,
                ip=ip,
                app=OUTLOOK_MOBILE,
                user_agent=UA_OUTLOOK_IOS,
                os="Ios",
                browser="Outlook-iOS",
            )
        )
        self.add(
            R.mail_access(
                rng, t + timedelta(minutes=1), self.tid, user, ip=ip, client_info="Client=OutlookMobile", items=2
            )
        )

    def tool(self, user: R.User, ip: str, t: datetime, app: str) -> None:
        self.add(
            R.signin(
                self.rng,
                t,
                self.tid,
                user,
                ip=ip,
                app=app,
                user_agent=R.UA_POWERSHELL,
                browser="",
                request_type="OAuth2:Token",
            )
        )

    def conference_day(self, u: int, user: R.User, day: int, t: datetime) -> None:
        """At the venue (one address for every colleague), the hotel in the evening, the phone on the home carrier."""
        venue = self.p.conference_ip
        hotel = self.p.hotel_prefix + str(30 + u)
        self.work(user, venue, t + timedelta(minutes=30), u, day)
        self.phone(user, self.phone_ip(u, day), t + timedelta(hours=4))
        self.add(R.signin(self.rng, t + timedelta(hours=12), self.tid, user, ip=hotel, app=R.OUTLOOK_APP))

    def traveller_day(self, u: int, user: R.User, day: int, t: datetime) -> None:
        """Abroad: the hotel's network in the morning, the corporate VPN (trusted) the rest of the day."""
        assert self.p.vpn_prefix is not None
        hotel = "88.26.10." + str(100 + u)
        self.add(R.signin(self.rng, t, self.tid, user, ip=hotel, app=R.OUTLOOK_APP))
        self.work(user, self.p.vpn_prefix + str(10 + u), t + timedelta(minutes=20), u, day)

    def specials(self) -> None:
        """One-off ordinary changes of the three weeks."""
        rng, tid, staff, p = self.rng, self.tid, self.staff, self.p
        admin = staff[ADMINS[0]]

        def when(day: int, hour: int, minute: int = 0) -> datetime:
            return START + timedelta(days=day, hours=hour, minutes=minute)

        office = self.office_ip(ADMINS[0])
        assistant = staff[ASSISTANT]
        for k, ex in enumerate(EXECUTIVES):
            exec_user = staff[ex]
            d = 15 + 3 * k
            self.add(
                _cmdlet(
                    rng,
                    when(d, 10),
                    tid,
                    admin,
                    office,
                    "Add-MailboxPermission",
                    {
                        "Identity": exec_user.upn,
                        "User": assistant.upn,
                        "AccessRights": "FullAccess",
                        "InheritanceType": "All",
                    },
                )
            )
            self.add(
                _cmdlet(
                    rng,
                    when(d, 10, 5),
                    tid,
                    admin,
                    office,
                    "Add-RecipientPermission",
                    {"Identity": exec_user.upn, "Trustee": assistant.upn, "AccessRights": "SendAs"},
                )
            )
            self.add(
                _cmdlet(
                    rng,
                    when(d, 10, 8),
                    tid,
                    admin,
                    office,
                    "Set-Mailbox",
                    {"Identity": exec_user.upn, "GrantSendOnBehalfTo": assistant.upn},
                )
            )
            self.add(
                _cmdlet(
                    rng,
                    when(d + 1, 9, 30),
                    tid,
                    exec_user,
                    self.office_ip(ex),
                    "Add-MailboxFolderPermission",
                    {"Identity": f"{exec_user.upn}:\\Calendar", "User": assistant.upn, "AccessRights": "Editor"},
                )
            )
        # keyword rules filing invoices and newsletters, and an internal holiday forward
        for k, u in enumerate((30, 31, 32)):
            user = staff[u]
            self.add(
                R.inbox_rule(
                    rng,
                    when(3 + 7 * k, 14),
                    tid,
                    user,
                    ip=self.office_ip(u),
                    parameters=[
                        {"Name": "Name", "Value": "Invoices"},
                        {"Name": "SubjectOrBodyContainsWords", "Value": "invoice;payment;remittance"},
                        {"Name": "MoveToFolder", "Value": "Invoices"},
                        {"Name": "StopProcessingRules", "Value": "True"},
                    ],
                )
            )
        for k, u in enumerate((33, 34)):
            user = staff[u]
            self.add(
                R.inbox_rule(
                    rng,
                    when(4 + 11 * k, 11),
                    tid,
                    user,
                    ip=self.office_ip(u),
                    parameters=[
                        {"Name": "Name", "Value": "Newsletters"},
                        {"Name": "From", "Value": "news@industry-weekly.example"},
                        {"Name": "MoveToFolder", "Value": "Newsletters"},
                        {"Name": "MarkAsRead", "Value": "True"},
                    ],
                )
            )
        holiday = staff[35]
        self.add(
            R.inbox_rule(
                rng,
                when(17, 16),
                tid,
                holiday,
                ip=holiday.home_ip,
                parameters=[
                    {"Name": "Name", "Value": "Holiday cover"},
                    {"Name": "ForwardTo", "Value": staff[36].upn},
                    {"Name": "SubjectContainsWords", "Value": "support"},
                ],
            )
        )
        # newsletters emptied
        reader = staff[37]
        for i in range(12):
            rec = R.mail_access(rng, when(16, 12, i), tid, reader, ip=self.office_ip(37))
            rec.update({"Operation": "SoftDelete", "RecordType": 2})
            rec.pop("OperationProperties", None)
            rec["Folder"] = {"Path": "\\Newsletters"}
            self.add(rec)
        # a compliance officer's search without export, DKIM enabled, a named location for the new office
        self.add(
            _cmdlet(
                rng,
                when(16, 10),
                tid,
                staff[ADMINS[1]],
                self.office_ip(ADMINS[1]),
                "New-ComplianceSearch",
                {"Name": "HR case 42", "ExchangeLocation": staff[40].upn, "ContentMatchQuery": "subject:offer"},
            )
        )
        self.add(
            _cmdlet(
                rng,
                when(16, 10, 5),
                tid,
                staff[ADMINS[1]],
                self.office_ip(ADMINS[1]),
                "Start-ComplianceSearch",
                {"Identity": "HR case 42"},
            )
        )
        self.add(
            _cmdlet(
                rng,
                when(17, 15),
                tid,
                staff[ADMINS[2]],
                self.office_ip(ADMINS[2]),
                "Set-DkimSigningConfig",
                {"Identity": p.domain, "Enabled": "True"},
            )
        )
        self.add(
            _directory(
                rng,
                when(17, 11),
                tid,
                admin,
                "Add named location.",
                [
                    {
                        "Name": "NamedLocation",
                        "NewValue": '{"displayName":"Head office","ipRanges":[{"@odata.type":"#microsoft.graph.iPv4CidrRange",'
                        + '"cidrAddress":"'
                        + p.office_ip_prefix
                        + '0/24"}],"isTrusted":true}',
                    }
                ],
                ip=office,
            )
        )
        # a new laptop: registered from home, then OneDrive syncs the user's library to it
        laptop = staff[41]
        self.add(_directory(rng, when(18, 9), tid, laptop, "Register device.", [], ip=laptop.home_ip))
        for i in range(220):
            rec = R.file_op(rng, when(18, 9, 10) + timedelta(seconds=i * 5), tid, laptop, ip=laptop.home_ip)
            rec.update(
                {
                    "Operation": "FileSyncDownloadedFull",
                    "UserAgent": UA_ONEDRIVE,
                    "MachineId": R.stable_guid("laptop", tid),
                }
            )
            self.add(rec)
        # one file shared with a known partner
        sharer = staff[42]
        rec = R.file_op(rng, when(19, 15), tid, sharer, ip=self.office_ip(42))
        rec.update(
            {
                "Operation": "SharingInvitationCreated",
                "TargetUserOrGroupName": "jane@partner-example.com",
                "TargetUserOrGroupType": "Guest",
            }
        )
        self.add(rec)


def _cmdlet(
    rng: random.Random, t: datetime, tid: str, user: R.User, ip: str, op: str, params: dict[str, str]
) -> dict[str, Any]:
    rec = R.inbox_rule(rng, t, tid, user, ip=ip, parameters=[{"Name": k, "Value": v} for k, v in params.items()])
    rec["Operation"] = op
    rec["ObjectId"] = params.get("Identity", "")
    rec["UserType"] = 2
    return rec


def _directory(
    rng: random.Random,
    t: datetime,
    tid: str,
    user: R.User,
    op: str,
    modified: list[dict[str, str]],
    *,
    ip: str | None = None,
) -> dict[str, Any]:
    rec = R.consent(rng, t, tid, user, app_id=R.GRAPH_APP, app_name="x", scopes="", sp_id=R.stable_guid("sp"))
    rec.update(
        {
            "Operation": op,
            "ObjectId": "",
            "ModifiedProperties": modified,
            "Target": [{"ID": user.object_id, "Type": 2}],
            "ExtendedProperties": [
                {"Name": "additionalDetails", "Value": "{}"},
                {"Name": "extendedAuditEventCategory", "Value": "Device" if "device" in op else "Policy"},
            ],
        }
    )
    if ip is not None:
        rec["ActorIpAddress"] = ip
    return rec


def _attacks(rng: random.Random, wl: PrecisionWorkload) -> None:
    """The attack cases, on their own victims, in the third week."""
    (t0, _, s0), (t1, _, s1), (t2, _, s2) = wl.tenants

    def when(day: int, hour: int, minute: int = 0) -> datetime:
        return START + timedelta(days=day, hours=hour, minutes=minute)

    def add(tid: str, recs: list[dict[str, Any]], user: R.User, day: int, what: str) -> None:
        wl.records.extend((tid, r) for r in recs)
        wl.attacks.append(AttackCase(tid, user.upn, what, day))

    # 1. the demo's BEC chain: VPN sign-in, hiding inbox rule, Graph mailbox reads, rogue app consent
    v = s0[50]
    t = when(15, 14, 2)
    recs = [
        R.signin(rng, t, t0, v, ip=ATTACKER_VPN_IP, os="Windows10", browser="Chrome"),
        R.inbox_rule(
            rng,
            t + timedelta(minutes=7),
            t0,
            v,
            ip=ATTACKER_VPN_IP,
            parameters=[
                {"Name": "Name", "Value": "."},
                {"Name": "MoveToFolder", "Value": "RSS Feeds"},
                {"Name": "ForwardTo", "Value": "user50.finance@gmail.com"},
                {"Name": "MarkAsRead", "Value": "True"},
                {"Name": "SubjectOrBodyContainsWords", "Value": "invoice;payment;wire"},
                {"Name": "StopProcessingRules", "Value": "True"},
            ],
        ),
        R.consent(
            rng,
            t + timedelta(minutes=33),
            t0,
            v,
            app_id="e9a7fea1-1cc0-4cd9-a31b-9137ca5deedd",
            app_name="eM Client",
            scopes="EWS.AccessAsUser.All IMAP.AccessAsUser.All Mail.ReadWrite offline_access",
            sp_id=R.stable_guid("sp", "emclient", t0),
        ),
    ]
    add(t0, recs, v, 15, "BEC chain: VPN sign-in, hiding forwarding rule, rogue app consent")
    # 2. the same attacker address signs in to a second tenant
    v = s1[51]
    t = when(16, 3, 17)
    recs = [
        R.signin(rng, t - timedelta(minutes=3), t1, v, ip=ATTACKER_VPN_IP, error=50126),
        R.signin(rng, t, t1, v, ip=ATTACKER_VPN_IP, os="Windows10", browser="Chrome"),
    ]
    add(t1, recs, v, 16, "the same attacker address signs in to a second tenant")
    # 3. a stolen token used through Azure CLI and Graph PowerShell from a hosting provider abroad
    v = s2[52]
    t = when(17, 2, 40)
    recs = [
        R.signin(
            rng,
            t,
            t2,
            v,
            ip=ATTACKER_HOSTING_IP,
            app=AZURE_CLI,
            user_agent="python-requests/2.31.0",
            os="Linux",
            browser="",
            request_type="OAuth2:Token",
        ),
        R.signin(
            rng,
            t + timedelta(minutes=4),
            t2,
            v,
            ip=ATTACKER_HOSTING_IP,
            app=R.GRAPH_POWERSHELL_APP,
            user_agent=R.UA_POWERSHELL,
            os="Windows10",
            browser="",
            request_type="OAuth2:Token",
        ),
    ]
    add(t2, recs, v, 17, "stolen token replayed through Azure CLI and Graph PowerShell from a hosting provider")
    # 4. a sign-in from a new country on a residential network, then mailbox forwarding outside
    v = s0[53]
    t = when(18, 4, 12)
    recs = [
        R.signin(rng, t, t0, v, ip="41.58.10.20", os="Windows10", browser="Chrome"),
        _cmdlet(
            rng,
            t + timedelta(minutes=9),
            t0,
            v,
            "41.58.10.20",
            "Set-Mailbox",
            {
                "Identity": v.upn,
                "ForwardingSmtpAddress": "smtp:payments.desk@outlook.com",
                "DeliverToMailboxAndForward": "True",
            },
        ),
    ]
    add(t0, recs, v, 18, "sign-in from a new country, then mailbox forwarding to an outside address")
    # 5. MFA fatigue: repeated MFA denials after a right password from an unknown network
    v = s1[54]
    t = when(17, 23, 5)
    recs = [
        R.signin(rng, t + timedelta(minutes=2 * i), t1, v, ip="102.89.40.7", error=500121, browser="Chrome")
        for i in range(4)
    ]
    add(t1, recs, v, 17, "repeated MFA denials after a right password (MFA fatigue)")
    # 6. a mailbox delegated to an outside account after a risky sign-in
    v = s2[55]
    t = when(19, 1, 30)
    recs = [
        R.signin(rng, t, t2, v, ip=ATTACKER_VPN_IP, os="Windows10", browser="Chrome"),
        _cmdlet(
            rng,
            t + timedelta(minutes=6),
            t2,
            v,
            ATTACKER_VPN_IP,
            "Add-MailboxPermission",
            {
                "Identity": v.upn,
                "User": "helpdesk-2231@outlook.com",
                "AccessRights": "FullAccess",
                "AutoMapping": "False",
            },
        ),
    ]
    add(t2, recs, v, 19, "mailbox delegated to an outside account after a VPN sign-in")
    # 7. a mass download at night
    v = s1[56]
    t = when(19, 2, 0)
    recs = [R.signin(rng, t, t1, v, ip=v.home_ip, app=R.OFFICE_APP)]
    recs += [R.file_op(rng, t + timedelta(seconds=6 * i), t1, v, ip=v.home_ip, op="FileDownloaded") for i in range(400)]
    add(t1, recs, v, 19, "mass download of SharePoint files")
    # 8. a sign-in from a new country, then the user's OneDrive synced to a new client
    v = s2[57]
    t = when(20, 3, 0)
    ip = "103.152.10.20"
    recs = [R.signin(rng, t, t2, v, ip=ip, os="Windows10", browser="Chrome")]
    for i in range(250):
        rec = R.file_op(rng, t + timedelta(minutes=5, seconds=3 * i), t2, v, ip=ip)
        rec.update(
            {"Operation": "FileSyncDownloadedFull", "UserAgent": UA_ONEDRIVE, "MachineId": R.stable_guid("attacker-pc")}
        )
        recs.append(rec)
    add(t2, recs, v, 20, "sign-in from a new country, then OneDrive synced to a new client")
