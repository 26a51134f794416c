// The Function App's app settings, applied once its role assignments exist (the host needs its
// storage and Service Bus roles when it starts with them) and once the partner Logic App has
// written its trigger URL into Key Vault.
//
// Every name in shared/platform/settings.py appears here (tests/infra/test_settings_parity.py).
// Identity replaces secrets:
//   AzureWebJobsStorage__*          host storage through the managed identity
//   ServiceBusConnection__*         the "ServiceBusConnection" of every trigger, through the identity
//   ITDR_STORAGE_ACCOUNT_NAME       the app's own storage client, through the identity
//   ITDR_PARTNER_ENDPOINT           a Key Vault reference resolved with keyVaultReferenceIdentity
//   ITDR_APP_CERTIFICATE            a Key Vault reference to the certificate's secret (the PFX)
//   ITDR_SPUR_TOKEN                 a Key Vault reference to the Spur token's secret, or '' (no Spur API)
// Development-only overrides are present and empty, so the parity test holds and nobody has
// to guess whether a missing setting is an oversight: ITDR_STORAGE_CONNECTION_STRING (Azurite),
// ITDR_MANAGEMENT_API_BASE_URL, ITDR_GRAPH_BASE_URL, ITDR_LOGIN_AUTHORITY, ITDR_PARTNER_ALLOWED_HOSTS
// (local stand-ins).
// FUNCTIONS_WORKER_RUNTIME and FUNCTIONS_EXTENSION_VERSION must not be app settings on Flex.
param functionAppName string
param identityClientId string
param storageAccountName string
param serviceBusFullyQualifiedNamespace string
param keyVaultUri string
param partnerEndpointSecretUri string
param applicationInsightsName string

param appClientId string
param publisherTenantId string
param certificateName string
param partnerFormat string
param adminKeySha256 string
@allowed([
  'off'
  'appservice'
  'entra'
])
@description('appservice: the admin function also accepts App Service Authentication principals (X-MS-CLIENT-PRINCIPAL) with the Admin or PartnerAdmin role; entra: the app validates the operator\'s Entra bearer token itself.')
param adminPrincipalAuth string
@description('Accepted audiences of operator tokens (entra mode): the admin API\'s App ID URI, comma-separated.')
param adminApiAudience string
@description('Key Vault secret holding the consent-link HMAC key; empty: no consent links.')
param consentStateKeySecretName string
param intelFeedUrls string
param ipDataDir string
param maxmindCityDb string
param maxmindAsnDb string
param maxmindAnonymousDb string
param spurFeedPaths string
param spurTokenSecretName string
param recordsPerBatch int
param tenantShards int
param pollSchedule string
param feedHealthSchedule string
param intelRefreshSchedule string
param weeklyReportSchedule string
param signinPollSchedule string
param webhookRoute string

resource site 'Microsoft.Web/sites@2024-04-01' existing = {
  name: functionAppName
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource appSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  // checkov reads every Microsoft.Web/sites/config as the 'web' config (set on the site, function-app.bicep):
  // checkov:skip=CKV_AZURE_13: not web config (App Service authentication is not supported on Flex Consumption)
  // checkov:skip=CKV_AZURE_63: not web config (HTTP logging: Application Insights records every request)
  // checkov:skip=CKV_AZURE_65: not web config (detailed error pages are off by default)
  // checkov:skip=CKV_AZURE_66: not web config (failed request tracing: Application Insights records failures)
  // checkov:skip=CKV_AZURE_80: not web config (no .NET; the runtime is Python 3.11 in functionAppConfig)
  // checkov:skip=CKV_AZURE_88: not web config (Flex Consumption runs from the deployment container, not Azure Files)
  // checkov:skip=CKV_AZURE_222: not web config (public network access is set, and justified, on the site)
  parent: site
  name: 'appsettings'
  properties: {
    // Functions host ----------------------------------------------------------------------
    AzureWebJobsStorage__accountName: storage.name
    AzureWebJobsStorage__credential: 'managedidentity'
    AzureWebJobsStorage__clientId: identityClientId
    APPLICATIONINSIGHTS_CONNECTION_STRING: appInsights.properties.ConnectionString
    APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
    PYTHON_ENABLE_OPENTELEMETRY: 'true'
    // Identity and connections ------------------------------------------------------------
    AZURE_CLIENT_ID: identityClientId
    ServiceBusConnection__fullyQualifiedNamespace: serviceBusFullyQualifiedNamespace
    ServiceBusConnection__credential: 'managedidentity'
    ServiceBusConnection__clientId: identityClientId
    ITDR_STORAGE_ACCOUNT_NAME: storage.name
    // Microsoft 365 access ----------------------------------------------------------------
    ITDR_PUBLISHER_ID: publisherTenantId
    ITDR_APP_CLIENT_ID: appClientId
    ITDR_APP_CERTIFICATE: '@Microsoft.KeyVault(SecretUri=${keyVaultUri}secrets/${certificateName}/)'
    ITDR_WEBHOOK_URL: 'https://${site.properties.defaultHostName}/api/${webhookRoute}'
    // Partner delivery and admin ----------------------------------------------------------
    ITDR_PARTNER_ENDPOINT: '@Microsoft.KeyVault(SecretUri=${partnerEndpointSecretUri})'
    ITDR_PARTNER_FORMAT: partnerFormat
    ITDR_ADMIN_KEY_SHA256: adminKeySha256
    ITDR_ADMIN_PRINCIPAL_AUTH: adminPrincipalAuth
    ITDR_ADMIN_API_AUDIENCE: adminApiAudience
    ITDR_CONSENT_STATE_KEY: empty(consentStateKeySecretName) ? '' : '@Microsoft.KeyVault(SecretUri=${keyVaultUri}secrets/${consentStateKeySecretName}/)'
    ITDR_CONSENT_REDIRECT_URL: 'https://${site.properties.defaultHostName}/api/onboarding/consent-callback'
    // Schedules and tuning ----------------------------------------------------------------
    ITDR_POLL_SCHEDULE: pollSchedule
    ITDR_FEED_HEALTH_SCHEDULE: feedHealthSchedule
    ITDR_INTEL_REFRESH_SCHEDULE: intelRefreshSchedule
    ITDR_WEEKLY_REPORT_SCHEDULE: weeklyReportSchedule
    ITDR_SIGNIN_POLL_SCHEDULE: signinPollSchedule
    ITDR_INTEL_FEED_URLS: intelFeedUrls
    // IP intelligence: the shipped data (ipdata/) unless overridden, optional MaxMind and Spur -----
    ITDR_IPDATA_DIR: ipDataDir
    ITDR_MAXMIND_CITY_DB: maxmindCityDb
    ITDR_MAXMIND_ASN_DB: maxmindAsnDb
    ITDR_MAXMIND_ANONYMOUS_DB: maxmindAnonymousDb
    ITDR_SPUR_FEED_PATHS: spurFeedPaths
    ITDR_SPUR_TOKEN: empty(spurTokenSecretName) ? '' : '@Microsoft.KeyVault(SecretUri=${keyVaultUri}secrets/${spurTokenSecretName}/)'
    ITDR_RECORDS_PER_BATCH: string(recordsPerBatch)
    ITDR_TENANT_SHARDS: string(tenantShards)
    // Development-only overrides: empty in Azure (the code treats '' as unset) ------------
    ITDR_STORAGE_CONNECTION_STRING: ''
    ITDR_MANAGEMENT_API_BASE_URL: ''
    ITDR_GRAPH_BASE_URL: ''
    ITDR_LOGIN_AUTHORITY: ''
    ITDR_PARTNER_ALLOWED_HOSTS: ''
  }
}
