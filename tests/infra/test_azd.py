"""`azd up` works from the repository: azure.yaml, the parameters file azd reads, and the tag it deploys to."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def azure_yaml() -> dict[str, object]:
    loaded = yaml.safe_load((REPO / "azure.yaml").read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def test_the_service_is_the_python_function_app_at_the_root() -> None:
    doc = azure_yaml()
    assert doc["infra"] == {"provider": "bicep", "path": "infra", "module": "main"}
    services = doc["services"]
    assert isinstance(services, dict) and list(services) == ["api"]
    api = services["api"]
    assert (api["project"], api["language"], api["host"]) == (".", "python", "function")
    assert (REPO / "function_app.py").exists() and (REPO / "requirements.txt").exists()


def test_azd_deploys_to_the_site_tagged_with_the_service_name_and_nothing_else() -> None:
    bicep = (REPO / "infra" / "modules" / "function-app.bicep").read_text(encoding="utf-8")
    everything = "".join(p.read_text(encoding="utf-8") for p in (REPO / "infra").rglob("*.bicep"))
    assert everything.count("'azd-service-name'") == 1
    site = bicep[bicep.index("resource site 'Microsoft.Web/sites") :]
    assert "'azd-service-name': 'api'" in site[: site.index("\n}\n")]


def test_the_prepackage_hook_builds_the_ip_data_with_a_make_target_that_exists() -> None:
    hook = azure_yaml()["services"]["api"]["hooks"]["prepackage"]["posix"]  # type: ignore[index]
    assert hook["run"] == "make ipdata"
    dry = subprocess.run(["make", "-n", "ipdata"], cwd=REPO, capture_output=True, text=True, check=False)
    assert dry.returncode == 0, dry.stderr


def test_the_azd_parameters_file_names_only_parameters_of_main_bicep_and_every_required_one() -> None:
    main = (REPO / "infra" / "main.bicep").read_text(encoding="utf-8")
    declared = dict(re.findall(r"^param (\w+) \w+( =)?", main, flags=re.M))
    required = {name for name, default in declared.items() if not default}
    params = json.loads((REPO / "infra" / "main.parameters.json").read_text(encoding="utf-8"))["parameters"]
    assert set(params) <= set(declared)
    assert required <= set(params)
    # azd substitutes its environment values: ${AZURE_ENV_NAME}, ${AZURE_LOCATION}, ${NAME=default}
    for name in ("environmentName", "location"):
        assert re.fullmatch(r"\$\{AZURE_[A-Z_]+\}", params[name]["value"])
