"""Alert IDs pinned independently of ``alert_id_for``: literal values, and a SHA-256 computed here.

Every other test computes its expected IDs with ``alert_id_for`` itself, so a change of what goes into
the ID (the tenant dropped, say, which would merge two tenants' alerts into one row) passed all of them.
"""

from __future__ import annotations

import hashlib

from detectors.signin_impossible_travel import SigninImpossibleTravel
from shared.alert_model import alert_id_for
from shared.detection.testing import TEST_TENANT, run_detector
from tests.detectors.records import HOME_DE, NY_US, at, oid_of, signin, signin_enricher

TENANT_1 = "9f6a3d1e-0c4b-4e8a-9d57-2b1f0c3e4a11"
TENANT_2 = "0d9e2c55-1f1e-4a8b-b0b6-6c0c7e3d9b02"
DEDUP = "5b0e9a3c-1111-4c2d-9e8f-0a1b2c3d4e5f|travel"


def test_alert_id_is_a_literal_per_tenant() -> None:
    # printf '%s' '<tenant>|signin_impossible_travel|<dedup>|rec-1' | sha256sum | cut -c1-24
    assert alert_id_for(TENANT_1, "signin_impossible_travel", DEDUP, "rec-1") == "al-321a1ffbd317728ad6e2754c"
    assert alert_id_for(TENANT_2, "signin_impossible_travel", DEDUP, "rec-1") == "al-fdaba736f190bdd5399bbe0f"


def _sha_id(*parts: str) -> str:
    return "al-" + hashlib.sha256("|".join(parts).encode()).hexdigest()[:24]


def test_each_part_changes_the_id() -> None:
    base = ("t", "d", "k", "e")
    ids = {alert_id_for(*base)}
    for i in range(4):
        changed = list(base)
        changed[i] += "x"
        ids.add(alert_id_for(*changed))
    assert len(ids) == 5


def test_the_engine_names_an_alert_by_tenant_detector_dedup_key_and_first_evidence() -> None:
    home = signin("alice@contoso.com", ip=HOME_DE)
    away = signin("alice@contoso.com", when=at(hours=1), ip=NY_US)
    (alert,) = run_detector(SigninImpossibleTravel, [home, away], enricher=signin_enricher()).alerts
    expected = _sha_id(TEST_TENANT, "signin_impossible_travel", f"{oid_of('alice@contoso.com')}|travel", home["Id"])
    assert alert.alert_id == expected
