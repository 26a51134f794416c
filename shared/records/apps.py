"""Microsoft first-party client applications by id: a static catalogue the records refer to.

Enrichment reads it to name the client of an event; cross-tenant correlation to tell a first-party client
from an attacker's app.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class KnownApp:
    """A first-party client application id: its name and client kind ("web": browser when the UA is one)."""

    name: str
    kind: str


# Microsoft first-party client ids (lower case). Only ids known for certain are listed.
KNOWN_APPS: Final[dict[str, KnownApp]] = {
    # Command-line, PowerShell and developer tools (public clients attackers reuse).
    "04b07795-8ddb-461a-bbee-02f9e1bf7b46": KnownApp("Microsoft Azure CLI", "azure_cli"),
    "1950a258-227b-4e31-a9cf-717495945fc2": KnownApp("Microsoft Azure PowerShell", "azure_powershell"),
    "14d82eec-204b-4c2f-b7e8-296a70dab67e": KnownApp("Microsoft Graph Command Line Tools", "graph_powershell"),
    "de8bc8b5-d9f9-48b1-a8ad-b748da725064": KnownApp("Graph Explorer", "graph_explorer"),
    "1b730954-1685-4b74-9bfd-dac224a7b894": KnownApp("Azure Active Directory PowerShell", "aad_powershell"),
    "fb78d390-0c51-40cd-8e17-fdbfab77341b": KnownApp("Microsoft Exchange REST API Based Powershell", "sdk"),
    "a0c73c16-a7e3-4564-9a95-2bdf47383716": KnownApp("Microsoft Exchange Online Remote PowerShell", "sdk"),
    "9bc3ab49-b65d-410a-85ad-de819febfddc": KnownApp("Microsoft SharePoint Online Management Shell", "sdk"),
    "d1ddf0e4-d672-4dae-b554-9d5bdfd93547": KnownApp("Microsoft Intune PowerShell", "sdk"),
    "12128f48-ec9e-42f0-b203-ea49fb6af367": KnownApp("MS Teams Powershell Cmdlets", "sdk"),
    "90f610bf-206d-4950-b61d-37fa6fd1b224": KnownApp("Aadrm Admin Powershell", "sdk"),
    "872cd9fa-d31f-45e0-9eab-6e460a02d1f1": KnownApp("Visual Studio", "sdk"),
    "aebc6443-996d-45c2-90f0-388ff96faa56": KnownApp("Visual Studio Code", "sdk"),
    # Office and Outlook.
    "d3590ed6-52b3-4102-aeff-aad2292ab01c": KnownApp("Microsoft Office", "office"),
    "0ec893e0-5785-4de6-99da-4ed124e5296c": KnownApp("Office UWP PWA", "office"),
    "4765445b-32c6-49b0-83e6-1d93765276ca": KnownApp("OfficeHome", "web"),
    "00000006-0000-0ff1-ce00-000000000000": KnownApp("Microsoft Office 365 Portal", "web"),
    "00b41c95-dab0-4487-9791-b9d2c32c80f2": KnownApp("Office 365 Management", "mobile_app"),
    "27922004-5251-4030-b22d-91ecd9a37ea4": KnownApp("Outlook Mobile", "outlook"),
    "5d661950-3475-41cd-a2c3-d671a3162bc1": KnownApp("Microsoft Outlook", "outlook"),
    "e9b154d0-7658-433b-bb25-6b8e0a8a7c59": KnownApp("Outlook Lite", "outlook"),
    "9199bf20-a13f-4107-85dc-02114787ef48": KnownApp("One Outlook Web", "web"),
    "00000002-0000-0ff1-ce00-000000000000": KnownApp("Office 365 Exchange Online", "web"),
    # Teams.
    "1fec8e78-bce4-4aaf-ab1b-5451cc387264": KnownApp("Microsoft Teams", "teams"),
    "5e3ce6c0-2b1f-4285-8d4b-75ee78787346": KnownApp("Microsoft Teams Web Client", "teams"),
    # OneDrive and SharePoint.
    "ab9b8c07-8f02-4f72-87fa-80105867a763": KnownApp("OneDrive SyncEngine", "office"),
    "b26aadf8-566f-4478-926f-589f601d9c74": KnownApp("OneDrive", "mobile_app"),
    "af124e86-4e96-495a-b70a-90f90ab96707": KnownApp("OneDrive iOS App", "mobile_app"),
    "d326c1ce-6cc6-4de2-bebc-4591e5e13ef0": KnownApp("SharePoint", "mobile_app"),
    "f05ff7c9-f75a-4acd-a3b5-f4b6a870245d": KnownApp("SharePoint Android", "mobile_app"),
    "00000003-0000-0ff1-ce00-000000000000": KnownApp("Office 365 SharePoint Online", "web"),
    # Browsers, brokers and device management.
    "ecd6b820-32c2-49b6-98a6-444530e5a77a": KnownApp("Microsoft Edge", "browser"),
    "e9c51622-460d-4d3d-952d-966a5b1da34c": KnownApp("Microsoft Edge", "browser"),
    "f44b1140-bc5e-48c6-8dc0-5cf5a53c0e34": KnownApp("Microsoft Edge", "browser"),
    "4813382a-8fa7-425e-ab75-3b753aab3abb": KnownApp("Microsoft Authenticator App", "mobile_app"),
    "29d9ed98-a469-4536-ade2-f981bc1d605e": KnownApp("Microsoft Authentication Broker", "mobile_app"),
    "9ba1a5c7-f17a-4de9-a1f1-6178c8d51223": KnownApp("Microsoft Intune Company Portal", "mobile_app"),
    "c44b4083-3bb0-49c1-b47d-974e53cbdf3c": KnownApp("Azure Portal", "web"),
    "cb1056e2-e479-49de-ae31-7812af012ed8": KnownApp("Microsoft Azure Active Directory Connect", "sdk"),
    # Other Microsoft mobile and desktop apps (family of client ids).
    "c0d2a505-13b8-4ae0-aa9e-cddd5eab0b12": KnownApp("Microsoft Power BI", "office"),
    "4e291c71-d680-4d0e-9640-0a3358e31177": KnownApp("PowerApps", "office"),
    "57fcbcfa-7cee-4eb1-8b25-12d2030b4ee0": KnownApp("Microsoft Flow", "office"),
    "66375f6b-983f-4c2c-9701-d680650f588f": KnownApp("Microsoft Planner", "mobile_app"),
    "22098786-6e16-43cc-a27d-191a01a1e3b5": KnownApp("Microsoft To-Do client", "mobile_app"),
}
