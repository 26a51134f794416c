"""The Bicep templates under infra/: they parse, they pass every policy, and the policies can fail.

Two halves:
- the real templates (parsed once per module with pycep): every file parses, every check of
  shared.tools.iac_check.POLICY_CHECKS returns no problem, and the facts other code relies on
  (queues, tables, containers, role assignments, alerts, parameters files) are exactly as expected;
- each check on a small, deliberately bad Bicep snippet, asserting the whole list of problems, so a
  check that silently stopped looking would fail here.
"""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest

from shared.platform import names
from shared.tools import iac_check
from shared.tools.iac_check import (
    BicepFile,
    Problem,
    Skip,
    check_app_settings,
    check_comment_runs,
    check_diagnostic_settings,
    check_lifecycle,
    check_network_modes,
    check_queues,
    check_raw_archive_immutability,
    check_required_properties,
    check_role_assignments,
    check_secret_role_scope,
    check_skip_comments,
    check_tables_and_containers,
    check_tags,
    checkov_problems,
    deployed,
    display_path,
    evaluate,
    in_network_mode,
    load_infra,
    parse_bicep,
    render,
)

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"


@pytest.fixture(scope="module")
def infra() -> list[BicepFile]:
    files, problems = load_infra(INFRA)
    assert problems == []
    return files


def by_name(files: list[BicepFile], name: str) -> BicepFile:
    return next(f for f in files if f.name == name)


def snippet(source: str, *, name: str = "infra/modules/bad.bicep") -> list[BicepFile]:
    return [parse_bicep(textwrap.dedent(source).lstrip("\n"), name=name)]


# --- the real templates ----------------------------------------------------------------------


def test_every_bicep_file_parses(infra: list[BicepFile]) -> None:
    assert sorted(f.name for f in infra) == [
        "infra/main.bicep",
        "infra/modules/diagnostics.bicep",
        "infra/modules/function-app-settings.bicep",
        "infra/modules/function-app.bicep",
        "infra/modules/identity.bicep",
        "infra/modules/key-vault.bicep",
        "infra/modules/logic-app.bicep",
        "infra/modules/monitoring.bicep",
        "infra/modules/network.bicep",
        "infra/modules/rbac.bicep",
        "infra/modules/service-bus.bicep",
        "infra/modules/storage.bicep",
    ]


@pytest.mark.parametrize("check", iac_check.POLICY_CHECKS, ids=lambda c: c.__name__)
def test_policy_check_passes_on_the_templates(infra: list[BicepFile], check: iac_check.PolicyCheck) -> None:
    assert [str(p) for p in check(infra)] == []


def test_main_composes_every_module_with_the_merged_tags(infra: list[BicepFile]) -> None:
    main = by_name(infra, "infra/main.bicep")
    assert render(main.variables["allTags"]) == "union(tags, {azd-env-name: environmentName})"
    modules = {symbol: m["detail"]["path"] for symbol, m in main.modules.items()}
    assert modules == {
        "identity": "modules/identity.bicep",
        "storage": "modules/storage.bicep",
        "serviceBus": "modules/service-bus.bicep",
        "keyVault": "modules/key-vault.bicep",
        "monitoring": "modules/monitoring.bicep",
        "privateNetwork": "modules/network.bicep",
        "partnerLogicApp": "modules/logic-app.bicep",
        "rbac": "modules/rbac.bicep",
        "functionApp": "modules/function-app.bicep",
        "functionAppSettings": "modules/function-app-settings.bicep",
        "diagnostics": "modules/diagnostics.bicep",
    }
    for symbol, path in modules.items():
        target = by_name(infra, f"infra/{path}")
        config = main.modules[symbol]["config"]
        passed = (config["config"] if set(config) == {"condition", "config"} else config)["params"]
        assert set(passed) <= set(target.parameters), symbol
        if "tags" in target.parameters:
            assert passed["tags"] == "allTags", symbol


def test_main_uses_only_known_abbreviations(infra: list[BicepFile]) -> None:
    abbreviations = json.loads((INFRA / "abbreviations.json").read_text(encoding="utf-8"))
    used = set(re.findall(r"abbrs\.(\w+)", by_name(infra, "infra/main.bicep").text))
    assert used - set(abbreviations) == set()
    assert len(used) >= 10


def test_queues_are_those_of_names_with_sessions_and_duplicate_detection(infra: list[BicepFile]) -> None:
    declared = {
        name: (body["properties"]["requiresSession"], body["properties"]["requiresDuplicateDetection"])
        for name, (_, body) in iac_check.declared_queues(infra).items()
    }
    # #25.5: records and detect carry fixed MessageIds too, so the broker drops a repeat (was: content only)
    deduplicated = {names.QUEUE_CONTENT, names.QUEUE_RECORDS, names.QUEUE_DETECT}
    assert declared == {q: (q in names.SESSION_QUEUES, q in deduplicated) for q in names.ALL_QUEUES}


def test_tables_and_containers_are_those_of_names(infra: list[BicepFile]) -> None:
    tables = iac_check.declared_names(infra, "Microsoft.Storage/storageAccounts/tableServices/tables")
    containers = iac_check.declared_names(infra, "Microsoft.Storage/storageAccounts/blobServices/containers")
    assert tables == set(names.ALL_TABLES)
    assert containers == {*names.ALL_CONTAINERS, "parameter deploymentContainerName"}


def test_role_assignments_are_the_least_privilege_set(infra: list[BicepFile]) -> None:
    rbac = by_name(infra, "infra/modules/rbac.bicep")
    symbols = {r.symbol: r for r in rbac.resources()}
    assignments = {
        r.symbol: (
            symbols[render(r.body["scope"]).split("[")[0]].type,
            iac_check.KNOWN_ROLES[
                evaluate(r.body["properties"]["roleDefinitionId"]["function"]["parameters"]["resource_name_1"], rbac)
            ],
            r.body["properties"]["principalId"],
        )
        for r in deployed(infra, "Microsoft.Authorization/roleAssignments")
    }
    assert assignments == {
        "storageBlobDataOwner": ("Microsoft.Storage/storageAccounts", "Storage Blob Data Owner", "principalId"),
        "storageTableDataContributor": (
            "Microsoft.Storage/storageAccounts",
            "Storage Table Data Contributor",
            "principalId",
        ),
        "storageQueueDataContributor": (
            "Microsoft.Storage/storageAccounts",
            "Storage Queue Data Contributor",
            "principalId",
        ),
        "serviceBusDataSender": ("Microsoft.ServiceBus/namespaces", "Azure Service Bus Data Sender", "principalId"),
        "serviceBusDataReceiver": ("Microsoft.ServiceBus/namespaces", "Azure Service Bus Data Receiver", "principalId"),
        # one assignment per secret the app reads (appSecrets[i]), none on the vault
        "keyVaultSecretsUser": ("Microsoft.KeyVault/vaults/secrets", "Key Vault Secrets User", "principalId"),
        # #25.5: the partner workflow reads its own run history (its duplicate Idempotency-Key check)
        "logicAppOperator": ("Microsoft.Logic/workflows", "Logic App Operator", "logicAppPrincipalId"),
        "monitoringMetricsPublisher": ("Microsoft.Insights/components", "Monitoring Metrics Publisher", "principalId"),
        "operatorCertificatesOfficer": (
            "Microsoft.KeyVault/vaults",
            "Key Vault Certificates Officer",
            "operatorPrincipalId",
        ),
    }


def test_function_app_is_flex_consumption_python_311_with_identity_deployment(infra: list[BicepFile]) -> None:
    (site,) = deployed(infra, "Microsoft.Web/sites")
    body = site.instances()[0]
    config = body["properties"]["functionAppConfig"]
    assert config["runtime"] == {"name": "python", "version": "3.11"}
    assert config["deployment"]["storage"]["type"] == "blobContainer"
    assert config["deployment"]["storage"]["authentication"]["type"] == "UserAssignedIdentity"
    assert set(config["scaleAndConcurrency"]) == {"maximumInstanceCount", "instanceMemoryMB"}
    assert body["properties"]["siteConfig"] == {
        "minTlsVersion": "1.2",
        "scmMinTlsVersion": "1.2",
        "ftpsState": "Disabled",
        "http20Enabled": True,
    }
    basic_auth = {
        b["name"]: b["properties"]["allow"]
        for r in deployed(infra, "Microsoft.Web/sites/basicPublishingCredentialsPolicies")
        for b in r.instances()
    }
    assert basic_auth == {"ftp": False, "scm": False}


def test_operations_alerts(infra: list[BicepFile]) -> None:
    (metric,) = deployed(infra, "Microsoft.Insights/metricAlerts")
    (criterion,) = metric.instances()[0]["properties"]["criteria"]["allOf"]
    assert (criterion["metricName"], criterion["operator"], criterion["threshold"], criterion["timeAggregation"]) == (
        "DeadletteredMessages",
        "GreaterThan",
        0,
        "Maximum",
    )
    queries = {
        r.symbol: r.instances()[0]["properties"]["criteria"]["allOf"][0]["query"]
        for r in deployed(infra, "Microsoft.Insights/scheduledQueryRules")
    }
    assert set(queries) == {
        "functionFailuresAlert",
        "feedHealthAlert",
        "remediationFailuresAlert",
        "parkedMessagesAlert",
    }
    assert '"itdr.deadletters"' in queries["parkedMessagesAlert"]
    assert "requests" in queries["functionFailuresAlert"]
    assert "success == false" in queries["functionFailuresAlert"]
    assert "integration_health" in queries["feedHealthAlert"]
    assert '"itdr.remediations"' in queries["remediationFailuresAlert"]


def test_alert_runbook_links_exist_in_operations_doc(infra: list[BicepFile]) -> None:
    monitoring = by_name(infra, "infra/modules/monitoring.bicep")
    anchors = set(re.findall(r"docs/operations\.md#([a-z0-9-]+)", monitoring.text))
    headings = {
        re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in (REPO / "docs" / "operations.md").read_text(encoding="utf-8").splitlines()
        if line.startswith("#")
    }
    assert anchors == {"function-failures", "dead-letters", "parked-messages", "feed-health", "remediation-failures"}
    assert anchors - headings == set()


def test_diagnostic_settings_cover_every_platform_log_source(infra: list[BicepFile]) -> None:
    diagnostics = by_name(infra, "infra/modules/diagnostics.bicep")
    symbols = {r.symbol: r.type for r in diagnostics.resources()}
    targets = sorted(
        symbols[str(r.body["scope"])] for r in deployed([diagnostics], "Microsoft.Insights/diagnosticSettings")
    )
    assert targets == [
        "Microsoft.KeyVault/vaults",
        "Microsoft.Logic/workflows",
        "Microsoft.ServiceBus/namespaces",
        "Microsoft.Storage/storageAccounts",
        "Microsoft.Storage/storageAccounts/blobServices",
        "Microsoft.Storage/storageAccounts/queueServices",
        "Microsoft.Storage/storageAccounts/tableServices",
        "Microsoft.Web/sites",
    ]


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_parameters_file_fits_main(infra: list[BicepFile], environment: str) -> None:
    main = by_name(infra, "infra/main.bicep")
    document = json.loads((INFRA / f"main.parameters.{environment}.json").read_text(encoding="utf-8"))
    given = document["parameters"]
    required = {name for name, decl in main.parameters.items() if decl.get("default") is None}
    assert set(given) - set(main.parameters) == set()
    assert required - set(given) == set()
    assert given["environmentName"] == {"value": environment}
    for name, entry in given.items():
        allowed = [d["argument"] for d in main.parameters[name]["decorators"] if d["type"] == "allowed"]
        if allowed:
            assert entry["value"] in allowed[0], name


def test_partner_endpoint_goes_from_logic_app_to_key_vault_never_to_an_output(infra: list[BicepFile]) -> None:
    logic = by_name(infra, "infra/modules/logic-app.bicep")
    (secret,) = deployed([logic], "Microsoft.KeyVault/vaults/secrets")
    assert render(secret.body["properties"]["value"]) == "manualTrigger.listCallbackUrl().value"
    for file in infra:
        for name, output in (file.tree.get("outputs") or {}).items():
            assert not iac_check.calls_list_function(output["value"]), f"{file.name} output {name}"


@pytest.mark.parametrize(
    ("mode", "access", "acl", "sku"),
    [("public", "Enabled", "Allow", "Standard"), ("private", "Disabled", "Deny", "Premium")],
)
def test_each_network_mode_sets_the_public_access_of_storage_service_bus_and_key_vault(
    infra: list[BicepFile], mode: str, access: str, acl: str, sku: str
) -> None:
    files = in_network_mode(infra, mode)
    seen = {}
    for kind in ("Microsoft.Storage/storageAccounts", "Microsoft.ServiceBus/namespaces", "Microsoft.KeyVault/vaults"):
        (resource,) = deployed(files, kind)
        (body,) = resource.instances()
        seen[kind] = (
            body["properties"]["publicNetworkAccess"],
            iac_check.dig(body, "properties.networkAcls.defaultAction"),
        )
    assert seen == {
        "Microsoft.Storage/storageAccounts": (access, acl),
        "Microsoft.ServiceBus/namespaces": (access, iac_check.MISSING),
        "Microsoft.KeyVault/vaults": (access, acl),
    }
    (namespace,) = deployed(files, "Microsoft.ServiceBus/namespaces")
    assert namespace.instances()[0]["sku"]["name"] == sku
    main = by_name(files, "infra/main.bicep")
    assert evaluate(main.modules["privateNetwork"]["config"]["condition"], main) is (mode == "private")
    subnet = evaluate(main.modules["functionApp"]["config"]["params"]["appSubnetId"], main)
    assert (subnet == "") is (mode == "public")
    assert check_network_modes(infra) == []


def test_private_network_has_an_endpoint_and_a_dns_zone_for_each_service(infra: list[BicepFile]) -> None:
    network = by_name(infra, "infra/modules/network.bicep")
    endpoints = evaluate("endpoints", network)
    assert [(e["name"], e["groupId"], e["target"]) for e in endpoints] == [
        ("blob", "blob", iac_check.Unresolved("parameter storageAccountId")),
        ("table", "table", iac_check.Unresolved("parameter storageAccountId")),
        ("queue", "queue", iac_check.Unresolved("parameter storageAccountId")),
        ("servicebus", "namespace", iac_check.Unresolved("parameter serviceBusNamespaceId")),
        ("vault", "vault", iac_check.Unresolved("parameter keyVaultId")),
    ]
    assert [render(e["zone"]) if not isinstance(e["zone"], str) else e["zone"] for e in endpoints][3:] == [
        "privatelink.servicebus.windows.net",
        "privatelink.vaultcore.azure.net",
    ]
    kinds = {r.type for r in deployed([network])}
    assert {
        "Microsoft.Network/virtualNetworks",
        "Microsoft.Network/natGateways",
        "Microsoft.Network/publicIPAddresses",
        "Microsoft.Network/privateEndpoints",
        "Microsoft.Network/privateEndpoints/privateDnsZoneGroups",
        "Microsoft.Network/privateDnsZones",
        "Microsoft.Network/privateDnsZones/virtualNetworkLinks",
    } <= kinds
    (vnet,) = deployed([network], "Microsoft.Network/virtualNetworks")
    app = next(s for s in vnet.instances()[0]["properties"]["subnets"] if s["name"] == "app")
    assert app["properties"]["delegations"][0]["properties"]["serviceName"] == "Microsoft.App/environments"
    assert str(app["properties"]["natGateway"]["id"]) == "natGateway.id"


def test_logic_app_trigger_admits_only_the_function_apps_outbound_addresses(infra: list[BicepFile]) -> None:
    logic = by_name(infra, "infra/modules/logic-app.bicep")
    (workflow,) = deployed([logic], "Microsoft.Logic/workflows")
    callers = workflow.body["properties"]["accessControl"]["triggers"]["allowedCallerIpAddresses"]
    assert callers["loop_type"]["detail"] == {"item_name": "ip", "array_name": "allowedCallerIpAddresses"}
    assert callers["config"] == {"addressRange": "ip"}
    for mode, expected in [
        ("private", ["privateNetwork.outputs.natPublicIpAddress"]),
        ("public", "functionApp.outputs.outboundIpAddresses"),
    ]:
        main = by_name(in_network_mode(infra, mode), "infra/main.bicep")
        passed = evaluate(main.modules["partnerLogicApp"]["config"]["params"]["allowedCallerIpAddresses"], main)
        assert (str(passed) if not isinstance(passed, list) else [str(p) for p in passed]) == expected


def test_the_app_reads_only_its_own_secrets(infra: list[BicepFile]) -> None:
    rbac = by_name(infra, "infra/modules/rbac.bicep")
    assert render(rbac.variables["appSecretNames"]) == (
        "concat([partnerEndpointSecretName], conditional(certificateImported, [certificateName], []), "
        "conditional(empty(spurTokenSecretName), [], [spurTokenSecretName]), "
        "conditional(empty(consentStateKeySecretName), [], [consentStateKeySecretName]))"
    )
    (secrets,) = [r for r in rbac.resources() if r.symbol == "appSecrets"]
    assert (secrets.existing, secrets.type, secrets.loop_source) == (
        True,
        "Microsoft.KeyVault/vaults/secrets",
        "appSecretNames",
    )
    assert check_secret_role_scope(infra) == []


# --- each check on bad snippets ----------------------------------------------------------------

WEAK_STORAGE = """
param tls string = 'TLS1_2'
resource st 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: 'st'
  tags: {
    a: 'b'
  }
  properties: {
    allowSharedKeyAccess: true
    allowBlobPublicAccess: true
    minimumTlsVersion: tls
  }
}
resource other 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: 'other'
}
"""

WEAK_SITE = """
resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: 'site'
  tags: {
    a: 'b'
  }
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    httpsOnly: false
    siteConfig: {
      minTlsVersion: '1.0'
      ftpsState: 'AllAllowed'
    }
    functionAppConfig: {
      runtime: {
        name: 'python'
        version: '3.9'
      }
    }
  }
}
"""

WEAK_SERVICES = """
resource sb 'Microsoft.ServiceBus/namespaces@2024-01-01' = {
  name: 'sb'
  sku: {
    name: 'Basic'
  }
  properties: {
    disableLocalAuth: false
    minimumTlsVersion: '1.0'
  }
}
resource kv 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: 'kv'
  properties: {
    enableRbacAuthorization: false
    enableSoftDelete: true
  }
}
resource ai 'Microsoft.Insights/components@2020-02-02' = {
  name: 'ai'
  properties: {
    DisableLocalAuth: false
    WorkspaceResourceId: ''
  }
}
resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: 'plan'
  sku: {
    tier: 'Dynamic'
  }
}
"""


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param(
            WEAK_STORAGE,
            [
                "properties.allowSharedKeyAccess must be the literal false (identity only), found true",
                "properties.allowBlobPublicAccess must be the literal false (no anonymous blobs), found true",
                "properties.minimumTlsVersion must be the literal 'TLS1_2' (TLS 1.2), found parameter tls",
                "properties.supportsHttpsTrafficOnly must be the literal true (HTTPS only), found missing",
            ],
            id="storage",
        ),
        pytest.param(
            WEAK_SITE,
            [
                "properties.httpsOnly must be the literal true (HTTPS only), found false",
                "properties.siteConfig.minTlsVersion must be the literal '1.2' (TLS 1.2), found '1.0'",
                "properties.siteConfig.scmMinTlsVersion must be the literal '1.2' (TLS 1.2 on the SCM site), "
                "found missing",
                "properties.siteConfig.ftpsState must be the literal 'Disabled' (no FTP), found 'AllAllowed'",
                "identity.type must be the literal 'UserAssigned' (user-assigned managed identity), "
                "found 'SystemAssigned'",
                "properties.keyVaultReferenceIdentity must be set (Key Vault references), found missing",
                "properties.functionAppConfig.runtime.version must be the literal '3.11' (Flex runtime), found '3.9'",
                "properties.functionAppConfig.deployment.storage.authentication.type must be the literal "
                "'UserAssignedIdentity' (deployment package through the identity), found missing",
            ],
            id="function-app",
        ),
        pytest.param(
            WEAK_SERVICES,
            [
                "sku.tier must be the literal 'FlexConsumption' (Flex Consumption), found 'Dynamic'",
                "properties.disableLocalAuth must be the literal true (Entra ID only, no SAS keys), found false",
                "properties.minimumTlsVersion must be the literal '1.2' (TLS 1.2), found '1.0'",
                # the Service Bus tier depends on the network mode: check_network_modes
                "properties.enableRbacAuthorization must be the literal true (RBAC mode), found false",
                "properties.enablePurgeProtection must be the literal true (no early purge), found missing",
                "properties.DisableLocalAuth must be the literal true (Entra-only ingestion), found false",
                "properties.WorkspaceResourceId must be set (workspace-based), found ''",
            ],
            id="service-bus-key-vault-app-insights-plan",
        ),
    ],
)
def test_required_properties_catch_weak_resources(source: str, expected: list[str]) -> None:
    problems = check_required_properties(snippet(source))
    assert [p.message.split(": ", 1)[1] for p in problems] == expected


def test_required_properties_name_the_file_line_and_resource() -> None:
    (first, *_) = check_required_properties(snippet(WEAK_STORAGE))
    assert str(first) == (
        "infra/modules/bad.bicep:2: st (Microsoft.Storage/storageAccounts): "
        "properties.allowSharedKeyAccess must be the literal false (identity only), found true"
    )


def test_tags_required_on_deployed_top_level_resources() -> None:
    files = snippet(
        """
        resource untagged 'Microsoft.KeyVault/vaults@2023-07-01' = {
          name: 'a'
        }
        resource emptyTags 'Microsoft.Web/connections@2016-06-01' = {
          name: 'b'
          tags: {}
        }
        resource child 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
          name: 'c'
        }
        resource assignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
          name: 'd'
        }
        resource reference 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
          name: 'e'
        }
        """
    )
    assert [str(p) for p in check_tags(files)] == [
        "infra/modules/bad.bicep:1: untagged (Microsoft.KeyVault/vaults): no tags",
        "infra/modules/bad.bicep:4: emptyTags (Microsoft.Web/connections): tags is an empty literal {}",
    ]


def test_app_settings_reject_keys_secrets_and_flex_settings() -> None:
    files = snippet(
        """
        @secure()
        param apiKey string
        resource st 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
          name: 'st'
        }
        resource site 'Microsoft.Web/sites@2024-04-01' existing = {
          name: 'site'
        }
        resource cfg 'Microsoft.Web/sites/config@2024-04-01' = {
          parent: site
          name: 'appsettings'
          properties: {
            AzureWebJobsStorage: 'DefaultEndpointsProtocol=https;AccountName=${st.name};AccountKey=${st.listKeys().keys[0].value}'
            API_KEY: apiKey
            FUNCTIONS_WORKER_RUNTIME: 'python'
            ITDR_GRAPH_BASE_URL: 'http://127.0.0.1:8702'
            ITDR_PARTNER_ENDPOINT: 'https://prod-00.westeurope.logic.azure.com/workflows/x?sig=abc'
            ServiceBusConnection__credential: 'connectionstring'
          }
        }
        """
    )
    assert [p.message.split(": ", 1)[-1] for p in check_app_settings(files)] == [
        "app setting AzureWebJobsStorage calls a list*() function: "
        "DefaultEndpointsProtocol=https;AccountName=${st.name};AccountKey=${st.listKeys().keys[0].value}",
        "app setting AzureWebJobsStorage holds a key or connection string",
        "app setting AzureWebJobsStorage is not allowed on Flex Consumption",
        "app setting API_KEY is the @secure() parameter apiKey",
        "app setting FUNCTIONS_WORKER_RUNTIME is not allowed on Flex Consumption",
        "app setting ITDR_GRAPH_BASE_URL is development-only and must be ''",
        "app setting ITDR_PARTNER_ENDPOINT holds a key or connection string",
        "app setting ITDR_PARTNER_ENDPOINT must be a @Microsoft.KeyVault(...) reference",
        "app setting AzureWebJobsStorage__accountName is missing (identity-based connection)",
        "app setting AzureWebJobsStorage__credential is missing (identity-based connection)",
        "app setting AzureWebJobsStorage__clientId is missing (identity-based connection)",
        "app setting ServiceBusConnection__fullyQualifiedNamespace is missing (identity-based connection)",
        "app setting ServiceBusConnection__credential must be 'managedidentity'",
        "app setting ServiceBusConnection__clientId is missing (identity-based connection)",
        "app setting AZURE_CLIENT_ID is missing (identity-based connection)",
        "app setting ITDR_STORAGE_ACCOUNT_NAME is missing (identity-based connection)",
    ]


def test_app_settings_must_exist() -> None:
    files = snippet(
        """
        resource st 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
          name: 'st'
        }
        """
    )
    assert [str(p) for p in check_app_settings(files)] == [
        "infra: no Function App app settings found (sites/config 'appsettings')"
    ]


QUEUES = """
var queues = [
  {
    name: 'content'
    session: false
    dup: false
    lock: 'PT5M'
  }
  {
    name: 'records'
    session: false
    dup: false
    lock: 'PT10M'
  }
  {
    name: 'extra'
    session: false
    dup: false
    lock: 'PT1M'
  }
]
resource ns 'Microsoft.ServiceBus/namespaces@2024-01-01' existing = {
  name: 'ns'
}
resource qs 'Microsoft.ServiceBus/namespaces/queues@2024-01-01' = [for q in queues: {
  parent: ns
  name: q.name
  properties: {
    requiresSession: q.session
    requiresDuplicateDetection: q.dup
    lockDuration: q.lock
    maxDeliveryCount: 3
  }
}]
"""


def test_queues_follow_names_sessions_and_delivery_rules() -> None:
    at = "infra/modules/bad.bicep:24: qs (Microsoft.ServiceBus/namespaces/queues): queue"
    assert [str(p) for p in check_queues(snippet(QUEUES))] == [
        "infra: Service Bus queue 'detect' (names.ALL_QUEUES) is not declared",
        "infra: Service Bus queue 'alerts' (names.ALL_QUEUES) is not declared",
        "infra: Service Bus queue 'remediation' (names.ALL_QUEUES) is not declared",
        f"{at} 'content': requiresDuplicateDetection must be true (fixed MessageIds)",
        f"{at} 'content': duplicateDetectionHistoryTimeWindow must be P7D",
        f"{at} 'content': deadLetteringOnMessageExpiration must be true",
        f"{at} 'content': maxDeliveryCount must be 10, found 3",
        f"{at} 'extra': not in names.ALL_QUEUES",
        f"{at} 'records': requiresSession must be true, found false",
        f"{at} 'records': requiresDuplicateDetection must be true (fixed MessageIds)",
        f"{at} 'records': duplicateDetectionHistoryTimeWindow must be P1D",
        f"{at} 'records': deadLetteringOnMessageExpiration must be true",
        f"{at} 'records': maxDeliveryCount must be 10, found 3",
        f"{at} 'records': lockDuration must be between PT1M and PT5M, found 'PT10M'",
    ]


def test_tables_and_containers_must_be_declared() -> None:
    files = snippet(
        """
        var tableNames = [
          'tenants'
        ]
        resource ts 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' existing = {
          name: 'default'
        }
        resource tables 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = [for t in tableNames: {
          parent: ts
          name: t
        }]
        resource raw 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
          name: 'raw'
        }
        """
    )
    problems = check_tables_and_containers(files, tables=("tenants", "alerts"), containers=("raw", "intel"))
    assert [str(p) for p in problems] == [
        "infra: table 'alerts' (names.ALL_TABLES) is not declared",
        "infra: blob container 'intel' (names.ALL_CONTAINERS) is not declared",
    ]


def test_lifecycle_must_cool_and_delete_raw_and_quarantine() -> None:
    files = snippet(
        """
        resource policy 'Microsoft.Storage/storageAccounts/managementPolicies@2023-05-01' = {
          name: 'default'
          properties: {
            policy: {
              rules: [
                {
                  name: 'raw'
                  enabled: true
                  type: 'Lifecycle'
                  definition: {
                    filters: {
                      prefixMatch: [
                        'raw/'
                      ]
                    }
                    actions: {
                      baseBlob: {
                        tierToCool: {
                          daysAfterModificationGreaterThan: 30
                        }
                        delete: {
                          daysAfterModificationGreaterThan: 365
                        }
                      }
                    }
                  }
                }
              ]
            }
          }
        }
        """
    )
    assert [str(p) for p in check_lifecycle(files)] == [
        "infra: lifecycle for 'raw/' must be cool after 30 days and delete after 400, found cool=30 delete=365",
        "infra: lifecycle for 'quarantine/' must be cool after 30 days and delete after 400, "
        "found cool=<missing> delete=<missing>",
        "infra: lifecycle for 'batches/' must be no cool action and delete after 30, found cool=<missing> "
        "delete=<missing>",
        "infra: lifecycle for 'ledger/' must be no cool action and delete after 30, found cool=<missing> "
        "delete=<missing>",
    ]


# --- #25.9: the raw archive is immutable (a time-based retention policy) ---------------------------------


def test_the_raw_archive_is_immutable_as_long_as_it_is_kept(infra: list[BicepFile]) -> None:
    storage = by_name(infra, "infra/modules/storage.bicep")
    policies = deployed([storage], iac_check.IMMUTABILITY_POLICY)
    assert [(p.symbol, p.condition, p.instances()) for p in policies] == [
        (
            "rawRetention",
            "rawArchiveImmutable",
            [
                {
                    "parent": "rawContainer",
                    "name": "default",
                    "properties": {
                        "immutabilityPeriodSinceCreationInDays": 400,
                        "allowProtectedAppendWrites": False,
                        "allowProtectedAppendWritesAll": False,
                    },
                }
            ],
        )
    ]
    raw = next(r for r in deployed([storage]) if r.symbol == "rawContainer")
    assert [b["name"] for b in raw.instances()] == [names.CONTAINER_RAW]
    # the lifecycle deletes the archive when its retention ends, not before (a delete would be refused) nor
    # long after; it stays in online tiers (itdr replay reads it; no archive tier on ZRS, the prod SKU)
    (lifecycle,) = deployed([storage], "Microsoft.Storage/storageAccounts/managementPolicies")
    rules = {r["name"]: r["definition"] for r in lifecycle.instances()[0]["properties"]["policy"]["rules"]}
    raw_rule = rules["raw-cool-cold-then-delete"]
    assert raw_rule["filters"] == {"blobTypes": ["blockBlob"], "prefixMatch": ["raw/"]}
    assert raw_rule["actions"]["baseBlob"] == {
        "tierToCool": {"daysAfterModificationGreaterThan": 30},
        "tierToCold": {"daysAfterModificationGreaterThan": 90},
        "delete": {"daysAfterModificationGreaterThan": 400},
    }
    # immutable unless a deployment says otherwise; the dev parameters (torn down with azd down) say so
    main = by_name(infra, "infra/main.bicep")
    assert main.parameters["rawArchive"]["default"] == "immutable"
    assert "rawArchiveImmutable: rawArchive == 'immutable'" in main.text
    dev = json.loads((INFRA / "main.parameters.dev.json").read_text(encoding="utf-8"))["parameters"]
    prod = json.loads((INFRA / "main.parameters.prod.json").read_text(encoding="utf-8"))["parameters"]
    azd = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))["parameters"]
    assert (dev["rawArchive"]["value"], "rawArchive" in prod) == ("mutable", False)
    assert azd["rawArchive"]["value"] == "${ITDR_RAW_ARCHIVE=immutable}"


def test_the_raw_archive_policy_check_fails_on_a_mutable_or_misplaced_policy() -> None:
    files = snippet(
        """
        resource raw 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
          name: 'raw'
        }
        resource ledger 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
          name: 'ledger'
        }
        resource rawPolicy 'Microsoft.Storage/storageAccounts/blobServices/containers/immutabilityPolicies@2023-05-01' = {
          parent: raw
          name: 'default'
          properties: {
            immutabilityPeriodSinceCreationInDays: 30
            allowProtectedAppendWrites: true
          }
        }
        resource ledgerPolicy 'Microsoft.Storage/storageAccounts/blobServices/containers/immutabilityPolicies@2023-05-01' = {
          parent: ledger
          name: 'default'
          properties: {
            immutabilityPeriodSinceCreationInDays: 400
            allowProtectedAppendWrites: false
            allowProtectedAppendWritesAll: false
          }
        }
        """
    )
    at = "infra/modules/bad.bicep"
    kind = iac_check.IMMUTABILITY_POLICY
    assert [str(p) for p in check_raw_archive_immutability(files)] == [
        f"{at}:7: rawPolicy ({kind}): immutabilityPeriodSinceCreationInDays must be 400, found 30",
        f"{at}:7: rawPolicy ({kind}): properties.allowProtectedAppendWrites must be the literal false",
        f"{at}:7: rawPolicy ({kind}): properties.allowProtectedAppendWritesAll must be the literal false",
        f"{at}:15: ledgerPolicy ({kind}): an immutability policy on ['ledger']: only the raw archive ('raw') "
        "is written once",
    ]
    no_policy = snippet(
        """
        resource raw 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
          name: 'raw'
        }
        """
    )
    assert [str(p) for p in check_raw_archive_immutability(no_policy)] == [
        "infra: the raw archive container 'raw' has no immutability policy"
    ]


RBAC = """
param principalId string
var roles = {
  blob: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b' // Storage Blob Owner
  mystery: '11111111-2222-3333-4444-555555555555' // Something
}
resource st 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: 'st'
}
resource wrongName 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(principalId, roles.blob)
  scope: st
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.blob)
    principalId: principalId
  }
}
resource unknownRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(st.id, principalId, roles.mystery)
  scope: st
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.mystery)
    principalId: principalId
  }
}
resource rawId 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(st.id, principalId, roles.blob)
  scope: st
  properties: {
    roleDefinitionId: roles.blob
    principalId: principalId
  }
}
"""

STRAY_ASSIGNMENT = """
param principalId string
resource st 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: 'st'
}
resource stray 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(st.id, principalId, '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3')
  scope: st
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3')
    principalId: principalId
  }
}
"""


def test_role_assignments_live_in_rbac_with_guid_names_and_named_roles() -> None:
    files = snippet(RBAC, name="infra/modules/rbac.bicep") + snippet(
        STRAY_ASSIGNMENT, name="infra/modules/storage.bicep"
    )
    assert sorted(str(p) for p in check_role_assignments(files)) == [
        "infra/modules/rbac.bicep:17: unknownRole (Microsoft.Authorization/roleAssignments): "
        "role 11111111-2222-3333-4444-555555555555 is not a known built-in role (KNOWN_ROLES)",
        "infra/modules/rbac.bicep:25: rawId (Microsoft.Authorization/roleAssignments): "
        "roleDefinitionId must be subscriptionResourceId('...roleDefinitions', id)",
        "infra/modules/rbac.bicep:3: role GUID b7e6dc6d-f1e8-4753-8033-0f276bb0955b must be commented "
        "'// Storage Blob Data Owner'",
        "infra/modules/rbac.bicep:9: wrongName (Microsoft.Authorization/roleAssignments): "
        "name must be guid(st.id, principalId, roles.blob), found guid(principalId, roles.blob)",
        "infra/modules/storage.bicep:5: stray (Microsoft.Authorization/roleAssignments): "
        "role assignments belong in rbac.bicep",
    ]


def test_diagnostic_settings_must_cover_each_resource_type() -> None:
    files = snippet(
        """
        resource st 'Microsoft.Storage/storageAccounts@2023-05-01' = {
          name: 'st'
        }
        resource kv 'Microsoft.KeyVault/vaults@2023-07-01' = {
          name: 'kv'
        }
        resource stDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
          name: 'to-log-analytics'
          scope: st
          properties: {
            workspaceId: 'x'
          }
        }
        resource kvDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
          name: 'to-log-analytics'
          scope: kv
          properties: {
            logs: []
          }
        }
        resource lostDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
          name: 'to-log-analytics'
          scope: nowhere
          properties: {
            workspaceId: 'x'
          }
        }
        """
    )
    assert [str(p) for p in check_diagnostic_settings(files)] == [
        "infra/modules/bad.bicep:14: kvDiagnostics (Microsoft.Insights/diagnosticSettings): "
        "properties.workspaceId is missing",
        "infra/modules/bad.bicep:21: lostDiagnostics (Microsoft.Insights/diagnosticSettings): "
        "scope must be a resource symbol of the same file",
        "infra: no diagnostic setting for Microsoft.KeyVault/vaults",
    ]


def test_checkov_skips_need_one_id_and_a_reason() -> None:
    files = snippet(
        """
        resource st 'Microsoft.Storage/storageAccounts@2023-05-01' = {
          name: 'st'
          properties: {
            // checkov:skip=CKV_AZURE_35
            // checkov:skip=CKV_AZURE_1,CKV_AZURE_2: two checks in one comment
            // checkov:skip=CKV_AZURE_3: a reason long enough to read
          }
        }
        """
    )
    assert [str(p) for p in check_skip_comments(files)] == [
        "infra/modules/bad.bicep:4: checkov skip CKV_AZURE_35 needs a reason",
        "infra/modules/bad.bicep:5: checkov skip must name one check id, found 'CKV_AZURE_1,CKV_AZURE_2'",
    ]


def test_comment_runs_stay_within_checkovs_parser_limits() -> None:
    nine_after_open = "\n".join(f"    // line {i}" for i in range(9))
    ten_after_open = "\n".join(f"    // line {i}" for i in range(10))
    four_after_value = "\n\n".join(f"    // line {i}" for i in range(4))  # blank lines do not count
    five_after_value = "\n".join(f"    // line {i}" for i in range(5))
    source = (
        "// any number of comments at the top level\n" * 12
        + "resource a 'Microsoft.Storage/storageAccounts@2023-05-01' = {\n"
        + "  properties: {\n"
        + nine_after_open
        + "\n    x: 1\n"
        + four_after_value
        + "\n    y: 2\n  }\n}\n"
        + "resource b 'Microsoft.Storage/storageAccounts@2023-05-01' = {\n"
        + "  properties: {\n"
        + ten_after_open
        + "\n    x: 1\n"
        + five_after_value
        + "\n    y: 2\n  }\n}\n"
    )
    files = [parse_bicep(source, name="infra/modules/bad.bicep")]
    assert [str(p) for p in check_comment_runs(files)] == [
        "infra/modules/bad.bicep:37: 10 comment lines in a row inside an object or array; "
        "checkov's parser accepts 9 here",
        "infra/modules/bad.bicep:48: 5 comment lines in a row inside an object or array; "
        "checkov's parser accepts 4 here",
    ]


def test_unparseable_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "good.bicep").write_text("param a string\n", encoding="utf-8")
    (tmp_path / "broken.bicep").write_text("resource x = {\n", encoding="utf-8")
    files, problems = load_infra(tmp_path)
    assert [f.name for f in files] == [display_path(tmp_path / "good.bicep")]
    assert [(p.file, p.message.split(":")[0]) for p in problems] == [
        (display_path(tmp_path / "broken.bicep"), "does not parse")
    ]


def test_empty_folder_is_a_problem(tmp_path: Path) -> None:
    assert load_infra(tmp_path) == ([], [Problem(display_path(tmp_path), "no .bicep files found")])


def test_checkov_report_problems(tmp_path: Path) -> None:
    a, b = str(tmp_path / "modules" / "a.bicep"), str(tmp_path / "modules" / "b.bicep")
    shown_a, shown_b = display_path(Path(a)), display_path(Path(b))
    report = [
        {
            "check_type": "bicep",
            "summary": {"parsing_errors": 1},
            "results": {
                "parsing_errors": [a],
                "failed_checks": [
                    {
                        "check_id": "CKV_AZURE_3",
                        "check_name": "Ensure that 'enable https traffic only' is enabled",
                        "resource": "Microsoft.Storage/storageAccounts.st",
                        "file_abs_path": b,
                        "file_line_range": [4, 9],
                    }
                ],
                "skipped_checks": [{"check_id": "CKV_AZURE_35", "file_abs_path": b}],
            },
        }
    ]
    skips = [
        Skip(shown_b, 6, "CKV_AZURE_35", "no virtual network"),
        Skip(shown_b, 7, "CKV_AZURE_59", "no virtual network"),
    ]
    assert [str(p) for p in checkov_problems(report, root=tmp_path, skips=skips)] == [
        f"{shown_a}: checkov cannot parse this file",
        f"{shown_b}:4: checkov CKV_AZURE_3 Ensure that 'enable https traffic only' is enabled on "
        "Microsoft.Storage/storageAccounts.st: fix it or add '// checkov:skip=CKV_AZURE_3: <reason>' inside the resource",
        f"{shown_b}:7: stale checkov skip CKV_AZURE_59: checkov did not skip it",
    ]


def test_clean_checkov_report_has_no_problems(tmp_path: Path) -> None:
    report = {"summary": {"parsing_errors": 0}, "results": {"failed_checks": [], "skipped_checks": []}}
    assert checkov_problems(report, root=tmp_path, skips=[]) == []


def test_main_passes_on_the_templates(capsys: pytest.CaptureFixture[str]) -> None:
    assert iac_check.main(["--no-checkov"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1
    assert out[0].startswith("iac_check: 12 Bicep files parsed")
    assert out[0].endswith("checkov skipped (--no-checkov): OK")


def test_main_fails_with_one_line_per_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "broken.bicep").write_text("resource x = {\n", encoding="utf-8")
    assert iac_check.main(["--root", str(tmp_path), "--no-checkov"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{display_path(tmp_path / 'broken.bicep')}: does not parse")
    assert out[-1].endswith(f"{len(out) - 1} problem(s)")


NETWORK_MAIN = """
@allowed([
  'public'
  'private'
])
param network string = 'public'
var isPrivate = network == 'private'
module kv 'modules/kv.bicep' = {
  name: 'kv'
  params: {
    network: network
  }
}
module net 'modules/network.bicep' = if (isPrivate) {
  name: 'net'
  params: {}
}
"""

NETWORK_KV = """
param network string = 'public'
var isPrivate = network == 'private'
resource kv 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: 'kv'
  properties: {
    publicNetworkAccess: isPrivate ? 'Disabled' : 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
    }
  }
}
resource sb 'Microsoft.ServiceBus/namespaces@2024-01-01' = {
  name: 'sb'
  sku: {
    name: 'Standard'
  }
  properties: {
    publicNetworkAccess: 'Enabled'
  }
}
resource la 'Microsoft.Logic/workflows@2019-05-01' = {
  name: 'la'
  properties: {
    publicNetworkAccess: 'Enabled'
  }
}
"""


def test_network_modes_catch_public_doors_in_private_mode() -> None:
    files = [
        parse_bicep(textwrap.dedent(NETWORK_MAIN).lstrip(), name="infra/main.bicep"),
        parse_bicep(textwrap.dedent(NETWORK_KV).lstrip(), name="infra/modules/kv.bicep"),
    ]
    private = "network 'private'"
    assert [str(p) for p in check_network_modes(files)] == [
        f"infra: {private}: no private endpoint for 'blob'",
        f"infra: {private}: no private endpoint for 'namespace'",
        f"infra: {private}: no private endpoint for 'queue'",
        f"infra: {private}: no private endpoint for 'table'",
        f"infra: {private}: no private endpoint for 'vault'",
        f"infra/modules/kv.bicep:3: kv (Microsoft.KeyVault/vaults): {private}: "
        "networkAcls.defaultAction must be 'Deny', found 'Allow'",
        f"infra/modules/kv.bicep:21: la (Microsoft.Logic/workflows): {private}: publicNetworkAccess is 'Enabled'",
        f"infra/modules/kv.bicep:12: sb (Microsoft.ServiceBus/namespaces): {private}: "
        "publicNetworkAccess must be 'Disabled', found 'Enabled'",
        f"infra/modules/kv.bicep:12: sb (Microsoft.ServiceBus/namespaces): {private}: "
        "sku.name must be 'Premium' (sessions, dedup)",
    ]


def test_network_parameter_must_exist_default_public_and_allow_both_modes() -> None:
    bare = parse_bicep("param location string\n", name="infra/main.bicep")
    assert [str(p) for p in check_network_modes([bare])] == [
        "infra/main.bicep: parameter network is missing (public|private)"
    ]
    source = "@allowed([\n  'private'\n])\nparam network string = 'private'\n"
    wrong = parse_bicep(source, name="infra/main.bicep")
    assert [str(p) for p in check_network_modes([wrong])][5:] == [
        "infra/main.bicep: no module deploys modules/network.bicep (network 'private')",
        "infra/main.bicep: parameter network must allow ['public', 'private']",
        "infra/main.bicep: parameter network must default to 'public'",
    ]


VAULT_WIDE_SECRETS = """
resource kv 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: 'kv'
}
resource one 'Microsoft.KeyVault/vaults/secrets@2023-07-01' existing = {
  parent: kv
  name: 'one'
}
resource wide 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(kv.id, 'p', '4633458b-17de-408a-b874-0445c86b69e6')
  scope: kv
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '4633458b-17de-408a-b874-0445c86b69e6')
    principalId: 'p'
  }
}
resource certs 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(kv.id, 'p', 'db79e9a7-68ee-4b58-9aeb-b90e7c24fcba')
  scope: kv
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'db79e9a7-68ee-4b58-9aeb-b90e7c24fcba')
    principalId: 'p'
  }
}
resource narrow 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(one.id, 'p', '4633458b-17de-408a-b874-0445c86b69e6')
  scope: one
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '4633458b-17de-408a-b874-0445c86b69e6')
    principalId: 'p'
  }
}
"""


def test_secret_reading_roles_on_a_whole_vault_are_problems() -> None:
    assert [p.message for p in check_secret_role_scope(snippet(VAULT_WIDE_SECRETS))] == [
        "wide (Microsoft.Authorization/roleAssignments): secret-reading role scoped to kv (Microsoft.KeyVault/vaults): "
        "scope it to a secret",
        "certs (Microsoft.Authorization/roleAssignments): secret-reading role scoped to kv (Microsoft.KeyVault/vaults): "
        "scope it to a secret",
    ]
