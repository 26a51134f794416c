"""`make dev`: Azurite and the local stand-ins on the ports local.settings.sample.json names, for `func start`.

    Azurite                          blob 10000, queue 10001, table 10002
    Management Activity API          http://127.0.0.1:8701        ITDR_MANAGEMENT_API_BASE_URL
    Microsoft Graph                  http://127.0.0.1:8702/v1.0   ITDR_GRAPH_BASE_URL
    Entra token endpoint (HTTPS)     https://127.0.0.1:8703       ITDR_LOGIN_AUTHORITY
    partner Logic App (HTTPS)        https://127.0.0.1:8704/...   ITDR_PARTNER_ENDPOINT

The Entra stand-in signs the app in with a certificate made for this run, under a CA made for this run: it
writes ``local.settings.json`` (git-ignored) from the sample with that certificate (``ITDR_APP_CERTIFICATE``),
the partner URL, a development admin key's hash, and ``REQUESTS_CA_BUNDLE``/``SSL_CERT_FILE`` pointing at
the CA, so the app trusts the stand-ins with verification on. A development tenant with a few users is
registered in Entra and Graph; onboard it with the admin function. The Management Activity API posts
webhook notifications to ``ITDR_WEBHOOK_URL`` (the Functions host at localhost:7071).

``--check`` starts everything, signs in and lists the development tenant's subscriptions the way the
deployed app does (its services built from the written settings alone), then stops.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from shared.emulators.entra import AppRegistration, EntraStandIn, InvalidAccessToken
from shared.emulators.graph import GraphEmulator
from shared.emulators.management_api import ManagementApiEmulator
from shared.emulators.partner import PartnerEndpoint
from shared.emulators.tls import TestCA
from shared.platform.azurite import Azurite

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "local.settings.sample.json"
DEV_TENANT = "11111111-2222-4333-8444-555555555555"
DEV_ADMIN_KEY = "dev-admin-key"
DEV_USERS = (("adele@dev.example", "US"), ("ben@dev.example", "GB"), ("chen@dev.example", "SG"))


@dataclass(frozen=True)
class DevStack:
    """What `make dev` serves, and the settings the app runs with against it."""

    values: Mapping[str, str]
    entra: EntraStandIn
    api: ManagementApiEmulator
    graph: GraphEmulator
    partner: PartnerEndpoint


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


@contextmanager
def serve(directory: Path) -> Iterator[DevStack]:
    """Start everything on the sample's ports; ``directory`` holds this run's CA."""
    sample: dict[str, str] = json.loads(SAMPLE.read_text(encoding="utf-8"))["Values"]
    client_id = sample["ITDR_APP_CLIENT_ID"]
    with ExitStack() as stack:
        ca = stack.enter_context(TestCA.create(directory=directory))
        server = ca.issue_server(hostnames=["localhost"], ips=["127.0.0.1"])
        app_cert = ca.issue_client_certificate("CN=m365-itdr-dev")
        stack.enter_context(Azurite(ports=(10000, 10001, 10002)))
        entra = stack.enter_context(
            EntraStandIn(
                tls=server,
                tenants=[DEV_TENANT],
                apps=[AppRegistration.with_certificate(client_id, app_cert)],
                port=_port(sample["ITDR_LOGIN_AUTHORITY"]),
            )
        )

        def tenant_of(audience: str) -> object:
            def check(token: str) -> str | None:
                try:
                    return entra.verify_access_token(token, audience=audience).tenant_id
                except InvalidAccessToken:
                    return None

            return check

        api = stack.enter_context(
            ManagementApiEmulator(
                token_tenant=tenant_of("https://manage.office.com"),  # type: ignore[arg-type]
                port=_port(sample["ITDR_MANAGEMENT_API_BASE_URL"]),
            )
        )
        graph = stack.enter_context(
            GraphEmulator(
                token_tenant=tenant_of("https://graph.microsoft.com"),  # type: ignore[arg-type]
                port=_port(sample["ITDR_GRAPH_BASE_URL"].removesuffix("/v1.0")),
            )
        )
        partner = stack.enter_context(PartnerEndpoint(tls=server, port=8704))
        graph.add_tenant(DEV_TENANT)
        for upn, country in DEV_USERS:
            graph.add_user(DEV_TENANT, user_principal_name=upn, usage_location=country)
        values = {
            **sample,
            "ITDR_APP_CERTIFICATE": app_cert.pfx_base64,
            "ITDR_PARTNER_ENDPOINT": partner.url,
            "ITDR_ADMIN_KEY_SHA256": hashlib.sha256(DEV_ADMIN_KEY.encode()).hexdigest(),
            **ca.trust_environment(include_public_roots=True),
        }
        yield DevStack(values, entra, api, graph, partner)


def write_local_settings(values: Mapping[str, str], path: Path) -> None:
    """local.settings.json for `func start` (git-ignored: it holds this run's development certificate)."""
    path.write_text(json.dumps({"IsEncrypted": False, "Values": dict(values)}, indent=2) + "\n", encoding="utf-8")


def check(values: Mapping[str, str]) -> list[str]:
    """Sign in and list the development tenant's subscriptions as the deployed app does; returns their states."""
    from shared.app import Services
    from shared.platform.bus import InProcessBus, default_queue_options
    from shared.platform.settings import Settings

    saved = {k: os.environ.get(k) for k in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")}
    os.environ.update({k: values[k] for k in saved})
    try:
        svc = Services(Settings.from_env(values), bus=InProcessBus(default_queue_options()))
        try:
            subs = svc.management_client(DEV_TENANT).list_subscriptions()
            users = svc.graph_client(DEV_TENANT).list_users()
        finally:
            svc.close()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return [f"subscriptions: {len(subs)}", f"users: {len(users)}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make dev", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="start, sign in once as the app would, and stop")
    parser.add_argument("--settings", type=Path, default=ROOT / "local.settings.json", help="where to write")
    args = parser.parse_args(argv)
    directory = ROOT / ".tmp" / "dev"
    directory.mkdir(parents=True, exist_ok=True)
    with serve(directory) as dev:
        write_local_settings(dev.values, args.settings)
        print(f"wrote {args.settings} (this run's development certificate and CA; git-ignored)")
        print(f"  development tenant {DEV_TENANT}, users: {', '.join(u for u, _ in DEV_USERS)}")
        print(f"  admin key for x-itdr-admin-key: {DEV_ADMIN_KEY}")
        print("  Azurite 10000-10002, Management Activity API :8701, Graph :8702, Entra :8703, partner :8704")
        if args.check:
            for line in check(dev.values):
                print(f"  check: {line}")
            return 0
        print("serving; run `func start` in another terminal (Ctrl-C stops)")
        stop = threading.Event()
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
