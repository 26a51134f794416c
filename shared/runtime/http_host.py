"""The HTTP functions of ``function_app.py`` on a loopback port, as the Functions host serves them.

A stand-in for the host's HTTP front (``/api/{route}``, route templates with ``{name}`` and ``{name?}``,
methods as registered, the query string as ``req.params``), so the CLI's admin client, a browser following a
consent link, and the tests use the real HTTP path into the registered functions. The functions use the
services installed with :func:`shared.app.configure` (or built from the environment, as deployed).
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import azure.functions as func

from shared.runtime.local import registered_functions

MAX_BODY = 1024 * 1024


@dataclass(frozen=True, slots=True)
class _Route:
    name: str
    pattern: re.Pattern[str]
    methods: frozenset[str]


def _compile(template: str) -> re.Pattern[str]:
    out = ""
    for part in template.strip("/").split("/"):
        m = re.fullmatch(r"\{(\w+)(\?)?\}", part)
        if m is None:
            out += "/" + re.escape(part)
        elif m.group(2):
            out += f"(?:/(?P<{m.group(1)}>[^/]+))?"
        else:
            out += f"/(?P<{m.group(1)}>[^/]+)"
    return re.compile(f"^{out}/?$")


def http_routes() -> list[_Route]:
    """The HTTP-triggered functions with their routes and methods."""
    routes = []
    for name, fn in registered_functions().items():
        binding = json.loads(fn.get_function_json())["bindings"][0]
        if binding["type"] != "httpTrigger":
            continue
        methods = frozenset(m.upper() for m in binding.get("methods") or ["GET", "POST"])
        routes.append(_Route(name, _compile(binding.get("route") or name), methods))
    # literal routes before templates (admin/consent before admin/tenants/{tenant_id})
    routes.sort(key=lambda r: r.pattern.pattern.count("(?P"))
    return routes


class FunctionsHttpHost:
    """``with FunctionsHttpHost() as host: httpx.get(f"{host.base_url}/api/admin/tenants")``."""

    def __init__(self, *, port: int = 0) -> None:
        self._port = port
        self._routes = http_routes()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.requests = 0

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("host not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FunctionsHttpHost:
        server = ThreadingHTTPServer(("127.0.0.1", self._port), _Handler)
        server.daemon_threads = True
        server.host = self  # type: ignore[attr-defined]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FunctionsHttpHost:
        return self.start()

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def dispatch(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        parts = urlsplit(path)
        if not parts.path.startswith("/api/"):
            return 404, {}, b""
        sub = parts.path[len("/api") :]
        for route in self._routes:
            m = route.pattern.match(sub)
            if m is None:
                continue
            if method.upper() not in route.methods:
                return 405, {}, b""
            self.requests += 1
            req = func.HttpRequest(
                method=method.upper(),
                url=f"{self.base_url}{path}",
                headers=headers,
                params=dict(parse_qsl(parts.query, keep_blank_values=True)),
                route_params={k: v for k, v in m.groupdict().items() if v is not None},
                body=body,
            )
            fn = registered_functions()[route.name].get_user_function()
            resp: func.HttpResponse = fn(req)
            out_headers = {k: v for k, v in resp.headers.items()}
            if resp.mimetype:
                out_headers.setdefault("Content-Type", resp.mimetype)
            return resp.status_code, out_headers, resp.get_body()
        return 404, {}, b""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _serve(self) -> None:
        host: FunctionsHttpHost = self.server.host  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._send(413, {}, b"")
            return
        body = self.rfile.read(length) if length > 0 else b""
        try:
            status, headers, data = host.dispatch(self.command, self.path, dict(self.headers.items()), body)
        except Exception as exc:  # the host answers 500 for an unhandled exception
            status, headers, data = 500, {}, type(exc).__name__.encode()
        self._send(status, headers, data)

    def _send(self, status: int, headers: dict[str, str], data: bytes) -> None:
        self.send_response(status)
        for k, v in headers.items():
            if k.lower() not in ("content-length", "connection"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = _serve  # noqa: N815
    do_POST = _serve  # noqa: N815

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""
