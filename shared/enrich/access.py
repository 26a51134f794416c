"""How a record's client reached Microsoft 365: app, user agent, protocol and mailbox access path.

`classify_access(event)` turns the client application id, the user agent, the sign-in request
type and, for mailbox records, ``ClientInfoString`` into one frozen `AccessMethod`. Detectors read
``event.access`` to tell a browser from Azure CLI, Graph PowerShell, a python script or an attack
tool, ROPC or device-code sign-ins from modern ones, and Graph/EWS mailbox access from Outlook.

Sources:

* client application ids: Microsoft's first-party applications (only ids known for certain; an
  unknown id is reported as such, never guessed);
* user agents: browsers with their OS, Microsoft clients (Outlook, Teams), scripting libraries
  (python-requests, axios, aiohttp, Go-http-client, curl, PowerShell...), the defaults of
  attack tools (AzureHound's ``azurehound/<version>``, GraphRunner/TokenTactics' forged
  EdgeHTML 18 agent, TeamFiltration's Teams 1.3.00.24755 Electron agent, ROADtools names) and
  ``BAV2ROPC`` (the resource-owner password flow used by legacy/basic clients);
* protocol: ROPC (UA ``BAV2ROPC``), device code (``RequestType`` ``Cmsi:Cmsi``, or a
  ``deviceCode`` protocol / transfer method where the record carries one), legacy clients
  (``Client``/``ClientAppUsed`` values such as IMAP4, POP3, Authenticated SMTP; IMAP/POP mailbox
  access);
* mailbox path from ``ClientInfoString``: ``Client=REST`` (Graph/Outlook REST), ``Client=OWA``,
  ``Client=MSExchangeRPC`` (Outlook), ``Client=WebServices`` (EWS), ActiveSync, IMAP4/POP3.

The classifier runs once per routed record, so the string work is cached on the strings that
decide it (app id, user agent, client info and request fields); the result depends on nothing
else, so the cache holds no tenant data.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

from shared.records.apps import KNOWN_APPS
from shared.records.event import Event, name_values
from shared.records.model import NameValue

CLIENT_KINDS: Final = frozenset(
    {
        "browser",
        "office",
        "outlook",
        "teams",
        "mobile_app",
        "azure_cli",
        "azure_powershell",
        "graph_powershell",
        "graph_explorer",
        "aad_powershell",
        "sdk",
        "attack_tool",
        "script",
        "legacy",
        "unknown",
    }
)
PROTOCOLS: Final = frozenset({"modern", "ropc", "device_code", "legacy", "unknown"})
VIAS: Final = frozenset({"graph", "ews", "rest", "owa", "outlook", "activesync", "imap", "pop", "smtp", "unknown"})
PUBLIC_CLIENT_KINDS: Final = frozenset(
    {
        "azure_cli",
        "azure_powershell",
        "graph_powershell",
        "graph_explorer",
        "aad_powershell",
        "sdk",
        "script",
        "attack_tool",
    }
)
"""Kinds that are command-line, PowerShell, SDK or scripted clients rather than an end-user app."""

GRAPH_RESOURCE_ID: Final = "00000003-0000-0000-c000-000000000000"
EXCHANGE_RESOURCE_ID: Final = "00000002-0000-0ff1-ce00-000000000000"


@dataclass(frozen=True, slots=True)
class AccessMethod:
    """The client and path of one record (see the module docstring for the vocabularies)."""

    client_app_id: str | None
    client_app_name: str | None
    client_kind: str
    os: str | None
    browser: str | None
    user_agent_family: str | None
    tool: str | None
    protocol: str
    is_public_client_tool: bool
    via: str


# User agents -------------------------------------------------------------------------------------

_EXACT_TOOL_UAS: Final[dict[str, str]] = {
    # GraphRunner / TokenTactics Invoke-ForgeUserAgent default (Windows, EdgeHTML 18; retired in 2021).
    "mozilla/5.0 (windows nt 10.0; win64; x64) applewebkit/537.36 (khtml, like gecko) chrome/70.0.3538.102 "
    "safari/537.36 edge/18.19042": "GraphRunner",
    # TeamFiltration (and AADInternals' Teams functions): a Teams 1.3 classic Electron 4 agent.
    "mozilla/5.0 (windows nt 10.0; win64; x64) applewebkit/537.36 (khtml, like gecko) teams/1.3.00.24755 "
    "chrome/69.0.3497.128 electron/4.2.12 safari/537.36": "TeamFiltration",
}
_TOOL_PATTERNS: Final = (
    ("AzureHound", re.compile(r"azurehound", re.I)),
    ("ROADtools", re.compile(r"\broad(?:tools|recon|tx|lib)\b", re.I)),
    ("GraphRunner", re.compile(r"graphrunner", re.I)),
    ("TeamFiltration", re.compile(r"teamfiltration", re.I)),
    ("TokenTactics", re.compile(r"tokentactics", re.I)),
    ("AADInternals", re.compile(r"aadinternals", re.I)),
    ("MSOLSpray", re.compile(r"msolspray", re.I)),
)
_SCRIPT_PATTERNS: Final = (
    ("python-requests", re.compile(r"python-requests/", re.I)),
    ("axios", re.compile(r"(?:^|[\s(])axios/", re.I)),
    ("aiohttp", re.compile(r"aiohttp/", re.I)),
    ("Go-http-client", re.compile(r"go-http-client/", re.I)),
    ("curl", re.compile(r"^curl/", re.I)),
    ("PowerShell", re.compile(r"(?:windows)?powershell/\d", re.I)),
    ("python-httpx", re.compile(r"python-httpx/", re.I)),
    ("python-urllib", re.compile(r"python-urllib/", re.I)),
    ("node-fetch", re.compile(r"node-fetch/", re.I)),
    ("node", re.compile(r"^node(?:\.js)?/", re.I)),
    ("okhttp", re.compile(r"okhttp/", re.I)),
    ("fasthttp", re.compile(r"fasthttp", re.I)),
    ("PostmanRuntime", re.compile(r"postmanruntime/", re.I)),
    ("Wget", re.compile(r"^wget/", re.I)),
    ("Java", re.compile(r"^java/\d", re.I)),
    ("libwww-perl", re.compile(r"libwww-perl/", re.I)),
    ("Apache-HttpClient", re.compile(r"apache-httpclient/", re.I)),
)
_OS_PATTERNS: Final = (
    ("iOS", re.compile(r"iphone|ipad|ipod|\bios\b|cpu os \d", re.I)),
    ("Android", re.compile(r"android", re.I)),
    ("ChromeOS", re.compile(r"\bcros\b", re.I)),
    ("Windows", re.compile(r"windows|win64|win32|wow64", re.I)),
    ("macOS", re.compile(r"mac os x|macintosh|macos", re.I)),
    ("Linux", re.compile(r"linux|x11", re.I)),
)
_BROWSER_PATTERNS: Final = (
    ("Edge", re.compile(r"\bedg(?:e|a|ios)?/\d", re.I)),
    ("Opera", re.compile(r"\bopr/\d", re.I)),
    ("Samsung Internet", re.compile(r"samsungbrowser/\d", re.I)),
    ("Firefox", re.compile(r"\b(?:firefox|fxios)/\d", re.I)),
    ("Chrome", re.compile(r"\b(?:chrome|crios)/\d", re.I)),
    ("Safari", re.compile(r"version/[\d.]+ (?:mobile/\w+ )?safari/", re.I)),
    ("Internet Explorer", re.compile(r"trident/\d|msie \d", re.I)),
)
_OUTLOOK_UA = re.compile(r"outlook-(?:ios|android)/|microsoft outlook|outlookmobile|outlook/\d", re.I)
_TEAMS_UA = re.compile(r"\bteams/\d|microsoftteams|skypespaces", re.I)
_OFFICE_UA = re.compile(r"microsoft office/\d|mso/\d|onedrive|microsoft\.sharepoint|ms-office", re.I)
_ELECTRON_OR_APP = re.compile(r"electron/\d|\bwebview\b|; wv\)", re.I)


@dataclass(frozen=True, slots=True)
class UserAgentInfo:
    """What a user agent string says on its own."""

    family: str | None
    kind: str | None
    tool: str | None
    os: str | None
    browser: str | None


@lru_cache(maxsize=8192)
def parse_user_agent(user_agent: str) -> UserAgentInfo:
    """Family, kind, tool, OS and browser of a user agent (cached; pure)."""
    ua = user_agent.strip()
    if not ua:
        return UserAgentInfo(None, None, None, None, None)
    low = ua.lower()
    os_name = next((name for name, rx in _OS_PATTERNS if rx.search(ua)), None)
    tool = _EXACT_TOOL_UAS.get(" ".join(low.split()))
    if tool is None:
        tool = next((name for name, rx in _TOOL_PATTERNS if rx.search(ua)), None)
    if tool is not None:
        return UserAgentInfo(tool, "attack_tool", tool, os_name, None)
    if low == "bav2ropc" or low.startswith("bav2ropc"):
        return UserAgentInfo("BAV2ROPC", "legacy", None, None, None)
    for name, rx in _SCRIPT_PATTERNS:
        if rx.search(ua):
            return UserAgentInfo(name, "script", None, os_name, None)
    if _OUTLOOK_UA.search(ua):
        return UserAgentInfo("Outlook", "outlook", None, os_name, None)
    if _TEAMS_UA.search(ua):
        return UserAgentInfo("Teams", "teams", None, os_name, None)
    if _OFFICE_UA.search(ua):
        return UserAgentInfo("Microsoft Office", "office", None, os_name, None)
    if low.startswith("mozilla/") and not _ELECTRON_OR_APP.search(ua):
        browser = next((name for name, rx in _BROWSER_PATTERNS if rx.search(ua)), None)
        if browser is not None:
            return UserAgentInfo(browser, "browser", None, os_name, browser)
    return UserAgentInfo(None, None, None, os_name, None)


# Mailbox client info -------------------------------------------------------------------------------

_CIS_CLIENT: Final = (
    ("rest", re.compile(r"^(?:rest|restsystem|outlookservice)\b", re.I)),
    ("owa", re.compile(r"^owa\b", re.I)),
    ("outlook", re.compile(r"^msexchangerpc\b|^outlook\b", re.I)),
    ("ews", re.compile(r"^webservices\b|^ews\b", re.I)),
    ("activesync", re.compile(r"activesync|airsync", re.I)),
    ("smtp", re.compile(r"smtp|hub transport", re.I)),
)


_CIS_PAIR = re.compile(r"[\s;]*([A-Za-z][\w.]*)=([^;]*);?")


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """The access path and embedded user agent of an Exchange ``ClientInfoString``."""

    via: str
    user_agent: str


@lru_cache(maxsize=4096)
def parse_client_info(client_info: str) -> ClientInfo:
    """``Client=REST;Client=RESTSystem;;`` → rest; ``Client=WebServices;python-requests/2.31.0`` → ews + UA."""
    text = client_info.strip()
    if not text:
        return ClientInfo("unknown", "")
    client = ""
    protocol = ""
    pos = 0
    while True:
        m = _CIS_PAIR.match(text, pos)
        if m is None:
            break
        key = m.group(1).lower()
        if key == "client" and not client:
            client = m.group(2).strip()
        elif key == "protocol":
            protocol = m.group(2).strip().lower()
        pos = m.end()
    user_agent = text[pos:].strip().rstrip(";").strip()
    low = (client or text).lower()
    via = "unknown"
    if "imap" in protocol or (not protocol and "imap4" in low and "pop3" not in low):
        via = "imap"
    elif "pop" in protocol or (not protocol and "pop3" in low):
        via = "pop"
    elif "imap" in low:
        via = "imap"
    else:
        via = next((name for name, rx in _CIS_CLIENT if rx.search(low)), "unknown")
    return ClientInfo(via, user_agent)


# Protocol ---------------------------------------------------------------------------------------------

_LEGACY_CLIENTS: Final = frozenset(
    {
        "imap4",
        "imap",
        "pop3",
        "pop",
        "authenticated smtp",
        "smtp",
        "exchange activesync",
        "activesync",
        "other clients",
        "exchange web services",
        "autodiscover",
        "exchange online powershell",
        "mapi over http",
        "offline address book",
        "outlook anywhere (rpc over http)",
        "reporting web services",
        "universal outlook",
    }
)
"""Entra's ``clientAppUsed`` values of legacy-authentication clients."""


def _protocol(request_type: str, auth_protocol: str, client_used: str, ua_kind: str | None, via: str) -> str:
    rt = request_type.strip().lower()
    ap = auth_protocol.strip().lower()
    if ua_kind == "legacy" or ap == "ropc":
        return "ropc"
    if rt.startswith("cmsi") or "devicecode" in rt or "deviceauth" in rt or "devicecode" in ap:
        return "device_code"
    if client_used.strip().lower() in _LEGACY_CLIENTS or via in ("imap", "pop", "smtp"):
        return "legacy"
    if rt or ap or via in ("rest", "owa", "outlook", "ews", "graph"):
        return "modern"
    return "unknown"


@lru_cache(maxsize=16384)
def _classify(
    app_id: str,
    app_name_hint: str,
    user_agent: str,
    client_info: str,
    request_type: str,
    auth_protocol: str,
    client_used: str,
    device_os: str,
    device_browser: str,
) -> AccessMethod:
    cis = parse_client_info(client_info) if client_info else ClientInfo("unknown", "")
    ua = parse_user_agent(user_agent or cis.user_agent)
    app = KNOWN_APPS.get(app_id) if app_id else None
    via = cis.via
    if ua.tool is not None:
        kind = "attack_tool"
    elif app is not None:
        kind = app.kind
        if kind == "web":
            kind = "browser" if ua.kind in (None, "browser") else ua.kind
    elif ua.kind is not None:
        kind = ua.kind
    elif via in ("imap", "pop", "smtp"):
        kind = "legacy"
    else:
        kind = "unknown"
    protocol = _protocol(request_type, auth_protocol, client_used, ua.kind, via)
    if kind == "unknown" and protocol in ("ropc", "legacy"):
        kind = "legacy"
    browser = ua.browser or (device_browser.strip() or None)
    os_name = (device_os.strip() or None) or ua.os
    return AccessMethod(
        client_app_id=app_id or None,
        client_app_name=app.name if app is not None else (app_name_hint or None),
        client_kind=kind,
        os=os_name,
        browser=browser,
        user_agent_family=ua.family,
        tool=ua.tool,
        protocol=protocol,
        is_public_client_tool=kind in PUBLIC_CLIENT_KINDS,
        via=via,
    )


_DEV_KEYS: Final = frozenset({"os", "browsertype"})
_NAME_KEYS: dict[str, str] = {}
"""Lower-cased Name of the Name/Value pairs seen (a few dozen distinct names)."""


def _pick(pairs: list[NameValue], wanted: frozenset[str]) -> dict[str, str]:
    """``{k: event.*_properties[k] for k in wanted}`` straight from the decoded pairs (later pairs win, as in
    the mapping), without building the whole mapping."""
    out: dict[str, str] = {}
    names = _NAME_KEYS
    for nv in pairs:
        name = nv.Name
        if name is None:
            continue
        key = names.get(name)
        if key is None:
            key = name.lower()
            if len(names) < 4096:
                names[name] = key
        if key in wanted:
            v = nv.Value
            out[key] = v if type(v) is str else name_values([nv])[key]
    return out


def classify_access(event: Event) -> AccessMethod:
    """The access method of one event (cached on the strings that decide it)."""
    rec = event.record
    raw_dev = rec.DeviceProperties
    ext = event.extended_properties
    dev: Mapping[str, str] = _pick(raw_dev, _DEV_KEYS) if type(raw_dev) is list else event.device_properties
    client_used = ext.get("clientappused") or ext.get("client") or (rec.Client or "")
    auth_protocol = ext.get("authenticationprotocol") or ext.get("originaltransfermethod") or ""
    name_hint = rec.AppAccessContext.ClientAppName if rec.AppAccessContext is not None else None
    access = _classify(
        event.client_app_id or "",
        name_hint or "",
        ext.get("useragent") or rec.UserAgent or "",
        rec.ClientInfoString or "",
        ext.get("requesttype") or "",
        auth_protocol,
        client_used if isinstance(client_used, str) else "",
        dev.get("os") or "",
        dev.get("browsertype") or "",
    )
    if access.via == "unknown" and event.record_type == 15 and (rec.ObjectId or "").lower() == GRAPH_RESOURCE_ID:
        return _with_via(access, "graph")
    return access


@lru_cache(maxsize=1024)
def _with_via(access: AccessMethod, via: str) -> AccessMethod:
    return AccessMethod(
        client_app_id=access.client_app_id,
        client_app_name=access.client_app_name,
        client_kind=access.client_kind,
        os=access.os,
        browser=access.browser,
        user_agent_family=access.user_agent_family,
        tool=access.tool,
        protocol=access.protocol,
        is_public_client_tool=access.is_public_client_tool,
        via=via,
    )


def access_of(event: Event) -> AccessMethod:
    """``event.access`` when the enricher set it, else a fresh classification (detectors use this)."""
    got = event.access
    if isinstance(got, AccessMethod):
        return got
    return classify_access(event)
