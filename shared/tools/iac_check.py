"""Check the infrastructure without the Bicep binary: parse, policy, checkov.

    python -m shared.tools.iac_check [--root infra] [--no-checkov]

The ``bicep`` binary cannot run on the build machines (docs/deploy.md: it compiles in the deploy
pipeline), so this tool checks what can be checked offline, in three layers. Each layer yields
one-line :class:`Problem` s; any problem makes the exit status 1.

1. **Parse.** pycep-parser (the version pinned in requirements-dev.in) must parse every
   ``infra/**/*.bicep``; a file that does not parse is named.
2. **Policy.** :data:`POLICY_CHECKS`, plain functions over the parse trees, for what checkov does not
   cover (Service Bus, Key Vault mode, Application Insights local auth, role assignments, tags) and
   for what only this project knows (queues, tables and containers of ``shared/platform/names.py``,
   app-settings parity with ``shared/platform/settings.py``). tests/infra/test_bicep.py runs each
   check on the real templates and on deliberately bad snippets.
3. **checkov** (``--framework bicep``) from its own virtual environment ``.venv-iac`` (created on
   first use: checkov pins an old pycep-parser and downgrades ``packaging``). checkov exits 0 on
   files it cannot parse, so ``summary.parsing_errors`` is checked; every failed check blocks.
   Exceptions are inline ``// checkov:skip=ID: reason`` comments inside the resource: each needs a
   reason, and each must match a check checkov really skipped (a stale skip is a problem too).

Expressions: pycep represents an identifier and a string literal alike (``name: foo`` and
``name: 'foo'`` both give ``"foo"``). :func:`evaluate` resolves loop items and variables by name and
treats parameter names as unresolved, which is what the checks need: a security setting must be
a literal in the template, never a parameter that a parameters file could weaken.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from shared.platform import names
from shared.platform.settings import setting_names

REPO_ROOT: Final = Path(__file__).resolve().parents[2]
DEFAULT_INFRA: Final = REPO_ROOT / "infra"
DEFAULT_CHECKOV_VENV: Final = REPO_ROOT / ".venv-iac"
CHECKOV_VERSION: Final = "3.3.30"
CHECKOV_SETUP_BUDGET_SECONDS: Final = 120.0

# --- problems and parsed files --------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong, in one line: ``file[:line]: message``."""

    file: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.message}"


class BicepParseError(Exception):
    """A Bicep file pycep cannot parse (the message names the file)."""


@dataclass(frozen=True)
class BicepFile:
    """A parsed Bicep file: its display name, source text and pycep tree.

    ``bound`` gives some parameters a value (see :func:`in_network_mode`); the others stay unresolved.
    """

    name: str
    text: str
    tree: Mapping[str, Any]
    bound: Mapping[str, Any] = field(default_factory=dict)

    @property
    def parameters(self) -> Mapping[str, Any]:
        """``param`` declarations by name (pycep's shape: type, default, decorators)."""
        return self.tree.get("parameters") or {}

    @property
    def variables(self) -> Mapping[str, Any]:
        """``var`` values by name (unevaluated pycep expressions)."""
        return {k: v.get("value") for k, v in (self.tree.get("variables") or {}).items()}

    @property
    def modules(self) -> Mapping[str, Any]:
        """``module`` declarations by symbol."""
        return self.tree.get("modules") or {}

    def resources(self) -> list[Resource]:
        """Every ``resource`` declaration, with loops and conditions unwrapped."""
        return [Resource.from_tree(self, symbol, raw) for symbol, raw in (self.tree.get("resources") or {}).items()]


@dataclass(frozen=True)
class Resource:
    """One ``resource`` declaration. ``body`` is the object after ``=`` (inside any loop/if)."""

    file: BicepFile
    symbol: str
    type: str
    api_version: str
    existing: bool
    body: Mapping[str, Any]
    line: int | None = None
    loop_item: str | None = None
    loop_index: str | None = None
    loop_source: Any = None
    condition: Any = None

    @classmethod
    def from_tree(cls, file: BicepFile, symbol: str, raw: Mapping[str, Any]) -> Resource:
        """Build from pycep's resource entry."""
        config: Mapping[str, Any] = raw.get("config") or {}
        loop = config.get("loop_type")
        condition = config.get("condition")
        body = config
        if loop is not None or set(config) == {"condition", "config"}:  # [for ...] or if (...) wrappers
            body = config.get("config") or {}
        detail = (loop or {}).get("detail") or {}
        return cls(
            file=file,
            symbol=symbol,
            type=str(raw.get("type")),
            api_version=str(raw.get("api_version")),
            existing=bool(raw.get("existing")),
            body=body,
            line=raw.get("__start_line__"),
            loop_item=detail.get("item_name"),
            loop_index=detail.get("index_name"),
            loop_source=detail.get("array_name"),
            condition=condition,
        )

    @property
    def label(self) -> str:
        """``symbol (type)`` for messages."""
        return f"{self.symbol} ({self.type})"

    def instances(self) -> list[dict[str, Any]]:
        """The evaluated body once per loop element (once if there is no loop).

        Values that cannot be evaluated offline (parameters, resource properties, functions)
        stay :class:`Unresolved`.
        """
        if self.loop_item is None:
            return [_as_dict(evaluate(self.body, self.file))]
        source = evaluate(self.loop_source, self.file)
        if not isinstance(source, list):
            return [_as_dict(evaluate(self.body, self.file, {self.loop_item: Unresolved(render(self.loop_source))}))]
        out = []
        for index, item in enumerate(source):
            env: dict[str, Any] = {self.loop_item: item}
            if self.loop_index:
                env[self.loop_index] = index
            out.append(_as_dict(evaluate(self.body, self.file, env)))
        return out

    def problem(self, message: str) -> Problem:
        """A problem located at this resource."""
        return Problem(self.file.name, f"{self.label}: {message}", self.line)


@dataclass(frozen=True)
class Unresolved:
    """A value only Azure knows at deployment time (a parameter, a property, a function)."""

    text: str

    def __str__(self) -> str:
        return self.text


def _as_dict(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


# --- parsing ----------------------------------------------------------------------------------

_PARSER: Any = None


def _bicep_parser() -> Any:
    global _PARSER
    if _PARSER is None:
        from pycep import BicepParser

        _PARSER = BicepParser(add_line_numbers=True)
    return _PARSER


def parse_bicep(text: str, *, name: str) -> BicepFile:
    """Parse Bicep source; raise :class:`BicepParseError` naming ``name`` on failure."""
    try:
        tree = _bicep_parser().parse(text=text)
    except Exception as exc:  # lark raises a family of exceptions; all mean "does not parse"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BicepParseError(f"{name}: does not parse: {first}") from exc
    return BicepFile(name=name, text=text, tree=tree)


def load_infra(root: Path = DEFAULT_INFRA) -> tuple[list[BicepFile], list[Problem]]:
    """Parse every ``*.bicep`` under ``root``; return the files and one problem per failure."""
    files: list[BicepFile] = []
    problems: list[Problem] = []
    paths = sorted(root.rglob("*.bicep"))
    if not paths:
        problems.append(Problem(display_path(root), "no .bicep files found"))
    for path in paths:
        display = display_path(path)
        try:
            files.append(parse_bicep(path.read_text(encoding="utf-8"), name=display))
        except BicepParseError as exc:
            problems.append(Problem(display, str(exc).split(": ", 1)[1]))
    return files, problems


def display_path(path: Path) -> str:
    """``path`` relative to the repository when inside it (as problems name files), else as given."""
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


# --- expressions ------------------------------------------------------------------------------


def strip_key(key: str) -> str:
    """pycep keeps the quotes of quoted object keys (``'azd-env-name'``); drop them."""
    return key[1:-1] if len(key) >= 2 and key[0] == key[-1] == "'" else key


def _camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def expression_node(expr: Any, kind: str) -> Mapping[str, Any] | None:
    """pycep's ``{"function": {...}}`` / ``{"operator": {...}}`` node, or None.

    A Bicep object may itself have a key ``operator`` (alert criteria do), so a node is an
    expression only when that is its single key and the value carries a ``type``.
    """
    if isinstance(expr, Mapping) and len(expr) == 1 and kind in expr:
        inner = expr[kind]
        if isinstance(inner, Mapping) and "type" in inner:
            return inner
    return None


def accessor_path(expr: Any) -> list[Any] | None:
    """``a.b.c`` as ``["a", "b", "c"]`` (pycep nests property accessors to the right), else None."""
    if isinstance(expr, str):
        return [expr]
    op = expression_node(expr, "operator")
    if op is not None and op["type"] == "property_accessor":
        operands = op["operands"]
        left = accessor_path(operands["operand_1"])
        right = accessor_path(operands["operand_2"])
        if left is not None and right is not None:
            return left + right
    return None


def render(expr: Any) -> str:
    """Approximate Bicep text of a pycep expression (for messages and comparisons)."""
    if isinstance(expr, bool):
        return "true" if expr else "false"
    if expr is None:
        return "null"
    if isinstance(expr, int | float | str):
        return str(expr)
    if isinstance(expr, list):
        return "[" + ", ".join(render(x) for x in expr) + "]"
    if isinstance(expr, Mapping):
        fn = expression_node(expr, "function")
        if fn is not None:
            params = dict(fn.get("parameters") or {})
            name = params.pop("func_name", None) if fn.get("type") == "list_func" else _camel(str(fn.get("type")))
            args = ", ".join(render(v) for v in params.values() if v is not None)
            return f"{name}({args})"
        op = expression_node(expr, "operator")
        if op is not None:
            operands = op.get("operands") or {}
            kind = op.get("type")
            if kind == "property_accessor":
                return f"{render(operands.get('operand_1'))}.{render(operands.get('operand_2'))}"
            if kind == "index_accessor":
                return f"{render(operands.get('operand_1'))}[{render(operands.get('operand_2'))}]"
            if kind == "function_accessor":
                return f"{render(operands.get('operand_1'))}.{operands.get('func_name')}()"
            return f"{kind}(" + ", ".join(render(v) for v in operands.values()) + ")"
        return "{" + ", ".join(f"{strip_key(str(k))}: {render(v)}" for k, v in expr.items()) + "}"
    return repr(expr)


def literal(value: Any) -> str:
    """A value as Bicep would write it: ``'text'``, ``true``, ``3``; unresolved values as their text."""
    return (
        f"'{value}'" if isinstance(value, str) else render(value) if not isinstance(value, Unresolved) else str(value)
    )


def evaluate(expr: Any, file: BicepFile, env: Mapping[str, Any] | None = None, *, _depth: int = 0) -> Any:
    """Evaluate what is knowable offline: literals, loop items, variables and paths into them."""
    env = env or {}
    if _depth > 20:
        return Unresolved(render(expr))
    if isinstance(expr, bool | int | float) or expr is None:
        return expr
    if isinstance(expr, str):
        if expr in env:
            return env[expr]
        if expr in file.variables:
            return evaluate(file.variables[expr], file, {}, _depth=_depth + 1)
        if expr in file.parameters:
            return file.bound[expr] if expr in file.bound else Unresolved(f"parameter {expr}")
        return expr
    if isinstance(expr, list):
        return [evaluate(x, file, env, _depth=_depth + 1) for x in expr]
    if isinstance(expr, Mapping):
        path = accessor_path(expr)
        if path is not None and len(path) > 1:
            value = evaluate(path[0], file, env, _depth=_depth + 1)
            for key in path[1:]:
                if isinstance(value, Mapping) and key in value:
                    value = value[key]
                else:
                    return Unresolved(render(expr))
            return value
        op = expression_node(expr, "operator")
        if op is not None and op["type"] in _LOGIC:
            operands = {k: evaluate(v, file, env, _depth=_depth + 1) for k, v in (op.get("operands") or {}).items()}
            if not any(isinstance(v, Unresolved) for v in operands.values()):
                return _LOGIC[op["type"]](operands)
            if op["type"] == "conditional" and isinstance(operands.get("condition"), bool):
                return operands["true_value" if operands["condition"] else "false_value"]
            return Unresolved(render(expr))
        if expression_node(expr, "function") or op is not None:
            return Unresolved(render(expr))
        return {strip_key(str(k)): evaluate(v, file, env, _depth=_depth + 1) for k, v in expr.items()}
    return Unresolved(render(expr))


_LOGIC: Final[Mapping[str, Callable[[Mapping[str, Any]], Any]]] = {
    "equals": lambda o: o["operand_1"] == o["operand_2"],
    "not_equals": lambda o: o["operand_1"] != o["operand_2"],
    "and": lambda o: bool(o["operand_1"]) and bool(o["operand_2"]),
    "or": lambda o: bool(o["operand_1"]) or bool(o["operand_2"]),
    "not": lambda o: not o["bool_value"],
    "conditional": lambda o: o["true_value"] if o["condition"] else o["false_value"],
}
"""Operators :func:`evaluate` computes once their operands are known (a bound parameter makes them so)."""


def dig(value: Any, dotted: str) -> Any:
    """``dig(body, "properties.siteConfig.minTlsVersion")``; :data:`MISSING` when absent."""
    for key in dotted.split("."):
        if not isinstance(value, Mapping) or key not in value:
            return MISSING
        value = value[key]
    return value


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"

    def __bool__(self) -> bool:
        return False


MISSING: Final = _Missing()
"""Returned by :func:`dig` for an absent property."""


def walk(expr: Any) -> Iterator[Any]:
    """Every node of a pycep expression tree, depth first."""
    yield expr
    if isinstance(expr, Mapping):
        for value in expr.values():
            yield from walk(value)
    elif isinstance(expr, list):
        for value in expr:
            yield from walk(value)


_LIST_CALL = re.compile(r"\blist[A-Z]\w*\(")


def calls_list_function(expr: Any) -> bool:
    """True when the expression calls ``listKeys()`` or any other ``list*`` resource function."""
    for node in walk(expr):
        if isinstance(node, str) and _LIST_CALL.search(node):
            return True
        if isinstance(node, Mapping):
            fn = expression_node(node, "function")
            if fn is not None and fn["type"] == "list_func":
                return True
            op = expression_node(node, "operator")
            if (
                op is not None
                and op["type"] == "function_accessor"
                and str((op.get("operands") or {}).get("func_name", "")).startswith("list")
            ):
                return True
    return False


def all_resources(files: Iterable[BicepFile]) -> list[Resource]:
    """Every resource of every file."""
    return [resource for file in files for resource in file.resources()]


def deployed(files: Iterable[BicepFile], resource_type: str | None = None) -> list[Resource]:
    """Resources the templates create (not ``existing`` references), optionally of one type."""
    return [
        r
        for r in all_resources(files)
        if not r.existing and (resource_type is None or r.type.lower() == resource_type.lower())
    ]


# --- policy: required literal properties ------------------------------------------------------


class _Present:
    def __repr__(self) -> str:
        return "<any value>"


PRESENT: Final = _Present()
"""Expected value meaning "must be set, to anything"."""


@dataclass(frozen=True)
class Required:
    """A property a resource type must carry, as a literal (or just be set, for :data:`PRESENT`)."""

    resource_type: str
    path: str
    expected: Any
    why: str


REQUIRED_PROPERTIES: Final[tuple[Required, ...]] = (
    Required("Microsoft.Storage/storageAccounts", "properties.allowSharedKeyAccess", False, "identity only"),
    Required("Microsoft.Storage/storageAccounts", "properties.allowBlobPublicAccess", False, "no anonymous blobs"),
    Required("Microsoft.Storage/storageAccounts", "properties.minimumTlsVersion", "TLS1_2", "TLS 1.2"),
    Required("Microsoft.Storage/storageAccounts", "properties.supportsHttpsTrafficOnly", True, "HTTPS only"),
    Required("Microsoft.Web/sites", "properties.httpsOnly", True, "HTTPS only"),
    Required("Microsoft.Web/sites", "properties.siteConfig.minTlsVersion", "1.2", "TLS 1.2"),
    Required("Microsoft.Web/sites", "properties.siteConfig.scmMinTlsVersion", "1.2", "TLS 1.2 on the SCM site"),
    Required("Microsoft.Web/sites", "properties.siteConfig.ftpsState", "Disabled", "no FTP"),
    Required("Microsoft.Web/sites", "identity.type", "UserAssigned", "user-assigned managed identity"),
    Required("Microsoft.Web/sites", "properties.keyVaultReferenceIdentity", PRESENT, "Key Vault references"),
    Required("Microsoft.Web/sites", "properties.functionAppConfig.runtime.name", "python", "Flex runtime"),
    Required("Microsoft.Web/sites", "properties.functionAppConfig.runtime.version", "3.11", "Flex runtime"),
    Required(
        "Microsoft.Web/sites",
        "properties.functionAppConfig.deployment.storage.authentication.type",
        "UserAssignedIdentity",
        "deployment package through the identity",
    ),
    Required("Microsoft.Web/serverfarms", "sku.tier", "FlexConsumption", "Flex Consumption"),
    Required("Microsoft.ServiceBus/namespaces", "properties.disableLocalAuth", True, "Entra ID only, no SAS keys"),
    Required("Microsoft.ServiceBus/namespaces", "properties.minimumTlsVersion", "1.2", "TLS 1.2"),
    Required("Microsoft.KeyVault/vaults", "properties.enableRbacAuthorization", True, "RBAC mode"),
    Required("Microsoft.KeyVault/vaults", "properties.enableSoftDelete", True, "recoverable"),
    Required("Microsoft.KeyVault/vaults", "properties.enablePurgeProtection", True, "no early purge"),
    Required("Microsoft.Insights/components", "properties.DisableLocalAuth", True, "Entra-only ingestion"),
    Required("Microsoft.Insights/components", "properties.WorkspaceResourceId", PRESENT, "workspace-based"),
    Required(
        "Microsoft.Logic/workflows",
        "properties.accessControl.triggers.allowedCallerIpAddresses",
        PRESENT,
        "trigger callable only from the Function App's outbound addresses",
    ),
)


def check_required_properties(
    files: Sequence[BicepFile], *, rules: Sequence[Required] = REQUIRED_PROPERTIES
) -> list[Problem]:
    """Every deployed resource of a rule's type carries the rule's literal value."""
    problems: list[Problem] = []
    for rule in rules:
        for resource in deployed(files, rule.resource_type):
            for body in resource.instances():
                found = dig(body, rule.path)
                if rule.expected is PRESENT:
                    ok = found is not MISSING and found not in ("", None)
                else:
                    ok = type(found) is type(rule.expected) and found == rule.expected
                if not ok:
                    want = "set" if rule.expected is PRESENT else f"the literal {literal(rule.expected)}"
                    got = "missing" if found is MISSING else literal(found)
                    problems.append(resource.problem(f"{rule.path} must be {want} ({rule.why}), found {got}"))
    return problems


# --- policy: tags -----------------------------------------------------------------------------

UNTAGGED_TYPES: Final = frozenset({"microsoft.authorization/roleassignments", "microsoft.insights/diagnosticsettings"})
"""Extension resources that take no tags."""


def check_tags(files: Sequence[BicepFile]) -> list[Problem]:
    """Every deployed top-level resource has a non-empty ``tags``."""
    problems = []
    for resource in deployed(files):
        top_level = resource.type.count("/") == 1
        if not top_level or resource.type.lower() in UNTAGGED_TYPES:
            continue
        tags = resource.body.get("tags", MISSING)
        if tags is MISSING or tags is None:
            problems.append(resource.problem("no tags"))
        elif tags == {}:
            problems.append(resource.problem("tags is an empty literal {}"))
    return problems


# --- policy: app settings ---------------------------------------------------------------------

SECRET_MARKERS: Final = (
    "accountkey=",
    "sharedaccesskey=",
    "sharedaccesssignature=",
    "password=",
    "pwd=",
    "client_secret",
    "clientsecret",
    "sig=",
    "defaultendpointsprotocol=",
    "endpoint=sb://",
)
"""Substrings (lowercase) that reveal a secret or a key-based connection string."""

AZURITE_KEY: Final = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
"""Azurite's published development key: the only account key allowed, and only in the local sample."""

DEV_ONLY_SETTINGS: Final = frozenset(
    {"ITDR_STORAGE_CONNECTION_STRING", "ITDR_MANAGEMENT_API_BASE_URL", "ITDR_GRAPH_BASE_URL", "ITDR_LOGIN_AUTHORITY"}
)
"""Development-only overrides: present in Azure (parity) but always the empty string."""

KEY_VAULT_REFERENCE_SETTINGS: Final = frozenset({"ITDR_PARTNER_ENDPOINT", "ITDR_APP_CERTIFICATE"})
"""Secrets the Function App reads through a ``@Microsoft.KeyVault(SecretUri=...)`` reference."""

IDENTITY_SETTINGS: Final[Mapping[str, Any]] = {
    "AzureWebJobsStorage__accountName": PRESENT,
    "AzureWebJobsStorage__credential": "managedidentity",
    "AzureWebJobsStorage__clientId": PRESENT,
    "ServiceBusConnection__fullyQualifiedNamespace": PRESENT,
    "ServiceBusConnection__credential": "managedidentity",
    "ServiceBusConnection__clientId": PRESENT,
    "AZURE_CLIENT_ID": PRESENT,
    "ITDR_STORAGE_ACCOUNT_NAME": PRESENT,
}
"""Identity-based connection settings the Function App must have (value or just presence)."""

FLEX_FORBIDDEN_SETTINGS: Final = frozenset(
    {
        "FUNCTIONS_WORKER_RUNTIME",
        "FUNCTIONS_EXTENSION_VERSION",
        "WEBSITE_RUN_FROM_PACKAGE",
        "WEBSITE_CONTENTSHARE",
        "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
        "SCM_DO_BUILD_DURING_DEPLOYMENT",
        "ENABLE_ORYX_BUILD",
        "WEBSITE_TIME_ZONE",
        "TZ",
        "AzureWebJobsStorage",
    }
)
"""App settings Flex Consumption rejects or that would bring back a key (AzureWebJobsStorage as a string)."""

HOST_SETTING_PATTERNS: Final = (
    re.compile(r"^AzureWebJobsStorage(__\w+)?$"),
    re.compile(r"^ServiceBusConnection__(credential|clientId)$"),
    re.compile(r"^APPLICATIONINSIGHTS_\w+$"),
    re.compile(r"^PYTHON_\w+$"),
    re.compile(r"^FUNCTIONS_WORKER_RUNTIME$"),
)
"""Settings the Functions host (not our code) reads: allowed without a setting in settings.py."""


def is_host_setting(name: str) -> bool:
    """True for settings consumed by the Functions host or worker rather than by our code."""
    return any(p.match(name) for p in HOST_SETTING_PATTERNS)


@dataclass(frozen=True)
class AppSetting:
    """One app setting as declared in Bicep (raw pycep expression and its resource)."""

    name: str
    expr: Any
    resource: Resource


def app_settings(files: Sequence[BicepFile]) -> dict[str, AppSetting]:
    """App settings of the Function App: ``sites/config 'appsettings'`` and ``siteConfig.appSettings``."""
    found: dict[str, AppSetting] = {}
    for resource in deployed(files):
        kind = resource.type.lower()
        if kind == "microsoft.web/sites/config" and evaluate(resource.body.get("name"), resource.file) == "appsettings":
            for key, expr in (resource.body.get("properties") or {}).items():
                found[strip_key(str(key))] = AppSetting(strip_key(str(key)), expr, resource)
        elif kind == "microsoft.web/sites":
            for entry in dig(resource.body, "properties.siteConfig.appSettings") or []:
                if isinstance(entry, Mapping) and isinstance(entry.get("name"), str):
                    found[entry["name"]] = AppSetting(entry["name"], entry.get("value"), resource)
    return found


def _secure_parameters(file: BicepFile) -> set[str]:
    return {
        name
        for name, decl in file.parameters.items()
        if any(d.get("type") == "secure" for d in (decl.get("decorators") or []))
    }


def check_app_settings(files: Sequence[BicepFile]) -> list[Problem]:
    """No keys, connection strings or secure parameters in app settings; identity-based connections."""
    problems: list[Problem] = []
    settings = app_settings(files)
    if not settings:
        return [Problem("infra", "no Function App app settings found (sites/config 'appsettings')")]
    for setting in settings.values():
        resource, expr = setting.resource, setting.expr
        text = render(expr)
        if calls_list_function(expr):
            problems.append(resource.problem(f"app setting {setting.name} calls a list*() function: {text}"))
        if any(marker in text.lower() for marker in SECRET_MARKERS):
            problems.append(resource.problem(f"app setting {setting.name} holds a key or connection string"))
        if isinstance(expr, str) and expr in _secure_parameters(resource.file):
            problems.append(resource.problem(f"app setting {setting.name} is the @secure() parameter {expr}"))
        if setting.name in FLEX_FORBIDDEN_SETTINGS:
            problems.append(resource.problem(f"app setting {setting.name} is not allowed on Flex Consumption"))
        if setting.name in DEV_ONLY_SETTINGS and expr != "":
            problems.append(resource.problem(f"app setting {setting.name} is development-only and must be ''"))
        if setting.name in KEY_VAULT_REFERENCE_SETTINGS and not text.startswith("@Microsoft.KeyVault(SecretUri="):
            problems.append(
                resource.problem(f"app setting {setting.name} must be a @Microsoft.KeyVault(...) reference")
            )
    for name, expected in IDENTITY_SETTINGS.items():
        if name not in settings:
            problems.append(Problem("infra", f"app setting {name} is missing (identity-based connection)"))
            continue
        value = evaluate(settings[name].expr, settings[name].resource.file)
        if expected is not PRESENT and value != expected:
            problems.append(settings[name].resource.problem(f"app setting {name} must be {expected!r}"))
    return problems


def settings_parity(
    *, code: Iterable[str], sample: Iterable[str], bicep: Iterable[str], sample_file: str, bicep_file: str
) -> list[Problem]:
    """Names the code reads ⊆ the local sample ⊆ Bicep (host-level names aside); no stray ITDR_* names."""
    code_set, sample_set, bicep_set = set(code), set(sample), set(bicep)
    problems = [
        Problem(sample_file, f"setting {n} is read by the code but missing") for n in sorted(code_set - sample_set)
    ]
    problems += [
        Problem(bicep_file, f"setting {n} is read by the code but missing") for n in sorted(code_set - bicep_set)
    ]
    problems += [
        Problem(bicep_file, f"setting {n} is in {sample_file} but not in the app settings")
        for n in sorted(sample_set - bicep_set)
        if not is_host_setting(n)
    ]
    for where, names_ in ((sample_file, sample_set), (bicep_file, bicep_set)):
        problems += [
            Problem(where, f"setting {n} is not read by the code (shared/platform/settings.py) nor by the host")
            for n in sorted(names_ - code_set)
            if not is_host_setting(n)
        ]
    return problems


def sample_secrets(values: Mapping[str, Any], *, sample_file: str) -> list[Problem]:
    """Secrets in the committed local settings sample (Azurite's published key excepted)."""
    problems = []
    for name, value in values.items():
        lowered = str(value).replace(AZURITE_KEY, "").lower()
        if re.search(r"accountkey=[^;]+", lowered):
            problems.append(Problem(sample_file, f"setting {name} holds an account key other than Azurite's"))
        elif any(m in lowered for m in ("sharedaccesskey=", "sharedaccesssignature=", "sig=", "password=")):
            problems.append(Problem(sample_file, f"setting {name} holds a secret"))
    return problems


def check_settings_parity(files: Sequence[BicepFile], *, sample_path: Path | None = None) -> list[Problem]:
    """:func:`settings_parity` on the real code, ``local.settings.sample.json`` and Bicep."""
    sample_path = sample_path or REPO_ROOT / "local.settings.sample.json"
    settings = app_settings(files)
    bicep_file = next(iter(settings.values())).resource.file.name if settings else "infra"
    try:
        values = json.loads(sample_path.read_text(encoding="utf-8"))["Values"]
    except (OSError, ValueError, KeyError) as exc:
        return [Problem(display_path(sample_path), f"cannot read Values: {exc}")]
    return settings_parity(
        code=setting_names(),
        sample=values,
        bicep=settings,
        sample_file=display_path(sample_path),
        bicep_file=bicep_file,
    ) + sample_secrets(values, sample_file=display_path(sample_path))


# --- policy: queues, tables, containers -------------------------------------------------------

_ISO_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")


def iso_seconds(value: Any) -> int | None:
    """Seconds of an ISO 8601 duration such as ``PT5M`` or ``P7D``; None when not one."""
    match = _ISO_DURATION.match(value) if isinstance(value, str) else None
    if not match or value in ("P", "PT"):
        return None
    days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


@dataclass(frozen=True)
class QueuePolicy:
    """What names.py and the code need from the Service Bus queues."""

    queues: tuple[str, ...] = names.ALL_QUEUES
    session_queues: frozenset[str] = names.SESSION_QUEUES
    duplicate_detection: Mapping[str, str] = field(
        default_factory=lambda: {names.QUEUE_CONTENT: "P7D", names.QUEUE_RECORDS: "P1D", names.QUEUE_DETECT: "P1D"}
    )
    """Queues whose producers set fixed MessageIds, and the broker's window for dropping a repeat."""
    max_delivery_count: Mapping[str, int] = field(default_factory=lambda: {names.QUEUE_REMEDIATION: 10})
    default_max_delivery_count: int = 10
    lock_seconds: tuple[int, int] = (60, 300)


def declared_queues(files: Sequence[BicepFile]) -> dict[str, tuple[Resource, dict[str, Any]]]:
    """Service Bus queues by evaluated name, with their evaluated body."""
    out: dict[str, tuple[Resource, dict[str, Any]]] = {}
    for resource in deployed(files, "Microsoft.ServiceBus/namespaces/queues"):
        for body in resource.instances():
            out[str(body.get("name"))] = (resource, body)
    return out


def check_queues(files: Sequence[BicepFile], *, policy: QueuePolicy | None = None) -> list[Problem]:
    """Exactly the queues of names.py; sessions, duplicate detection, dead-lettering, locks."""
    policy = policy or QueuePolicy()
    problems: list[Problem] = []
    queues = declared_queues(files)
    for missing in [q for q in policy.queues if q not in queues]:
        problems.append(Problem("infra", f"Service Bus queue {missing!r} (names.ALL_QUEUES) is not declared"))
    for name, (resource, body) in sorted(queues.items()):
        props = _as_dict(body.get("properties"))

        def bad(message: str, *, name: str = name, resource: Resource = resource) -> None:
            problems.append(resource.problem(f"queue {name!r}: {message}"))

        if name not in policy.queues:
            bad("not in names.ALL_QUEUES")
            continue
        wants_session = name in policy.session_queues
        if props.get("requiresSession") is not wants_session:
            bad(f"requiresSession must be {render(wants_session)}, found {literal(props.get('requiresSession'))}")
        window = policy.duplicate_detection.get(name)
        if window is not None:
            if props.get("requiresDuplicateDetection") is not True:
                bad("requiresDuplicateDetection must be true (fixed MessageIds)")
            if props.get("duplicateDetectionHistoryTimeWindow") != window:
                bad(f"duplicateDetectionHistoryTimeWindow must be {window}")
        if props.get("deadLetteringOnMessageExpiration") is not True:
            bad("deadLetteringOnMessageExpiration must be true")
        want_deliveries = policy.max_delivery_count.get(name, policy.default_max_delivery_count)
        if props.get("maxDeliveryCount") != want_deliveries:
            bad(f"maxDeliveryCount must be {want_deliveries}, found {literal(props.get('maxDeliveryCount'))}")
        lock = iso_seconds(props.get("lockDuration"))
        low, high = policy.lock_seconds
        if lock is None or not low <= lock <= high:
            bad(f"lockDuration must be between PT1M and PT5M, found {literal(props.get('lockDuration'))}")
    return problems


def declared_names(files: Sequence[BicepFile], resource_type: str) -> set[str]:
    """Evaluated names of the deployed resources of one type (loops expanded)."""
    return {str(body.get("name")) for r in deployed(files, resource_type) for body in r.instances()}


def check_tables_and_containers(
    files: Sequence[BicepFile],
    *,
    tables: Sequence[str] = names.ALL_TABLES,
    containers: Sequence[str] = names.ALL_CONTAINERS,
) -> list[Problem]:
    """Every table and blob container of names.py is declared."""
    declared_tables = declared_names(files, "Microsoft.Storage/storageAccounts/tableServices/tables")
    declared_containers = declared_names(files, "Microsoft.Storage/storageAccounts/blobServices/containers")
    problems = [
        Problem("infra", f"table {t!r} (names.ALL_TABLES) is not declared") for t in tables if t not in declared_tables
    ]
    problems += [
        Problem("infra", f"blob container {c!r} (names.ALL_CONTAINERS) is not declared")
        for c in containers
        if c not in declared_containers
    ]
    return problems


@dataclass(frozen=True)
class LifecycleRule:
    """A blob prefix that must cool after ``cool_days`` (None: no cool action) and be deleted after
    ``delete_days``."""

    prefix: str
    cool_days: int | None
    delete_days: int


RAW_ARCHIVE_RETENTION_DAYS: Final = 400
"""Days the raw archive is immutable (its container's time-based retention) and then kept until deleted."""

LIFECYCLE_RULES: Final = (
    LifecycleRule(f"{names.CONTAINER_RAW}/", 30, RAW_ARCHIVE_RETENTION_DAYS),
    LifecycleRule(f"{names.CONTAINER_QUARANTINE}/", 30, 400),
    LifecycleRule(f"{names.CONTAINER_BATCHES}/", None, 30),
    LifecycleRule(f"{names.CONTAINER_LEDGER}/", None, 30),
)


def check_lifecycle(files: Sequence[BicepFile], *, rules: Sequence[LifecycleRule] = LIFECYCLE_RULES) -> list[Problem]:
    """The storage lifecycle policy cools and deletes the raw archive and the quarantine."""
    seen: dict[str, tuple[Any, Any]] = {}
    for resource in deployed(files, "Microsoft.Storage/storageAccounts/managementPolicies"):
        for body in resource.instances():
            for rule in dig(body, "properties.policy.rules") or []:
                if not isinstance(rule, Mapping) or rule.get("enabled") is False:
                    continue
                base = dig(rule, "definition.actions.baseBlob")
                cool = dig(base, "tierToCool.daysAfterModificationGreaterThan")
                delete = dig(base, "delete.daysAfterModificationGreaterThan")
                for prefix in dig(rule, "definition.filters.prefixMatch") or []:
                    seen[str(prefix)] = (cool, delete)
    problems = []
    for want in rules:
        cool, delete = seen.get(want.prefix, (MISSING, MISSING))
        if (cool, delete) != (MISSING if want.cool_days is None else want.cool_days, want.delete_days):
            cooling = "no cool action" if want.cool_days is None else f"cool after {want.cool_days} days"
            problems.append(
                Problem(
                    "infra",
                    f"lifecycle for {want.prefix!r} must be {cooling} and delete after "
                    f"{want.delete_days}, found cool={render(cool)} delete={render(delete)}",
                )
            )
    return problems


IMMUTABILITY_POLICY: Final = "Microsoft.Storage/storageAccounts/blobServices/containers/immutabilityPolicies"


def check_raw_archive_immutability(
    files: Sequence[BicepFile], *, retention_days: int = RAW_ARCHIVE_RETENTION_DAYS
) -> list[Problem]:
    """The raw archive's container has a time-based retention policy of ``retention_days`` (the lifecycle deletes
    the archive then) that allows no appends; no other container has one (the app rewrites their blobs)."""
    containers = {
        r.symbol: {str(body.get("name")) for body in r.instances()}
        for r in deployed(files, "Microsoft.Storage/storageAccounts/blobServices/containers")
    }
    problems: list[Problem] = []
    found = False
    for policy in deployed(files, IMMUTABILITY_POLICY):
        for body in policy.instances():
            protected = containers.get(str(body.get("parent")), set())
            if protected != {names.CONTAINER_RAW}:
                problems.append(
                    policy.problem(
                        f"an immutability policy on {sorted(protected) or body.get('parent')}: only "
                        f"the raw archive ({names.CONTAINER_RAW!r}) is written once"
                    )
                )
                continue
            found = True
            days = dig(body, "properties.immutabilityPeriodSinceCreationInDays")
            if days != retention_days:
                problems.append(
                    policy.problem(
                        f"immutabilityPeriodSinceCreationInDays must be {retention_days}, found {render(days)}"
                    )
                )
            for flag in ("allowProtectedAppendWrites", "allowProtectedAppendWritesAll"):
                if dig(body, f"properties.{flag}") is not False:
                    problems.append(policy.problem(f"properties.{flag} must be the literal false"))
    if not found:
        problems.append(
            Problem("infra", f"the raw archive container {names.CONTAINER_RAW!r} has no immutability policy")
        )
    return problems


# --- policy: role assignments -----------------------------------------------------------------

RBAC_FILE: Final = "rbac.bicep"

KNOWN_ROLES: Final[Mapping[str, str]] = {
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": "Storage Blob Data Owner",
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3": "Storage Table Data Contributor",
    "974c5e8b-45b9-4653-ba55-5f855dd0fb88": "Storage Queue Data Contributor",
    "69a216fc-b8fb-44d8-bc22-1f3c2cd27a39": "Azure Service Bus Data Sender",
    "4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0": "Azure Service Bus Data Receiver",
    "090c5cfd-751d-490a-894a-3ce6f1109419": "Azure Service Bus Data Owner",
    "4633458b-17de-408a-b874-0445c86b69e6": "Key Vault Secrets User",
    "db79e9a7-68ee-4b58-9aeb-b90e7c24fcba": "Key Vault Certificate User",
    "a4417e6f-fecd-4de8-b567-7b0420556985": "Key Vault Certificates Officer",
    "3913510d-42f4-4e42-8a64-420c390055eb": "Monitoring Metrics Publisher",
    "515c2055-d9d4-4321-b1b9-bd0c9a0f79fe": "Logic App Operator",
}
"""Built-in role definition IDs this project may assign, with their official names."""


def check_role_assignments(files: Sequence[BicepFile], *, rbac_file: str = RBAC_FILE) -> list[Problem]:
    """All role assignments in rbac.bicep, named guid(scope.id, principal, role), known and commented."""
    problems: list[Problem] = []
    for resource in deployed(files, "Microsoft.Authorization/roleAssignments"):
        if Path(resource.file.name).name != rbac_file:
            problems.append(resource.problem(f"role assignments belong in {rbac_file}"))
            continue
        body = resource.body
        scope = body.get("scope")
        principal = dig(body, "properties.principalId")
        role_def = dig(body, "properties.roleDefinitionId")
        fn = expression_node(role_def, "function") or {}
        params = fn.get("parameters") or {}
        if fn.get("type") != "subscription_resource_id" or params.get("resource_type") != (
            "Microsoft.Authorization/roleDefinitions"
        ):
            problems.append(
                resource.problem("roleDefinitionId must be subscriptionResourceId('...roleDefinitions', id)")
            )
            continue
        role_expr = params.get("resource_name_1")
        name = body.get("name")
        gfn = expression_node(name, "function") or {}
        args = [v for v in (gfn.get("parameters") or {}).values() if v is not None]
        expected = [f"{render(scope)}.id", render(principal), render(role_expr)]
        if gfn.get("type") != "guid" or [render(a) for a in args] != expected:
            problems.append(resource.problem(f"name must be guid({', '.join(expected)}), found {render(name)}"))
        role_id = evaluate(role_expr, resource.file)
        if not isinstance(role_id, str) or role_id not in KNOWN_ROLES:
            problems.append(resource.problem(f"role {render(role_id)} is not a known built-in role (KNOWN_ROLES)"))
            continue
        problems += _role_comment_problems(resource.file, role_id)
    return sorted(set(problems))


def _role_comment_problems(file: BicepFile, role_id: str) -> list[Problem]:
    role_name = KNOWN_ROLES[role_id]
    for number, line in enumerate(file.text.splitlines(), start=1):
        if f"'{role_id}'" in line:
            comment = line.split("//", 1)[1].strip() if "//" in line else ""
            if comment != role_name:
                return [Problem(file.name, f"role GUID {role_id} must be commented '// {role_name}'", number)]
            return []
    return [Problem(file.name, f"role GUID {role_id} is not written literally in {file.name}")]


# --- policy: diagnostic settings --------------------------------------------------------------

DIAGNOSED_TYPES: Final = (
    "Microsoft.Web/sites",
    "Microsoft.ServiceBus/namespaces",
    "Microsoft.Storage/storageAccounts",
    "Microsoft.KeyVault/vaults",
    "Microsoft.Logic/workflows",
)
"""Resource types whose platform logs/metrics must reach Log Analytics."""


def check_diagnostic_settings(
    files: Sequence[BicepFile], *, required: Sequence[str] = DIAGNOSED_TYPES
) -> list[Problem]:
    """Every deployed resource of :data:`DIAGNOSED_TYPES` has a diagnostic setting to a workspace."""
    covered: set[str] = set()
    problems: list[Problem] = []
    for setting in deployed(files, "Microsoft.Insights/diagnosticSettings"):
        symbols = {r.symbol: r for r in setting.file.resources()}
        target = symbols.get(str(setting.body.get("scope")))
        if target is None:
            problems.append(setting.problem("scope must be a resource symbol of the same file"))
            continue
        props = _as_dict(evaluate(setting.body.get("properties"), setting.file))
        if "workspaceId" not in props:
            problems.append(setting.problem("properties.workspaceId is missing"))
            continue
        covered.add(target.type.lower())
    for resource_type in required:
        if deployed(files, resource_type) and resource_type.lower() not in covered:
            problems.append(Problem("infra", f"no diagnostic setting for {resource_type}"))
    return problems


# --- policy: checkov skip comments and checkov's parser limits ---------------------------------

_SKIP = re.compile(r"checkov:skip=([^\s:]*)(?::(.*))?")


@dataclass(frozen=True)
class Skip:
    """An inline ``checkov:skip`` comment."""

    file: str
    line: int
    check_id: str
    reason: str


def inline_skips(files: Sequence[BicepFile]) -> list[Skip]:
    """Every ``checkov:skip=ID: reason`` comment."""
    out = []
    for file in files:
        for number, line in enumerate(file.text.splitlines(), start=1):
            match = _SKIP.search(line)
            if match:
                out.append(Skip(file.name, number, match.group(1), (match.group(2) or "").strip()))
    return out


def check_skip_comments(files: Sequence[BicepFile]) -> list[Problem]:
    """Each checkov skip names one check and gives a reason."""
    problems = []
    for skip in inline_skips(files):
        if not re.fullmatch(r"CKV2?_[A-Z]+_\d+", skip.check_id):
            problems.append(
                Problem(skip.file, f"checkov skip must name one check id, found {skip.check_id!r}", skip.line)
            )
        elif len(skip.reason) < 10:
            problems.append(Problem(skip.file, f"checkov skip {skip.check_id} needs a reason", skip.line))
    return problems


_STRING = re.compile(r"'(?:\\.|[^'\\])*'")


def check_comment_runs(files: Sequence[BicepFile], *, after_open: int = 9, after_value: int = 4) -> list[Problem]:
    """Keep comment/blank runs inside objects and arrays short enough for checkov's parser.

    checkov pins pycep-parser 0.5.1, whose grammar allows 10 line-break tokens after ``{``/``[``
    (that line's own and 9 comment lines) and 5 after a value (its own and 4 comment lines); blank
    lines merge into the previous token and do not count. A longer run makes the whole file a
    checkov parse error, which checkov reports with exit code 0.
    """
    problems = []
    for file in files:
        depth = 0
        run = 0
        run_start = 0
        previous_opened = False
        in_multiline = False
        for number, raw in enumerate(file.text.splitlines(), start=1):
            if raw.count("'''") % 2 == 1:
                in_multiline = not in_multiline
                continue
            if in_multiline:
                continue
            code = _STRING.sub("''", raw).split("//", 1)[0].strip()
            if not raw.strip():
                continue  # blank lines merge into the previous line break token: they do not count
            if not code:
                if depth > 0:
                    run_start = run_start or number
                    run += 1
                continue
            if depth > 0 and run:
                limit = after_open if previous_opened else after_value
                if run > limit:
                    problems.append(
                        Problem(
                            file.name,
                            f"{run} comment lines in a row inside an object or array; "
                            f"checkov's parser accepts {limit} here",
                            run_start,
                        )
                    )
            run, run_start = 0, 0
            depth += code.count("{") + code.count("[") - code.count("}") - code.count("]")
            previous_opened = code.endswith(("{", "["))
    return problems


# --- policy: network modes ---------------------------------------------------------------------

NETWORK_PARAMETER: Final = "network"
NETWORK_MODES: Final = ("public", "private")
"""Values of main.bicep's ``network`` parameter; the first is the default (today's public behaviour)."""

PRIVATE_NETWORK_TYPES: Final = frozenset(
    {"microsoft.storage/storageaccounts", "microsoft.servicebus/namespaces", "microsoft.keyvault/vaults"}
)
"""Resource types that must turn public network access off with network 'private'."""

PUBLIC_INBOUND: Final[Mapping[str, str]] = {
    "microsoft.web/sites": "the Management Activity API calls the o365_webhook function from the internet",
}
"""Types whose public network access stays on in every mode, with the reason."""

PRIVATE_ENDPOINT_GROUPS: Final = frozenset({"blob", "table", "queue", "namespace", "vault"})
"""Private link sub-resources network 'private' needs: storage (3), Service Bus, Key Vault."""

SERVICE_BUS_SKU: Final[Mapping[str, str]] = {"public": "Standard", "private": "Premium"}
"""Service Bus tier per mode: sessions and duplicate detection in both; private endpoints need Premium."""


def in_network_mode(files: Sequence[BicepFile], mode: str) -> list[BicepFile]:
    """The files with every ``network`` parameter bound to ``mode`` (main passes it to each module)."""
    return [
        BicepFile(f.name, f.text, f.tree, {**f.bound, NETWORK_PARAMETER: mode})
        if NETWORK_PARAMETER in f.parameters
        else f
        for f in files
    ]


def _main(files: Sequence[BicepFile]) -> BicepFile | None:
    return next((f for f in files if Path(f.name).name == "main.bicep"), None)


def _module(file: BicepFile, path_suffix: str) -> tuple[str, Mapping[str, Any]] | None:
    for symbol, raw in file.modules.items():
        if str((raw.get("detail") or {}).get("path", "")).endswith(path_suffix):
            return symbol, raw
    return None


def _module_body(raw: Mapping[str, Any]) -> tuple[Mapping[str, Any], Any]:
    config: Mapping[str, Any] = raw.get("config") or {}
    if set(config) == {"condition", "config"}:
        return config.get("config") or {}, config.get("condition")
    return config, None


def check_network_modes(files: Sequence[BicepFile]) -> list[Problem]:
    """Both ``network`` modes hold together, and 'private' leaves no public door but the webhook's.

    main.bicep declares ``network`` (public by default) and passes it to every module of
    :data:`PRIVATE_NETWORK_TYPES`; with each mode bound: public network access and the firewall
    default of storage, Service Bus and Key Vault ('Enabled'/'Allow' public, 'Disabled'/'Deny'
    private), the Service Bus tier, the network module deployed only when private, the site's VNet
    integration subnet, and in network.bicep a private endpoint with a private DNS zone group for
    each of :data:`PRIVATE_ENDPOINT_GROUPS`.
    """
    main = _main(files)
    if main is None:
        return [Problem("infra", "main.bicep not found")]
    problems: list[Problem] = []
    decl = main.parameters.get(NETWORK_PARAMETER)
    if decl is None:
        return [Problem(main.name, f"parameter {NETWORK_PARAMETER} is missing (public|private)")]
    allowed = next((d.get("argument") for d in decl.get("decorators") or [] if d.get("type") == "allowed"), None)
    if allowed != list(NETWORK_MODES):
        problems.append(Problem(main.name, f"parameter {NETWORK_PARAMETER} must allow {list(NETWORK_MODES)}"))
    if decl.get("default") != NETWORK_MODES[0]:
        problems.append(Problem(main.name, f"parameter {NETWORK_PARAMETER} must default to '{NETWORK_MODES[0]}'"))
    for resource_type in PRIVATE_NETWORK_TYPES:
        for resource in deployed(files, resource_type):
            if NETWORK_PARAMETER not in resource.file.parameters:
                problems.append(resource.problem(f"its module has no {NETWORK_PARAMETER} parameter"))
            else:
                passed = [
                    sym
                    for sym, raw in main.modules.items()
                    if Path(str((raw.get("detail") or {}).get("path", ""))).name == Path(resource.file.name).name
                    and _module_body(raw)[0].get("params", {}).get(NETWORK_PARAMETER) == NETWORK_PARAMETER
                ]
                if not passed:
                    problems.append(resource.problem(f"main.bicep does not pass {NETWORK_PARAMETER} to its module"))
    for mode in NETWORK_MODES:
        problems += _mode_problems(in_network_mode(files, mode), mode)
    return sorted(set(problems))


def _mode_problems(files: Sequence[BicepFile], mode: str) -> list[Problem]:
    private = mode == "private"
    problems: list[Problem] = []
    for resource in deployed(files):
        kind = resource.type.lower()
        for body in resource.instances():
            access = dig(body, "properties.publicNetworkAccess")
            if kind in PRIVATE_NETWORK_TYPES:
                want = "Disabled" if private else "Enabled"
                if access != want:
                    problems.append(
                        resource.problem(
                            f"network '{mode}': publicNetworkAccess must be '{want}', found {literal(access)}"
                        )
                    )
                acl = dig(body, "properties.networkAcls.defaultAction")
                want_acl = "Deny" if private else "Allow"
                if acl is not MISSING and acl != want_acl:
                    problems.append(
                        resource.problem(
                            f"network '{mode}': networkAcls.defaultAction must be '{want_acl}', found {literal(acl)}"
                        )
                    )
            elif private and access not in (MISSING, "Disabled") and kind not in PUBLIC_INBOUND:
                problems.append(resource.problem(f"network 'private': publicNetworkAccess is {literal(access)}"))
            if kind == "microsoft.servicebus/namespaces" and dig(body, "sku.name") != SERVICE_BUS_SKU[mode]:
                problems.append(
                    resource.problem(f"network '{mode}': sku.name must be '{SERVICE_BUS_SKU[mode]}' (sessions, dedup)")
                )
    main = _main(files)
    if main is None:
        return problems
    found = _module(main, "modules/network.bicep")
    if found is None:
        problems.append(Problem(main.name, "no module deploys modules/network.bicep (network 'private')"))
    else:
        symbol, raw = found
        condition = evaluate(_module_body(raw)[1], main)
        if condition is not private:
            problems.append(Problem(main.name, f"network '{mode}': module {symbol} must be deployed iff private"))
    site = _module(main, "modules/function-app.bicep")
    if site is not None:
        subnet = evaluate(_module_body(site[1])[0].get("params", {}).get("appSubnetId", MISSING), main)
        if private and (subnet in (MISSING, "", None)):
            problems.append(Problem(main.name, "network 'private': the function app gets no appSubnetId"))
        if not private and subnet not in (MISSING, ""):
            problems.append(
                Problem(main.name, f"network 'public': the function app gets appSubnetId {literal(subnet)}")
            )
    if private:
        problems += _private_endpoint_problems(files)
    return problems


def _private_endpoint_problems(files: Sequence[BicepFile]) -> list[Problem]:
    problems: list[Problem] = []
    groups: set[str] = set()
    endpoints = deployed(files, "Microsoft.Network/privateEndpoints")
    for endpoint in endpoints:
        for body in endpoint.instances():
            for connection in dig(body, "properties.privateLinkServiceConnections") or []:
                groups.update(str(g) for g in dig(connection, "properties.groupIds") or [])
    for group in sorted(PRIVATE_ENDPOINT_GROUPS - groups):
        problems.append(Problem("infra", f"network 'private': no private endpoint for '{group}'"))
    zone_groups = deployed(files, "Microsoft.Network/privateEndpoints/privateDnsZoneGroups")
    for endpoint in endpoints:
        parents = {render(z.body.get("parent")).split("[")[0] for z in zone_groups if z.file is endpoint.file}
        if endpoint.symbol not in parents:
            problems.append(
                endpoint.problem("network 'private': no privateDnsZoneGroups child (names would not resolve)")
            )
    if endpoints and not deployed(files, "Microsoft.Network/privateDnsZones/virtualNetworkLinks"):
        problems.append(Problem("infra", "network 'private': private DNS zones are not linked to the virtual network"))
    sites = deployed(files, "Microsoft.Web/sites")
    for site in sites:
        if dig(site.body, "properties.virtualNetworkSubnetId") is MISSING:
            problems.append(site.problem("network 'private': properties.virtualNetworkSubnetId is missing"))
    return problems


# --- policy: Key Vault secrets are granted one by one -----------------------------------------

VAULT_WIDE_SECRET_ROLES: Final = frozenset(
    {
        "4633458b-17de-408a-b874-0445c86b69e6",  # Key Vault Secrets User
        "db79e9a7-68ee-4b58-9aeb-b90e7c24fcba",  # Key Vault Certificate User (reads certificate secrets too)
    }
)
"""Roles that read secret values: never on a whole vault, only on the one secret the app reads."""


def check_secret_role_scope(files: Sequence[BicepFile]) -> list[Problem]:
    """Secret-reading roles are assigned at a ``Microsoft.KeyVault/vaults/secrets`` scope, never the vault."""
    problems: list[Problem] = []
    for assignment in deployed(files, "Microsoft.Authorization/roleAssignments"):
        role_def = expression_node(dig(assignment.body, "properties.roleDefinitionId"), "function") or {}
        role_id = evaluate((role_def.get("parameters") or {}).get("resource_name_1"), assignment.file)
        if role_id not in VAULT_WIDE_SECRET_ROLES:
            continue
        scope = assignment.body.get("scope")
        op = expression_node(scope, "operator")
        symbol = str(op["operands"]["operand_1"]) if op is not None and op["type"] == "index_accessor" else str(scope)
        target = next((r for r in assignment.file.resources() if r.symbol == symbol), None)
        if target is None or target.type.lower() != "microsoft.keyvault/vaults/secrets":
            kind = target.type if target is not None else "unknown"
            problems.append(
                assignment.problem(f"secret-reading role scoped to {symbol} ({kind}): scope it to a secret")
            )
    return problems


PolicyCheck = Callable[[Sequence[BicepFile]], list[Problem]]

POLICY_CHECKS: Final[tuple[PolicyCheck, ...]] = (
    check_required_properties,
    check_tags,
    check_app_settings,
    check_settings_parity,
    check_queues,
    check_tables_and_containers,
    check_lifecycle,
    check_raw_archive_immutability,
    check_role_assignments,
    check_diagnostic_settings,
    check_skip_comments,
    check_comment_runs,
    check_network_modes,
    check_secret_role_scope,
)
"""Every policy check :func:`run_policy_checks` applies, in order."""


def run_policy_checks(files: Sequence[BicepFile], *, checks: Sequence[PolicyCheck] = POLICY_CHECKS) -> list[Problem]:
    """All problems of all policy checks."""
    return [problem for check in checks for problem in check(files)]


# --- checkov ------------------------------------------------------------------------------------


def ensure_checkov(venv: Path = DEFAULT_CHECKOV_VENV, *, version: str = CHECKOV_VERSION) -> tuple[Path, float]:
    """The checkov executable in ``venv`` (created and installed if needed) and the setup seconds."""
    started = time.monotonic()
    binary = venv / "bin" / "checkov"
    if binary.exists() and _checkov_version(binary) == version:
        return binary, 0.0
    if not (venv / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, text=True)
    # pip's own chatter (index warnings) stays hidden unless the install fails.
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", f"checkov=={version}"],
        check=True,
        capture_output=True,
        text=True,
    )
    return binary, time.monotonic() - started


def _checkov_version(binary: Path) -> str:
    try:
        out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.stdout.strip()


def checkov_problems(report: Any, *, root: Path, skips: Sequence[Skip]) -> list[Problem]:
    """Problems in a checkov ``-o json`` report: parse errors, failed checks, stale skips."""
    reports = report if isinstance(report, list) else [report]
    problems: list[Problem] = []
    skipped: set[tuple[str, str]] = set()
    for entry in reports:
        if not isinstance(entry, Mapping) or "results" not in entry:
            continue
        results = entry["results"]
        for path in results.get("parsing_errors") or []:
            problems.append(Problem(display_path(Path(path)), "checkov cannot parse this file"))
        if entry.get("summary", {}).get("parsing_errors") and not results.get("parsing_errors"):
            problems.append(
                Problem(display_path(root), f"checkov reports {entry['summary']['parsing_errors']} parse errors")
            )
        for failed in results.get("failed_checks") or []:
            file = _checkov_file(root, failed)
            line = (failed.get("file_line_range") or [None])[0]
            problems.append(
                Problem(
                    file,
                    f"checkov {failed.get('check_id')} {failed.get('check_name')} on {failed.get('resource')}: "
                    f"fix it or add '// checkov:skip={failed.get('check_id')}: <reason>' inside the resource",
                    line,
                )
            )
        for done in results.get("skipped_checks") or []:
            skipped.add((_checkov_file(root, done), str(done.get("check_id"))))
    for skip in skips:
        if (skip.file, skip.check_id) not in skipped:
            problems.append(
                Problem(skip.file, f"stale checkov skip {skip.check_id}: checkov did not skip it", skip.line)
            )
    return problems


def _checkov_file(root: Path, result: Mapping[str, Any]) -> str:
    path = result.get("file_abs_path") or str(root) + str(result.get("file_path", ""))
    return display_path(Path(path))


def run_checkov(
    root: Path, files: Sequence[BicepFile], *, venv: Path = DEFAULT_CHECKOV_VENV
) -> tuple[list[Problem], str]:
    """Run checkov on ``root``; return its problems and a timing note."""
    try:
        binary, setup = ensure_checkov(venv)
    except subprocess.CalledProcessError as exc:
        tail = ((exc.stderr or "").strip().splitlines() or [str(exc)])[-1]
        return [Problem(display_path(venv), f"cannot set up checkov {CHECKOV_VERSION}: {tail}")], ""
    except OSError as exc:
        return [Problem(display_path(venv), f"cannot set up checkov {CHECKOV_VERSION}: {exc}")], ""
    started = time.monotonic()
    proc = subprocess.run(
        [str(binary), "-d", str(root), "--framework", "bicep", "--skip-download", "-o", "json"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
    )
    elapsed = time.monotonic() - started
    note = f"checkov {elapsed:.1f} s" + (f" (setup {setup:.1f} s)" if setup else "")
    if setup > CHECKOV_SETUP_BUDGET_SECONDS:
        note += f" WARNING: checkov setup took more than {CHECKOV_SETUP_BUDGET_SECONDS:.0f} s"
    if proc.returncode not in (0, 1):
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return [Problem(display_path(root), f"checkov exited {proc.returncode}: {tail}")], note
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        return [Problem(display_path(root), "checkov printed no JSON report")], note
    return checkov_problems(report, root=root, skips=inline_skips(files)), note


# --- command line -------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m shared.tools.iac_check``; 0 when everything passes."""
    parser = argparse.ArgumentParser(prog="python -m shared.tools.iac_check", description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=DEFAULT_INFRA, help="folder with the Bicep files (default: infra)")
    parser.add_argument("--no-checkov", action="store_true", help="parse and policy checks only")
    parser.add_argument("--checkov-venv", type=Path, default=DEFAULT_CHECKOV_VENV, help="checkov's own virtualenv")
    args = parser.parse_args(argv)

    started = time.monotonic()
    files, problems = load_infra(args.root)
    parsed = time.monotonic()
    problems += run_policy_checks(files)
    checked = time.monotonic()
    note = "checkov skipped (--no-checkov)"
    if not args.no_checkov:
        checkov, note = run_checkov(args.root, files, venv=args.checkov_venv)
        problems += checkov
    for problem in problems:
        print(problem)
    verdict = f"{len(problems)} problem(s)" if problems else "OK"
    print(
        f"iac_check: {len(files)} Bicep files parsed in {parsed - started:.1f} s, "
        f"{len(POLICY_CHECKS)} policy checks in {checked - parsed:.1f} s, {note}: {verdict}"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
