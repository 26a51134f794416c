"""The process environment Azure gives the Function App: its app settings as infra/modules/function-app.bicep
declares them, with the deployment's parameters filled in and Key Vault references resolved as the platform
resolves them (``@Microsoft.KeyVault(SecretUri=...)`` -> the secret's value).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from shared.tools.iac_check import Unresolved, app_settings, evaluate, load_infra

REPO = Path(__file__).resolve().parents[2]
_INTERPOLATION = re.compile(r"\$\{([^}]+)\}")
_KEY_VAULT = re.compile(r"^@Microsoft\.KeyVault\(SecretUri=(?P<uri>[^)]+)\)$")


def bicep_app_settings(
    params: Mapping[str, str], resources: Mapping[str, str], vault: Mapping[str, str]
) -> dict[str, str]:
    """Every app setting of the Bicep with ``params`` (the module's parameters), ``resources`` (resource
    properties such as ``storage.name``) and ``vault`` (secret URI -> value) filled in.

    Raises KeyError for anything the Bicep uses that the caller did not give: the test then shows exactly
    which deployment value it lacks.
    """
    files, problems = load_infra(REPO / "infra")
    assert problems == [], problems
    out: dict[str, str] = {}
    for name, setting in app_settings(files).items():
        value = evaluate(setting.expr, setting.resource.file)
        out[name] = _resolve(value, params, resources, vault)
    return out


def _lookup(name: str, params: Mapping[str, str], resources: Mapping[str, str]) -> str:
    name = name.strip()
    if name.startswith("parameter "):
        name = name.removeprefix("parameter ")
    if name in params:
        return params[name]
    return resources[name]


def _resolve(value: object, params: Mapping[str, str], resources: Mapping[str, str], vault: Mapping[str, str]) -> str:
    if isinstance(value, Unresolved):
        text = value.text
        if text.startswith("string(") and text.endswith(")"):
            return _lookup(text[len("string(") : -1], params, resources)
        match = re.fullmatch(r"conditional\(empty\((\w+)\), (.*?), (.*)\)", text)
        if match:
            chosen = match.group(2) if not _lookup(match.group(1), params, resources) else match.group(3)
            return _resolve(chosen, params, resources, vault)
        return _lookup(text, params, resources)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    assert isinstance(value, str), value
    text = _INTERPOLATION.sub(lambda m: _lookup(m.group(1), params, resources), value)
    reference = _KEY_VAULT.match(text)
    if reference:
        return vault[reference.group("uri")]
    return text
