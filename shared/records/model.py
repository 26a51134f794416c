"""Typed audit records of the Office 365 Management Activity API.

`AuditRecord` mirrors the documented schema with schema-exact names (``ClientIP``,
``ErrorNumber``, ``ExtendedProperties``...). It is decoded straight from the API's JSON
with msgspec, skipping every field no detector reads, which is what keeps the hot path
faster than a plain ``orjson.loads``. Fields that real records send in several shapes
(``Parameters`` as a list or a JSON string, numbers as strings, booleans as "True") are
typed as unions and normalised by the accessors in :mod:`shared.records.event`.

Unknown workloads and fields are kept: every parsed record carries its raw JSON bytes.
"""

from __future__ import annotations

from typing import Any

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
    InternetMessageId: str | None = None
    SizeInBytes: int | str | None = None


class Folder(msgspec.Struct, gc=False):
    Path: str | None = None
    FolderItems: list[FolderItem] | None = None


class AppAccessContext(msgspec.Struct, gc=False):
    AADSessionId: str | None = None
    APIId: str | None = None
    ClientAppId: str | None = None
    ClientAppName: str | None = None
    CorrelationId: str | None = None
    UniqueTokenId: str | None = None


NameValues = list[NameValue] | str | None


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
    Workload: str | None = None
    ResultStatus: str | None = None
    ObjectId: str | None = None
    UserId: str | None = None
    ClientIP: str | None = None
    AppAccessContext: AppAccessContext | None = None

    # Azure Active Directory (sign-ins, directory changes, consent)
    ActorIpAddress: str | None = None
    ApplicationId: str | None = None
    Client: str | None = None
    ExtendedProperties: NameValues = None
    DeviceProperties: NameValues = None
    ModifiedProperties: list[ModifiedProperty] | str | None = None
    ErrorNumber: int | str | None = None
    ErrorCode: int | str | None = None
    LogonError: str | None = None
    Actor: list[IdentityRef] | None = None
    Target: list[IdentityRef] | None = None
    ActorContextId: str | None = None
    AzureActiveDirectoryEventType: int | str | None = None

    # Exchange admin cmdlets and mailbox audit
    Parameters: NameValues = None
    OperationProperties: NameValues = None
    ExternalAccess: bool | str | None = None
    AppId: str | None = None
    ClientAppId: str | None = None
    ClientInfoString: str | None = None
    ClientIPAddress: str | None = None
    MailboxOwnerUPN: str | None = None
    MailboxGuid: str | None = None
    LogonType: int | str | None = None
    OperationCount: int | str | None = None
    Folders: list[Folder] | None = None
    SessionId: str | None = None
    TokenObjectId: str | None = None
    TokenTenantId: str | None = None

    # SharePoint / OneDrive file operations
    SiteUrl: str | None = None
    SourceFileName: str | None = None
    SourceRelativeUrl: str | None = None
    UserAgent: str | None = None
    EventSource: str | None = None
    ItemType: str | None = None


_RECORD_DECODER = msgspec.json.Decoder(AuditRecord, strict=False)
_RAW_LIST_DECODER = msgspec.json.Decoder(list[msgspec.Raw])


def decode_record(raw: bytes | msgspec.Raw) -> AuditRecord:
    """Decode one record; raises ``msgspec.ValidationError`` / ``msgspec.DecodeError``."""
    return _RECORD_DECODER.decode(raw)


def split_blob(data: bytes) -> list[msgspec.Raw]:
    """Split a content blob (a JSON array of records) into the raw bytes of each record."""
    return _RAW_LIST_DECODER.decode(data)


def convert_record(obj: dict[str, Any]) -> AuditRecord:
    """Convert an already-decoded mapping (CSV exports, lenient re-parse) into a record."""
    return msgspec.convert(obj, AuditRecord, strict=False)
