// Key Vault in RBAC mode (no access policies): holds
//   - the Management Activity API certificate (main.bicep's certificateName; imported after deployment,
//     certificates cannot be created by ARM: docs/deploy.md section 3)
//   - the partner endpoint secret (the Logic App trigger URL with its SAS signature, written by
//     logic-app.bicep and read by the Function App through a Key Vault reference)
//   - optionally the Spur Context API token (the secret named by main.bicep's spurTokenSecretName,
//     stored by an operator with `az keyvault secret set`, docs/deploy.md; never a template parameter).
// Soft delete and purge protection: a deleted vault or secret can be recovered for 90 days and
// nobody (not even an owner) can purge it early.
param name string
param location string
param tags object

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    // checkov:skip=CKV_AZURE_109: no virtual network in this deployment; every caller is an Entra identity checked by RBAC
    // checkov:skip=CKV_AZURE_189: public network access is needed by Flex Consumption without a virtual network
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
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

output name string = vault.name
output id string = vault.id
output vaultUri string = vault.properties.vaultUri
