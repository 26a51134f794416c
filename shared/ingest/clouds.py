"""Microsoft clouds for the Office 365 Management Activity API, and the endpoint guard.

Each tenant lives in one cloud, and the cloud decides three things: the API host, the Entra
authority that issues tokens, and the token audience (docs/management-activity-api.md §1):

==========  ===============================  ===========================  ========================================
cloud       API host                         token authority              scope
==========  ===============================  ===========================  ========================================
COMMERCIAL  manage.office.com                login.microsoftonline.com    https://manage.office.com/.default
GCC         manage-gcc.office.com            login.microsoftonline.com    https://manage-gcc.office.com/.default
GCC_HIGH    manage.office365.us              login.microsoftonline.us     https://manage.office365.us/.default
DOD         manage.protection.apps.mil       login.microsoftonline.us     https://manage.protection.apps.mil/.default
==========  ===============================  ===========================  ========================================

The government authorities and audiences are inferred (the doc marks them so): check them against a
live tenant before relying on them.

:class:`ApiEndpoint` is where requests go: the cloud's host in production, or the local emulator when
the ``ITDR_MANAGEMENT_API_BASE_URL`` setting gives one (the caller passes it in; this module reads no
environment). Every URL the client fetches, including ``NextPageUri`` values and ``contentUri`` values
from the API or a webhook notification, must have the endpoint's scheme, host and port
(:meth:`ApiEndpoint.same_origin`, :func:`is_allowed_content_uri`): a token is never sent anywhere else.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import unquote

import httpx

from shared.platform.errors import ConfigurationError

API_VERSION_PATH = "/api/v1.0"
"""Path prefix of every documented operation (REF's sample next-page URL says ``/api/v1``; it is followed as given)."""


class Cloud(StrEnum):
    """The Microsoft 365 cloud a tenant lives in (its "subscription plan" in REF)."""

    COMMERCIAL = "commercial"
    GCC = "gcc"
    GCC_HIGH = "gcc_high"
    DOD = "dod"


@dataclass(frozen=True, slots=True)
class CloudProfile:
    """Hosts and token audience of one cloud."""

    api_host: str
    """Host of the Management Activity API, e.g. ``manage.office.com``."""
    authority_host: str
    """Entra authority host for client-credential tokens, e.g. ``login.microsoftonline.com``."""
    audience: str
    """Token audience (v1 ``resource``), e.g. ``https://manage.office.com``."""

    @property
    def scope(self) -> str:
        """The v2 scope to request: ``{audience}/.default``."""
        return f"{self.audience}/.default"


_PROFILES: dict[Cloud, CloudProfile] = {
    Cloud.COMMERCIAL: CloudProfile("manage.office.com", "login.microsoftonline.com", "https://manage.office.com"),
    Cloud.GCC: CloudProfile("manage-gcc.office.com", "login.microsoftonline.com", "https://manage-gcc.office.com"),
    Cloud.GCC_HIGH: CloudProfile("manage.office365.us", "login.microsoftonline.us", "https://manage.office365.us"),
    Cloud.DOD: CloudProfile(
        "manage.protection.apps.mil", "login.microsoftonline.us", "https://manage.protection.apps.mil"
    ),
}


def cloud_profile(cloud: Cloud | str) -> CloudProfile:
    """The hosts and audience of ``cloud`` (a :class:`Cloud` or its value, e.g. ``"gcc_high"``)."""
    try:
        return _PROFILES[Cloud(cloud)]
    except ValueError as exc:
        raise ConfigurationError(f"unknown cloud {cloud!r}", reason="unknown_cloud") from exc


def normalize_tenant_id(tenant_id: str) -> str:
    """The tenant GUID in canonical lower-case form; ConfigurationError when it is not a GUID.

    The tenant id goes into URL paths, so anything but a GUID (AF20013) is refused here.
    """
    try:
        return str(uuid.UUID(tenant_id.strip()))
    except (ValueError, AttributeError) as exc:
        raise ConfigurationError("tenant id is not a GUID", reason="tenant_id_invalid", tenant=tenant_id) from exc


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


@dataclass(frozen=True, slots=True)
class ApiEndpoint:
    """Where Management Activity API requests go: scheme, host, port and an optional base path.

    ``base_path`` sits before ``/api/v1.0`` (empty for Microsoft and for the emulator).
    """

    scheme: str
    host: str
    port: int
    base_path: str = ""

    @classmethod
    def for_cloud(cls, cloud: Cloud | str) -> ApiEndpoint:
        """The production endpoint of ``cloud`` (HTTPS on port 443)."""
        return cls("https", cloud_profile(cloud).api_host, 443)

    @classmethod
    def parse(cls, base_url: str) -> ApiEndpoint:
        """An endpoint from a base URL such as ``http://127.0.0.1:8081`` (no query, no credentials)."""
        try:
            url = httpx.URL(base_url)
        except httpx.InvalidURL as exc:
            raise ConfigurationError("invalid Management API base URL", reason="invalid_base_url") from exc
        if url.scheme not in ("http", "https") or not url.host or url.query or url.fragment or url.userinfo:
            raise ConfigurationError(
                "Management API base URL must be http(s)://host[:port][/path]", reason="invalid_base_url"
            )
        return cls(url.scheme, url.host, url.port or _default_port(url.scheme), url.path.rstrip("/"))

    @property
    def origin(self) -> str:
        """``scheme://host[:port]`` (the port only when it is not the scheme's default)."""
        port = "" if self.port == _default_port(self.scheme) else f":{self.port}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}{port}"

    def tenant_root(self, tenant_id: str) -> str:
        """``{origin}{base_path}/api/v1.0/{tenant}/activity/feed`` (no trailing slash)."""
        return f"{self.origin}{self.base_path}{API_VERSION_PATH}/{normalize_tenant_id(tenant_id)}/activity/feed"

    def same_origin(self, url: str | httpx.URL) -> bool:
        """True when ``url`` has this endpoint's scheme, host and port and carries no credentials."""
        try:
            u = url if isinstance(url, httpx.URL) else httpx.URL(url)
        except (httpx.InvalidURL, TypeError):
            return False
        if u.userinfo:
            return False
        scheme = u.scheme.lower()
        port = u.port or _default_port(scheme)
        return scheme == self.scheme and u.host.lower() == self.host.lower() and port == self.port


def api_root(cloud: Cloud | str, tenant_id: str, *, endpoint: ApiEndpoint | None = None) -> str:
    """The API root of a tenant, e.g. ``https://manage.office.com/api/v1.0/{tenant}/activity/feed``.

    ``endpoint`` overrides the cloud's host (the local emulator).
    """
    return (endpoint or ApiEndpoint.for_cloud(cloud)).tenant_root(tenant_id)


def _has_dot_segments_or_encoded_separators(url: httpx.URL) -> bool:
    raw = url.raw_path.split(b"?", 1)[0].decode("ascii", "replace").lower()
    if "%2f" in raw or "%5c" in raw or "\\" in raw:
        return True
    return any(seg in (".", "..") for seg in unquote(raw).split("/"))


CONTENT_ID_PATTERN = re.compile(r"[A-Za-z0-9$_.-]{1,256}")
"""What a ``contentId`` may look like: the documented ids are ``$``-separated runs of letters, digits and
underscores (docs/management-activity-api.md §2); dots and hyphens are tolerated, nothing else."""

_CONTENT_TYPE_SEGMENTS = {
    "Audit_AzureActiveDirectory",
    "Audit_Exchange",
    "Audit_SharePoint",
    "Audit_General",
    "DLP_All",
}
"""Content types as they appear inside real content ids (``...$audit_general$Audit_General$emea9037``)."""


def content_id_of_uri(uri: str, *, tenant_id: str, endpoint: ApiEndpoint) -> str | None:
    """The content id a ``contentUri`` names, or None when the URI may not be fetched with this tenant's token.

    Allowed: the endpoint's scheme, host and port, and exactly the path
    ``{base_path}/api/v1.0/{tenant}/activity/feed/audit/{contentId}`` with a ``contentId`` matching
    :data:`CONTENT_ID_PATTERN` (no dot segments, no encoded slashes, no credentials, no fragment).
    Nothing else under the feed (``subscriptions/list`` answers carry the webhook's AuthID) is a blob.
    """
    try:
        url = httpx.URL(uri)
        tenant = normalize_tenant_id(tenant_id)
    except (httpx.InvalidURL, TypeError, ConfigurationError):
        return None
    if not endpoint.same_origin(url) or url.fragment or _has_dot_segments_or_encoded_separators(url):
        return None
    prefix = f"{endpoint.base_path}{API_VERSION_PATH}/{tenant}/activity/feed/audit/".lower()
    path = url.path
    if not path.lower().startswith(prefix):
        return None
    content_id = path[len(prefix) :]
    return content_id if CONTENT_ID_PATTERN.fullmatch(content_id) else None


def is_allowed_content_uri(uri: str, *, tenant_id: str, endpoint: ApiEndpoint) -> bool:
    """True when ``uri`` names a content blob of this tenant (see :func:`content_id_of_uri`)."""
    return content_id_of_uri(uri, tenant_id=tenant_id, endpoint=endpoint) is not None


def content_uri_matches(uri: str, *, tenant_id: str, endpoint: ApiEndpoint, content_id: str, content_type: str) -> bool:
    """True when ``uri`` is this tenant's blob URI of exactly ``content_id``, and the id does not name
    another content type (real ids carry theirs, e.g. ``$audit_general$Audit_General$``).

    A notification (or a queued ContentRef) whose ``contentId`` and ``contentUri`` disagree would let the
    content ledger mark one blob done with another's records: such pairs are refused.
    """
    named = content_id_of_uri(uri, tenant_id=tenant_id, endpoint=endpoint)
    if named is None or named != content_id:
        return False
    typed = {seg for seg in content_id.split("$") if seg in _CONTENT_TYPE_SEGMENTS}
    return not typed or typed == {content_type.replace(".", "_")}


def is_allowed_next_page_uri(uri: str, *, tenant_id: str, endpoint: ApiEndpoint) -> bool:
    """True when a ``NextPageUri`` value may be followed with this tenant's token.

    Same origin as the endpoint, and the path names this tenant's feed (``/{tenant}/activity/feed/``):
    REF's sample uses ``/api/v1/`` instead of ``/api/v1.0/``, so the version segment is not checked.
    """
    try:
        url = httpx.URL(uri)
        tenant = normalize_tenant_id(tenant_id)
    except (httpx.InvalidURL, TypeError, ConfigurationError):
        return False
    if not endpoint.same_origin(url) or url.fragment or _has_dot_segments_or_encoded_separators(url):
        return False
    return f"/{tenant}/activity/feed/subscriptions/content".lower() in url.path.lower()
