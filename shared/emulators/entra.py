"""A stand-in of Entra ID's v2.0 token endpoint: client credentials with a certificate, over HTTPS.

It speaks the documented protocol, so the real ``azure.identity.CertificateCredential`` (msal inside)
gets its tokens from it. Sources (Microsoft Learn, by title):

- "Microsoft identity platform and the OAuth 2.0 client credentials flow", second case "access token
  request with a certificate": ``POST /{tenant}/oauth2/v2.0/token`` with ``grant_type=client_credentials``,
  ``client_id``, ``scope={resource}/.default``,
  ``client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer`` and ``client_assertion``;
  the answer ``{"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": ...}``.
- "Microsoft identity platform application authentication certificate credentials": the assertion is a
  JWT signed RS256 with header ``x5t`` (base64url SHA-1 thumbprint) or PS256 with ``x5t#S256``; claims
  ``aud`` = the token endpoint, ``iss`` = ``sub`` = the client id, ``exp``, ``nbf``, ``jti``, ``iat``.
- "OpenID Connect on the Microsoft identity platform": ``GET /{tenant}/v2.0/.well-known/openid-configuration``
  (the tenant discovery msal does before its first token request) and the ``jwks_uri`` it names.
- "Microsoft Entra authentication and authorization error codes": errors are
  ``{"error", "error_description": "AADSTS<code>: ...\\r\\nTrace ID: ...\\r\\nCorrelation ID: ...\\r\\nTimestamp: ...",
  "error_codes": [<code>], "timestamp", "trace_id", "correlation_id", "error_uri"}``.
- "Microsoft identity platform access tokens": the v1.0 app-only access token claims issued here
  (``aud`` = the resource, ``iss`` = ``https://sts.windows.net/{tid}/``, ``appid``, ``appidacr`` = ``2``
  for a certificate, ``idtyp`` = ``app``, ``oid``, ``sub``, ``roles``, ``tid``, ``ver`` = ``1.0``).

Checks on every assertion, with the AADSTS code answered: parse (50027), ``iss``/``sub`` equal to
``client_id`` (700021), ``aud`` equal to this token endpoint (700023), a registered certificate matching
``x5t``/``x5t#S256`` (700027, "key not found"), the signature by that certificate's key (700027),
``nbf``/``exp`` within the clock skew (700024), a ``jti`` present and never seen before (700027 as
well: the error-code reference lists no code for a replayed ``jti``, so that one is the stand-in's choice).
Unknown tenant: 90002; client not registered in the tenant: 700016; no assertion: 7000216; grant other
than client credentials: 70003; scope without ``/.default``: 1002012.

What msal does with a non-Microsoft authority host (msal 1.39): unless ``instance_discovery=False``
(azure-identity: ``disable_instance_discovery=True``) it first asks
``https://login.microsoftonline.com/common/discovery/instance`` about the host, which a loopback
stand-in cannot answer; with discovery off it goes straight to this stand-in's openid-configuration.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from shared.emulators.tls import ClientCertificate, LoopbackServer, ServerCertificate

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_RESERVED_SCOPES = frozenset({"openid", "profile", "offline_access"})


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# --------------------------------------------------------------------------- registrations and records


@dataclass(frozen=True, slots=True)
class AppRegistration:
    """An application (client) known to the stand-in, with the certificates uploaded to it.

    ``roles`` maps a resource (``https://manage.office.com``) to the application roles granted on it
    (``ActivityFeed.Read``); they go into the access token's ``roles`` claim. ``tenants``: where the
    app has a service principal (admin consent); ``None``: every tenant of the stand-in.
    """

    client_id: str
    certificates: tuple[x509.Certificate, ...]
    roles: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    tenants: frozenset[str] | None = None

    @classmethod
    def with_certificate(
        cls,
        client_id: str,
        certificate: ClientCertificate | x509.Certificate,
        *,
        roles: Mapping[str, tuple[str, ...]] | None = None,
        tenants: Iterable[str] | None = None,
    ) -> AppRegistration:
        """One certificate (the public part of a :class:`ClientCertificate`, or a bare certificate)."""
        cert = certificate.certificate if isinstance(certificate, ClientCertificate) else certificate
        return cls(
            client_id=client_id,
            certificates=(cert,),
            roles=dict(roles or {}),
            tenants=frozenset(t.lower() for t in tenants) if tenants is not None else None,
        )


@dataclass(frozen=True, slots=True)
class TokenRequest:
    """One POST to a token endpoint, as the stand-in saw it, and its outcome."""

    tenant: str
    client_id: str
    scope: str
    grant_type: str
    alg: str | None
    """The assertion's ``alg`` header (``RS256``/``PS256``), None when there was no parsable assertion."""
    thumbprint: str | None
    """SHA-1 thumbprint from the assertion's ``x5t`` header, upper-case hex."""
    thumbprint_sha256: str | None
    """SHA-256 thumbprint from ``x5t#S256``, upper-case hex."""
    status: int
    error: str | None = None
    error_code: int | None = None
    """The AADSTS number of a refusal."""


@dataclass(frozen=True, slots=True)
class AccessTokenClaims:
    """The verified claims of an access token this stand-in issued."""

    tenant_id: str
    app_id: str
    audience: str
    roles: tuple[str, ...]
    object_id: str
    issued_at: int
    expires_at: int
    claims: Mapping[str, object]


class InvalidAccessToken(ValueError):
    """An access token that this stand-in did not issue, or that is expired or for another audience."""


class _Refusal(Exception):
    """A refusal answered in the AADSTS error shape."""

    def __init__(self, status: int, error: str, code: int, message: str) -> None:
        super().__init__(f"AADSTS{code}: {message}")
        self.status = status
        self.error = error
        self.code = code
        self.message = message


# --------------------------------------------------------------------------- the stand-in


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30

    def do_GET(self) -> None:
        self.server.owner._serve(self)  # type: ignore[attr-defined]

    do_POST = do_GET  # noqa: N815 - BaseHTTPRequestHandler's naming

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read :attr:`EntraStandIn.token_requests`."""


class EntraStandIn:
    """Entra ID's token endpoint and OpenID metadata on ``https://127.0.0.1:PORT`` (a context manager).

    ``tls`` is the server certificate (from :meth:`shared.emulators.tls.TestCA.issue_server`);
    ``tenants`` the tenant ids it knows; ``apps`` the registered applications. ``clock`` (epoch seconds)
    drives token times and assertion ``nbf``/``exp`` checks, with ``clock_skew`` seconds of leeway.
    """

    def __init__(
        self,
        *,
        tls: ServerCertificate,
        tenants: Iterable[str],
        apps: Iterable[AppRegistration],
        clock: Callable[[], float] = time.time,
        token_lifetime: int = 3599,
        clock_skew: int = 300,
        port: int = 0,
        domains: Mapping[str, str] | None = None,
    ) -> None:
        """``domains`` maps a verified domain (``contoso.com``) to its tenant id: OpenID discovery by domain
        answers with that tenant's document, as Entra does."""
        self._tenants = frozenset(t.lower() for t in tenants)
        self._domains = {d.lower(): t.lower() for d, t in (domains or {}).items()}
        self._apps = {a.client_id.lower(): a for a in apps}
        self._clock = clock
        self.token_lifetime = token_lifetime
        self.clock_skew = clock_skew
        self._server = LoopbackServer(_Handler, tls=tls, owner=self, name="entra-standin", port=port)
        self._signing_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._kid = _b64url(_sha1(_int_bytes(self._signing_key.public_key().public_numbers().n)))
        self._lock = threading.Lock()
        self._token_requests: list[TokenRequest] = []
        self._metadata_requests: list[str] = []
        self._seen_jti: dict[tuple[str, str], float] = {}
        self._consented: set[tuple[str, str]] = set()
        self._consent_plan: list[tuple[str, str]] = []
        self.consents: list[dict[str, str]] = []
        """Every admin-consent request answered: tenant, client id, decision, redirect URI."""

    # -- lifecycle ------------------------------------------------------------------------------------
    def start(self) -> EntraStandIn:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> EntraStandIn:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- addresses ------------------------------------------------------------------------------------
    @property
    def authority(self) -> str:
        """``https://127.0.0.1:PORT``: the authority host for ``CertificateCredential(authority=...)``."""
        return self._server.base_url

    def token_endpoint(self, tenant_id: str) -> str:
        """``{authority}/{tenant}/oauth2/v2.0/token``: also the ``aud`` an assertion must carry."""
        return f"{self.authority}/{tenant_id.lower()}/oauth2/v2.0/token"

    def openid_configuration_url(self, tenant_id: str) -> str:
        return f"{self.authority}/{tenant_id.lower()}/v2.0/.well-known/openid-configuration"

    # -- what was received ----------------------------------------------------------------------------
    @property
    def token_requests(self) -> list[TokenRequest]:
        """Every token request in arrival order, refused ones included."""
        with self._lock:
            return list(self._token_requests)

    @property
    def metadata_requests(self) -> list[str]:
        """Paths of every GET (discovery documents, keys), in arrival order."""
        with self._lock:
            return list(self._metadata_requests)

    def clear(self) -> None:
        with self._lock:
            self._token_requests.clear()
            self._metadata_requests.clear()

    # -- tokens for other stand-ins -------------------------------------------------------------------
    @property
    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The JSON Web Key Set of the token-signing key (what ``jwks_uri`` serves)."""
        numbers = self._signing_key.public_key().public_numbers()
        return {
            "keys": [
                {
                    "kty": "RSA",
                    "use": "sig",
                    "kid": self._kid,
                    "n": _b64url(_int_bytes(numbers.n)),
                    "e": _b64url(_int_bytes(numbers.e)),
                }
            ]
        }

    def verify_access_token(self, token: str, *, audience: str | None = None) -> AccessTokenClaims:
        """Verify a bearer token this stand-in issued (signature, ``exp``, ``aud`` when given); its claims."""
        try:
            header, claims, signing_input, signature = _split_jwt(token)
        except ValueError as exc:
            raise InvalidAccessToken("the token is not a JWT") from exc
        if header.get("alg") != "RS256" or header.get("kid") != self._kid:
            raise InvalidAccessToken("the token was not signed by this stand-in")
        try:
            self._signing_key.public_key().verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature as exc:
            raise InvalidAccessToken("the token's signature is invalid") from exc
        exp = claims.get("exp")
        if not isinstance(exp, int) or exp <= self._clock():
            raise InvalidAccessToken("the token is expired")
        if audience is not None and claims.get("aud") != audience:
            raise InvalidAccessToken(f"the token is for {claims.get('aud')!r}, not {audience!r}")
        roles = claims.get("roles", [])
        return AccessTokenClaims(
            tenant_id=str(claims["tid"]),
            app_id=str(claims["appid"]),
            audience=str(claims["aud"]),
            roles=tuple(str(r) for r in roles) if isinstance(roles, list) else (),
            object_id=str(claims["oid"]),
            issued_at=int(str(claims["iat"])),
            expires_at=exp,
            claims=claims,
        )

    def issue_user_token(
        self,
        tenant_id: str,
        *,
        audience: str,
        upn: str,
        roles: Iterable[str] = (),
        partners: Iterable[str] = (),
        client_id: str = "04b07795-8ddb-461a-bbee-02f9e1bf7b46",
    ) -> str:
        """A delegated (user) v1 access token, as an operator's interactive or device-code sign-in gets it: ``aud``
        the API, ``upn``, ``roles`` (app roles assigned to the user), ``partner`` claims, ``scp``, ``idtyp=user``;
        signed with the key :attr:`jwks` serves. (The stand-in serves no interactive sign-in page.)"""
        tenant = tenant_id.lower()
        now = int(self._clock())
        oid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"entra-standin/{tenant}/user/{upn.lower()}"))
        claims: dict[str, object] = {
            "aud": audience,
            "iss": f"https://sts.windows.net/{tenant}/",
            "iat": now,
            "nbf": now,
            "exp": now + self.token_lifetime,
            "appid": client_id,
            "idtyp": "user",
            "oid": oid,
            "sub": oid,
            "tid": tenant,
            "upn": upn,
            "name": upn.split("@", 1)[0],
            "scp": "user_impersonation",
            "ver": "1.0",
        }
        if roles:
            claims["roles"] = list(roles)
        if partners:
            claims["partner"] = list(partners)
        header = {"typ": "JWT", "alg": "RS256", "kid": self._kid}
        signing_input = f"{_b64url(_json(header))}.{_b64url(_json(claims))}".encode("ascii")
        signature = self._signing_key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input.decode('ascii')}.{_b64url(signature)}"

    # -- admin consent ----------------------------------------------------------------------------------
    def plan_consent(self, tenant_id: str, decision: str = "accept") -> None:
        """What the next admin who opens an admin-consent link does: sign in to ``tenant_id`` and ``accept``,
        ``decline`` (``access_denied``, AADSTS65004) or fail as ``not_admin`` (AADSTS90094: the account cannot
        grant tenant-wide consent). The stand-in serves no sign-in page; this stands in for the person."""
        if decision not in ("accept", "decline", "not_admin"):
            raise ValueError(decision)
        with self._lock:
            self._consent_plan.append((tenant_id.lower(), decision))

    def add_tenants(self, *tenant_ids: str) -> None:
        """More tenants known to the stand-in (customers created after it started)."""
        with self._lock:
            self._tenants = self._tenants | {t.lower() for t in tenant_ids}

    def grant_consent(self, client_id: str, tenant_id: str) -> None:
        """Record an admin consent given outside a consent link (GDAP, or a consent already given)."""
        with self._lock:
            self._consented.add((client_id.lower(), tenant_id.lower()))

    def has_consented(self, client_id: str, tenant_id: str) -> bool:
        with self._lock:
            return (client_id.lower(), tenant_id.lower()) in self._consented

    def _admin_consent(self, h: BaseHTTPRequestHandler, tenant_path: str, query: str) -> None:
        """``GET /{tenant|organizations}/v2.0/adminconsent``: 302 to ``redirect_uri`` with the documented answer."""
        from urllib.parse import urlencode

        q = {k: v[-1] for k, v in parse_qs(query).items()}
        client_id, redirect, state = q.get("client_id", "").lower(), q.get("redirect_uri", ""), q.get("state", "")
        with self._lock:
            planned = self._consent_plan.pop(0) if self._consent_plan else None
        if client_id not in self._apps or not redirect or planned is None:
            data = b'{"error":"invalid_request","error_description":"AADSTS900144: unknown client or no redirect_uri"}'
            h.send_response(400)
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)
            return
        tenant, decision = planned
        if tenant_path.lower() not in ("organizations", "common", tenant):
            decision = "wrong_tenant"
        answer: dict[str, str]
        if decision == "accept":
            with self._lock:
                self._consented.add((client_id, tenant))
            answer = {"admin_consent": "True", "tenant": tenant, "state": state, "scope": q.get("scope", "")}
        elif decision == "decline":
            answer = {
                "error": "access_denied",
                "error_description": "AADSTS65004: User declined to consent to access the app.",
                "state": state,
            }
        else:
            answer = {
                "error": "access_denied",
                "error_description": "AADSTS90094: Admin consent is required for the permissions requested.",
                "state": state,
            }
        with self._lock:
            self.consents.append({"tenant": tenant, "client_id": client_id, "decision": decision, "redirect": redirect})
        h.send_response(302)
        h.send_header("Location", f"{redirect}?{urlencode(answer)}")
        h.send_header("Content-Length", "0")
        h.end_headers()

    # -- request handling -----------------------------------------------------------------------------
    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        segments = [s for s in parts.path.split("/") if s]
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length > 0 else b""
        status: int
        payload: Mapping[str, object]
        if h.command == "GET" and len(segments) == 3 and segments[1:] == ["v2.0", "adminconsent"]:
            self._admin_consent(h, segments[0], parts.query)
            return
        if h.command == "GET":
            with self._lock:
                self._metadata_requests.append(parts.path)
            status, payload = self._get(segments)
        elif h.command == "POST" and len(segments) == 4 and segments[1:] == ["oauth2", "v2.0", "token"]:
            status, payload = self._token(segments[0], body)
        else:
            status, payload = 404, {"error": "not_found", "error_description": "No such endpoint."}
        data = json.dumps(payload).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json; charset=utf-8")
        h.send_header("Cache-Control", "no-store, no-cache")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def _get(self, segments: list[str]) -> tuple[int, Mapping[str, object]]:
        if len(segments) == 4 and segments[1:] == ["v2.0", ".well-known", "openid-configuration"]:
            tenant = self._domains.get(segments[0].lower(), segments[0].lower())
            if tenant not in self._tenants:
                return 400, self._error_body(_unknown_tenant(tenant, "invalid_tenant"))
            return 200, self._openid_configuration(tenant)
        if len(segments) == 4 and segments[1:] == ["discovery", "v2.0", "keys"]:
            return 200, self.jwks
        return 404, {"error": "not_found", "error_description": "No such endpoint."}

    def _openid_configuration(self, tenant: str) -> dict[str, object]:
        base = f"{self.authority}/{tenant}"
        return {
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{base}/v2.0",
            "request_uri_parameter_supported": False,
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
            "tenant_region_scope": "EU",
            "cloud_instance_name": "microsoftonline.com",
        }

    def _token(self, tenant_path: str, body: bytes) -> tuple[int, Mapping[str, object]]:
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}
        tenant = tenant_path.lower()
        client_id = form.get("client_id", "")
        scope = form.get("scope", "")
        grant_type = form.get("grant_type", "")
        header: Mapping[str, object] = {}
        try:
            assertion = form.get("client_assertion", "")
            if assertion:
                try:
                    header = _split_jwt(assertion)[0]
                except ValueError:
                    header = {}
            token = self._issue(tenant, form)
        except _Refusal as refusal:
            self._record(tenant, client_id, scope, grant_type, header, refusal.status, refusal.error, refusal.code)
            return refusal.status, self._error_body(refusal)
        self._record(tenant, client_id, scope, grant_type, header, 200, None, None)
        return 200, {
            "token_type": "Bearer",
            "expires_in": self.token_lifetime,
            "ext_expires_in": self.token_lifetime,
            "access_token": token,
        }

    def _record(
        self,
        tenant: str,
        client_id: str,
        scope: str,
        grant_type: str,
        header: Mapping[str, object],
        status: int,
        error: str | None,
        code: int | None,
    ) -> None:
        alg = header.get("alg")
        request = TokenRequest(
            tenant=tenant,
            client_id=client_id,
            scope=scope,
            grant_type=grant_type,
            alg=alg if isinstance(alg, str) else None,
            thumbprint=_thumbprint_hex(header.get("x5t")),
            thumbprint_sha256=_thumbprint_hex(header.get("x5t#S256")),
            status=status,
            error=error,
            error_code=code,
        )
        with self._lock:
            self._token_requests.append(request)

    def _issue(self, tenant: str, form: Mapping[str, str]) -> str:
        if tenant not in self._tenants:
            raise _unknown_tenant(tenant, "invalid_request")
        grant_type = form.get("grant_type", "")
        if not grant_type:
            raise _Refusal(
                400, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'."
            )
        if grant_type != "client_credentials":
            raise _Refusal(400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type.")
        client_id = form.get("client_id", "")
        if not client_id:
            raise _Refusal(
                400, "invalid_request", 900144, "The request body must contain the following parameter: 'client_id'."
            )
        app = self._apps.get(client_id.lower())
        consented = app is not None and (app.client_id.lower(), tenant) in self._consented
        if app is None or (
            app.tenants is not None and tenant not in {t.lower() for t in app.tenants} and not consented
        ):
            raise _Refusal(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory '{tenant}'.",
            )
        resource = _resource_of(form.get("scope", ""))
        assertion = form.get("client_assertion", "")
        if not assertion:
            raise _Refusal(
                401,
                "invalid_client",
                7000216,
                "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.",
            )
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            raise _Refusal(400, "invalid_request", 900144, f"The 'client_assertion_type' must be '{ASSERTION_TYPE}'.")
        self._check_assertion(tenant, app, client_id, assertion)
        return self._access_token(tenant, app, resource)

    def _check_assertion(self, tenant: str, app: AppRegistration, client_id: str, assertion: str) -> None:
        try:
            header, claims, signing_input, signature = _split_jwt(assertion)
        except ValueError as exc:
            raise _Refusal(400, "invalid_request", 50027, "JWT token is invalid or malformed.") from exc
        if claims.get("iss") != client_id or claims.get("sub") != client_id:
            raise _Refusal(
                401,
                "invalid_client",
                700021,
                "Client assertion application identifier doesn't match 'client_id' parameter.",
            )
        if claims.get("aud") != self.token_endpoint(tenant):
            raise _Refusal(
                401, "invalid_client", 700023, "Client assertion audience claim does not match Realm issuer."
            )
        certificate = _matching_certificate(app, header)
        if certificate is None:
            raise _Refusal(
                401,
                "invalid_client",
                700027,
                "The certificate with identifier used to sign the client assertion is not registered on application. "
                f"[Reason - The key was not found., Thumbprint of key used by client: '{_thumbprint_hex(header.get('x5t')) or ''}']",
            )
        if not _signature_valid(certificate, header.get("alg"), signing_input, signature):
            raise _Refusal(401, "invalid_client", 700027, "Client assertion contains an invalid signature.")
        now = self._clock()
        exp, nbf = claims.get("exp"), claims.get("nbf")
        if (
            not isinstance(exp, int | float)
            or exp + self.clock_skew <= now
            or (isinstance(nbf, int | float) and nbf - self.clock_skew > now)
        ):
            raise _Refusal(401, "invalid_client", 700024, "Client assertion is not within its valid time range.")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            raise _Refusal(401, "invalid_client", 700027, "Client assertion has no 'jti' claim.")
        with self._lock:
            for key, expiry in list(self._seen_jti.items()):
                if expiry + self.clock_skew <= now:
                    del self._seen_jti[key]
            if (app.client_id.lower(), jti) in self._seen_jti:
                raise _Refusal(401, "invalid_client", 700027, "Client assertion 'jti' has already been used.")
            self._seen_jti[(app.client_id.lower(), jti)] = float(exp)

    def _access_token(self, tenant: str, app: AppRegistration, resource: str) -> str:
        now = int(self._clock())
        object_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"entra-standin/{tenant}/{app.client_id.lower()}"))
        claims: dict[str, object] = {
            "aud": resource,
            "iss": f"https://sts.windows.net/{tenant}/",
            "iat": now,
            "nbf": now,
            "exp": now + self.token_lifetime,
            "appid": app.client_id,
            "appidacr": "2",
            "idp": f"https://sts.windows.net/{tenant}/",
            "idtyp": "app",
            "oid": object_id,
            "sub": object_id,
            "tid": tenant,
            "uti": secrets.token_urlsafe(16),
            "ver": "1.0",
        }
        roles = app.roles.get(resource) or app.roles.get(resource.rstrip("/"))
        if roles:
            claims["roles"] = list(roles)
        header = {"typ": "JWT", "alg": "RS256", "kid": self._kid}
        signing_input = f"{_b64url(_json(header))}.{_b64url(_json(claims))}".encode("ascii")
        signature = self._signing_key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input.decode('ascii')}.{_b64url(signature)}"

    def _error_body(self, refusal: _Refusal) -> dict[str, object]:
        trace_id, correlation_id = str(uuid.uuid4()), str(uuid.uuid4())
        stamp = datetime.fromtimestamp(self._clock(), UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        return {
            "error": refusal.error,
            "error_description": (
                f"AADSTS{refusal.code}: {refusal.message}\r\nTrace ID: {trace_id}\r\n"
                f"Correlation ID: {correlation_id}\r\nTimestamp: {stamp}"
            ),
            "error_codes": [refusal.code],
            "timestamp": stamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": f"{self.authority}/error?code={refusal.code}",
        }


# --------------------------------------------------------------------------- helpers


def _json(value: Mapping[str, object]) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _int_bytes(value: int) -> bytes:
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


def _sha1(data: bytes) -> bytes:
    digest = hashes.Hash(hashes.SHA1())  # noqa: S303 - a key id, not a security boundary
    digest.update(data)
    return digest.finalize()


def _split_jwt(token: str) -> tuple[dict[str, object], dict[str, object], bytes, bytes]:
    """Header, claims, signing input and signature of a compact JWS; ValueError when malformed."""
    pieces = token.split(".")
    if len(pieces) != 3:
        raise ValueError("a compact JWS has three parts")
    try:
        header = json.loads(_b64url_decode(pieces[0]))
        claims = json.loads(_b64url_decode(pieces[1]))
        signature = _b64url_decode(pieces[2])
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError("undecodable JWS part") from exc
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise ValueError("JWS header and claims must be JSON objects")
    return header, claims, f"{pieces[0]}.{pieces[1]}".encode("ascii"), signature


def _thumbprint_hex(value: object) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return _b64url_decode(value).hex().upper()
    except ValueError:
        return None


def _matching_certificate(app: AppRegistration, header: Mapping[str, object]) -> x509.Certificate | None:
    sha1 = _thumbprint_hex(header.get("x5t"))
    sha256 = _thumbprint_hex(header.get("x5t#S256"))
    for certificate in app.certificates:
        if sha256 is not None and certificate.fingerprint(hashes.SHA256()).hex().upper() == sha256:
            return certificate
        if sha1 is not None and certificate.fingerprint(hashes.SHA1()).hex().upper() == sha1:  # noqa: S303
            return certificate
    return None


def _signature_valid(certificate: x509.Certificate, alg: object, signing_input: bytes, signature: bytes) -> bool:
    key = certificate.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        return False
    scheme: padding.AsymmetricPadding
    if alg == "RS256":
        scheme = padding.PKCS1v15()
    elif alg == "PS256":
        scheme = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)
    else:
        return False  # "none", HS256 and anything else: never accepted
    try:
        key.verify(signature, signing_input, scheme, hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def _resource_of(scope: str) -> str:
    """The resource of a client-credentials scope (``https://manage.office.com/.default`` -> ``https://manage.office.com``)."""
    wanted = [s for s in scope.split() if s not in _RESERVED_SCOPES]
    if len(wanted) != 1 or not wanted[0].endswith("/.default") or wanted[0] == "/.default":
        raise _Refusal(
            400,
            "invalid_scope",
            1002012,
            f"The provided value for scope {scope} is not valid. Client credential flows must have a scope value "
            "with /.default suffixed to the resource identifier (application ID URI).",
        )
    return wanted[0][: -len("/.default")]


def _unknown_tenant(tenant: str, error: str) -> _Refusal:
    return _Refusal(
        400,
        error,
        90002,
        f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into "
        "the correct cloud.",
    )


__all__ = [
    "ASSERTION_TYPE",
    "AccessTokenClaims",
    "AppRegistration",
    "EntraStandIn",
    "InvalidAccessToken",
    "TokenRequest",
]
