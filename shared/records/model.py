"""Typed audit records of the Office 365 Management Activity API.

`AuditRecord` mirrors the documented schema with schema-exact names (``ClientIP``,
``ErrorNumber``, ``ExtendedProperties``...). It is decoded straight from the API's JSON
with msgspec, skipping every field no detector reads, which is what keeps the hot path
faster than a plain ``orjson.loads``. Fields that real records send in several shapes
(``Parameters`` as a list or a JSON string, numbers as strings, booleans as "True") are
typed as unions and normalised by the accessors in :mod:`shared.records.event`.

Nested lists that only some detectors read (``Actor``, ``Target``, ``ExtendedProperties``,
``OperationProperties``, ``ModifiedProperties``, ``Parameters``) are kept as :class:`msgspec.Raw` (the JSON text,
not copied) and decoded on first use by the ``decode_*`` functions here, into the same
types: a typed view validated lazily. A value of the wrong shape decodes to ``None``, as a
mistyped field is dropped from an eagerly decoded record.

Unknown workloads and fields are kept: every parsed record carries its raw JSON bytes.
"""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

import msgspec


class NameValue(msgspec.Struct, gc=False):
    """One ``{"Name": ..., "Value": ...}`` pair (Parameters, ExtendedProperties, ...)."""

    Name: str | None = None
    Value: Any = None


class ModifiedProperty(msgspec.Struct, gc=False):
    Name: str | None = None
    NewValue: Any = None
    OldValue: Any = None


class IdentityRef(msgspec.Struct, gc=False):
    """An ``Actor`` or ``Target`` entry: an identifier and its IdentityType number."""

    ID: str | None = None
    Type: int | str | None = None


class FolderItem(msgspec.Struct, gc=False):
    """One message of a ``MailItemsAccessed`` folder: only counted, so none of its fields is decoded."""


class Folder(msgspec.Struct, gc=False):
    FolderItems: list[FolderItem] | None = None


class AppAccessContext(msgspec.Struct, gc=False):
    ClientAppId: str | None = None
    ClientAppName: str | None = None
    AADSessionId: str | None = None
    """The Entra sign-in session the app's token came from (the sign-in record's ``DeviceProperties`` SessionId)."""


class FolderRef(msgspec.Struct, gc=False):
    """A mailbox folder named by a mailbox-audit record (``Folder``, ``DestFolder``, an item's ``ParentFolder``)."""

    Path: str | None = None


class AffectedItem(msgspec.Struct, gc=False):
    """One message of a ``HardDelete`` / ``SoftDelete`` / ``MoveToDeletedItems`` record."""

    Subject: str | None = None
    ParentFolder: FolderRef | None = None


class CaPolicy(msgspec.Struct, gc=False):
    """One Conditional Access policy a sign-in was evaluated against (``appliedConditionalAccessPolicies``)."""

    id: str | None = None
    name: str | None = None
    result: str | None = None
    """``success``, ``failure``, ``notApplied``, ``notEnabled``, ``reportOnly...`` (Graph's names)."""
    grant_controls: list[str] | None = None


class AuthStep(msgspec.Struct, gc=False):
    """One step of a sign-in's authentication (``authenticationDetails``): the method and how it ended."""

    method: str | None = None
    succeeded: bool | None = None
    detail: str | None = None
    """``authenticationStepResultDetail``: "MFA successfully completed", "MFA denied; user declined the
    authentication", "MFA denied; user did not respond to mobile app notification"..."""


class SignInDetail(msgspec.Struct, gc=False):
    """What an Entra sign-in log entry says beyond the audit log's ``UserLoggedIn`` (see shared.records.signins).

    Kept on the record (``AuditRecord.SignIn``) of an event read from the sign-in logs (Graph ``signIn``, the
    diagnostic-settings categories, the Entra portal's downloads); None on audit-log records.
    """

    source: str = "graph"
    """``graph`` (a Graph ``signIn`` object or the portal's JSON download), ``diagnostic`` (diagnostic settings /
    Log Analytics), ``csv`` (the portal's CSV download)."""
    category: str = "interactive"
    """``interactive``, ``noninteractive``, ``serviceprincipal`` or ``managedidentity``."""
    request_id: str | None = None
    original_request_id: str | None = None
    correlation_id: str | None = None
    session_id: str | None = None
    unique_token_id: str | None = None
    is_interactive: bool | None = None
    error_code: int | None = None
    failure_reason: str | None = None
    additional_details: str | None = None
    ca_status: str | None = None
    """``success``, ``failure``, ``notApplied`` (Graph's ``conditionalAccessStatus``)."""
    ca_policies: list[CaPolicy] | None = None
    auth_requirement: str | None = None
    """``singleFactorAuthentication`` / ``multiFactorAuthentication``."""
    auth_steps: list[AuthStep] | None = None
    mfa_method: str | None = None
    mfa_detail: str | None = None
    device_id: str | None = None
    device_name: str | None = None
    device_compliant: bool | None = None
    device_managed: bool | None = None
    device_trust_type: str | None = None
    risk_level_during: str | None = None
    risk_level_aggregated: str | None = None
    risk_state: str | None = None
    risk_detail: str | None = None
    risk_event_types: list[str] | None = None
    token_issuer_type: str | None = None
    token_issuer_name: str | None = None
    cross_tenant_access_type: str | None = None
    home_tenant_id: str | None = None
    resource_tenant_id: str | None = None
    client_app_used: str | None = None
    authentication_protocol: str | None = None
    incoming_token_type: str | None = None
    app_display_name: str | None = None
    resource_display_name: str | None = None
    resource_id: str | None = None
    service_principal_id: str | None = None
    service_principal_name: str | None = None
    user_type: str | None = None
    country: str | None = None
    city: str | None = None
    flagged_for_review: bool | None = None
    audit_record_id: str | None = None
    """The ``Id`` of the audit-log record of the same sign-in, once the two were merged (one sign-in, one event)."""


NameValues = list[NameValue] | str | None
ParameterValues = list[NameValue | str] | dict[str, Any] | str | None
"""Exchange ``Parameters`` in every shape seen: Name/Value pairs, ``"Name:Value"`` strings, a ``{name: value}``
object, or one string (the JSON of any of these, or the cmdlet's command line)."""
NO_VALUE = msgspec.Raw()
"""The value of a lazily decoded field the record does not have."""


class AuditRecord(msgspec.Struct, gc=False):
    """One unified audit log record, with the fields m365-itdr reads."""

    # Common schema
    Id: str | None = None
    RecordType: int | str | None = None
    CreationTime: str | None = None
    Operation: str | None = None
    OrganizationId: str | None = None
    UserType: int | str | None = None
    UserKey: str | None = None
    ResultStatus: str | None = None
    ObjectId: str | None = None
    UserId: str | None = None
    ClientIP: str | None = None
    AppAccessContext: AppAccessContext | None = None

    # Azure Active Directory (sign-ins, directory changes, consent)
    ActorIpAddress: str | None = None
    ApplicationId: str | None = None
    Client: str | None = None
    ExtendedProperties: msgspec.Raw = NO_VALUE
    """``NameValues``: see `decode_name_values`."""
    DeviceProperties: NameValues = None
    ModifiedProperties: msgspec.Raw = NO_VALUE
    """``list[ModifiedProperty] | str | None``: see `decode_modified_properties`."""
    ErrorNumber: int | str | None = None
    ErrorCode: int | str | None = None
    LogonError: str | None = None
    IntraSystemId: str | None = None
    """The sign-in's request id (the sign-in log's ``id``) on ``UserLoggedIn`` / ``UserLoginFailed`` records."""
    InterSystemsId: str | None = None
    """The sign-in's correlation id on ``UserLoggedIn`` / ``UserLoginFailed`` records."""
    SignIn: SignInDetail | None = None
    """What the Entra sign-in log says of this sign-in (records read from the sign-in logs only)."""
    Actor: msgspec.Raw = NO_VALUE
    """``list[IdentityRef] | None``: see `decode_identities`."""
    Target: msgspec.Raw = NO_VALUE
    """``list[IdentityRef] | None``: see `decode_identities`."""

    # Exchange admin cmdlets and mailbox audit
    Parameters: msgspec.Raw = NO_VALUE
    """``ParameterValues``: see `decode_parameters`."""
    OperationProperties: msgspec.Raw = NO_VALUE
    """``NameValues``: see `decode_name_values`."""
    AppId: str | None = None
    ClientAppId: str | None = None
    ClientInfoString: str | None = None
    ClientIPAddress: str | None = None
    MailboxOwnerUPN: str | None = None
    Folders: list[Folder] | None = None
    SessionId: str | None = None
    Folder: msgspec.Raw = NO_VALUE
    """``FolderRef | None``: the folder of a mailbox-audit item operation; see `decode_folder`."""
    DestFolder: msgspec.Raw = NO_VALUE
    """``FolderRef | None``: where a move or copy put the items; see `decode_folder`."""
    AffectedItems: msgspec.Raw = NO_VALUE
    """``list[AffectedItem] | None``: the messages a delete or move touched; see `decode_affected_items`."""

    # SharePoint / OneDrive file operations and sharing
    SiteUrl: str | None = None
    UserAgent: str | None = None
    MachineId: str | None = None
    """The OneDrive sync client's machine (``FileSyncDownloadedFull`` / ``FileSyncUploadedFull``)."""
    TargetUserOrGroupName: str | None = None
    TargetUserOrGroupType: str | None = None
    """``Member``, ``Guest``, ``Group`` or ``Partner`` (SharePoint Sharing schema)."""

    # Security and Compliance alerts (RecordType 40): generic names, so kept raw and decoded by `decode_text`
    AlertId: msgspec.Raw = NO_VALUE
    AlertEntityId: msgspec.Raw = NO_VALUE
    EntityType: msgspec.Raw = NO_VALUE
    Name: msgspec.Raw = NO_VALUE
    Severity: msgspec.Raw = NO_VALUE
    Category: msgspec.Raw = NO_VALUE
    Status: msgspec.Raw = NO_VALUE
    Source: msgspec.Raw = NO_VALUE
    Data: msgspec.Raw = NO_VALUE
    """The alert's detail: a JSON object serialised as a string (short keys: ``f3u`` user, ``trc`` recipient...)."""


_RECORD_DECODER = msgspec.json.Decoder(AuditRecord, strict=False)
_RAW_LIST_DECODER = msgspec.json.Decoder(list[msgspec.Raw])


def decode_record(raw: bytes | msgspec.Raw) -> AuditRecord:
    """Decode one record; raises ``msgspec.ValidationError`` / ``msgspec.DecodeError``."""
    return _RECORD_DECODER.decode(raw)


def split_blob(data: bytes) -> list[msgspec.Raw]:
    """Split a content blob (a JSON array of records) into the raw bytes of each record."""
    return _RAW_LIST_DECODER.decode(data)


def convert_record(obj: dict[str, Any]) -> AuditRecord:
    """Convert an already-decoded mapping (CSV exports, lenient re-parse) into a record.

    Through JSON text, so the lazily decoded fields hold their JSON as from the API.
    """
    return _RECORD_DECODER.decode(msgspec.json.encode(obj))


_T = TypeVar("_T")
_IDENTITIES: msgspec.json.Decoder[list[IdentityRef] | None] = msgspec.json.Decoder(
    list[IdentityRef] | None, strict=False
)
_NAME_VALUES: msgspec.json.Decoder[NameValues] = msgspec.json.Decoder(NameValues, strict=False)
_PARAMETERS: msgspec.json.Decoder[ParameterValues] = msgspec.json.Decoder(ParameterValues, strict=False)
_MODIFIED: msgspec.json.Decoder[list[ModifiedProperty] | str | None] = msgspec.json.Decoder(
    list[ModifiedProperty] | str | None, strict=False
)


def _lazy(decoder: msgspec.json.Decoder[_T], raw: msgspec.Raw) -> _T | None:
    """A lazily decoded field: None when absent, or of a shape its type does not allow (the field is dropped)."""
    if not raw:
        return None
    try:
        return decoder.decode(raw)
    except msgspec.ValidationError:
        return None


def decode_identities(raw: msgspec.Raw) -> list[IdentityRef] | None:
    """``Actor`` / ``Target``: None when absent, null or not a list of identity objects."""
    return _lazy(_IDENTITIES, raw)


def decode_name_values(raw: msgspec.Raw) -> NameValues:
    """``Parameters`` / ``ExtendedProperties`` / ``OperationProperties``: the pairs, the JSON string they were
    sent as, or None."""
    return _lazy(_NAME_VALUES, raw)


_FOLDER: msgspec.json.Decoder[FolderRef | None] = msgspec.json.Decoder(FolderRef | None, strict=False)
_AFFECTED: msgspec.json.Decoder[list[AffectedItem] | None] = msgspec.json.Decoder(
    list[AffectedItem] | None, strict=False
)
_TEXT: msgspec.json.Decoder[str | int | float | bool | None] = msgspec.json.Decoder(
    str | int | float | bool | None, strict=False
)


def decode_folder(raw: msgspec.Raw) -> FolderRef | None:
    """``Folder`` / ``DestFolder``: None when absent or not a folder object."""
    return _lazy(_FOLDER, raw)


def decode_affected_items(raw: msgspec.Raw) -> list[AffectedItem] | None:
    """``AffectedItems``: None when absent or not a list of items."""
    return _lazy(_AFFECTED, raw)


def decode_text(raw: msgspec.Raw) -> str | None:
    """A scalar field kept raw (alert ``Name``, ``Severity``...): its text, None when absent or not a scalar."""
    got = _lazy(_TEXT, raw)
    if got is None:
        return None
    return got if isinstance(got, str) else str(got)


def decode_parameters(raw: msgspec.Raw) -> ParameterValues:
    """``Parameters``: the pairs (objects or ``"Name:Value"`` strings), a name-to-value object, the string they were
    sent as, or None."""
    return _lazy(_PARAMETERS, raw)


def decode_modified_properties(raw: msgspec.Raw) -> list[ModifiedProperty] | str | None:
    """``ModifiedProperties``: the entries, the JSON string they were sent as, or None."""
    return _lazy(_MODIFIED, raw)


SECURITY_ALERTS_USER = "SecurityComplianceAlerts"
"""``UserId`` and ``UserKey`` of every Security and Compliance alert record (RecordType 40)."""
_ALERT_SUBJECT_ENTITIES = frozenset({"user", "sender", "recipients", "mailbox"})


class AlertFields(Protocol):
    """The fields of a Security and Compliance alert record (an `AuditRecord`, or the cheap first look at one)."""

    @property
    def ObjectId(self) -> str | None: ...  # noqa: N802 - the record's field name

    @property
    def AlertEntityId(self) -> msgspec.Raw: ...  # noqa: N802

    @property
    def EntityType(self) -> msgspec.Raw: ...  # noqa: N802

    @property
    def Data(self) -> msgspec.Raw: ...  # noqa: N802


def alert_data(rec: AlertFields) -> dict[str, str]:
    """The alert's ``Data`` (a JSON object sent as a string) as text values; empty when absent or not an object."""
    text = decode_text(rec.Data)
    if not text:
        return {}
    try:
        got = msgspec.json.decode(text)
    except msgspec.DecodeError:
        return {}
    if not isinstance(got, dict):
        return {}
    return {
        str(k): v if isinstance(v, str) else msgspec.json.encode(v).decode() for k, v in got.items() if v is not None
    }


def alert_subject(rec: AlertFields) -> str | None:
    """The user (lower-case UPN) a Security and Compliance alert record is about, or None.

    In order: the entity of an ``AlertEntityGenerated`` record when it is an address (``AlertEntityId``, else
    ``ObjectId``; Splunk's public detection of these alerts reads the user from ``ObjectId``) and its
    ``EntityType`` is User, Sender, Recipients, Mailbox or absent; the alert data's ``f3u`` (the user of mail-flow
    alerts; key name not confirmed by a public sample); the data's ``trc`` (the recipient of a threat-protection
    alert, Sekoia's public samples).
    """
    entity_type = (decode_text(rec.EntityType) or "").strip().lower()
    entity = (decode_text(rec.AlertEntityId) or rec.ObjectId or "").strip()
    user = entity if "@" in entity and (not entity_type or entity_type in _ALERT_SUBJECT_ENTITIES) else ""
    if not user:
        data = alert_data(rec)
        user = data.get("f3u", "")
        if "@" not in user:
            user = data.get("trc", "")
    user = user.strip().lower()
    return user if "@" in user and " " not in user else None
