"""Fixtures for the Graph client and emulator tests: a started emulator with two seeded tenants.

Tenant A holds alice (with a mailbox of rules: two named "." of which one forwards outside, a read-only rule
and a hidden one), bob (privileged), carol (hybrid), a consented app with two grants, and a second app.
Tenant B holds its own user and a service principal, so isolation can be checked in both directions.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest

from shared.emulators.graph import GraphEmulator
from shared.graph.client import GraphClient

TENANT_A = "8f5b1c2e-0a4d-4c61-9a57-3e2d1b0c9a01"
TENANT_B = "1c0e9d8b-7a6f-4e5d-8c4b-3a2f1e0d9b02"


def forward(*addresses: str) -> list[dict[str, dict[str, str]]]:
    """Graph recipient JSON for ``addresses``."""
    return [{"emailAddress": {"address": a, "name": a.split("@")[0]}} for a in addresses]


@dataclass(frozen=True)
class Seeded:
    """Ids of everything the ``seeded`` fixture created."""

    tenant_a: str
    tenant_b: str
    alice: str
    bob: str
    carol: str
    dave_b: str
    rule_evil: str
    rule_benign: str
    rule_read_only: str
    rule_hidden: str
    rogue_app_sp: str
    grant_all: str
    grant_alice: str
    other_grant: str
    sp_b: str


@pytest.fixture
def emulator() -> Iterator[GraphEmulator]:
    """A started emulator (seed 7); stopped after the test."""
    with GraphEmulator(seed=7) as emu:
        yield emu


@pytest.fixture
def seeded(emulator: GraphEmulator) -> Seeded:
    """Populate tenants A and B."""
    emu = emulator
    emu.add_tenant(TENANT_A)
    emu.add_tenant(TENANT_B)
    alice = emu.add_user(
        TENANT_A,
        id="a1a1a1a1-0000-4000-8000-000000000001",
        user_principal_name="alice@contoso.com",
        display_name="Alice Example",
        usage_location="US",
        on_premises_sync_enabled=None,
    )
    bob = emu.add_user(
        TENANT_A,
        id="b2b2b2b2-0000-4000-8000-000000000002",
        user_principal_name="bob.admin@contoso.com",
        display_name="Bob Admin",
        usage_location="DE",
        privileged=True,
    )
    carol = emu.add_user(
        TENANT_A,
        id="c3c3c3c3-0000-4000-8000-000000000003",
        user_principal_name="carol@contoso.com",
        display_name="Carol Hybrid",
        on_premises_sync_enabled=True,
    )
    dave_b = emu.add_user(
        TENANT_B,
        id="d4d4d4d4-0000-4000-8000-000000000004",
        user_principal_name="dave@fabrikam.com",
        display_name="Dave Fabrikam",
    )
    rule_benign = emu.add_inbox_rule(
        TENANT_A,
        alice,
        display_name=".",
        sequence=1,
        conditions={"senderContains": ["newsletter"]},
        actions={"moveToFolder": "AAMkAGI2TG93AAA=", "markAsRead": True},
    )
    rule_evil = emu.add_inbox_rule(
        TENANT_A,
        alice,
        display_name=".",
        sequence=2,
        rule_identity=16752869479666417665,
        conditions={"bodyOrSubjectContains": ["invoice", "payment"]},
        actions={"forwardTo": forward("drop@evil.example"), "delete": True, "stopProcessingRules": True},
    )
    rule_read_only = emu.add_inbox_rule(
        TENANT_A,
        alice,
        display_name="Received before",
        sequence=3,
        read_only=True,
        actions={"moveToFolder": "AAMkAGI2TG94AAA="},
    )
    rule_hidden = emu.add_inbox_rule(
        TENANT_A,
        alice,
        display_name="hidden",
        sequence=4,
        hidden=True,
        actions={"redirectTo": forward("hidden@evil.example")},
    )
    rogue_app_sp = emu.add_service_principal(
        TENANT_A,
        id="5e5e5e5e-0000-4000-8000-000000000005",
        app_id="aaaaaaaa-1111-4111-8111-aaaaaaaaaaaa",
        display_name="Rogue Mail Reader",
    )
    grant_all = emu.add_permission_grant(
        TENANT_A,
        id="grant-all-principals",
        client_id=rogue_app_sp,
        consent_type="AllPrincipals",
        resource_id="00000003-resource-graph",
        scope="Mail.Read offline_access",
    )
    grant_alice = emu.add_permission_grant(
        TENANT_A,
        id="grant-alice",
        client_id=rogue_app_sp,
        consent_type="Principal",
        principal_id=alice,
        resource_id="00000003-resource-graph",
        scope="Mail.ReadWrite",
    )
    other_grant = emu.add_permission_grant(
        TENANT_A,
        id="grant-other-app",
        client_id="6f6f6f6f-0000-4000-8000-000000000006",
        consent_type="AllPrincipals",
        resource_id="00000003-resource-graph",
        scope="User.Read",
    )
    sp_b = emu.add_service_principal(
        TENANT_B,
        id="7a7a7a7a-0000-4000-8000-000000000007",
        app_id="bbbbbbbb-2222-4222-8222-bbbbbbbbbbbb",
        display_name="Fabrikam App",
    )
    return Seeded(
        tenant_a=TENANT_A,
        tenant_b=TENANT_B,
        alice=alice,
        bob=bob,
        carol=carol,
        dave_b=dave_b,
        rule_evil=rule_evil,
        rule_benign=rule_benign,
        rule_read_only=rule_read_only,
        rule_hidden=rule_hidden,
        rogue_app_sp=rogue_app_sp,
        grant_all=grant_all,
        grant_alice=grant_alice,
        other_grant=other_grant,
        sp_b=sp_b,
    )


@pytest.fixture
async def graph(emulator: GraphEmulator, seeded: Seeded) -> AsyncIterator[GraphClient]:
    """An async GraphClient for tenant A on the emulator (no SDK retries)."""
    client = GraphClient.create(
        seeded.tenant_a, credential=emulator.credential(seeded.tenant_a), base_url=emulator.base_url
    )
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def graph_b(emulator: GraphEmulator, seeded: Seeded) -> AsyncIterator[GraphClient]:
    """An async GraphClient for tenant B on the emulator."""
    client = GraphClient.create(
        seeded.tenant_b, credential=emulator.credential(seeded.tenant_b), base_url=emulator.base_url
    )
    try:
        yield client
    finally:
        await client.close()
