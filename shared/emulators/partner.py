"""A local stand-in for the partner's Logic App HTTP trigger ("When a HTTP request is received").

A real HTTP server on 127.0.0.1 (a free port) at the path a Consumption Logic App trigger has::

    POST /workflows/{workflow}/triggers/manual/paths/invoke
         ?api-version=2016-10-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={signature}

It answers as the trigger does: ``202 Accepted`` with ``x-ms-workflow-run-id``,
``x-ms-correlation-id`` and the caller's ``x-ms-client-tracking-id`` echoed; ``401`` when the
``sig`` does not match; ``400 TriggerInputSchemaMismatch`` when a JSON Schema was given and the
body does not satisfy it (the trigger's "request body JSON schema" with validation on).

Every POST that reached the server is recorded (:attr:`PartnerEndpoint.requests`: path, headers,
body, answer). :attr:`PartnerEndpoint.effective_deliveries` de-duplicates the accepted ones by
``Idempotency-Key`` (falling back to ``x-ms-client-tracking-id``), which is what a Logic App that
follows docs/partner-integration.md turns into tickets.

Outages (:meth:`PartnerEndpoint.set_down`), until :meth:`PartnerEndpoint.set_up` or a bound:

- ``mode="status"``: answer ``status`` (503 by default, any code: 429 with ``retry_after``, or a
  permanent 400) for the next ``requests`` requests or until ``until`` on the injectable clock;
- ``mode="reset"``: read the request, then close the connection without an answer;
- ``mode="refuse"``: stop listening, so connections are refused; lasts until :meth:`set_up`
  (the server comes back on the same port);
- ``mode="slow"``: accept the request normally but answer only after ``delay`` seconds (a real
  sleep: keep it short), so a client with a shorter timeout gives up on a request that was in fact
  accepted, the double-post case the idempotency key is for.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from shared.emulators.tls import ServerCertificate, TLSServerMixin

DownMode = Literal["status", "reset", "refuse", "slow"]


@dataclass(frozen=True, slots=True)
class ReceivedPost:
    """One request that reached the emulator, with the status it got (0: connection closed unanswered)."""

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    """Header names lower-cased."""
    body: bytes
    status: int

    @property
    def idempotency_key(self) -> str | None:
        return self.headers.get("idempotency-key") or self.headers.get("x-ms-client-tracking-id")

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(slots=True)
class _Outage:
    mode: DownMode
    status: int
    retry_after: float | None
    remaining: int | None
    until: float | None
    delay: float = 0.0


class _Server(TLSServerMixin, ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    endpoint: PartnerEndpoint

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (timeout) and closed its socket is expected here, not an error."""
        import sys

        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_POST(self) -> None:
        self.server.endpoint._handle(self)

    def do_GET(self) -> None:
        self.server.endpoint._handle(self)


class PartnerEndpoint:
    """The partner's Logic App trigger on loopback; use as a context manager."""

    def __init__(
        self,
        *,
        workflow: str = "itdr-partner",
        signature: str | None = None,
        schema: Mapping[str, Any] | None = None,
        now: Callable[[], float] = time.monotonic,
        tls: ServerCertificate | None = None,
        port: int = 0,
    ) -> None:
        """``tls``: serve HTTPS with this certificate (as a Logic App trigger is), else plain HTTP."""
        self._tls = tls
        self.workflow = workflow
        self.signature = signature or secrets.token_urlsafe(24)
        self._schema = dict(schema) if schema is not None else None
        self._now = now
        self._lock = threading.Lock()
        self._requests: list[ReceivedPost] = []
        self._outage: _Outage | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._port: int = port

    # lifecycle ---------------------------------------------------------------------------------
    def start(self) -> PartnerEndpoint:
        if self._server is not None:
            return self
        server = _Server(("127.0.0.1", self._port), _Handler)
        server.endpoint = self
        server.tls_context = self._tls.server_context() if self._tls is not None else None
        self._port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> PartnerEndpoint:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # addresses ---------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        if not self._port:
            raise RuntimeError("the partner endpoint is not started")
        scheme = "https" if self._tls is not None else "http"
        return f"{scheme}://127.0.0.1:{self._port}"

    @property
    def path(self) -> str:
        return f"/workflows/{self.workflow}/triggers/manual/paths/invoke"

    @property
    def url(self) -> str:
        """The trigger URL, signature included (treat it as a secret, as the real one is)."""
        query = f"api-version=2016-10-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={self.signature}"
        return f"{self.base_url}{self.path}?{query}"

    # faults ------------------------------------------------------------------------------------
    def set_down(
        self,
        *,
        requests: int | None = None,
        until: float | None = None,
        status: int = 503,
        retry_after: float | None = None,
        mode: DownMode = "status",
        delay: float = 0.1,
    ) -> None:
        """Fail the next ``requests`` requests, or until ``until`` (the ``now`` clock), or until :meth:`set_up`."""
        if mode == "refuse":
            if requests is not None or until is not None:
                raise ValueError("a refused connection never reaches the server: refuse lasts until set_up()")
            self.stop()
            with self._lock:
                self._outage = _Outage(mode, 0, None, None, None)
            return
        with self._lock:
            self._outage = _Outage(mode, status, retry_after, requests, until, delay)

    def set_up(self) -> None:
        """End any outage (and listen again after ``refuse``)."""
        with self._lock:
            was = self._outage
            self._outage = None
        if was is not None and was.mode == "refuse":
            self.start()

    # what was received ---------------------------------------------------------------------------
    @property
    def requests(self) -> list[ReceivedPost]:
        """Every request that reached the server, in arrival order."""
        with self._lock:
            return list(self._requests)

    @property
    def deliveries(self) -> list[ReceivedPost]:
        """Accepted (2xx) POSTs, duplicates included."""
        return [r for r in self.requests if 200 <= r.status < 300]

    @property
    def effective_deliveries(self) -> list[ReceivedPost]:
        """Accepted POSTs de-duplicated by idempotency key (the first of each key), in arrival order."""
        seen: set[str] = set()
        out: list[ReceivedPost] = []
        for r in self.deliveries:
            key = r.idempotency_key or f"_nokey_{id(r)}"
            if key not in seen:
                seen.add(key)
                out.append(r)
        return out

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()

    # request handling --------------------------------------------------------------------------
    def _take_outage(self) -> _Outage | None:
        with self._lock:
            o = self._outage
            if o is None:
                return None
            if o.until is not None and self._now() >= o.until:
                self._outage = None
                return None
            if o.remaining is not None:
                if o.remaining <= 0:
                    self._outage = None
                    return None
                o.remaining -= 1
            return o

    def _handle(self, h: _Handler) -> None:
        parts = urlsplit(h.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in h.headers.items()}

        def record(status: int) -> None:
            with self._lock:
                self._requests.append(ReceivedPost(h.command, parts.path, query, headers, body, status))

        outage = self._take_outage()
        if outage is not None and outage.mode == "refuse":
            h.close_connection = True  # a kept-alive connection from before the outage: drop it unanswered
            return
        if outage is not None and outage.mode == "slow":
            time.sleep(outage.delay)
            outage = None
        if outage is not None and outage.mode == "reset":
            record(0)
            h.close_connection = True
            return
        if outage is not None:
            record(outage.status)
            extra = {"Retry-After": f"{outage.retry_after:g}"} if outage.retry_after is not None else {}
            self._send(h, outage.status, _error("ServiceUnavailable" if outage.status >= 500 else "Rejected"), extra)
            return
        if parts.path != self.path:
            record(404)
            self._send(h, 404, _error("WorkflowNotFound", "The workflow or trigger was not found."))
            return
        if h.command != "POST":
            record(405)
            self._send(h, 405, _error("TriggerRequestMethodNotValid", "The HTTP method is not allowed."))
            return
        if not secrets.compare_digest(query.get("sig", ""), self.signature):
            record(401)
            self._send(h, 401, _error("DirectApiInvalidAuthorizationSignature", "The provided signature is invalid."))
            return
        if self._schema is not None:
            problem = self._validate(body, headers.get("content-type", ""))
            if problem:
                record(400)
                self._send(h, 400, _error("TriggerInputSchemaMismatch", problem))
                return
        record(202)
        tracking = headers.get("x-ms-client-tracking-id") or str(uuid.uuid4())
        self._send(
            h,
            202,
            b"",
            {
                "x-ms-workflow-run-id": uuid.uuid4().hex.upper(),
                "x-ms-correlation-id": str(uuid.uuid4()),
                "x-ms-client-tracking-id": tracking,
            },
        )

    def _validate(self, body: bytes, content_type: str) -> str:
        import jsonschema

        if "json" not in content_type.lower():
            return "The request content type must be application/json."
        try:
            doc = json.loads(body)
        except ValueError:
            return "The request body is not valid JSON."
        validator = jsonschema.Draft202012Validator(self._schema or {})
        errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
        if errors:
            first = errors[0]
            where = "/".join(str(p) for p in first.path) or "(root)"
            return f"The input body for trigger 'manual' did not match its schema: {where}: {first.message}"
        return ""

    @staticmethod
    def _send(h: _Handler, status: int, body: bytes, headers: Mapping[str, str] | None = None) -> None:
        h.send_response(status)
        if body:
            h.send_header("Content-Type", "application/json; charset=utf-8")
        h.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        if body:
            h.wfile.write(body)


def _error(code: str, message: str = "The service is unavailable.") -> bytes:
    return json.dumps({"error": {"code": code, "message": message}}).encode()
