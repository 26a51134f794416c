"""A test certificate authority made at run time, and HTTPS for the loopback stand-ins.

Nothing here disables certificate verification: a process trusts the stand-ins by trusting
:attr:`TestCA.bundle_path` (``REQUESTS_CA_BUNDLE`` for requests, hence msal and azure-identity;
``SSL_CERT_FILE`` for httpx clients built with ``trust_env=True``, its default), exactly as it would
trust a corporate CA.

- :meth:`TestCA.create` makes a CA key and self-signed CA certificate (RSA 2048, in a temp directory);
- :meth:`TestCA.issue_server` a server certificate for ``localhost``/``127.0.0.1`` (PEM files for
  :class:`ssl.SSLContext`);
- :meth:`TestCA.issue_client_certificate` an application certificate as the PFX/PKCS#12 bytes (no
  password) that the Function App's ``ITDR_APP_CERTIFICATE`` setting holds base64-encoded (a Key Vault
  certificate reference in production), with its SHA-1 thumbprint (the ``x5t`` an assertion carries).

Serving: :class:`TLSServerMixin` adds optional TLS to any ``socketserver`` TCP server (the TLS
handshake runs in the request's own thread, so a client that refuses the certificate never blocks the
accept loop); :class:`LoopbackServer` runs any :class:`http.server.BaseHTTPRequestHandler` subclass
on 127.0.0.1 at a free port in a daemon thread, over HTTP or HTTPS. The existing emulators can take
HTTPS by adding the mixin to their ``_Server`` bases and setting ``tls_context``; with it unset
(``None``) their behaviour is unchanged.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import shutil
import socket
import ssl
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_KEY_SIZE = 2048
_BACKDATE = dt.timedelta(minutes=5)
_HANDSHAKE_TIMEOUT = 10.0


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=_KEY_SIZE)


def _name(subject: str) -> x509.Name:
    """``CN=m365-itdr`` (RFC 4514 text) -> an X.509 name."""
    return x509.Name.from_rfc4514_string(subject)


@dataclass(frozen=True, slots=True)
class ServerCertificate:
    """A server certificate and key as PEM files, issued by a :class:`TestCA`."""

    cert_path: Path
    key_path: Path
    hostnames: tuple[str, ...]
    ips: tuple[str, ...]

    def server_context(self) -> ssl.SSLContext:
        """A TLS server context (TLS 1.2 or later) presenting this certificate."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.cert_path, self.key_path)
        return context


@dataclass(frozen=True, slots=True)
class ClientCertificate:
    """An application certificate (the app registration's key credential) and its private key."""

    certificate: x509.Certificate
    private_key: rsa.RSAPrivateKey
    pfx: bytes
    """PKCS#12 with key and certificate, no password: what ``CertificateCredential(certificate_data=...)`` takes."""

    @property
    def pfx_base64(self) -> str:
        """The PFX base64-encoded: the value of ``ITDR_APP_CERTIFICATE``."""
        return base64.b64encode(self.pfx).decode("ascii")

    @property
    def thumbprint(self) -> str:
        """SHA-1 of the DER certificate, upper-case hex (as the Entra portal shows it)."""
        return self.certificate.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303 - the x5t thumbprint is SHA-1

    @property
    def thumbprint_sha256(self) -> str:
        """SHA-256 of the DER certificate, upper-case hex."""
        return self.certificate.fingerprint(hashes.SHA256()).hex().upper()

    @property
    def x5t(self) -> str:
        """The ``x5t`` JOSE header value: base64url of the SHA-1 thumbprint bytes."""
        return _b64url(self.certificate.fingerprint(hashes.SHA1()))  # noqa: S303 - the x5t thumbprint is SHA-1

    @property
    def x5t_s256(self) -> str:
        """The ``x5t#S256`` JOSE header value: base64url of the SHA-256 thumbprint bytes."""
        return _b64url(self.certificate.fingerprint(hashes.SHA256()))

    @property
    def certificate_pem(self) -> bytes:
        """The public certificate alone (what is uploaded to the app registration)."""
        return self.certificate.public_bytes(serialization.Encoding.PEM)


class TestCA:
    """A certificate authority for one test run; its files live in a temp directory until :meth:`close`.

    ``TestCA.create()`` then ``issue_server(...)`` for the stand-ins and ``issue_client_certificate(...)``
    for the app; point the client process at :attr:`bundle_path`.
    """

    __test__ = False  # not a pytest test class despite its name

    def __init__(self, *, key: rsa.RSAPrivateKey, certificate: x509.Certificate, directory: Path) -> None:
        self._key = key
        self.certificate = certificate
        self.directory = directory
        self.bundle_path = directory / "ca.pem"
        """PEM with the CA certificate alone: the file for ``SSL_CERT_FILE`` / ``REQUESTS_CA_BUNDLE``."""
        self.bundle_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        self._serial_lock = threading.Lock()
        self._issued = 0

    @classmethod
    def create(cls, *, common_name: str = "m365-itdr test CA", directory: Path | None = None) -> TestCA:
        """A new CA key and self-signed CA certificate valid for a day; files in ``directory`` or a new temp dir."""
        key = _new_key()
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        now = dt.datetime.now(dt.UTC)
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256())
        )
        target = directory if directory is not None else Path(tempfile.mkdtemp(prefix="itdr-test-ca-"))
        target.mkdir(parents=True, exist_ok=True)
        return cls(key=key, certificate=certificate, directory=target)

    def close(self) -> None:
        """Delete the directory of issued files."""
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> TestCA:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def trust_environment(self, *, include_public_roots: bool = False) -> dict[str, str]:
        """Environment variables that make a (child) process trust this CA, verification left on.

        ``REQUESTS_CA_BUNDLE``: requests, hence azure-core's default transport, azure-identity and msal.
        ``SSL_CERT_FILE``: httpx (clients and transports built with ``trust_env=True``, the default; read
        when the client is built) and OpenSSL's default verify paths (``ssl.create_default_context()``).
        Both replace the default roots: ``include_public_roots=True`` points them at certifi's roots plus
        this CA, for a process that also calls real Microsoft hosts.
        """
        path = self.combined_bundle_path() if include_public_roots else self.bundle_path
        return {"REQUESTS_CA_BUNDLE": str(path), "SSL_CERT_FILE": str(path)}

    def combined_bundle_path(self) -> Path:
        """A PEM with certifi's public roots and this CA, for a process that also calls real hosts."""
        import certifi

        path = self.directory / "ca-with-public-roots.pem"
        if not path.exists():
            path.write_bytes(Path(certifi.where()).read_bytes() + b"\n" + self.bundle_path.read_bytes())
        return path

    # -- issuing --------------------------------------------------------------------------------------
    def _next_name(self, stem: str) -> str:
        with self._serial_lock:
            self._issued += 1
            return f"{stem}-{self._issued}"

    def _leaf(
        self,
        subject: x509.Name,
        key: rsa.RSAPrivateKey,
        *,
        usage: x509.ObjectIdentifier,
        san: x509.SubjectAlternativeName | None,
        days: int,
    ) -> x509.Certificate:
        now = dt.datetime.now(dt.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=True,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False)
        )
        if san is not None:
            builder = builder.add_extension(san, critical=False)
        return builder.sign(self._key, hashes.SHA256())

    def issue_server(
        self, hostnames: Sequence[str] = ("localhost",), ips: Sequence[str] = ("127.0.0.1",), *, days: int = 1
    ) -> ServerCertificate:
        """A TLS server certificate for ``hostnames`` and ``ips`` (subject alternative names), as PEM files."""
        if not hostnames and not ips:
            raise ValueError("a server certificate needs at least one host name or IP address")
        key = _new_key()
        names: list[x509.GeneralName] = [x509.DNSName(h) for h in hostnames]
        names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
        common_name = hostnames[0] if hostnames else ips[0]
        certificate = self._leaf(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]),
            key,
            usage=ExtendedKeyUsageOID.SERVER_AUTH,
            san=x509.SubjectAlternativeName(names),
            days=days,
        )
        stem = self._next_name("server")
        cert_path = self.directory / f"{stem}.pem"
        key_path = self.directory / f"{stem}.key"
        cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        key_path.touch(mode=0o600)
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        return ServerCertificate(cert_path, key_path, tuple(hostnames), tuple(ips))

    def issue_client_certificate(self, subject: str = "CN=m365-itdr", *, days: int = 1) -> ClientCertificate:
        """An application certificate for ``subject`` (RFC 4514, e.g. ``CN=m365-itdr``) as PFX bytes without password."""
        key = _new_key()
        certificate = self._leaf(_name(subject), key, usage=ExtendedKeyUsageOID.CLIENT_AUTH, san=None, days=days)
        pfx = pkcs12.serialize_key_and_certificates(
            name=subject.encode(),
            key=key,
            cert=certificate,
            cas=None,
            encryption_algorithm=serialization.NoEncryption(),
        )
        return ClientCertificate(certificate=certificate, private_key=key, pfx=pfx)


# --------------------------------------------------------------------------- serving


class TLSServerMixin:
    """Optional TLS for a ``socketserver`` TCP server: put it first in the bases and set :attr:`tls_context`.

    The handshake happens in :meth:`finish_request`, i.e. in the request's thread under
    ``ThreadingMixIn``; a failed handshake (the client does not trust the CA) ends that connection
    quietly. With ``tls_context`` ``None`` the server is plain HTTP, unchanged.
    """

    tls_context: ssl.SSLContext | None = None

    def finish_request(self, request: Any, client_address: Any) -> None:
        context = self.tls_context
        if context is None:
            super().finish_request(request, client_address)  # type: ignore[misc]
            return
        try:
            request.settimeout(_HANDSHAKE_TIMEOUT)
            tls = context.wrap_socket(request, server_side=True)
            tls.settimeout(None)
        except (ssl.SSLError, OSError):
            return  # handshake refused or connection dropped: nothing was served
        self._track_tls(tls, add=True)
        try:
            super().finish_request(tls, client_address)  # type: ignore[misc]
        finally:
            self._track_tls(tls, add=False)
            try:
                tls.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            tls.close()

    def _track_tls(self, sock: ssl.SSLSocket, *, add: bool) -> None:
        lock = self.__dict__.setdefault("_tls_lock", threading.Lock())
        with lock:
            open_sockets: set[ssl.SSLSocket] = self.__dict__.setdefault("_tls_open", set())
            if add:
                open_sockets.add(sock)
            else:
                open_sockets.discard(sock)

    def close_tls_sockets(self) -> None:
        """Shut down every TLS connection still open (kept-alive clients), so stop() does not wait on them."""
        lock = self.__dict__.setdefault("_tls_lock", threading.Lock())
        with lock:
            sockets = list(self.__dict__.get("_tls_open", ()))
        for s in sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _LoopbackHTTPServer(TLSServerMixin, ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up is not an error worth a traceback."""
        import sys

        if isinstance(sys.exc_info()[1], ConnectionError | ssl.SSLError | TimeoutError):
            return
        super().handle_error(request, client_address)


class LoopbackServer:
    """Serve a :class:`BaseHTTPRequestHandler` subclass on 127.0.0.1 at a free port, HTTP or HTTPS.

    ``LoopbackServer(handler, tls=server_certificate).start()``; the handler reaches shared state through
    ``self.server.owner`` (the ``owner`` given here). Use as a context manager or start()/stop().
    """

    def __init__(
        self,
        handler: type[BaseHTTPRequestHandler],
        *,
        tls: ServerCertificate | ssl.SSLContext | None = None,
        owner: object = None,
        host: str = "127.0.0.1",
        name: str = "loopback-server",
        poll_interval: float = 0.05,
        port: int = 0,
    ) -> None:
        self._port = port
        self._handler = handler
        self._context = tls.server_context() if isinstance(tls, ServerCertificate) else tls
        self.owner = owner
        self._host = host
        self._name = name
        self._poll_interval = poll_interval
        self._server: _LoopbackHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> LoopbackServer:
        """Bind a free port and serve from a daemon thread (idempotent)."""
        if self._server is not None:
            return self
        server = _LoopbackHTTPServer((self._host, self._port), self._handler)
        server.tls_context = self._context
        server.owner = self.owner  # type: ignore[attr-defined]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": self._poll_interval}, name=self._name, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close kept-alive connections and release the port."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.close_tls_sockets()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def scheme(self) -> str:
        return "https" if self._context is not None else "http"

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"{self._name} is not started")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """``https://127.0.0.1:PORT`` (or ``http://`` without TLS)."""
        return f"{self.scheme}://{self._host}:{self.port}"


__all__ = ["ClientCertificate", "LoopbackServer", "ServerCertificate", "TLSServerMixin", "TestCA"]
