"""One name per setting in three homes: the code, local.settings.sample.json and the Bicep app settings.

    setting_names()  ⊆  local.settings.sample.json Values  ⊆  Bicep appSettings
and, the other way, nothing named ITDR_* (or anything else that is not a Functions host setting) in
the sample or in Bicep that shared/platform/settings.py does not read. Also here: the sample holds
no secret, defaults agree between settings.py, main.bicep and the sample, and host.json matches
the queues (lock renewal covers the function timeout; failures are never sampled away).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shared.platform.settings import Settings, setting_names
from shared.tools import iac_check
from shared.tools.iac_check import (
    BicepFile,
    Problem,
    app_settings,
    evaluate,
    load_infra,
    sample_secrets,
    settings_parity,
)

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "local.settings.sample.json"


@pytest.fixture(scope="module")
def infra() -> list[BicepFile]:
    files, problems = load_infra(REPO / "infra")
    assert problems == []
    return files


@pytest.fixture(scope="module")
def sample() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(SAMPLE.read_text(encoding="utf-8"))
    return document


@pytest.fixture(scope="module")
def bicep_settings(infra: list[BicepFile]) -> dict[str, Any]:
    return {name: evaluate(s.expr, s.resource.file) for name, s in app_settings(infra).items()}


def test_code_settings_are_all_in_the_sample(sample: dict[str, Any]) -> None:
    assert setting_names() - set(sample["Values"]) == set()


def test_sample_settings_are_all_in_bicep(sample: dict[str, Any], bicep_settings: dict[str, Any]) -> None:
    local_only = {"FUNCTIONS_WORKER_RUNTIME", "AzureWebJobsStorage"}
    assert set(sample["Values"]) - set(bicep_settings) == local_only


def test_itdr_settings_are_exactly_those_the_code_reads(sample: dict[str, Any], bicep_settings: dict[str, Any]) -> None:
    code = {n for n in setting_names() if n.startswith("ITDR_")}
    assert {n for n in sample["Values"] if n.startswith("ITDR_")} == code
    assert {n for n in bicep_settings if n.startswith("ITDR_")} == code


def test_other_names_are_host_settings(sample: dict[str, Any], bicep_settings: dict[str, Any]) -> None:
    extra = (set(sample["Values"]) | set(bicep_settings)) - setting_names()
    assert sorted(extra) == [
        "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
        "AzureWebJobsStorage",
        "AzureWebJobsStorage__accountName",
        "AzureWebJobsStorage__clientId",
        "AzureWebJobsStorage__credential",
        "FUNCTIONS_WORKER_RUNTIME",
        "PYTHON_ENABLE_OPENTELEMETRY",
        "ServiceBusConnection__clientId",
        "ServiceBusConnection__credential",
    ]
    assert all(iac_check.is_host_setting(n) for n in extra)


def test_parity_check_passes_on_the_real_files(infra: list[BicepFile]) -> None:
    assert [str(p) for p in iac_check.check_settings_parity(infra, sample_path=SAMPLE)] == []


def test_sample_is_a_local_settings_file_for_azurite(sample: dict[str, Any]) -> None:
    assert sample["IsEncrypted"] is False
    values = sample["Values"]
    assert values["FUNCTIONS_WORKER_RUNTIME"] == "python"
    assert values["AzureWebJobsStorage"] == "UseDevelopmentStorage=true"
    assert "AccountName=devstoreaccount1" in values["ITDR_STORAGE_CONNECTION_STRING"]
    assert all(isinstance(v, str) for v in values.values())
    assert sample_secrets(values, sample_file="local.settings.sample.json") == []


def test_bicep_identity_and_development_only_settings(bicep_settings: dict[str, Any]) -> None:
    assert {
        name: bicep_settings[name]
        for name in (
            "AzureWebJobsStorage__credential",
            "ServiceBusConnection__credential",
            "ITDR_STORAGE_CONNECTION_STRING",
            "ITDR_MANAGEMENT_API_BASE_URL",
            "ITDR_GRAPH_BASE_URL",
            "ITDR_LOGIN_AUTHORITY",
        )
    } == {
        "AzureWebJobsStorage__credential": "managedidentity",
        "ServiceBusConnection__credential": "managedidentity",
        "ITDR_STORAGE_CONNECTION_STRING": "",
        "ITDR_MANAGEMENT_API_BASE_URL": "",
        "ITDR_GRAPH_BASE_URL": "",
        "ITDR_LOGIN_AUTHORITY": "",
    }
    clients = {bicep_settings[n] for n in ("AZURE_CLIENT_ID", "AzureWebJobsStorage__clientId")}
    clients.add(bicep_settings["ServiceBusConnection__clientId"])
    assert clients == {iac_check.Unresolved("parameter identityClientId")}
    assert bicep_settings["ITDR_PARTNER_ENDPOINT"] == "@Microsoft.KeyVault(SecretUri=${partnerEndpointSecretUri})"
    assert (
        bicep_settings["ITDR_APP_CERTIFICATE"]
        == "@Microsoft.KeyVault(SecretUri=${keyVaultUri}secrets/${certificateName}/)"
    )


# Settings whose default lives in three places: settings.py, main.bicep's parameter, the sample.
DEFAULTS = {
    "ITDR_POLL_SCHEDULE": "pollSchedule",
    "ITDR_FEED_HEALTH_SCHEDULE": "feedHealthSchedule",
    "ITDR_INTEL_REFRESH_SCHEDULE": "intelRefreshSchedule",
    "ITDR_WEEKLY_REPORT_SCHEDULE": "weeklyReportSchedule",
    "ITDR_SIGNIN_POLL_SCHEDULE": "signinPollSchedule",
    "ITDR_RECORDS_PER_BATCH": "recordsPerBatch",
    "ITDR_TENANT_SHARDS": "tenantShards",
    "ITDR_PARTNER_FORMAT": "partnerFormat",
}


@pytest.mark.parametrize(("setting", "parameter"), DEFAULTS.items())
def test_defaults_agree(infra: list[BicepFile], sample: dict[str, Any], setting: str, parameter: str) -> None:
    field = next(f for f in Settings.model_fields.values() if f.alias == setting)
    main = next(f for f in infra if f.name == "infra/main.bicep")
    assert main.parameters[parameter]["default"] == field.default
    assert sample["Values"][setting] == str(field.default)


@pytest.mark.parametrize(
    ("code", "sample_names", "bicep_names", "expected"),
    [
        pytest.param({"ITDR_A"}, {"ITDR_A"}, {"ITDR_A"}, [], id="aligned"),
        pytest.param(
            {"ITDR_A", "ITDR_B"},
            {"ITDR_A"},
            {"ITDR_A"},
            [
                "sample.json: setting ITDR_B is read by the code but missing",
                "app.bicep: setting ITDR_B is read by the code but missing",
            ],
            id="missing-everywhere",
        ),
        pytest.param(
            {"ITDR_A"},
            {"ITDR_A", "ITDR_OLD", "FUNCTIONS_WORKER_RUNTIME"},
            {"ITDR_A", "ITDR_STRAY", "ServiceBusConnection__credential"},
            [
                "app.bicep: setting ITDR_OLD is in sample.json but not in the app settings",
                "sample.json: setting ITDR_OLD is not read by the code (shared/platform/settings.py) nor by the host",
                "app.bicep: setting ITDR_STRAY is not read by the code (shared/platform/settings.py) nor by the host",
            ],
            id="stray-names",
        ),
    ],
)
def test_settings_parity_reports_each_gap(
    code: set[str], sample_names: set[str], bicep_names: set[str], expected: list[str]
) -> None:
    problems = settings_parity(
        code=code, sample=sample_names, bicep=bicep_names, sample_file="sample.json", bicep_file="app.bicep"
    )
    assert [str(p) for p in problems] == expected


def test_sample_secrets_are_found() -> None:
    values = {
        "OK": "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=" + iac_check.AZURITE_KEY + ";",
        "REAL_KEY": "DefaultEndpointsProtocol=https;AccountName=prod;AccountKey=c2VjcmV0;EndpointSuffix=core.windows.net",
        "SAS_URL": "https://prod-01.logic.azure.com/workflows/x/triggers/manual/paths/invoke?sv=1.0&sig=abc",
        "EMPTY": "",
    }
    assert sample_secrets(values, sample_file="s.json") == [
        Problem("s.json", "setting REAL_KEY holds an account key other than Azurite's"),
        Problem("s.json", "setting SAS_URL holds a secret"),
    ]


# --- host.json ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def host() -> dict[str, Any]:
    document: dict[str, Any] = json.loads((REPO / "host.json").read_text(encoding="utf-8"))
    return document


def seconds(value: str) -> float:
    hours, minutes, secs = value.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(secs)


def test_host_json_runtime_and_bundle(host: dict[str, Any]) -> None:
    assert host["version"] == "2.0"
    assert host["extensionBundle"] == {"id": "Microsoft.Azure.Functions.ExtensionBundle", "version": "[4.*, 5.0.0)"}
    assert host["functionTimeout"] == "00:10:00"


def test_host_json_service_bus_settings(host: dict[str, Any]) -> None:
    service_bus = host["extensions"]["serviceBus"]
    assert set(service_bus) == {
        "prefetchCount",
        "autoCompleteMessages",
        "maxAutoLockRenewalDuration",
        "maxConcurrentCalls",
        "maxConcurrentSessions",
        "sessionIdleTimeout",
        "clientRetryOptions",
    }
    assert (service_bus["prefetchCount"], service_bus["autoCompleteMessages"]) == (0, True)
    assert "messageHandlerOptions" not in json.dumps(host)  # the pre-5.x nested shape


def test_lock_renewal_covers_the_function_timeout(host: dict[str, Any], infra: list[BicepFile]) -> None:
    renewal = seconds(host["extensions"]["serviceBus"]["maxAutoLockRenewalDuration"])
    assert renewal >= seconds(host["functionTimeout"])
    locks = {name: body["properties"]["lockDuration"] for name, (_, body) in iac_check.declared_queues(infra).items()}
    idle = seconds(host["extensions"]["serviceBus"]["sessionIdleTimeout"])
    assert all(idle < (iac_check.iso_seconds(locks[q]) or 0) for q in ("records", "detect"))


def test_failures_and_alerts_are_never_sampled_or_filtered(host: dict[str, Any]) -> None:
    sampling = host["logging"]["applicationInsights"]["samplingSettings"]
    assert {"Request", "Exception"} <= set(sampling["excludedTypes"].split(";"))
    levels = host["logging"]["logLevel"]
    keeps_errors = {"Trace", "Debug", "Information", "Warning"}
    assert {levels["default"], levels["Function"], levels["Host.Results"]} <= {"Trace", "Debug", "Information"}
    assert set(levels.values()) <= keeps_errors


def test_parity_check_reads_the_sample_file(infra: list[BicepFile], sample: dict[str, Any], tmp_path: Path) -> None:
    values = dict(sample["Values"])
    del values["ITDR_POLL_SCHEDULE"]
    values["ITDR_NOPE"] = "1"
    values["ITDR_STORAGE_CONNECTION_STRING"] = "AccountName=prod;AccountKey=c2VjcmV0"
    broken = tmp_path / "local.settings.sample.json"
    broken.write_text(json.dumps({"IsEncrypted": False, "Values": values}), encoding="utf-8")
    shown = iac_check.display_path(broken)
    assert [str(p) for p in iac_check.check_settings_parity(infra, sample_path=broken)] == [
        f"{shown}: setting ITDR_POLL_SCHEDULE is read by the code but missing",
        f"infra/modules/function-app-settings.bicep: setting ITDR_NOPE is in {shown} but not in the app settings",
        f"{shown}: setting ITDR_NOPE is not read by the code (shared/platform/settings.py) nor by the host",
        f"{shown}: setting ITDR_STORAGE_CONNECTION_STRING holds an account key other than Azurite's",
    ]
    broken.write_text("{}", encoding="utf-8")
    assert [p.message for p in iac_check.check_settings_parity(infra, sample_path=broken)] == [
        "cannot read Values: 'Values'"
    ]


def _code_text() -> str:
    files = [*(REPO / "shared").rglob("*.py"), *(REPO / "detectors").glob("*.py"), REPO / "function_app.py"]
    return "\n".join(p.read_text(encoding="utf-8") for p in files if p.name != "settings.py")


def test_every_setting_is_read_by_the_code() -> None:
    """A setting the Bicep sets that nothing reads is a dead knob (or a mistake): each field is used somewhere."""
    import re

    code = _code_text()
    unread = sorted(
        f.alias
        for name, f in Settings.model_fields.items()
        if f.alias is not None
        and not re.search(rf"\.{name}\b", code)  # settings.<field>
        and f"%{f.alias}%" not in code  # a binding expression of function_app.py
    )
    assert unread == []


def test_every_binding_expression_of_function_app_resolves(
    bicep_settings: dict[str, Any], sample: dict[str, Any]
) -> None:
    import re

    from shared.runtime.local import registered_functions

    expressions = set()
    for fn in registered_functions().values():
        expressions |= set(re.findall(r"%([^%]+)%", fn.get_function_json()))
    assert expressions == {
        "ITDR_POLL_SCHEDULE",
        "ITDR_FEED_HEALTH_SCHEDULE",
        "ITDR_INTEL_REFRESH_SCHEDULE",
        "ITDR_WEEKLY_REPORT_SCHEDULE",
        "ITDR_SIGNIN_POLL_SCHEDULE",
    }
    for name in expressions:  # set in Azure, locally, and read (with the same default) by the code
        assert name in bicep_settings and sample["Values"][name]
        assert name in setting_names()
