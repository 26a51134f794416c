"""Entra ID sign-in logs, mapped to the unified audit record's sign-in shape.

The audit log's ``UserLoggedIn`` / ``UserLoginFailed`` records (RecordType 15) carry little of what identity
detections need; the sign-in logs carry the session, Conditional Access per policy, the MFA steps, the device,
Entra's own risk rating and the token issuer. They arrive in several shapes, all read here into the same record
the detectors already use (``Operation`` ``UserLoggedIn`` / ``UserLoginFailed``, ``ClientIP``, ``Actor``,
``ErrorNumber``, ``ExtendedProperties`` ``UserAgent`` / ``ClientAppUsed``, ``DeviceProperties`` ``SessionId``...)
plus the typed :class:`~shared.records.model.SignInDetail` in ``SignIn``:

- a Microsoft Graph ``signIn`` (``auditLogs/signIns``, v1.0 and beta names; also the Entra portal's JSON
  download, which is the beta shape): ``id``, ``createdDateTime``, ``status.errorCode``...;
- a diagnostic-settings entry (Event Hub / storage archive): ``time``, ``category`` (``SignInLogs``,
  ``NonInteractiveUserSignInLogs``, ``ServicePrincipalSignInLogs``, ``ManagedIdentitySignInLogs``),
  ``tenantId``, ``callerIpAddress`` and the sign-in itself in ``properties``;
- a Log Analytics ``SigninLogs`` / ``AADNonInteractiveUserSignInLogs`` / ``AADServicePrincipalSignInLogs`` row
  (Sentinel export): the same names in Pascal case (``TimeGenerated``, ``ResultType``, ``IPAddress``), nested
  columns as JSON text;
- a row of the Entra portal's CSV download (``Date (UTC)``, ``Request ID``, ``Session ID``...).

Names are matched without regard to case, so one reader serves the camel- and Pascal-case shapes. Service
principal and managed identity sign-ins become ``ServicePrincipalLoggedIn`` / ``ServicePrincipalLoginFailed``
(keyed by the service principal's object id), so user detectors never count them as a user's sign-ins.

The audit record of a sign-in names the same sign-in: its ``IntraSystemId`` is the sign-in log's request id
(``id``) and ``InterSystemsId`` its correlation id (an observation of live records; Microsoft's schema only calls
them GUIDs tracking the action). `signin_request_id` gives the request id of either, which is how the two are
merged into one event (``shared.detection.signin_merge``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

OP_USER_SUCCESS = "UserLoggedIn"
OP_USER_FAILED = "UserLoginFailed"
OP_SP_SUCCESS = "ServicePrincipalLoggedIn"
OP_SP_FAILED = "ServicePrincipalLoginFailed"
SP_SIGNIN_OPS = frozenset({"serviceprincipalloggedin", "serviceprincipalloginfailed"})
"""Normalised operations of service principal and managed identity sign-ins."""

DIAGNOSTIC_CATEGORIES = {
    "signinlogs": "interactive",
    "noninteractiveusersigninlogs": "noninteractive",
    "serviceprincipalsigninlogs": "serviceprincipal",
    "managedidentitysigninlogs": "managedidentity",
    # Log Analytics table names (a Sentinel export's ``Type`` column)
    "aadnoninteractiveusersigninlogs": "noninteractive",
    "aadserviceprincipalsigninlogs": "serviceprincipal",
    "aadmanagedidentitysigninlogs": "managedidentity",
}
_EVENT_TYPES = {
    "interactiveuser": "interactive",
    "noninteractiveuser": "noninteractive",
    "serviceprincipal": "serviceprincipal",
    "managedidentity": "managedidentity",
}
_RISK_DURING = "riskLevelDuringSignIn".lower()
_MACHINE = frozenset({"serviceprincipal", "managedidentity"})


def _lower(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The object's keys lower-cased (``SigninLogs`` columns and Graph names then read alike); a CSV column's
    `` [UTC]`` suffix dropped."""
    return {str(k).split(" [", 1)[0].strip().lower(): v for k, v in obj.items()}


def _nested(value: Any) -> Any:
    """A nested value as an object or list: Log Analytics exports send ``dynamic`` columns as JSON text."""
    if isinstance(value, str):
        text = value.strip()
        if text[:1] in ("{", "["):
            try:
                return orjson.loads(text)
            except orjson.JSONDecodeError:
                return None
        return None
    return value


def _obj(value: Any) -> dict[str, Any]:
    got = _nested(value)
    return _lower(got) if isinstance(got, dict) else {}


def _list(value: Any) -> list[Any]:
    got = _nested(value)
    return got if isinstance(got, list) else []


def _str(value: Any) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    text = str(value).strip()
    return text or None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    text = _str(value)
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        return None


def _bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    text = (_str(value) or "").lower()
    if text in ("true", "yes", "1"):
        return True
    if text in ("false", "no", "0"):
        return False
    return None


def _first(obj: Mapping[str, Any], *names: str) -> Any:
    for name in names:
        v = obj.get(name)
        if v not in (None, ""):
            return v
    return None


def is_signin(obj: Mapping[str, Any]) -> bool:
    """True when a decoded object is a sign-in log entry in one of the shapes above."""
    low = _lower(obj)
    category = str(low.get("category") or low.get("type") or "").strip().lower()
    if category in DIAGNOSTIC_CATEGORIES and ("properties" in low or "resulttype" in low or "ipaddress" in low):
        return True
    if "auditdata" in low or "operation" in low or "creationtime" in low:
        return False
    has_time = "createddatetime" in low or "timegenerated" in low
    who = any(k in low for k in ("userprincipalname", "appid", "serviceprincipalid"))
    how = any(k in low for k in ("conditionalaccessstatus", "clientappused", "ipaddress", _RISK_DURING))
    return has_time and who and how


def map_signin(obj: Mapping[str, Any]) -> dict[str, Any] | None:
    """The audit record (as a JSON-ready dict) one sign-in log entry makes, or None when it is not one."""
    if not is_signin(obj):
        return None
    top = _lower(obj)
    props = _obj(top.get("properties"))
    category = DIAGNOSTIC_CATEGORIES.get(str(top.get("category") or top.get("type") or "").strip().lower())
    source = "diagnostic" if props or "timegenerated" in top or "resulttype" in top else "graph"
    p = {**top, **props} if props else top
    status = _obj(p.get("status"))
    error = _int(_first(status, "errorcode"))
    if error is None:
        error = _int(_first(p, "resulttype", "errorcode"))
    failure = _str(_first(status, "failurereason")) or _str(p.get("resultdescription"))
    details = _str(_first(status, "additionaldetails"))
    time = _str(_first(p, "createddatetime")) or _str(_first(top, "time", "timegenerated"))
    device = _obj(p.get("devicedetail"))
    location = _obj(p.get("location")) or _obj(p.get("locationdetails"))
    mfa = _obj(p.get("mfadetail"))
    steps = [
        {
            "method": _str(s.get("authenticationmethod")),
            "succeeded": _bool(s.get("succeeded")),
            "detail": _str(s.get("authenticationstepresultdetail")),
        }
        for s in (_lower(x) for x in _list(p.get("authenticationdetails")) if isinstance(x, dict))
    ]
    policies = [
        {
            "id": _str(c.get("id")),
            "name": _str(c.get("displayname")),
            "result": _str(c.get("result")),
            "grant_controls": [str(g) for g in _list(c.get("enforcedgrantcontrols"))] or None,
        }
        for c in (
            _lower(x)
            for x in _list(_first(p, "appliedconditionalaccesspolicies", "conditionalaccesspolicies"))
            if isinstance(x, dict)
        )
    ]
    event_types = [str(t).strip().lower() for t in _list(p.get("signineventtypes"))]
    if category is None:
        category = next((_EVENT_TYPES[t] for t in event_types if t in _EVENT_TYPES), None)
    interactive = _bool(p.get("isinteractive"))
    upn = _str(p.get("userprincipalname"))
    sp_id = _str(p.get("serviceprincipalid"))
    if category is None:
        if sp_id and not upn:
            category = "serviceprincipal"
        else:
            category = "noninteractive" if interactive is False else "interactive"
    risk_types = _list(_first(p, "riskeventtypes_v2", "riskeventtypes"))
    if not risk_types:
        text = _str(_first(p, "riskeventtypes_v2", "riskeventtypes"))
        risk_types = [t.strip() for t in text.split(",")] if text else []
    detail = {
        "source": source,
        "category": category,
        "request_id": _str(p.get("id")),
        "original_request_id": _str(p.get("originalrequestid")),
        "correlation_id": _str(p.get("correlationid")),
        "session_id": _str(p.get("sessionid")),
        "unique_token_id": _str(p.get("uniquetokenidentifier")),
        "is_interactive": interactive if interactive is not None else category == "interactive",
        "error_code": error,
        "failure_reason": failure,
        "additional_details": details,
        "ca_status": _str(p.get("conditionalaccessstatus")),
        "ca_policies": policies or None,
        "auth_requirement": _str(p.get("authenticationrequirement")),
        "auth_steps": steps or None,
        "mfa_method": _str(mfa.get("authmethod")),
        "mfa_detail": _str(mfa.get("authdetail")),
        "device_id": _str(device.get("deviceid")),
        "device_name": _str(device.get("displayname")),
        "device_compliant": _bool(device.get("iscompliant")),
        "device_managed": _bool(device.get("ismanaged")),
        "device_trust_type": _str(device.get("trusttype")),
        "risk_level_during": _str(p.get(_RISK_DURING)),
        "risk_level_aggregated": _str(p.get("risklevelaggregated")),
        "risk_state": _str(p.get("riskstate")),
        "risk_detail": _str(p.get("riskdetail")),
        "risk_event_types": [str(t) for t in risk_types if str(t).strip()] or None,
        "token_issuer_type": _str(p.get("tokenissuertype")),
        "token_issuer_name": _str(p.get("tokenissuername")),
        "cross_tenant_access_type": _str(p.get("crosstenantaccesstype")),
        "home_tenant_id": _str(p.get("hometenantid")),
        "resource_tenant_id": _str(p.get("resourcetenantid")),
        "client_app_used": _str(p.get("clientappused")),
        "authentication_protocol": _str(p.get("authenticationprotocol")),
        "incoming_token_type": _str(p.get("incomingtokentype")),
        "app_display_name": _str(p.get("appdisplayname")),
        "resource_display_name": _str(p.get("resourcedisplayname")),
        "resource_id": _str(p.get("resourceid")),
        "service_principal_id": sp_id,
        "service_principal_name": _str(p.get("serviceprincipalname")),
        "user_type": _str(p.get("usertype")),
        "country": _str(location.get("countryorregion")),
        "city": _str(location.get("city")),
        "flagged_for_review": _bool(p.get("flaggedforreview")),
    }
    return _record(
        detail,
        rid=_str(_first(p, "id", "originalrequestid", "uniquetokenidentifier")),
        time=time,
        tenant=_str(_first(p, "tenantid", "resourcetenantid", "aadtenantid", "hometenantid")),
        upn=upn,
        user_id=_str(p.get("userid")),
        ip=_str(_first(p, "ipaddress", "calleripaddress")),
        app_id=_str(p.get("appid")),
        user_agent=_str(p.get("useragent")),
        os=_str(device.get("operatingsystem")),
        browser=_str(device.get("browser")),
        transfer_method=_str(p.get("originaltransfermethod")),
    )


def _record(
    detail: dict[str, Any],
    *,
    rid: str | None,
    time: str | None,
    tenant: str | None,
    upn: str | None,
    user_id: str | None,
    ip: str | None,
    app_id: str | None,
    user_agent: str | None,
    os: str | None,
    browser: str | None,
    transfer_method: str | None = None,
) -> dict[str, Any]:
    """The audit record of one sign-in: the sign-in fields the detectors read, and ``SignIn``."""
    error = detail["error_code"]
    ok = not error
    machine = detail["category"] in _MACHINE
    if machine:
        op = OP_SP_SUCCESS if ok else OP_SP_FAILED
        sp = detail["service_principal_id"] or user_id
        actor = [{"ID": sp, "Type": 0}] if sp else []
        user = detail["service_principal_name"] or sp
    else:
        op = OP_USER_SUCCESS if ok else OP_USER_FAILED
        actor = [a for a in ({"ID": user_id, "Type": 0}, {"ID": upn, "Type": 5}) if a["ID"]]
        user = upn or user_id
    ext = [
        {"Name": name, "Value": value}
        for name, value in (
            ("UserAgent", user_agent),
            ("ClientAppUsed", detail["client_app_used"]),
            ("AuthenticationProtocol", _named(detail["authentication_protocol"])),
            ("OriginalTransferMethod", _named(transfer_method)),
            ("ResultStatusDetail", "Success" if ok else detail["failure_reason"]),
        )
        if value
    ]
    dev = [
        {"Name": name, "Value": value}
        for name, value in (
            ("Id", detail["device_id"]),
            ("DisplayName", detail["device_name"]),
            ("OS", os),
            ("BrowserType", browser),
            ("IsCompliant", _text_bool(detail["device_compliant"])),
            ("IsCompliantAndManaged", _text_bool(detail["device_managed"])),
            ("TrustType", detail["device_trust_type"]),
            ("SessionId", detail["session_id"]),
        )
        if value
    ]
    rec: dict[str, Any] = {
        "Id": rid,
        "CreationTime": time,
        "Operation": op,
        "OrganizationId": tenant,
        "RecordType": 15,
        "Workload": "AzureActiveDirectory",
        "ResultStatus": "Success" if ok else "Failed",
        "UserId": user,
        "ClientIP": ip,
        "ApplicationId": app_id,
        "ObjectId": detail["resource_id"],
        "ErrorNumber": error if error is not None else 0,
        "LogonError": detail["failure_reason"] if not ok else None,
        "Actor": actor,
        "ExtendedProperties": ext,
        "DeviceProperties": dev,
        "IntraSystemId": detail["request_id"],
        "InterSystemsId": detail["correlation_id"],
        "SignIn": {k: v for k, v in detail.items() if v is not None},
    }
    return {k: v for k, v in rec.items() if v is not None}


def _named(value: str | None) -> str | None:
    """A protocol or transfer method the access classifier can use: Graph's ``none`` (any other protocol) is none."""
    return None if value is None or value.strip().lower() in ("none", "") else value


def _text_bool(value: bool | None) -> str | None:
    return None if value is None else ("True" if value else "False")


# --- the Entra portal's CSV download ---------------------------------------------------------------------

CSV_MARKERS = frozenset({"request id", "correlation id"})
"""Columns every sign-in CSV download of the Entra portal has (with ``Date (UTC)`` or ``Date``)."""
_CSV_STATUS_OK = frozenset({"success"})
_CSV_CA = {"success": "success", "failure": "failure", "not applied": "notApplied", "notapplied": "notApplied"}


def is_signin_csv(columns: list[str]) -> bool:
    """True for the header of an Entra portal sign-in CSV download."""
    low = {c.strip().lower() for c in columns}
    return low >= CSV_MARKERS and bool({"date (utc)", "date", "created date"} & low)


def map_signin_csv(row: Mapping[str, str], *, file_name: str = "") -> dict[str, Any] | None:
    """The audit record of one row of the portal's CSV download (column names as the portal writes them)."""
    c = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k}
    name = file_name.lower()
    if "serviceprincipal" in name or c.get("service principal id"):
        category = "serviceprincipal"
    elif "msisignins" in name or "managedidentity" in name or c.get("managed identity type"):
        category = "managedidentity"
    elif "noninteractive" in name:
        category = "noninteractive"
    else:
        category = "interactive"
    status = c.get("status", "").lower()
    error = _int(c.get("sign-in error code"))
    if error is None:
        error = 0 if status in _CSV_STATUS_OK else None
    where = [part.strip() for part in c.get("location", "").split(",") if part.strip()]
    mfa_result = c.get("multifactor authentication result") or None
    mfa_method = c.get("multifactor authentication auth method") or None
    steps = [{"method": mfa_method, "succeeded": None, "detail": mfa_result}] if mfa_result or mfa_method else []
    ca = c.get("conditional access", "")
    detail = {
        "source": "csv",
        "category": category,
        "request_id": c.get("request id") or None,
        "original_request_id": None,
        "correlation_id": c.get("correlation id") or None,
        "session_id": c.get("session id") or None,
        "unique_token_id": c.get("unique token identifier") or None,
        "is_interactive": category == "interactive",
        "error_code": error,
        "failure_reason": c.get("failure reason") or None,
        "additional_details": c.get("additional details") or None,
        "ca_status": _CSV_CA.get(ca.lower(), ca or None),
        "ca_policies": None,
        "auth_requirement": _requirement(c.get("authentication requirement", "")),
        "auth_steps": steps or None,
        "mfa_method": mfa_method,
        "mfa_detail": c.get("multifactor authentication auth detail") or None,
        "device_id": c.get("device id") or None,
        "device_name": None,
        "device_compliant": _bool(c.get("compliant")),
        "device_managed": _bool(c.get("managed")),
        "device_trust_type": c.get("join type") or None,
        "risk_level_during": None,
        "risk_level_aggregated": None,
        "risk_state": None,
        "risk_detail": None,
        "risk_event_types": None,
        "token_issuer_type": c.get("token issuer type") or None,
        "token_issuer_name": c.get("token issuer name") or None,
        "cross_tenant_access_type": c.get("cross tenant access type") or None,
        "home_tenant_id": c.get("home tenant id") or None,
        "resource_tenant_id": c.get("resource tenant id") or None,
        "client_app_used": c.get("client app") or None,
        "authentication_protocol": c.get("authentication protocol") or None,
        "incoming_token_type": c.get("incoming token type") or None,
        "app_display_name": c.get("application") or None,
        "resource_display_name": c.get("resource") or None,
        "resource_id": c.get("resource id") or None,
        "service_principal_id": c.get("service principal id") or None,
        "service_principal_name": c.get("service principal name") or None,
        "user_type": c.get("user type") or None,
        "country": where[-1] if where else None,
        "city": where[0] if len(where) > 1 else None,
        "flagged_for_review": _bool(c.get("flagged for review")),
    }
    return _record(
        detail,
        rid=c.get("request id") or c.get("unique token identifier") or None,
        time=c.get("date (utc)") or c.get("date") or c.get("created date") or None,
        tenant=c.get("resource tenant id") or c.get("home tenant id") or None,
        upn=c.get("username") or None,
        user_id=c.get("user id") or None,
        ip=c.get("ip address") or None,
        app_id=c.get("application id") or None,
        user_agent=c.get("user agent") or None,
        os=c.get("operating system") or None,
        browser=c.get("browser") or None,
        transfer_method=c.get("original transfer method") or None,
    )


def _requirement(text: str) -> str | None:
    low = text.strip().lower()
    if not low:
        return None
    if "multi" in low:
        return "multiFactorAuthentication"
    if "single" in low:
        return "singleFactorAuthentication"
    return text.strip()
