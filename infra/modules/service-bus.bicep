// Service Bus namespace and the five pipeline queues (shared/platform/names.py):
//   content      content-blob references; MessageId = contentId with duplicate detection (7 days, the maximum)
//                so the poller and the webhook announcing the same blob produce one message
//   records      record batches for enrichment; sessions (SessionId = tenant or tenant shard) keep a tenant in order
//   detect       enriched batches for detection; sessions, same key
//   alerts       incidents for the partner Logic App
//   remediation  remediation actions; retries are scheduled messages (no entity setting needed)
// Entra ID only (disableLocalAuth): no SAS key exists that could leak; the app connects with
// ServiceBusConnection__fullyQualifiedNamespace + its managed identity.
// Standard tier: sessions, duplicate detection and scheduled messages, 256 KB messages.
// network 'private': Premium tier (private endpoints exist only there; one messaging unit), public
// network access off, reached through the private endpoint of network.bicep.
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

// One row per queue. lockDuration: how long a receiver owns a message before the host's
// renewal (host.json maxAutoLockRenewalDuration) must extend it. maxDeliveryCount: attempts
// before the broker dead-letters with MaxDeliveryCountExceeded. Expired messages are
// dead-lettered too, never dropped. Duplicate detection: content (MessageId = contentId, 7 days), records
// (records:{contentId}:{n}:{shard}) and detect (detect:{batchId}:{shard}) drop a repeated MessageId for a day;
// a repeat after that is harmless (the detection engine skips users that already absorbed the batch_id).
// requiresDuplicateDetection cannot change on an existing queue: a deployed namespace must recreate them.
var queues = [
  {
    name: 'content'
    requiresSession: false
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: 'P7D'
    lockDuration: 'PT5M'
    maxDeliveryCount: 10
    defaultMessageTimeToLive: 'P14D'
  }
  {
    name: 'records'
    requiresSession: true
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: 'P1D'
    lockDuration: 'PT5M'
    maxDeliveryCount: 10
    defaultMessageTimeToLive: 'P14D'
  }
  {
    name: 'detect'
    requiresSession: true
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: 'P1D'
    lockDuration: 'PT5M'
    maxDeliveryCount: 10
    defaultMessageTimeToLive: 'P14D'
  }
  {
    name: 'alerts'
    requiresSession: false
    requiresDuplicateDetection: false
    duplicateDetectionHistoryTimeWindow: 'PT10M'
    lockDuration: 'PT1M'
    maxDeliveryCount: 10
    defaultMessageTimeToLive: 'P14D'
  }
  {
    name: 'remediation'
    requiresSession: false
    requiresDuplicateDetection: false
    duplicateDetectionHistoryTimeWindow: 'PT10M'
    lockDuration: 'PT2M'
    maxDeliveryCount: 10
    defaultMessageTimeToLive: 'P14D'
  }
]

resource namespace 'Microsoft.ServiceBus/namespaces@2024-01-01' = {
  name: name
  location: location
  tags: tags
  sku: {
    name: isPrivate ? 'Premium' : 'Standard'
    tier: isPrivate ? 'Premium' : 'Standard'
    capacity: isPrivate ? 1 : null
  }
  properties: {
    disableLocalAuth: true
    minimumTlsVersion: '1.2'
    publicNetworkAccess: isPrivate ? 'Disabled' : 'Enabled'
  }
}

resource queueResources 'Microsoft.ServiceBus/namespaces/queues@2024-01-01' = [for queue in queues: {
  parent: namespace
  name: queue.name
  properties: {
    requiresSession: queue.requiresSession
    requiresDuplicateDetection: queue.requiresDuplicateDetection
    duplicateDetectionHistoryTimeWindow: queue.duplicateDetectionHistoryTimeWindow
    lockDuration: queue.lockDuration
    maxDeliveryCount: queue.maxDeliveryCount
    defaultMessageTimeToLive: queue.defaultMessageTimeToLive
    deadLetteringOnMessageExpiration: true
    enableBatchedOperations: true
    enablePartitioning: false
    maxSizeInMegabytes: 1024
  }
}]

output name string = namespace.name
output id string = namespace.id
// https://<name>.servicebus.windows.net:443/ -> <name>.servicebus.windows.net (any cloud).
output fullyQualifiedNamespace string = split(replace(namespace.properties.serviceBusEndpoint, 'https://', ''), ':')[0]
