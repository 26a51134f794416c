"""shared.platform.principal: App Service principals and Entra bearer tokens validated by the app."""

from __future__ import annotations

import base64
import time
from typing import Any

import httpx
import jwt
import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from shared.platform.principal import (
    BearerVerifier,
    encode_app_service_principal,
    from_app_service_header,
    principal_from_headers,
)

TENANT = "46b472a7-c68e-4adf-8ade-3db49497518e"
AUDIENCE = "api://3c9e1b5a-8f47-4d2c-b6a1-9e0f7d3c2b18"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def jwks() -> dict[str, Any]:
    jwk = orjson.loads(jwt.algorithms.RSAAlgorithm.to_jwk(KEY.public_key()))
    return {"keys": [{**jwk, "kid": "k1", "use": "sig"}]}


@pytest.fixture
def fetched() -> list[str]:
    return []


@pytest.fixture
def verifier(fetched: list[str]) -> BearerVerifier:
    def keys(request: httpx.Request) -> httpx.Response:
        fetched.append(str(request.url))
        return httpx.Response(200, json=jwks())

    return BearerVerifier(
        authority="https://login.example",
        tenant_id=TENANT,
        audience=[AUDIENCE],
        http=httpx.Client(transport=httpx.MockTransport(keys)),
    )


def token(key: Any = KEY, kid: str = "k1", **claims: Any) -> str:
    now = int(time.time())
    body = {
        "aud": AUDIENCE,
        "iss": f"https://sts.windows.net/{TENANT}/",
        "tid": TENANT,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "oid": "o1",
        "upn": "op@msp.example",
        "roles": ["Admin"],
        **claims,
    }
    return jwt.encode(body, key, algorithm="RS256", headers={"kid": kid})


def test_a_valid_token_gives_the_principal_and_the_keys_are_fetched_once(
    verifier: BearerVerifier, fetched: list[str]
) -> None:
    p = verifier.verify(token(partner=["p1", "p2"]))
    assert p is not None
    assert (p.name, p.object_id, p.tenant_id, p.roles, p.partners, p.source) == (
        "op@msp.example",
        "o1",
        TENANT,
        frozenset({"Admin"}),
        frozenset({"p1", "p2"}),
        "entra",
    )
    assert p.has_role("Analyst", "Admin") and p.covers("p2") and not p.covers("p3")
    v2 = verifier.verify(token(iss=f"https://login.example/{TENANT}/v2.0"))
    assert v2 is not None
    assert fetched == [f"https://login.example/{TENANT}/discovery/v2.0/keys"]
    headers = {"Authorization": f"Bearer {token()}"}
    assert principal_from_headers(headers, mode="entra", verifier=verifier) is not None
    assert principal_from_headers(headers, mode="off", verifier=verifier) is None


@pytest.mark.parametrize(
    "bad",
    [
        token(aud="https://graph.microsoft.com"),
        token(tid="0d9e2c55-1f1e-4a8b-b0b6-6c0c7e3d9b02"),
        token(iss="https://sts.windows.net/0d9e2c55-1f1e-4a8b-b0b6-6c0c7e3d9b02/"),
        token(exp=int(time.time()) - 3600),
        token(nbf=int(time.time()) + 3600),
        token(key=OTHER_KEY),
        token(kid="unknown"),
        jwt.encode({"aud": AUDIENCE, "tid": TENANT}, "secret-secret-secret-secret-32b!", algorithm="HS256"),
        "not.a.jwt",
        "",
    ],
)
def test_a_bad_token_is_refused(verifier: BearerVerifier, bad: str) -> None:
    assert verifier.verify(bad) is None


def test_an_unreachable_key_endpoint_refuses_and_does_not_raise() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("down")

    v = BearerVerifier(
        authority="https://login.example",
        tenant_id=TENANT,
        audience=[AUDIENCE],
        http=httpx.Client(transport=httpx.MockTransport(down)),
    )
    assert v.verify(token()) is None


def test_the_app_service_header() -> None:
    raw = encode_app_service_principal(
        [("preferred_username", "ana@msp.example"), ("roles", "Analyst"), ("roles", "PartnerViewer"), ("partner", "p1")]
    )
    p = from_app_service_header(raw)
    assert p is not None
    assert (p.name, p.roles, p.partners, p.source) == (
        "ana@msp.example",
        frozenset({"Analyst", "PartnerViewer"}),
        frozenset({"p1"}),
        "appservice",
    )
    assert principal_from_headers({"X-MS-CLIENT-PRINCIPAL": raw}, mode="appservice") == p
    assert principal_from_headers({"X-MS-CLIENT-PRINCIPAL": raw}, mode="entra") is None  # never trusted there
    for bad in ("", "not base64 !!", base64.b64encode(b"[]").decode(), "A" * 20_000):
        assert from_app_service_header(bad) is None
