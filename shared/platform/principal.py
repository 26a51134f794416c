"""Who is calling an HTTP function: an Entra principal with app roles, from either of two sources.

- **App Service Authentication** (``appservice``): the platform validates the caller's sign-in and passes the
  principal as ``X-MS-CLIENT-PRINCIPAL`` (base64 JSON ``{"auth_typ", "name_typ", "role_typ", "claims":
  [{"typ", "val"}, ...]}``); it strips a client-sent header, so the header is trusted only in that mode.
- **Entra bearer tokens validated by the app** (``entra``; Flex Consumption has no App Service
  Authentication): ``Authorization: Bearer <JWT>`` signed RS256 by a key of the tenant's JWKS
  (``{authority}/{tenant}/discovery/v2.0/keys``), ``aud`` the admin API's App ID URI, ``iss`` the tenant's
  v1 or v2 issuer, ``tid`` the tenant, within ``nbf``/``exp``.

Both give a :class:`ClientPrincipal`: name, object id, tenant, app roles (``roles`` claim) and the partners the
principal is bound to (``partner`` claims). Callers decide with :meth:`ClientPrincipal.has_role` and
:meth:`ClientPrincipal.covers`. :func:`principal_from_headers` is the one entry point:

    verifier = BearerVerifier(authority=..., tenant_id=..., audience=..., http=httpx.Client())
    principal = principal_from_headers(headers, mode="entra", verifier=verifier)   # None: not authenticated

:func:`encode_app_service_principal` builds the header (tests and the local Functions host stand-in).
"""

from __future__ import annotations

import base64
import binascii
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    import httpx

PRINCIPAL_HEADER = "x-ms-client-principal"
MAX_PRINCIPAL_HEADER = 16 * 1024
MAX_BEARER_TOKEN = 16 * 1024
JWKS_REFRESH_S = 300.0
"""An unknown ``kid`` refetches the key set at most this often (Entra rolls keys; a forged kid cannot make
every request fetch)."""
CLOCK_SKEW_S = 300
NAME_CLAIMS = ("preferred_username", "upn", "unique_name", "name", "email")
OBJECT_ID_CLAIMS = ("oid", "http://schemas.microsoft.com/identity/claims/objectidentifier")
TENANT_CLAIMS = ("tid", "http://schemas.microsoft.com/identity/claims/tenantid")
MODES = ("off", "appservice", "entra")


@dataclass(frozen=True, slots=True)
class ClientPrincipal:
    """An authenticated caller."""

    name: str
    object_id: str | None
    tenant_id: str | None
    roles: frozenset[str]
    partners: frozenset[str]
    """Partner ids from ``partner`` claims (a principal bound to some partners' tenants)."""
    source: str
    """``appservice`` or ``entra``."""

    def has_role(self, *roles: str) -> bool:
        """True when the principal holds any of ``roles``."""
        return not self.roles.isdisjoint(roles)

    def covers(self, partner_id: str) -> bool:
        """True when the principal is bound to ``partner_id`` (by a ``partner`` claim)."""
        return partner_id in self.partners


def _first(claims: Mapping[str, list[str]], names: Iterable[str]) -> str | None:
    for n in names:
        values = claims.get(n)
        if values:
            return values[0]
    return None


def _principal(claims: Mapping[str, list[str]], *, role_types: Iterable[str], source: str) -> ClientPrincipal:
    roles = {v for t in role_types for v in claims.get(t, [])}
    return ClientPrincipal(
        name=_first(claims, NAME_CLAIMS) or _first(claims, OBJECT_ID_CLAIMS) or "unknown",
        object_id=_first(claims, OBJECT_ID_CLAIMS),
        tenant_id=(_first(claims, TENANT_CLAIMS) or "").lower() or None,
        roles=frozenset(roles),
        partners=frozenset(claims.get("partner", [])),
        source=source,
    )


def _header(headers: Mapping[str, str], name: str) -> str:
    return next((v for k, v in headers.items() if k.lower() == name), "")


def from_app_service_header(raw: str) -> ClientPrincipal | None:
    """The principal of an ``X-MS-CLIENT-PRINCIPAL`` value, or None when it is missing or malformed."""
    if not raw or len(raw) > MAX_PRINCIPAL_HEADER:
        return None
    try:
        body = orjson.loads(base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        return None
    if not isinstance(body, dict) or not isinstance(body.get("claims"), list):
        return None
    claims: dict[str, list[str]] = {}
    for claim in body["claims"]:
        if isinstance(claim, dict) and isinstance(claim.get("val"), str):
            claims.setdefault(str(claim.get("typ") or ""), []).append(claim["val"])
    role_types = {"roles", str(body.get("role_typ") or "roles")}
    name_typ = str(body.get("name_typ") or "")
    if name_typ and claims.get(name_typ):
        claims.setdefault("name", []).insert(0, claims[name_typ][0])
    return _principal(claims, role_types=role_types, source="appservice")


def encode_app_service_principal(claims: Iterable[tuple[str, str]], *, auth_typ: str = "aad") -> str:
    """An ``X-MS-CLIENT-PRINCIPAL`` value with these (type, value) claims, as App Service sends it."""
    body = {
        "auth_typ": auth_typ,
        "name_typ": "preferred_username",
        "role_typ": "roles",
        "claims": [{"typ": t, "val": v} for t, v in claims],
    }
    return base64.b64encode(orjson.dumps(body)).decode()


class BearerVerifier:
    """Validates Entra access tokens for the admin API (RS256 against the tenant's JWKS, fetched over HTTPS).

    ``authority`` is the login host (``https://login.microsoftonline.com`` or a sovereign or local one),
    ``tenant_id`` the only tenant whose users are accepted, ``audience`` the accepted ``aud`` values (the App ID
    URI and the client id). ``http`` fetches the keys; ``clock`` is epoch seconds.
    """

    def __init__(
        self,
        *,
        authority: str,
        tenant_id: str,
        audience: Iterable[str],
        http: httpx.Client,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._authority = authority.rstrip("/")
        self.tenant_id = tenant_id.lower()
        self.audience = tuple(a for a in audience if a)
        self._http = http
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str, Any] = {}
        self._fetched_at: float | None = None

    @property
    def issuers(self) -> tuple[str, str]:
        """The v1 (``sts.windows.net``) and v2 issuers of the tenant."""
        return f"https://sts.windows.net/{self.tenant_id}/", f"{self._authority}/{self.tenant_id}/v2.0"

    def _key(self, kid: str) -> Any:
        import jwt

        with self._lock:
            key = self._keys.get(kid)
            stale = self._fetched_at is None or self._clock() - self._fetched_at >= JWKS_REFRESH_S
            if key is not None or not stale:
                return key
            self._fetched_at = self._clock()
        url = f"{self._authority}/{self.tenant_id}/discovery/v2.0/keys"
        response = self._http.get(url, timeout=10.0)
        response.raise_for_status()
        keys = {str(k.get("kid")): jwt.PyJWK(k).key for k in response.json().get("keys", []) if k.get("kty") == "RSA"}
        with self._lock:
            self._keys = keys
            return keys.get(kid)

    def verify(self, token: str) -> ClientPrincipal | None:
        """The principal of a valid token, or None (bad signature, audience, issuer, tenant, time or shape)."""
        import jwt

        if not token or len(token) > MAX_BEARER_TOKEN or not self.audience:
            return None
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") != "RS256":
                return None
            key = self._key(str(header.get("kid") or ""))
            if key is None:
                return None
            claims = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                audience=list(self.audience),
                issuer=list(self.issuers),
                leeway=CLOCK_SKEW_S,
                options={"require": ["exp", "iss", "aud", "tid"], "verify_iat": False},
            )
        except (jwt.PyJWTError, ValueError):
            return None
        except Exception:  # the key set could not be fetched: not authenticated, never a 500
            return None
        if str(claims.get("tid") or "").lower() != self.tenant_id:
            return None
        if not self._now_within(claims):
            return None
        as_lists = {k: (v if isinstance(v, list) else [v]) for k, v in claims.items()}
        strings = {k: [str(x) for x in v if isinstance(x, str)] for k, v in as_lists.items()}
        return _principal(strings, role_types=("roles",), source="entra")

    def _now_within(self, claims: Mapping[str, Any]) -> bool:
        """PyJWT checks ``exp``/``nbf`` with the wall clock; this checks them with ``clock`` too."""
        now = self._clock()
        exp, nbf = claims.get("exp"), claims.get("nbf")
        if isinstance(exp, int | float) and exp + CLOCK_SKEW_S < now:
            return False
        return not (isinstance(nbf, int | float) and nbf - CLOCK_SKEW_S > now)


def bearer_token(headers: Mapping[str, str]) -> str:
    """The token of an ``Authorization: Bearer`` header, or ''."""
    auth = _header(headers, "authorization").strip()
    return auth[7:].strip() if auth[:7].lower() == "bearer " else ""


def principal_from_headers(
    headers: Mapping[str, str], *, mode: str, verifier: BearerVerifier | None = None
) -> ClientPrincipal | None:
    """The caller of a request in ``mode`` (``off``: nobody; ``appservice``: the platform's header; ``entra``:
    a bearer token checked by ``verifier``), or None."""
    if mode == "appservice":
        return from_app_service_header(_header(headers, PRINCIPAL_HEADER))
    if mode == "entra" and verifier is not None:
        return verifier.verify(bearer_token(headers))
    return None
