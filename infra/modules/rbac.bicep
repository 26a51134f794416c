// Every role assignment of the deployment, in one place (no other module assigns roles).
// Each assignment is named guid(scope.id, principalId, roleId): deterministic, so a redeploy
// updates instead of duplicating, and unique per (scope, principal, role).
// Least privilege per resource, data-plane roles only (no Owner/Contributor):
//   storage       blob + table + queue data (the app's state and the Functions host)
//   service bus   send + receive (no Manage: queues are created by Bicep, not by the app)
//   key vault     read only the secrets the app's Key Vault references name, each assignment scoped
//                 to its secret (never the whole vault): the partner endpoint, the certificate's
//                 secret (its private key) once imported, the Spur token when configured
//   app insights  publish telemetry with Entra auth (local auth is disabled)
//   logic app     the partner workflow's own identity reads its run history (its duplicate-key check)
param principalId string
param storageAccountName string
param serviceBusNamespaceName string
param keyVaultName string
param applicationInsightsName string

@description('Secret holding the partner Logic App trigger URL (written by logic-app.bicep before this module runs).')
param partnerEndpointSecretName string

@description('Name of the Management API certificate; its secret (same name) holds the private key.')
param certificateName string

@description('true once the certificate exists in the vault (docs/deploy.md section 3): a role assignment needs its scope to exist.')
param certificateImported bool = false

@description('Name of the Spur token secret, stored before deploying with it. Empty: none.')
param spurTokenSecretName string = ''
param consentStateKeySecretName string = ''

@description('The partner Logic App and its system-assigned identity (reads its own runs to drop a repeated Idempotency-Key).')
param logicAppName string
param logicAppPrincipalId string

@description('Optional operator who imports the Management API certificate. Empty: no assignment.')
param operatorPrincipalId string = ''

@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
param operatorPrincipalType string = 'User'

// Built-in role definition IDs (the same in every tenant and cloud).
var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b' // Storage Blob Data Owner
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3' // Storage Table Data Contributor
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88' // Storage Queue Data Contributor
  serviceBusDataSender: '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39' // Azure Service Bus Data Sender
  serviceBusDataReceiver: '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0' // Azure Service Bus Data Receiver
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6' // Key Vault Secrets User
  keyVaultCertificatesOfficer: 'a4417e6f-fecd-4de8-b567-7b0420556985' // Key Vault Certificates Officer
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb' // Monitoring Metrics Publisher
  logicAppOperator: '515c2055-d9d4-4321-b1b9-bd0c9a0f79fe' // Logic App Operator
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource serviceBus 'Microsoft.ServiceBus/namespaces@2024-01-01' existing = {
  name: serviceBusNamespaceName
}

resource keyVault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

// The secrets the Function App's Key Vault references read, and nothing else in the vault.
var appSecretNames = concat([
  partnerEndpointSecretName
], certificateImported ? [
  certificateName
] : [], empty(spurTokenSecretName) ? [] : [
  spurTokenSecretName
], empty(consentStateKeySecretName) ? [] : [
  consentStateKeySecretName
])

resource appSecrets 'Microsoft.KeyVault/vaults/secrets@2023-07-01' existing = [for secretName in appSecretNames: {
  parent: keyVault
  name: secretName
}]

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource partnerWorkflow 'Microsoft.Logic/workflows@2019-05-01' existing = {
  name: logicAppName
}

// --- logic app: the workflow reads its own runs (read-only) to drop a repeated Idempotency-Key ----
resource logicAppOperator 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(partnerWorkflow.id, logicAppPrincipalId, roles.logicAppOperator)
  scope: partnerWorkflow
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.logicAppOperator)
    principalId: logicAppPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// --- storage: raw archive, quarantine, intel, reports, deployment package, host locks ------
resource storageBlobDataOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, principalId, roles.storageBlobDataOwner)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// --- storage: tenants, checkpoints, ledgers, state, alerts, ... -----------------------------
resource storageTableDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, principalId, roles.storageTableDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// --- storage: queues the Functions host uses internally ------------------------------------
resource storageQueueDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, principalId, roles.storageQueueDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// --- service bus: the app sends with the SDK (sessions, MessageId, scheduling) ------------
resource serviceBusDataSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(serviceBus.id, principalId, roles.serviceBusDataSender)
  scope: serviceBus
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataSender)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// --- service bus: the five queue triggers --------------------------------------------------
resource serviceBusDataReceiver 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(serviceBus.id, principalId, roles.serviceBusDataReceiver)
  scope: serviceBus
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataReceiver)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// --- key vault: one Secrets User assignment per secret the app reads (ITDR_PARTNER_ENDPOINT,
// ITDR_APP_CERTIFICATE, ITDR_SPUR_TOKEN references). No vault-wide role: Key Vault Secrets User or
// Certificate User on the vault would let the identity read every secret in it.
resource keyVaultSecretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (secretName, i) in appSecretNames: {
  name: guid(appSecrets[i].id, principalId, roles.keyVaultSecretsUser)
  scope: appSecrets[i]
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}]

// --- application insights: Entra-authenticated telemetry ----------------------------------
resource monitoringMetricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, principalId, roles.monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// --- the operator imports (and later rotates) the Management API certificate --------------
resource operatorCertificatesOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(operatorPrincipalId)) {
  name: guid(keyVault.id, operatorPrincipalId, roles.keyVaultCertificatesOfficer)
  scope: keyVault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultCertificatesOfficer)
    principalId: operatorPrincipalId
    principalType: operatorPrincipalType
  }
}
