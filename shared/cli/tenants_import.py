"""``itdr tenants import FILE.csv``: onboard many tenants in one run, idempotently, through the admin API.

The CSV has a header row. Columns (only ``tenant`` is required):

    tenant              the tenant id (GUID) or one of its domains (contoso.com, contoso.onmicrosoft.com)
    name                display name
    partner             who receives its alerts (default: default)
    cloud               commercial | gcc | gcc_high | dod
    internal_domains    ; separated        (detection setting)
    allowed_countries   ; separated ISO codes (detection setting)
    detection           a JSON object of further detection settings (TenantConfig fields)
    remediation         a JSON object of RemediationPolicy fields
    triage              a JSON object of TriagePolicy fields

A domain is resolved to its tenant id with Entra's public OpenID discovery document
(``{authority}/{domain}/v2.0/.well-known/openid-configuration``: the ``issuer`` names the tenant). The tenants
already onboarded are read once; a row whose tenant exists with the same name, partner, cloud and settings (by
digest, :func:`shared.tenants.settings_digest`) and is not waiting on a person is left alone (``unchanged``), so
running the file again changes nothing already right. The rest are onboarded (idempotent on the app's side too)
by a few workers at once: the Management Activity API throttles per tenant, and one tenant's calls are
sequential within its onboarding.
"""

from __future__ import annotations

import csv
import io
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from shared.cli.admin_client import TenantAdmin
from shared.platform.errors import ConfigurationError, ItdrError, ServiceUnavailable
from shared.tenants import settings_digest

if TYPE_CHECKING:
    import httpx

COLUMNS = (
    "tenant",
    "name",
    "partner",
    "cloud",
    "internal_domains",
    "allowed_countries",
    "detection",
    "remediation",
    "triage",
)
MAX_ROWS = 10_000
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_ISSUER_TENANT = re.compile(r"/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})/")


@dataclass(slots=True)
class ImportRow:
    line: int
    tenant: str
    name: str = ""
    partner: str = "default"
    cloud: str = "commercial"
    detection: dict[str, Any] | None = None
    remediation: dict[str, Any] | None = None
    triage: dict[str, Any] | None = None


@dataclass(slots=True)
class ImportResult:
    line: int
    tenant: str
    tenant_id: str | None = None
    name: str = ""
    partner: str = ""
    result: str = "failed"
    """``created``, ``updated``, ``unchanged`` or ``failed``."""
    state: str = ""
    detail: str = ""
    seconds: float = 0.0
    actions: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "tenant": self.tenant,
            "tenant_id": self.tenant_id,
            "name": self.name,
            "partner": self.partner,
            "result": self.result,
            "state": self.state,
            "detail": self.detail,
            "seconds": round(self.seconds, 3),
            "actions": list(self.actions),
        }


def _json_cell(text: str, what: str, line: int) -> dict[str, Any] | None:
    if not text.strip():
        return None
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ConfigurationError(f"line {line}: {what} is not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise ConfigurationError(f"line {line}: {what} must be a JSON object")
    return value


def _list_cell(text: str) -> list[str]:
    return [x.strip() for x in text.split(";") if x.strip()]


def read_rows(text: str) -> list[ImportRow]:
    """The rows of the CSV; ConfigurationError (with the line) for an unknown column or a bad cell."""
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip().lower() for h in reader.fieldnames or []]
    unknown = [h for h in header if h not in COLUMNS]
    if "tenant" not in header:
        raise ConfigurationError("the CSV needs a header row with a 'tenant' column")
    if unknown:
        raise ConfigurationError(f"unknown column(s): {', '.join(unknown)} (known: {', '.join(COLUMNS)})")
    rows: list[ImportRow] = []
    for n, raw in enumerate(reader, start=2):
        cells = {str(k).strip().lower(): (v or "").strip() for k, v in raw.items() if k is not None}
        if not any(cells.values()):
            continue
        if len(rows) >= MAX_ROWS:
            raise ConfigurationError(f"more than {MAX_ROWS} rows")
        detection = _json_cell(cells.get("detection", ""), "detection", n)
        for col in ("internal_domains", "allowed_countries"):
            if cells.get(col):
                detection = {**(detection or {}), col: _list_cell(cells[col])}
        if not cells.get("tenant"):
            raise ConfigurationError(f"line {n}: no tenant")
        rows.append(
            ImportRow(
                line=n,
                tenant=cells["tenant"],
                name=cells.get("name", ""),
                partner=cells.get("partner") or "default",
                cloud=cells.get("cloud") or "commercial",
                detection=detection,
                remediation=_json_cell(cells.get("remediation", ""), "remediation", n),
                triage=_json_cell(cells.get("triage", ""), "triage", n),
            )
        )
    return rows


class TenantResolver:
    """Tenant id of a GUID or a domain (Entra's OpenID discovery), cached per run."""

    def __init__(self, *, authority: str = "https://login.microsoftonline.com", http: httpx.Client | None = None):
        import httpx

        self._authority = authority.rstrip("/")
        self._http = http or httpx.Client(timeout=15.0)
        self._cache: dict[str, str] = {}
        self._lock = threading.Lock()

    def __call__(self, text: str) -> str:
        value = text.strip().lower()
        try:
            return str(uuid.UUID(value))
        except ValueError:
            pass
        if not _DOMAIN.match(value):
            raise ConfigurationError(f"not a tenant id or domain: {text!r}", reason="bad_tenant")
        with self._lock:
            if value in self._cache:
                return self._cache[value]
        import httpx

        try:
            response = self._http.get(f"{self._authority}/{value}/v2.0/.well-known/openid-configuration")
        except httpx.HTTPError as exc:
            raise ServiceUnavailable(f"cannot resolve {value}: {type(exc).__name__}") from exc
        if response.status_code != 200:
            raise ConfigurationError(f"no Entra tenant has the domain {value}", reason="unknown_domain")
        match = _ISSUER_TENANT.search(str(response.json().get("issuer", "")) + "/")
        if match is None:
            raise ConfigurationError(f"no tenant id in the discovery document of {value}", reason="unknown_domain")
        with self._lock:
            self._cache[value] = match.group(1)
        return match.group(1)


def _already_right(row: ImportRow, existing: dict[str, Any] | None) -> tuple[bool, bool]:
    """(onboarding needed, policy needed)."""
    if existing is None:
        return True, row.remediation is not None or row.triage is not None
    digests = existing.get("digests") or {}
    onboard = (
        existing.get("name") != row.name
        or existing.get("partner_id") != row.partner
        or existing.get("cloud") != row.cloud
        or existing.get("state") in ("action_required", "onboarding")
        or (row.detection is not None and digests.get("detection") != settings_digest(row.detection))
    )
    policy = (row.remediation is not None and digests.get("remediation") != settings_digest(row.remediation)) or (
        row.triage is not None and digests.get("triage") != settings_digest(row.triage)
    )
    return onboard, policy


def import_one(
    admin: TenantAdmin, resolve: Callable[[str], str], row: ImportRow, existing: dict[str, dict[str, Any]]
) -> ImportResult:
    started = time.perf_counter()
    result = ImportResult(row.line, row.tenant, name=row.name, partner=row.partner)
    try:
        tid = resolve(row.tenant)
        result.tenant_id = tid
        current = existing.get(tid)
        onboard, policy = _already_right(row, current)
        result.state = str(current.get("state", "")) if current else ""
        if onboard:
            request: dict[str, Any] = {
                "tenant_id": tid,
                "name": row.name,
                "partner_id": row.partner,
                "cloud": row.cloud,
            }
            if row.detection is not None:
                request["detection"] = row.detection
            status = admin.onboard(request)
            result.actions.append("onboarded")
            result.state = str(status.get("state", ""))
            result.detail = "; ".join(str(x) for x in status.get("needs_human", []))[:300]
        if policy:
            body: dict[str, Any] = {}
            if row.remediation is not None:
                body["remediation"] = row.remediation
            if row.triage is not None:
                body["triage"] = row.triage
            admin.policy(tid, body)
            result.actions.append("policy")
        if not result.actions:
            result.result = "unchanged"
        else:
            result.result = "created" if current is None else "updated"
        if result.state == "action_required":
            result.result = f"{result.result}, action required"
    except ItdrError as exc:
        result.result, result.detail = "failed", str(exc)[:300]
    result.seconds = time.perf_counter() - started
    return result


def import_tenants(
    admin: TenantAdmin,
    rows: Sequence[ImportRow],
    *,
    resolve: Callable[[str], str],
    workers: int = 8,
    on_done: Callable[[ImportResult], None] | None = None,
) -> list[ImportResult]:
    """Onboard every row (``workers`` at once); results in the file's order."""
    existing = {str(t["tenant_id"]): t for t in admin.list_tenants()}
    seen: dict[str, int] = {}
    results: list[ImportResult | None] = [None] * len(rows)

    def run(i: int) -> None:
        row = rows[i]
        res = import_one(admin, resolve, row, existing)
        results[i] = res
        if on_done is not None:
            on_done(res)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        list(pool.map(run, range(len(rows))))
    out = [r for r in results if r is not None]
    for r in out:  # the same tenant twice in one file: the later row is reported, both were applied in order
        if r.tenant_id:
            if r.tenant_id in seen:
                r.detail = (r.detail + f" (also on line {seen[r.tenant_id]})").strip()
            seen[r.tenant_id] = r.line
    return out


def render_results(results: Iterable[ImportResult], *, fmt: str, out: Any) -> None:
    """A rich table, or JSON lines."""
    items = list(results)
    if fmt == "json":
        for r in items:
            out.write(orjson.dumps(r.to_dict()).decode() + "\n")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{len(items)} tenants")
    for col in ("line", "tenant", "name", "partner", "result", "state", "s", "detail"):
        table.add_column(col, overflow="fold")
    for r in items:
        table.add_row(
            str(r.line),
            r.tenant_id or r.tenant,
            r.name,
            r.partner,
            r.result,
            r.state,
            f"{r.seconds:.2f}",
            r.detail,
        )
    Console(file=out, width=200, markup=False, highlight=False).print(table)


def run_import(
    admin: TenantAdmin,
    path: str,
    *,
    resolve: Callable[[str], str],
    workers: int,
    fmt: str,
    out: Any,
    progress: bool,
) -> tuple[list[ImportResult], float]:
    """Read, import with a progress bar on standard error, print the result table; (results, seconds)."""
    import sys

    rows = read_rows(Path(path).read_text(encoding="utf-8-sig"))
    started = time.perf_counter()
    if progress:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(
            TextColumn("onboarding"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(file=sys.stderr),
            transient=True,
        ) as bar:
            task = bar.add_task("tenants", total=len(rows))
            results = import_tenants(
                admin, rows, resolve=resolve, workers=workers, on_done=lambda _r: bar.advance(task)
            )
    else:
        results = import_tenants(admin, rows, resolve=resolve, workers=workers)
    seconds = time.perf_counter() - started
    render_results(results, fmt=fmt, out=out)
    return results, seconds
