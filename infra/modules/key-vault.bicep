// Key Vault in RBAC mode (no access policies): holds
//   - the Management Activity API certificate (main.bicep's certificateName; imported after deployment,
//     certificates cannot be created by ARM: docs/deploy.md section 3)
//   - the partner endpoint secret (the Logic App trigger URL with its SAS signature, written by
//     logic-app.bicep and read by the Function App through a Key Vault reference)
//   - optionally the Spur Context API token (the secret named by main.bicep's spurTokenSecretName,
//     stored by an operator with `az keyvault secret set`, docs/deploy.md; never a template parameter).
// Soft delete and purge protection: a deleted vault or secret can be recovered for 90 days and
// nobody (not even an owner) can purge it early.
// network 'private': public network access off, reached through the private endpoint of network.bicep
// (an operator importing the certificate works from inside the virtual network: docs/deploy.md).
param name string
param location string
param tags object

@description('public: reachable over the internet with Entra ID only (today\'s default); private: public network access off, reached through the private endpoints of network.bicep.')
@allowed([
  'public'
  'private'
])
param network string = 'public'

var isPrivate = network == 'private'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    // checkov:skip=CKV_AZURE_109: network 'public' has no virtual network (every caller an Entra identity); 'private' denies all
    // checkov:skip=CKV_AZURE_189: public network access is on only with network 'public' (Flex without a virtual network)
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    publicNetworkAccess: isPrivate ? 'Disabled' : 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: isPrivate ? 'Deny' : 'Allow'
    }
  }
}

output name string = vault.name
output id string = vault.id
output vaultUri string = vault.properties.vaultUri
