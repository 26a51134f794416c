// The Function App on Flex Consumption (Linux, Python 3.11) with its user-assigned identity.
// Its app settings are a separate module (function-app-settings.bicep), applied after the role
// assignments and after the partner Logic App, which needs this site's outbound IP addresses
// for its trigger restriction before it writes the trigger URL the settings refer to.
//
// network 'private': the site joins the 'app' subnet (VNet integration; outbound through the NAT
// gateway of network.bicep), so it reaches storage, Service Bus and Key Vault on their private
// endpoints. Inbound stays public: the Management Activity API calls the o365_webhook function
// from the internet (authenticated by Webhook-AuthID), and admin calls carry the admin key.
// Flex Consumption sets the runtime in functionAppConfig: FUNCTIONS_WORKER_RUNTIME and
// FUNCTIONS_EXTENSION_VERSION must not be app settings.
param name string
param planName string
param location string
param tags object

param identityId string
param storageAccountName string
param deploymentContainerName string

@description('Resource ID of the subnet for VNet integration (network \'private\'); empty: no virtual network.')
param appSubnetId string = ''

@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 100

@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    // checkov:skip=CKV_AZURE_225: zone redundancy on Flex is a site setting in newer API versions; not enabled in this release
    reserved: true
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: union(tags, {
    'azd-service-name': 'api'
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    // checkov:skip=CKV_AZURE_222: the o365_webhook function must be reachable by the Management Activity API
    // checkov:skip=CKV_AZURE_17: Microsoft's webhook calls present no client certificate (authenticated by Webhook-AuthID)
    // checkov:skip=CKV_AZURE_213: Flex Consumption has no health check probe; feed_health and the alerts cover liveness
    // checkov:skip=CKV_AZURE_212: scale to zero by design; always-ready instances would cost money around the clock
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    publicNetworkAccess: 'Enabled'
    keyVaultReferenceIdentity: identityId
    virtualNetworkSubnetId: empty(appSubnetId) ? null : appSubnetId
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

// Basic-auth publishing (FTP, SCM user/password) off: deployments use Entra ID.
resource ftpPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

output name string = site.name
output id string = site.id
output defaultUrl string = 'https://${site.properties.defaultHostName}'
// Addresses the site may call out from without a virtual network (comma-separated in ARM).
output outboundIpAddresses array = split(site.properties.possibleOutboundIpAddresses, ',')
