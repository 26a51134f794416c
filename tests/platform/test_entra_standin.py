"""The Entra ID stand-in answers the real azure-identity CertificateCredential over verified HTTPS.

Expected values are computed here independently of the stand-in: thumbprints with hashlib over the
certificate's DER bytes, assertions built with PyJWT (msal's own JWT library) following Learn's
"Microsoft identity platform application authentication certificate credentials" (header ``alg``,
``typ``, ``x5t``; claims ``aud`` = the tenant's v2.0 token endpoint, ``iss`` = ``sub`` = client id,
``exp``, ``nbf``, ``jti``, ``iat``), error codes from "Microsoft Entra authentication and authorization
error codes".
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import ssl
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import CertificateCredential
from cryptography.hazmat.primitives import serialization

from shared.emulators.entra import AppRegistration, EntraStandIn, TokenRequest
from shared.emulators.management_api import ManagementApiEmulator
from shared.emulators.tls import ClientCertificate, LoopbackServer, TestCA, TLSServerMixin
from shared.ingest.client import ManagementActivityClient

TENANT = "6a7b5f1c-0d0e-4b6a-9a55-1f2e3d4c5b6a"
OTHER_TENANT = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"
CLIENT_ID = "3fa2b0c1-8d4e-4f5a-9b6c-7d8e9f0a1b2c"
PUBLISHER = "9b0c1d2e-3f4a-4b5c-8d6e-7f8a9b0c1d2e"
MANAGE = "https://manage.office.com"
MANAGE_SCOPE = "https://manage.office.com/.default"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@pytest.fixture(scope="module")
def ca() -> Iterator[TestCA]:
    with TestCA.create() as authority:
        yield authority


@pytest.fixture(scope="module")
def app_cert(ca: TestCA) -> ClientCertificate:
    return ca.issue_client_certificate("CN=m365-itdr")


@pytest.fixture
def entra(ca: TestCA, app_cert: ClientCertificate) -> Iterator[EntraStandIn]:
    registration = AppRegistration.with_certificate(
        CLIENT_ID, app_cert, roles={MANAGE: ("ActivityFeed.Read", "ActivityFeed.ReadDlp")}, tenants=[TENANT]
    )
    with EntraStandIn(
        tls=ca.issue_server(hostnames=["localhost"], ips=["127.0.0.1"]),
        tenants=[TENANT, OTHER_TENANT],
        apps=[registration],
    ) as standin:
        yield standin


@pytest.fixture
def trusted(monkeypatch: pytest.MonkeyPatch, ca: TestCA) -> None:
    """The test CA trusted for this test only.

    requests (azure-core's transport under azure-identity/msal) reads REQUESTS_CA_BUNDLE on every request;
    httpx reads SSL_CERT_FILE when a client or transport is built (trust_env=True, its default).
    """
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca.bundle_path))
    monkeypatch.setenv("SSL_CERT_FILE", str(ca.bundle_path))


@pytest.fixture(autouse=True)
def _no_inherited_trust(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR", "AZURE_AUTHORITY_HOST"):
        monkeypatch.delenv(name, raising=False)


def credential(
    entra: EntraStandIn, cert: ClientCertificate, *, tenant: str = TENANT, **kw: Any
) -> CertificateCredential:
    kw.setdefault("disable_instance_discovery", True)
    return CertificateCredential(tenant, CLIENT_ID, certificate_data=cert.pfx, authority=entra.authority, **kw)


def sha1_hex(cert: ClientCertificate) -> str:
    der = cert.certificate.public_bytes(serialization.Encoding.DER)
    return hashlib.sha1(der).hexdigest().upper()  # noqa: S324 - the x5t thumbprint is SHA-1 by definition


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def assertion(
    cert: ClientCertificate,
    *,
    aud: str,
    alg: str = "RS256",
    jti: str | None = None,
    now: float | None = None,
    lifetime: int = 600,
    x5t_of: ClientCertificate | None = None,
) -> str:
    """A client assertion as Learn describes it, signed with ``cert``'s key, naming ``x5t_of`` (default: cert)."""
    named = x5t_of or cert
    der = named.certificate.public_bytes(serialization.Encoding.DER)
    header = (
        {"x5t": b64url(hashlib.sha1(der).digest())}  # noqa: S324
        if alg == "RS256"
        else {"x5t#S256": b64url(hashlib.sha256(der).digest())}
    )
    issued = int(now if now is not None else time.time())
    claims = {
        "aud": aud,
        "iss": CLIENT_ID,
        "sub": CLIENT_ID,
        "jti": jti or str(uuid.uuid4()),
        "iat": issued,
        "nbf": issued,
        "exp": issued + lifetime,
    }
    key = cert.private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return jwt.encode(claims, key, algorithm=alg, headers=header)


def post_token(entra: EntraStandIn, ca: TestCA, client_assertion: str, *, scope: str = MANAGE_SCOPE) -> httpx.Response:
    form = {
        "grant_type": "client_credentials",
        "client_id": CLIENT_ID,
        "scope": scope,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": client_assertion,
    }
    context = ssl.create_default_context(cafile=str(ca.bundle_path))
    with httpx.Client(verify=context, trust_env=False) as client:
        return client.post(f"{entra.authority}/{TENANT}/oauth2/v2.0/token", data=form)


# --------------------------------------------------------------------------- the real credential


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
@pytest.mark.usefixtures("trusted")
def test_certificate_credential_gets_a_token_over_https(
    entra: EntraStandIn, app_cert: ClientCertificate, host: str
) -> None:
    authority = entra.authority.replace("127.0.0.1", host)
    cred = CertificateCredential(
        TENANT, CLIENT_ID, certificate_data=app_cert.pfx, authority=authority, disable_instance_discovery=True
    )
    with cred:
        token = cred.get_token(MANAGE_SCOPE)

    claims = entra.verify_access_token(token.token, audience=MANAGE)
    assert (claims.tenant_id, claims.app_id, claims.audience) == (TENANT, CLIENT_ID, MANAGE)
    assert claims.roles == ("ActivityFeed.Read", "ActivityFeed.ReadDlp")
    assert claims.claims["iss"] == f"https://sts.windows.net/{TENANT}/"
    assert claims.claims["appidacr"] == "2"  # authenticated with a certificate
    assert claims.expires_at - claims.issued_at == 3599
    assert entra.token_requests == [
        TokenRequest(
            tenant=TENANT,
            client_id=CLIENT_ID,
            scope=MANAGE_SCOPE,
            grant_type="client_credentials",
            alg="RS256",
            thumbprint=sha1_hex(app_cert),
            thumbprint_sha256=None,
            status=200,
        )
    ]
    assert entra.metadata_requests == [f"/{TENANT}/v2.0/.well-known/openid-configuration"]


@pytest.mark.usefixtures("trusted")
def test_credential_with_an_unregistered_certificate_is_refused_700027(entra: EntraStandIn, ca: TestCA) -> None:
    other = ca.issue_client_certificate("CN=m365-itdr")
    with credential(entra, other) as cred, pytest.raises(ClientAuthenticationError) as info:
        cred.get_token(MANAGE_SCOPE)

    assert "AADSTS700027" in str(info.value)
    [seen] = entra.token_requests
    assert (seen.status, seen.error, seen.error_code, seen.thumbprint) == (
        401,
        "invalid_client",
        700027,
        sha1_hex(other),
    )


def test_untrusted_ca_fails_tls_verification(entra: EntraStandIn, app_cert: ClientCertificate) -> None:
    with credential(entra, app_cert, retry_total=0) as cred, pytest.raises(ClientAuthenticationError) as info:
        cred.get_token(MANAGE_SCOPE)

    assert "CERTIFICATE_VERIFY_FAILED" in str(info.value)
    assert entra.metadata_requests == []
    assert entra.token_requests == []


def test_ssl_cert_file_alone_does_not_make_msal_trust_the_ca(
    monkeypatch: pytest.MonkeyPatch, entra: EntraStandIn, ca: TestCA, app_cert: ClientCertificate
) -> None:
    """azure-identity's requests transport reads REQUESTS_CA_BUNDLE (or CURL_CA_BUNDLE), not SSL_CERT_FILE."""
    monkeypatch.setenv("SSL_CERT_FILE", str(ca.bundle_path))
    with credential(entra, app_cert, retry_total=0) as cred, pytest.raises(ClientAuthenticationError) as info:
        cred.get_token(MANAGE_SCOPE)
    assert "CERTIFICATE_VERIFY_FAILED" in str(info.value)


@pytest.mark.usefixtures("trusted")
def test_without_disabling_instance_discovery_msal_never_reaches_the_standin(
    entra: EntraStandIn, app_cert: ClientCertificate
) -> None:
    """msal asks login.microsoftonline.com about a host it does not know: unreachable offline, "invalid_instance" online."""
    with (
        credential(entra, app_cert, disable_instance_discovery=False, retry_total=0) as cred,
        pytest.raises((ClientAuthenticationError, ValueError)),
    ):
        cred.get_token(MANAGE_SCOPE)
    assert entra.metadata_requests == []
    assert entra.token_requests == []


@pytest.mark.usefixtures("trusted")
def test_unknown_tenant_is_refused_90002(entra: EntraStandIn, ca: TestCA, app_cert: ClientCertificate) -> None:
    unknown = "11111111-2222-4333-8444-555555555555"
    with credential(entra, app_cert, tenant=unknown) as cred, pytest.raises(ClientAuthenticationError) as info:
        cred.get_token(MANAGE_SCOPE)
    assert "Unable to get authority configuration" in str(info.value)  # msal's words for a 4xx discovery answer
    assert entra.metadata_requests == [f"/{unknown}/v2.0/.well-known/openid-configuration"]
    assert entra.token_requests == []

    with httpx.Client(verify=ssl.create_default_context(cafile=str(ca.bundle_path))) as client:
        answer = client.get(entra.openid_configuration_url(unknown))
    assert answer.status_code == 400
    assert (answer.json()["error"], answer.json()["error_codes"]) == ("invalid_tenant", [90002])


@pytest.mark.usefixtures("trusted")
def test_app_without_service_principal_in_the_tenant_is_refused_700016(
    entra: EntraStandIn, app_cert: ClientCertificate
) -> None:
    with credential(entra, app_cert, tenant=OTHER_TENANT) as cred, pytest.raises(ClientAuthenticationError) as info:
        cred.get_token(MANAGE_SCOPE)
    assert "AADSTS700016" in str(info.value)
    [seen] = entra.token_requests
    assert (seen.tenant, seen.status, seen.error, seen.error_code) == (OTHER_TENANT, 400, "unauthorized_client", 700016)


# --------------------------------------------------------------------------- the assertion checks


def test_a_replayed_assertion_is_refused(entra: EntraStandIn, ca: TestCA, app_cert: ClientCertificate) -> None:
    signed = assertion(app_cert, aud=f"{entra.authority}/{TENANT}/oauth2/v2.0/token")
    first = post_token(entra, ca, signed)
    again = post_token(entra, ca, signed)

    assert first.status_code == 200
    assert first.json()["token_type"] == "Bearer"
    assert first.json()["expires_in"] == 3599
    assert again.status_code == 401
    body = again.json()
    assert (body["error"], body["error_codes"]) == ("invalid_client", [700027])
    assert body["error_description"].startswith("AADSTS700027: Client assertion 'jti' has already been used.")
    assert set(body) == {
        "error",
        "error_description",
        "error_codes",
        "timestamp",
        "trace_id",
        "correlation_id",
        "error_uri",
    }


@pytest.mark.parametrize(
    "aud",
    [
        f"https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token",
        "{authority}/" + OTHER_TENANT + "/oauth2/v2.0/token",
        "{authority}/" + TENANT + "/oauth2/token",
    ],
)
def test_wrong_audience_is_refused_700023(
    entra: EntraStandIn, ca: TestCA, app_cert: ClientCertificate, aud: str
) -> None:
    response = post_token(entra, ca, assertion(app_cert, aud=aud.format(authority=entra.authority)))
    assert response.status_code == 401
    assert response.json()["error_codes"] == [700023]


def test_registered_thumbprint_but_another_key_is_refused(
    entra: EntraStandIn, ca: TestCA, app_cert: ClientCertificate
) -> None:
    forger = ca.issue_client_certificate("CN=m365-itdr")
    forged = assertion(forger, aud=f"{entra.authority}/{TENANT}/oauth2/v2.0/token", x5t_of=app_cert)
    response = post_token(entra, ca, forged)
    assert response.status_code == 401
    assert response.json()["error_codes"] == [700027]
    assert "invalid signature" in response.json()["error_description"]


def test_ps256_with_x5t_s256_is_accepted(entra: EntraStandIn, ca: TestCA, app_cert: ClientCertificate) -> None:
    response = post_token(
        entra, ca, assertion(app_cert, aud=f"{entra.authority}/{TENANT}/oauth2/v2.0/token", alg="PS256")
    )
    assert response.status_code == 200
    der = app_cert.certificate.public_bytes(serialization.Encoding.DER)
    [seen] = entra.token_requests
    assert (seen.alg, seen.thumbprint, seen.thumbprint_sha256) == (
        "PS256",
        None,
        hashlib.sha256(der).hexdigest().upper(),
    )


def test_expired_assertion_is_refused_700024(entra: EntraStandIn, ca: TestCA, app_cert: ClientCertificate) -> None:
    hour_ago = time.time() - 3600
    stale = assertion(app_cert, aud=f"{entra.authority}/{TENANT}/oauth2/v2.0/token", now=hour_ago, lifetime=600)
    response = post_token(entra, ca, stale)
    assert response.status_code == 401
    assert response.json()["error_codes"] == [700024]


def test_unsigned_assertion_is_refused(entra: EntraStandIn, ca: TestCA, app_cert: ClientCertificate) -> None:
    signed = assertion(app_cert, aud=f"{entra.authority}/{TENANT}/oauth2/v2.0/token")
    _, body, _ = signed.split(".")
    header = jwt.get_unverified_header(signed)
    none_header = b64url(f'{{"alg":"none","typ":"JWT","x5t":"{header["x5t"]}"}}'.encode())
    response = post_token(entra, ca, f"{none_header}.{body}.")
    assert response.status_code == 401
    assert response.json()["error_codes"] == [700027]


def test_scope_without_default_suffix_is_refused_1002012(
    entra: EntraStandIn, ca: TestCA, app_cert: ClientCertificate
) -> None:
    response = post_token(
        entra,
        ca,
        assertion(app_cert, aud=f"{entra.authority}/{TENANT}/oauth2/v2.0/token"),
        scope="https://manage.office.com/ActivityFeed.Read",
    )
    assert response.status_code == 400
    assert (response.json()["error"], response.json()["error_codes"]) == ("invalid_scope", [1002012])


# --------------------------------------------------------------------------- httpx clients of this project


@pytest.mark.usefixtures("trusted")
def test_httpx_clients_built_like_the_projects_trust_the_bundle_through_ssl_cert_file(entra: EntraStandIn) -> None:
    url = entra.openid_configuration_url(TENANT)
    with httpx.Client(timeout=httpx.Timeout(30.0)) as ingest_style:  # shared/ingest/client.py's default client
        assert ingest_style.get(url).json()["token_endpoint"] == f"{entra.authority}/{TENANT}/oauth2/v2.0/token"

    async def graph_style() -> int:  # shared/graph/client.py: AsyncClient over an explicit AsyncHTTPTransport()
        async with httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(), timeout=httpx.Timeout(30.0)) as client:
            return (await client.get(url)).status_code

    assert asyncio.run(graph_style()) == 200


@pytest.mark.usefixtures("trusted")
def test_httpx_with_trust_env_off_ignores_the_bundle(entra: EntraStandIn) -> None:
    with httpx.Client(trust_env=False) as client, pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        client.get(entra.openid_configuration_url(TENANT))


def test_httpx_without_the_bundle_refuses_the_standin(entra: EntraStandIn) -> None:
    with httpx.Client() as client, pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        client.get(entra.openid_configuration_url(TENANT))


@pytest.mark.usefixtures("trusted")
def test_ingest_client_calls_the_api_with_a_token_from_the_standin(
    entra: EntraStandIn, app_cert: ClientCertificate
) -> None:
    """The deployed shape: ManagementActivityClient + CertificateCredential, the token from Entra over HTTPS."""
    with ManagementApiEmulator() as api, credential(entra, app_cert) as cred:
        client = ManagementActivityClient(
            TENANT, cloud="commercial", publisher_id=PUBLISHER, credential=cred, base_url=api.base_url
        )
        try:
            client.start_subscription("Audit.General")
        finally:
            client.close()
        [call] = [r for r in api.requests if r.operation == "start_subscription"]

    assert call.authorization is not None and call.authorization.startswith("Bearer ")
    claims = entra.verify_access_token(call.authorization.removeprefix("Bearer "), audience=MANAGE)
    assert (claims.tenant_id, claims.app_id) == (TENANT, CLIENT_ID)
    assert [(r.scope, r.status) for r in entra.token_requests] == [(MANAGE_SCOPE, 200)]


def test_connection_verify_trusts_the_bundle_without_environment(
    entra: EntraStandIn, ca: TestCA, app_cert: ClientCertificate
) -> None:
    """The explicit alternative to REQUESTS_CA_BUNDLE: azure-core's ``connection_verify`` keyword."""
    with credential(entra, app_cert, connection_verify=str(ca.bundle_path)) as cred:
        token = cred.get_token(MANAGE_SCOPE)
    assert entra.verify_access_token(token.token, audience=MANAGE).tenant_id == TENANT


@pytest.mark.usefixtures("trusted")
def test_graph_auth_provider_gets_a_graph_token_from_the_standin(
    entra: EntraStandIn, app_cert: ClientCertificate
) -> None:
    """What shared/graph/client.py's AzureIdentityAuthenticationProvider does with the app credential (CAE on)."""
    from kiota_authentication_azure.azure_identity_access_token_provider import AzureIdentityAccessTokenProvider

    with credential(entra, app_cert) as cred:
        provider = AzureIdentityAccessTokenProvider(
            cred, None, scopes=["https://graph.microsoft.com/.default"], allowed_hosts=["graph.microsoft.com"]
        )
        token = asyncio.run(provider.get_authorization_token("https://graph.microsoft.com/v1.0/users"))

    claims = entra.verify_access_token(token, audience="https://graph.microsoft.com")
    assert (claims.tenant_id, claims.app_id, claims.roles) == (TENANT, CLIENT_ID, ())
    assert [(r.scope, r.status) for r in entra.token_requests] == [("https://graph.microsoft.com/.default", 200)]


@pytest.mark.usefixtures("trusted")
def test_services_credential_for_reaches_a_login_authority_override(
    entra: EntraStandIn, app_cert: ClientCertificate
) -> None:
    """The production wiring: ITDR_APP_CLIENT_ID, ITDR_APP_CERTIFICATE (base64 PFX), ITDR_LOGIN_AUTHORITY."""
    from shared.app import AppCertificateCredentials
    from shared.platform.settings import Settings

    settings = Settings.from_env(
        {
            "ITDR_APP_CLIENT_ID": CLIENT_ID,
            "ITDR_APP_CERTIFICATE": app_cert.pfx_base64,
            "ITDR_LOGIN_AUTHORITY": entra.authority,
        }
    )
    token = AppCertificateCredentials(settings)(TENANT, "commercial").get_token(MANAGE_SCOPE)
    assert entra.verify_access_token(token.token, audience=MANAGE).tenant_id == TENANT


# --------------------------------------------------------------------------- the CA and the loopback server


def test_app_certificate_pfx_is_what_the_setting_holds(ca: TestCA, app_cert: ClientCertificate) -> None:
    from cryptography.hazmat.primitives.serialization import pkcs12

    key, cert, extra = pkcs12.load_key_and_certificates(base64.b64decode(app_cert.pfx_base64), None)
    assert cert is not None and key is not None and extra == []
    assert cert.subject.rfc4514_string() == "CN=m365-itdr"
    assert cert.issuer == ca.certificate.subject
    der = cert.public_bytes(serialization.Encoding.DER)
    assert app_cert.thumbprint == hashlib.sha1(der).hexdigest().upper()  # noqa: S324
    assert app_cert.x5t == b64url(hashlib.sha1(der).digest())  # noqa: S324
    assert app_cert.x5t_s256 == b64url(hashlib.sha256(der).digest())


class _Hello(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = b"hello"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


def test_loopback_server_serves_plain_http_without_tls() -> None:
    with LoopbackServer(_Hello) as server, httpx.Client(trust_env=False) as client:
        assert server.base_url == f"http://127.0.0.1:{server.port}"
        assert client.get(server.base_url).text == "hello"


def test_loopback_server_serves_https_with_a_ca_issued_certificate(ca: TestCA) -> None:
    context = ssl.create_default_context(cafile=str(ca.bundle_path))
    with (
        LoopbackServer(_Hello, tls=ca.issue_server()) as server,
        httpx.Client(verify=context, trust_env=False) as client,
    ):
        assert server.base_url == f"https://127.0.0.1:{server.port}"
        assert client.get(server.base_url).text == "hello"
        assert client.get(server.base_url.replace("127.0.0.1", "localhost")).text == "hello"


def test_trust_environment_names_the_bundle(ca: TestCA) -> None:
    import certifi

    ca_pem = ca.certificate.public_bytes(serialization.Encoding.PEM)
    only = ca.trust_environment()
    assert only == {"REQUESTS_CA_BUNDLE": str(ca.bundle_path), "SSL_CERT_FILE": str(ca.bundle_path)}
    assert ca.bundle_path.read_bytes() == ca_pem
    both = ca.trust_environment(include_public_roots=True)
    combined = Path(both["SSL_CERT_FILE"]).read_bytes()
    assert both["REQUESTS_CA_BUNDLE"] == both["SSL_CERT_FILE"] != str(ca.bundle_path)
    assert combined.startswith(Path(certifi.where()).read_bytes())
    assert combined.endswith(ca_pem)


def _graph_emulator_over_https(monkeypatch: pytest.MonkeyPatch, ca: TestCA) -> None:
    """The unchanged Graph emulator served over TLS by putting TLSServerMixin in front of its server class."""
    from shared.emulators import graph as graph_emulator

    context = ca.issue_server().server_context()

    class TLSGraphServer(TLSServerMixin, graph_emulator._Server):
        tls_context = context

    monkeypatch.setattr(graph_emulator, "_Server", TLSGraphServer)


@pytest.mark.parametrize("trust", [True, False], ids=["ssl_cert_file", "untrusted"])
def test_project_graph_client_trusts_the_bundle_through_ssl_cert_file(
    monkeypatch: pytest.MonkeyPatch, ca: TestCA, trust: bool
) -> None:
    from shared.emulators.graph import GraphEmulator
    from shared.graph.client import SyncGraphClient
    from shared.platform.errors import ServiceUnavailable

    _graph_emulator_over_https(monkeypatch, ca)
    if trust:
        monkeypatch.setenv("SSL_CERT_FILE", str(ca.bundle_path))  # read when the client's transport is built
    with GraphEmulator() as emulator:
        user_id = emulator.add_user(TENANT, user_principal_name="adele.vance@contoso.com")
        client = SyncGraphClient.create(
            TENANT, credential=emulator.credential(TENANT), base_url=f"https://127.0.0.1:{emulator.port}/v1.0"
        )
        try:
            if trust:
                assert client.get_user(user_id).user_principal_name == "adele.vance@contoso.com"
            else:
                with pytest.raises(ServiceUnavailable) as info:  # the Graph client calls it transient
                    client.get_user(user_id)
                chain = []
                error: BaseException | None = info.value
                while error is not None:
                    chain.append(str(error))
                    error = error.__cause__ or error.__context__
                assert any("CERTIFICATE_VERIFY_FAILED" in text for text in chain), chain
        finally:
            client.close()
        assert [c.status for c in emulator.calls] == ([200] if trust else [])
