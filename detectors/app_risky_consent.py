"""Consent to an OAuth app with risky scopes, or to a known traitorware app (the RogueApps feed).

Scopes come from ``ConsentAction.Permissions`` (only those the consent added). Mail, files,
directory, role-management and app-management scopes are risky; ``offline_access`` makes them
persistent; ``full_access_as_app`` and role/app management are a tenant takeover. An admin consent
for the whole tenant (``OnBehalfOfAll`` / ``AllPrincipals``) weighs more than one user's. An app
listed in ``ctx.rogue_apps`` (appId → feed entry) is critical whatever its scopes. Consent to a
benign app (User.Read, openid, profile, email) is not an alert.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from shared.alert_model import Category, DetectorMeta, Finding, Need, Severity
from shared.detection.base import DetectionContext, Detector
from shared.detection.consent import CONSENT_OP, consent_from_event, scope_risk
from shared.detection.helpers import raise_for_risk, risk_context, risk_note, risk_of
from shared.enrich.rogueapps import lookup_rogue_app
from shared.records.event import Event


class AppRiskyConsent(Detector):
    meta = DetectorMeta(
        id="app_risky_consent",
        title="Consent to a risky OAuth application",
        description=(
            "A user or admin consented to an application asking for mail, file, directory or role-management scopes "
            "(with offline_access for lasting access), for one user or the whole tenant, or to an app listed as "
            "abused in the public RogueApps feed."
        ),
        category=Category.ROGUE_APP,
        severity=Severity.HIGH,
        mitre=("T1528", "T1550.001"),
        dedup_window=timedelta(hours=24),
        operations=frozenset({CONSENT_OP}),
        needs=(Need.DIRECTORY, Need.ROGUE_APPS, Need.RISKY_SIGNIN),
        runbook=(
            "1. Open Entra ID > Enterprise applications > the app in the alert: publisher, verified status, reply "
            "URLs, and Permissions (user and admin consent). 2. Ask the user whether they meant to connect it; check "
            "their sign-ins just before for VPN, hosting or a new country. 3. If unwanted: revoke the grants "
            "(Remove-MgOauth2PermissionGrant), disable the service principal, revoke the user's sessions, and search "
            "MailItemsAccessed and FileAccessed for the app id to see what it read. 4. Restrict user consent to "
            "verified publishers and low-risk permissions."
        ),
        reference="https://learn.microsoft.com/en-us/defender-office-365/detect-and-remediate-illicit-consent-grants",
        false_positives=("sanctioned mail or file integrations consented by users",),
    )

    def detect(self, event: Event, ctx: DetectionContext) -> Iterable[Finding]:
        consent = consent_from_event(event)
        if consent is None or not event.succeeded:
            return ()
        rogue = lookup_rogue_app(ctx.rogue_apps, consent.app_id)
        risk_scopes = scope_risk(consent.added_scopes)
        if rogue is None and not risk_scopes.risky:
            return ()
        tenant_wide = consent.tenant_wide
        level = risk_scopes.level
        if rogue is not None:
            severity = Severity.CRITICAL
        elif level >= 3:
            severity = Severity.CRITICAL if tenant_wide or consent.is_admin_consent else Severity.HIGH
        elif level == 2:
            severity = Severity.HIGH
        else:
            severity = Severity.HIGH if tenant_wide else Severity.MEDIUM
        risk = risk_of(ctx, event)
        severity = raise_for_risk(severity, risk)
        name = consent.app_display_name or (rogue.display_name if rogue else None) or consent.app_id or "unknown app"
        scope_text = " ".join(risk_scopes.risky_scopes) or "no risky scopes"
        if risk_scopes.offline_access:
            scope_text += " offline_access"
        who = "admin consent for the whole tenant" if tenant_wide else "consent"
        summary = f"{event.user_display} gave {who} to {name!r}: {scope_text}"
        if rogue is not None:
            summary += f"; listed in RogueApps ({', '.join(rogue.tags) or 'abused app'})"
        return (
            self.finding(
                event,
                summary=summary + risk_note(risk),
                severity=severity,
                dedup_key=f"{event.user_key}|{consent.app_id or name}",
                context={
                    "app_id": consent.app_id,
                    "app_display_name": consent.app_display_name,
                    "service_principal_id": consent.service_principal_id,
                    "scopes": list(consent.added_scopes),
                    "risky_scopes": list(risk_scopes.risky_scopes),
                    "scope_categories": sorted(risk_scopes.categories),
                    "offline_access": risk_scopes.offline_access,
                    "consent_type": consent.consent_type,
                    "is_admin_consent": consent.is_admin_consent,
                    "on_behalf_of_all": consent.on_behalf_of_all,
                    "rogue_app": None
                    if rogue is None
                    else {
                        "display_name": rogue.display_name,
                        "publisher": rogue.publisher,
                        "tags": list(rogue.tags),
                        "date_added": rogue.date_added,
                    },
                    "risk": risk_context(risk),
                },
            ),
        )
