"""A domain federated, its federation settings changed, or a new domain added and verified: the identity-provider
backdoor.

Federating a domain to an identity provider the attacker runs (AADInternals ``ConvertTo-AADIntBackdoor``,
the Solorigate "domain trust modification") lets them sign tokens for any user of that domain, MFA claims
included, with no password and no sign-in record of ours. Read from Entra directory records:

* "Set domain authentication." whose ``ModifiedProperties`` switch the domain to ``Federated`` (high);
* "Set federation settings on domain." (issuer, signing certificate or MFA behaviour of a federated domain
  changed; high);
* "Add domain to company." remembered per domain in tenant state, then "Verify domain." (or "Verify email
  verified domain.") of that domain within `NEW_DOMAIN_S`: medium (the first steps of the backdoor; a lone
  verification of a domain added earlier is not reported);
* federation of a domain that was added within `NEW_DOMAIN_S` is critical.

A risky sign-in of the actor shortly before (or a risky address) raises each one step. The domain is read from
``ModifiedProperties.DomainName``, else a domain-shaped ``Target`` entry, else ``ObjectId``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from shared.alert_model import Category, DetectorMeta, Finding, Need, Severity
from shared.detection.base import DetectionContext, Detector
from shared.detection.helpers import actor_display, raise_for_risk, risk_context, risk_note, risk_of
from shared.records.event import Event

ADD_OPS = frozenset({"add domain to company", "add unverified domain"})
VERIFY_OPS = frozenset({"verify domain", "verify email verified domain", "add verified domain"})
AUTH_OP = "set domain authentication"
FEDERATION_OP = "set federation settings on domain"
NEW_DOMAIN_S = 7 * 86400
MAX_DOMAINS = 20
_DOMAIN = re.compile(r"^(?=.{3,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$")


def _domain(event: Event) -> str | None:
    name = event.modified_properties.get("domainname", ("", ""))[1].strip().strip('"[]').strip().lower()
    if name and _DOMAIN.match(name):
        return name
    for t in event.targets:
        ident = (t.ID or "").strip().lower()
        if _DOMAIN.match(ident):
            return ident
    obj = (event.record.ObjectId or "").strip().lower()
    return obj if _DOMAIN.match(obj) else None


def _federated(event: Event) -> bool:
    """True when the record's new values name the Federated authentication type."""
    return any("federated" in new.lower() for _, new in event.modified_properties.values())


class PrivilegeDomainFederation(Detector):
    meta = DetectorMeta(
        id="privilege_domain_federation",
        title="Domain federation changed or new domain verified",
        description=(
            "A domain was switched to federated authentication, a federated domain's settings (issuer, signing "
            "certificate, MFA behaviour) changed, or a domain was added and verified: an identity provider the "
            "attacker controls can then sign in as any user of the domain."
        ),
        category=Category.PRIVILEGE_CHANGE,
        severity=Severity.HIGH,
        mitre=("T1484.002", "T1556.007"),
        dedup_window=timedelta(days=7),
        operations=ADD_OPS | VERIFY_OPS | {AUTH_OP, FEDERATION_OP},
        needs=(Need.DIRECTORY, Need.TENANT_HISTORY, Need.RISKY_SIGNIN),
        runbook=(
            "1. Check the domain in Entra ID > Custom domain names and its federation settings "
            "(Get-MgDomainFederationConfiguration -DomainId <domain>): issuer URI, signing certificate, "
            "federatedIdpMfaBehavior. 2. Ask the identity team whether a federation project (AD FS, Okta, Ping) is "
            "under way; check the actor's sign-ins just before. 3. If not: set the domain back to managed "
            "(Update-MgDomain -DomainId <domain> -AuthenticationType Managed) or remove the rogue domain, revoke "
            "every session of the domain's users, reset the actor's credentials, and hunt sign-ins issued by the "
            "rogue issuer."
        ),
        reference="https://www.microsoft.com/en-us/security/blog/2020/12/21/advice-for-incident-responders-on-recovery-from-systemic-identity-compromises/",
        false_positives=(
            "a planned federation with AD FS or a third-party identity provider",
            "a new company domain added and verified by the identity team",
        ),
    )

    def detect(self, event: Event, ctx: DetectionContext) -> Iterable[Finding]:
        if not event.succeeded:
            return ()
        domain = _domain(event)
        if domain is None:
            return ()
        state = ctx.tenant_state(self.meta.id)
        added: dict[str, Any] = state.setdefault("added", {})
        for d in [d for d, t in added.items() if not isinstance(t, (int, float)) or event.time - t > NEW_DOMAIN_S]:
            added.pop(d)
        if event.op in ADD_OPS:
            added[domain] = event.time
            if len(added) > MAX_DOMAINS:
                for d in sorted(added, key=lambda k: added[k])[: len(added) - MAX_DOMAINS]:
                    added.pop(d)
            return ()
        new_domain = domain in added
        if event.op in VERIFY_OPS:
            if not new_domain:
                return ()
            kind, severity, what = "new_domain_verified", Severity.MEDIUM, "added and verified the domain {domain}"
        elif event.op == AUTH_OP:
            if not _federated(event):
                return ()
            kind, severity, what = (
                "federated",
                Severity.HIGH,
                "switched the domain {domain} to federated authentication",
            )
        else:
            kind, severity, what = (
                "federation_settings",
                Severity.HIGH,
                "changed the federation settings of the domain {domain}",
            )
        if kind != "new_domain_verified" and new_domain:
            severity = Severity.CRITICAL
            what += ", a domain added this week"
        risk = risk_of(ctx, event)
        severity = raise_for_risk(severity, risk)
        changed = sorted(k for k in event.modified_properties if k not in ("included updated properties", "domainname"))
        return (
            self.finding(
                event,
                summary=f"{actor_display(event)} {what.format(domain=domain)}" + risk_note(risk),
                severity=severity,
                dedup_key=f"{domain}|{kind}",
                context={
                    "domain": domain,
                    "change": kind,
                    "recently_added": new_domain,
                    "changed_properties": changed,
                    "operation": event.record.Operation,
                    "risk": risk_context(risk),
                },
            ),
        )
