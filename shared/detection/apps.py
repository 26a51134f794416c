"""Applications detectors treat with extra care: Microsoft's first-party service principals.

A credential, owner or redirect URI added to the tenant's service principal of a Microsoft first-party
application (Microsoft Graph, Exchange Online, SharePoint Online...) has no business reason: those apps are run
by Microsoft, and whoever holds a key to their service principal acts with the permissions the tenant granted
them (the Solorigate and Midnight Blizzard technique). Only well-known application ids are listed (Microsoft Learn
"Verify first-party Microsoft applications in sign-in reports" and the Graph service principal documentation).
"""

from __future__ import annotations

from typing import Final

FIRST_PARTY_APPS: Final[dict[str, str]] = {
    "00000003-0000-0000-c000-000000000000": "Microsoft Graph",
    "00000002-0000-0ff1-ce00-000000000000": "Office 365 Exchange Online",
    "00000003-0000-0ff1-ce00-000000000000": "Office 365 SharePoint Online",
    "00000002-0000-0000-c000-000000000000": "Windows Azure Active Directory",
    "c5393580-f805-4401-95e8-94b7a6ef2fc2": "Office 365 Management APIs",
    "797f4846-ba00-4fd7-ba43-dac1f8f63013": "Windows Azure Service Management API",
    "00000004-0000-0ff1-ce00-000000000000": "Skype for Business Online",
    "cc15fd57-2c6c-4117-a88c-83b1d56b4bbe": "Microsoft Teams Services",
}
"""Application (client) ids of Microsoft first-party apps, lower case, with their names."""


def is_first_party(app_id: str | None) -> bool:
    """True for a well-known Microsoft first-party application id."""
    return bool(app_id) and (app_id or "").strip().lower() in FIRST_PARTY_APPS
