// One storage account for the app's state and the Functions host:
//   tables      shared/platform/names.py ALL_TABLES (tenants, checkpoints, ledgers, state, alerts, ...)
//   containers  names.ALL_CONTAINERS (raw archive, quarantine, intel, reports, batches, ledger) plus the Flex
//               deployment package; the raw archive is write-once and, with rawArchiveImmutable, immutable for
//               rawArchiveRetentionDays (a time-based retention policy), then deleted by the lifecycle rule
//   host        AzureWebJobsStorage (timer/singleton locks in blobs, host keys)
// Identity only: shared keys are off, so no connection string can work against it; the
// Function App's identity gets the Blob/Table/Queue data roles in rbac.bicep.
// network 'private': public network access off; blob, table and queue through private endpoints.
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

@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
])
param skuName string = 'Standard_LRS'

@description('Blob container of the Flex Consumption deployment package.')
param deploymentContainerName string

@description('true: the raw archive container has a time-based retention policy (WORM) of rawArchiveRetentionDays: no blob in it can be overwritten or deleted before then, by anyone, and the storage account cannot be deleted until they expire. main.bicep sets it from its rawArchive parameter.')
param rawArchiveImmutable bool = true

// Same names, same order as shared/platform/names.py (tests/infra/test_bicep.py checks it).
var tableNames = [
  'tenants'
  'checkpoints'
  'contentledger'
  'recordledger'
  'userstate'
  'alerts'
  'incidents'
  'suppressions'
  'deliveries'
  'remediations'
  'deadletters'
  'quarantine'
  'identities'
  'feedhealth'
]

// The raw archive (names.CONTAINER_RAW), its retention and the days of its lifecycle (cool, cold, delete).
// The retention and the delete are the same 400 days: 13 months of evidence, past a year of look-back.
var rawContainerName = 'raw'
var rawArchiveRetentionDays = 400
var rawCoolDays = 30
var rawColdDays = 90

// The other containers of names.ALL_CONTAINERS, in its order (tests/infra/test_bicep.py checks the names).
var containerNames = [
  'quarantine'
  'intel'
  'reports'
  'batches'
  'ledger'
]

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  properties: {
    // checkov:skip=CKV_AZURE_35: network 'public' has no virtual network (identity-only, shared keys off, TLS 1.2); 'private' denies all
    // checkov:skip=CKV_AZURE_206: replication is the storageSku parameter (ZRS/GZRS for prod in main.parameters.prod.json)
    // checkov:skip=CKV_AZURE_59: public network access is on only with network 'public' (shared keys and anonymous access off)
    accessTier: 'Hot'
    allowSharedKeyAccess: false
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    isLocalUserEnabled: false
    isSftpEnabled: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: isPrivate ? 'Disabled' : 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: isPrivate ? 'Deny' : 'Allow'
    }
    sasPolicy: {
      expirationAction: 'Log'
      sasExpirationPeriod: '0.01:00:00'
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: {
          enabled: true
        }
        file: {
          enabled: true
        }
        table: {
          enabled: true
          keyType: 'Account'
        }
        queue: {
          enabled: true
          keyType: 'Account'
        }
      }
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

resource rawContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: rawContainerName
  properties: {
    publicAccess: 'None'
  }
}

// WORM: blobs in the raw archive can be created and read, never overwritten nor deleted before the retention
// ends; no appends either (the app writes each content blob once, whole: shared/ingest/content.py
// archive_content). Unlocked as deployed (an owner can still shorten or remove it): lock it once validated,
// docs/deploy.md "The raw archive".
resource rawRetention 'Microsoft.Storage/storageAccounts/blobServices/containers/immutabilityPolicies@2023-05-01' = if (rawArchiveImmutable) {
  parent: rawContainer
  name: 'default'
  properties: {
    immutabilityPeriodSinceCreationInDays: rawArchiveRetentionDays
    allowProtectedAppendWrites: false
    allowProtectedAppendWritesAll: false
  }
}

resource containers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [for containerName in containerNames: {
  parent: blobService
  name: containerName
  properties: {
    publicAccess: 'None'
  }
}]

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource tables 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = [for tableName in tableNames: {
  parent: tableService
  name: tableName
}]

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

// Raw content: cool after 30 days, cold after 90 (both online: itdr replay reads the archive as it is; the
// archive tier is not offered on ZRS/GZRS, the prod SKU), deleted after 400, when its retention has ended.
// Quarantined records: cool after 30 days, gone after 400. Batch blobs (needed while their messages can be
// delivered: 14 days of time-to-live) and record-ledger days (purged after 10 by the app): deleted after 30.
resource lifecycle 'Microsoft.Storage/storageAccounts/managementPolicies@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    policy: {
      rules: [
        {
          name: 'raw-cool-cold-then-delete'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: [
                'blockBlob'
              ]
              prefixMatch: [
                'raw/'
              ]
            }
            actions: {
              baseBlob: {
                tierToCool: {
                  daysAfterModificationGreaterThan: rawCoolDays
                }
                tierToCold: {
                  daysAfterModificationGreaterThan: rawColdDays
                }
                delete: {
                  daysAfterModificationGreaterThan: rawArchiveRetentionDays
                }
              }
            }
          }
        }
        {
          name: 'quarantine-cool-then-delete'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: [
                'blockBlob'
              ]
              prefixMatch: [
                'quarantine/'
              ]
            }
            actions: {
              baseBlob: {
                tierToCool: {
                  daysAfterModificationGreaterThan: 30
                }
                delete: {
                  daysAfterModificationGreaterThan: 400
                }
              }
            }
          }
        }
        {
          name: 'work-blobs-delete'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: [
                'blockBlob'
              ]
              prefixMatch: [
                'batches/'
                'ledger/'
              ]
            }
            actions: {
              baseBlob: {
                delete: {
                  daysAfterModificationGreaterThan: 30
                }
              }
            }
          }
        }
      ]
    }
  }
  dependsOn: [
    rawContainer
    containers
  ]
}

output name string = storage.name
output id string = storage.id
output blobEndpoint string = storage.properties.primaryEndpoints.blob
