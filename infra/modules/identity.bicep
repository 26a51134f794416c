// The Function App's user-assigned managed identity. Every data-plane role (rbac.bicep) is
// granted to it, and the app settings name its client ID (AZURE_CLIENT_ID, *__clientId).
// User-assigned rather than system-assigned so the roles exist before the app first starts.
param name string
param location string
param tags object

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output name string = identity.name
output principalId string = identity.properties.principalId
output clientId string = identity.properties.clientId
