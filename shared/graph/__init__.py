"""Microsoft Graph access for m365-itdr: the async/sync clients, our frozen models, and inbox-rule matching.

Exports are lazy so that ``import shared.graph.rules`` (pure logic, used by detection and the ledger) does not
pay for importing msgraph-sdk; ``from shared.graph import GraphClient`` loads it on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shared.graph.client import (
        DEFAULT_CLOUD_HOST,
        DEFAULT_USER_SELECT,
        REQUIRED_PERMISSIONS,
        GraphClient,
        GraphUser,
        PermissionGrant,
        ServicePrincipalInfo,
        SyncGraphClient,
    )
    from shared.graph.rules import (
        InboxRule,
        MatchOutcome,
        RuleActions,
        RuleConditions,
        RuleMatch,
        ScoredRule,
        graph_id_to_rule_identity,
        is_graph_rule_id,
        match_rules,
        parse_rule_identity,
        rule_identity_to_graph_id,
    )

_EXPORTS: dict[str, str] = {
    "DEFAULT_CLOUD_HOST": "shared.graph.client",
    "DEFAULT_USER_SELECT": "shared.graph.client",
    "REQUIRED_PERMISSIONS": "shared.graph.client",
    "GraphClient": "shared.graph.client",
    "GraphUser": "shared.graph.client",
    "PermissionGrant": "shared.graph.client",
    "ServicePrincipalInfo": "shared.graph.client",
    "SyncGraphClient": "shared.graph.client",
    "InboxRule": "shared.graph.rules",
    "MatchOutcome": "shared.graph.rules",
    "RuleActions": "shared.graph.rules",
    "RuleConditions": "shared.graph.rules",
    "RuleMatch": "shared.graph.rules",
    "ScoredRule": "shared.graph.rules",
    "graph_id_to_rule_identity": "shared.graph.rules",
    "is_graph_rule_id": "shared.graph.rules",
    "match_rules": "shared.graph.rules",
    "parse_rule_identity": "shared.graph.rules",
    "rule_identity_to_graph_id": "shared.graph.rules",
}

__all__ = [
    "DEFAULT_CLOUD_HOST",
    "DEFAULT_USER_SELECT",
    "REQUIRED_PERMISSIONS",
    "GraphClient",
    "GraphUser",
    "InboxRule",
    "MatchOutcome",
    "PermissionGrant",
    "RuleActions",
    "RuleConditions",
    "RuleMatch",
    "ScoredRule",
    "ServicePrincipalInfo",
    "SyncGraphClient",
    "graph_id_to_rule_identity",
    "is_graph_rule_id",
    "match_rules",
    "parse_rule_identity",
    "rule_identity_to_graph_id",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'shared.graph' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
