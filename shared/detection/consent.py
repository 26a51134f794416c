"""Typed views of Entra consent and permission records, and how risky their scopes are.

"Consent to application." records carry everything as text in ``ModifiedProperties``:

* ``ConsentContext.IsAdminConsent`` / ``IsAppOnly`` / ``OnBehalfOfAll`` ("True"/"False");
* ``ConsentAction.Permissions``: ``[] => [[Id: …, ClientId: <sp id>, PrincipalId: <user id>,
  ResourceId: <resource sp id>, ConsentType: Principal|AllPrincipals, Scope: Mail.Read offline_access,
  CreatedDateTime: , LastModifiedDateTime ]]`` (old grants left of ``=>``, the new state right of it);
* ``TargetId.ServicePrincipalNames``: the app id first, then its URIs.

`consent_from_event` parses them into a `Consent`; `scope_risk` judges a scope list the same way for
consents, delegated permission grants and app-role assignments. `app_target` reads the app a
directory record is about (display name, app id, service principal id) from ``Target`` by type.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import orjson

from shared.records.event import Event, as_bool, is_guid

CONSENT_OP = "consent to application"
_GRANT = re.compile(r"\[\s*(Id\s*:[^\[\]]*)\]", re.I)
_PAIR = re.compile(r"(\w+)\s*:\s*([^,\]]*)")
_GUID_IN = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


@dataclass(frozen=True, slots=True)
class PermissionGrant:
    """One OAuth2 permission grant as rendered in ``ConsentAction.Permissions``."""

    grant_id: str | None
    client_id: str | None
    principal_id: str | None
    resource_id: str | None
    consent_type: str | None
    scopes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Consent:
    """A consent to an application: which app, which scopes, for whom."""

    app_id: str | None
    app_display_name: str | None
    service_principal_id: str | None
    scopes: tuple[str, ...]
    """Every scope of the grants after the consent."""
    added_scopes: tuple[str, ...]
    """Scopes that were not granted before this consent."""
    consent_type: str | None
    """``Principal`` (one user) or ``AllPrincipals`` (the whole tenant)."""
    is_admin_consent: bool
    on_behalf_of_all: bool
    is_app_only: bool
    grants: tuple[PermissionGrant, ...]
    tags: tuple[str, ...] = ()

    @property
    def tenant_wide(self) -> bool:
        return self.on_behalf_of_all or (self.consent_type or "").lower() == "allprincipals"


def _split_scopes(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(s for s in re.split(r"[\s,;]+", text.strip()) if s))


def parse_permission_grants(text: str) -> tuple[PermissionGrant, ...]:
    """Grants in one side of a ``ConsentAction.Permissions`` value (tolerant of missing keys)."""
    grants: list[PermissionGrant] = []
    for m in _GRANT.finditer(text):
        fields = {k.lower(): v.strip() for k, v in _PAIR.findall(m.group(1))}
        grants.append(
            PermissionGrant(
                grant_id=fields.get("id") or None,
                client_id=(fields.get("clientid") or "").lower() or None,
                principal_id=(fields.get("principalid") or "").lower() or None,
                resource_id=(fields.get("resourceid") or "").lower() or None,
                consent_type=fields.get("consenttype") or None,
                scopes=_split_scopes(fields.get("scope", "")),
            )
        )
    return tuple(grants)


def parse_permissions(value: str) -> tuple[tuple[PermissionGrant, ...], tuple[PermissionGrant, ...]]:
    """(grants before, grants after) of a ``ConsentAction.Permissions`` text (``old => new``)."""
    if "=>" in value:
        old, _, new = value.partition("=>")
        return parse_permission_grants(old), parse_permission_grants(new)
    return (), parse_permission_grants(value)


def _flat_scopes(grants: Iterable[PermissionGrant]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(s for g in grants for s in g.scopes))


@dataclass(frozen=True, slots=True)
class AppTarget:
    """The application a directory record is about."""

    display_name: str | None
    app_id: str | None
    service_principal_id: str | None


def _additional_details_app_id(ev: Event) -> str | None:
    details = ev.extended_properties.get("additionaldetails")
    if not details:
        return None
    try:
        decoded = orjson.loads(details)
    except orjson.JSONDecodeError:
        return None
    if isinstance(decoded, dict):
        for k, v in decoded.items():
            if str(k).lower() == "appid" and isinstance(v, str) and is_guid(v):
                return v.lower()
    return None


def app_target(ev: Event) -> AppTarget:
    """Display name, app id and service principal id of the app in ``Target``/``ModifiedProperties``."""
    name: str | None = None
    app_id: str | None = None
    sp_id: str | None = None
    other_guids: list[str] = []
    for t in ev.targets:
        ident = (t.ID or "").strip()
        typ = str(t.Type) if t.Type is not None else ""
        if not ident:
            continue
        if ident.lower().startswith(("serviceprincipal_", "application_")):
            tail = ident.split("_", 1)[1]
            if is_guid(tail) and sp_id is None:
                sp_id = tail.lower()
            continue
        if typ == "1" and name is None and ident.lower() not in ("serviceprincipal", "application"):
            name = ident
        elif typ == "4" and is_guid(ident) and app_id is None:
            app_id = ident.lower()
        elif typ == "2" and is_guid(ident):
            if sp_id is None:
                sp_id = ident.lower()
            elif ident.lower() != sp_id:
                other_guids.append(ident.lower())
    mp = ev.modified_properties
    if app_id is None:
        for key in ("targetid.serviceprincipalnames", "serviceprincipal.appid", "application.appid", "appid"):
            got = _GUID_IN.search(mp.get(key, ("", ""))[1])
            if got:
                app_id = got.group(0).lower()
                break
    if app_id is None:
        app_id = _additional_details_app_id(ev)
    if app_id is None and other_guids:
        app_id = other_guids[0]
    if name is None:
        for key in ("serviceprincipal.displayname", "application.displayname", "displayname"):
            v = mp.get(key, ("", ""))[1].strip().strip('"[]').strip('"')
            if v:
                name = v
                break
    if sp_id is None:
        got = _GUID_IN.search(mp.get("serviceprincipal.objectid", ("", ""))[1])
        if got:
            sp_id = got.group(0).lower()
        elif is_guid((ev.record.ObjectId or "").strip()):
            sp_id = (ev.record.ObjectId or "").strip().lower()
    return AppTarget(name, app_id, sp_id)


def consent_from_event(ev: Event) -> Consent | None:
    """The consent a "Consent to application." record grants, or None for other operations."""
    if ev.op != CONSENT_OP:
        return None
    mp = ev.modified_properties
    old_grants, new_grants = parse_permissions(mp.get("consentaction.permissions", ("", ""))[1])
    scopes = _flat_scopes(new_grants)
    before = set(_flat_scopes(old_grants))
    added = tuple(s for s in scopes if s not in before)
    types = {g.consent_type for g in new_grants if g.consent_type}
    consent_type = "AllPrincipals" if any(t.lower() == "allprincipals" for t in types) else next(iter(types), None)
    target = app_target(ev)
    tags = tuple(t for t in re.split(r"[\s,;]+", mp.get("consentcontext.tags", ("", ""))[1].strip('[]" ')) if t)
    return Consent(
        app_id=target.app_id,
        app_display_name=target.display_name,
        service_principal_id=target.service_principal_id,
        scopes=scopes,
        added_scopes=added,
        consent_type=consent_type,
        is_admin_consent=bool(as_bool(mp.get("consentcontext.isadminconsent", ("", ""))[1].strip('"'))),
        on_behalf_of_all=bool(as_bool(mp.get("consentcontext.onbehalfofall", ("", ""))[1].strip('"'))),
        is_app_only=bool(as_bool(mp.get("consentcontext.isapponly", ("", ""))[1].strip('"'))),
        grants=new_grants,
        tags=tags,
    )


# Scope risk ---------------------------------------------------------------------------------------

_CATEGORY_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("role_management", re.compile(r"^rolemanagement\.", re.I)),
    ("app_management", re.compile(r"^(?:application|approleassignment)\.readwrite", re.I)),
    ("exchange_app", re.compile(r"^(?:full_access_as_app|exchange\.manageasapp)$", re.I)),
    ("directory", re.compile(r"^(?:directory\.|user\.readwrite\.all$|group\.readwrite\.all$)", re.I)),
    (
        "mail",
        re.compile(
            r"^(?:mail\.|mailboxsettings\.|ews\.accessasuser\.all$|imap\.accessasuser\.all$|"
            r"pop\.accessasuser\.all$|smtp\.send$|full_access_as_user$|exchangeonline\.)",
            re.I,
        ),
    ),
    ("files", re.compile(r"^(?:files\.|sites\.)", re.I)),
)
_WRITE_WORDS = ("readwrite", "send", "fullcontrol", "full_access", "manage", "accessasuser")
CRITICAL_CATEGORIES = frozenset({"role_management", "app_management", "exchange_app"})


@dataclass(frozen=True, slots=True)
class ScopeRisk:
    """Which scopes of a grant matter, and how much."""

    risky_scopes: tuple[str, ...]
    categories: frozenset[str]
    offline_access: bool
    writes: bool
    """Any risky scope that can change or send (``ReadWrite``, ``Send``, ``FullControl``, ``full_access``,
    ``AccessAsUser``)."""

    @property
    def risky(self) -> bool:
        return bool(self.risky_scopes)

    @property
    def level(self) -> int:
        """0 none, 1 read access to mail/files/directory, 2 persistent or write access, 3 tenant takeover."""
        if not self.risky_scopes:
            return 0
        if self.categories & CRITICAL_CATEGORIES or (
            "directory" in self.categories
            and any(
                w in s.lower() for s in self.risky_scopes if s.lower().startswith("directory.") for w in _WRITE_WORDS
            )
        ):
            return 3
        if self.writes or self.offline_access:
            return 2
        return 1


def scope_category(scope: str) -> str | None:
    """The risk category of one scope (mail, files, directory, role_management, app_management, exchange_app)."""
    s = scope.strip()
    return next((name for name, rx in _CATEGORY_PATTERNS if rx.search(s)), None)


def scope_risk(scopes: Iterable[str]) -> ScopeRisk:
    """Judge a scope list: mail, files, directory, role-management and app-management scopes are risky;
    ``offline_access`` is not on its own but makes risky scopes persistent."""
    risky: list[str] = []
    cats: set[str] = set()
    offline = False
    writes = False
    for scope in scopes:
        s = scope.strip()
        if not s:
            continue
        if s.lower() == "offline_access":
            offline = True
            continue
        cat = scope_category(s)
        if cat is None:
            continue
        risky.append(s)
        cats.add(cat)
        low = s.lower()
        if any(w in low for w in _WRITE_WORDS):
            writes = True
    return ScopeRisk(tuple(dict.fromkeys(risky)), frozenset(cats), offline and bool(risky), writes)
