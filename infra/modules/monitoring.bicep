// Monitoring: Log Analytics, workspace-based Application Insights (Entra-only ingestion),
// the operations action group and the four operations alerts of docs/operations.md:
//   itdr-<env>-function-failures       failed invocations per function (requests table)
//   itdr-<env>-dead-letters            Service Bus DeadletteredMessages > 0 on any queue
//   itdr-<env>-feed-health             integration_health alerts/traces from the feed_health timer
//   itdr-<env>-remediation-failures    failed remediation actions (itdr.remediations)
// Diagnostic settings live in diagnostics.bicep: they need the Function App, which needs
// Application Insights from here (putting both in one module would be a cycle).
param logAnalyticsName string
param applicationInsightsName string
param actionGroupName string
param alertNamePrefix string
param location string
param tags object

@minValue(30)
@maxValue(730)
param retentionInDays int = 90

@description('E-mail addresses of the operations team (may be empty: the alerts still fire in the portal).')
param operationsAlertEmails array = []

param serviceBusNamespaceName string

@description('Failed invocations of one function within 15 minutes that raise the failure alert (transient errors retry).')
param functionFailureThreshold int = 5

resource workspace 'Microsoft.OperationalInsights/workspaces@2022-10-01' = {
  name: logAnalyticsName
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: retentionInDays
    features: {
      disableLocalAuth: true
      enableLogAccessUsingOnlyResourcePermissions: true
    }
    publicNetworkAccessForIngestion: 'Enabled'
    publicNetworkAccessForQuery: 'Enabled'
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: applicationInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    IngestionMode: 'LogAnalytics'
    DisableLocalAuth: true
    publicNetworkAccessForIngestion: 'Enabled'
    publicNetworkAccessForQuery: 'Enabled'
  }
}

resource serviceBusNamespace 'Microsoft.ServiceBus/namespaces@2024-01-01' existing = {
  name: serviceBusNamespaceName
}

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: actionGroupName
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'itdr-ops'
    enabled: true
    emailReceivers: [for (email, i) in operationsAlertEmails: {
      name: 'operations-${i}'
      emailAddress: email
      useCommonAlertSchema: true
    }]
  }
}

// --- queries (App Insights tables; the same text is explained in docs/operations.md) -------
var functionFailuresQuery = '''
requests
| where success == false
| summarize failures = count() by function_name = operation_Name
'''

var feedHealthQuery = '''
union
  (customMetrics
    | where name == "itdr.alerts" and tostring(customDimensions.category) == "integration_health"
    | project tenant_id = tostring(customDimensions.tenant_id), detail = tostring(customDimensions.detector_id)),
  (traces
    | where tostring(customDimensions.category) == "integration_health" and severityLevel >= 2
    | project tenant_id = tostring(customDimensions.tenant_id), detail = message)
| summarize events = count(), detail = take_any(detail) by tenant_id
'''

var parkedMessagesQuery = '''
customMetrics
| where name == "itdr.deadletters"
| summarize parked = sum(valueSum) by tenant_id = tostring(customDimensions.tenant_id), queue = tostring(customDimensions.queue), reason = tostring(customDimensions.reason)
'''

var remediationFailuresQuery = '''
customMetrics
| where name == "itdr.remediations"
| where tostring(customDimensions.outcome) in ("failed", "dead_lettered")
| summarize failures = sum(valueSum) by tenant_id = tostring(customDimensions.tenant_id), action = tostring(customDimensions.action)
'''

resource functionFailuresAlert 'Microsoft.Insights/scheduledQueryRules@2022-06-15' = {
  name: '${alertNamePrefix}-function-failures'
  location: location
  tags: tags
  properties: {
    displayName: '${alertNamePrefix}: function failures'
    description: 'More than ${functionFailureThreshold} failed invocations of one function in 15 minutes. Runbook: docs/operations.md#function-failures'
    severity: 2
    enabled: true
    scopes: [
      appInsights.id
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: functionFailuresQuery
          timeAggregation: 'Total'
          metricMeasureColumn: 'failures'
          dimensions: [
            {
              name: 'function_name'
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          operator: 'GreaterThan'
          threshold: functionFailureThreshold
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}

resource deadLetterAlert 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: '${alertNamePrefix}-dead-letters'
  location: 'global'
  tags: tags
  properties: {
    description: 'A Service Bus queue holds dead-lettered messages. Runbook: docs/operations.md#dead-letters'
    severity: 1
    enabled: true
    scopes: [
      serviceBusNamespace.id
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    autoMitigate: true
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          criterionType: 'StaticThresholdCriterion'
          name: 'deadlettered-messages'
          metricNamespace: 'Microsoft.ServiceBus/namespaces'
          metricName: 'DeadletteredMessages'
          dimensions: [
            {
              name: 'EntityName'
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          operator: 'GreaterThan'
          threshold: 0
          timeAggregation: 'Maximum'
        }
      ]
    }
    actions: [
      {
        actionGroupId: actionGroup.id
      }
    ]
  }
}

resource parkedMessagesAlert 'Microsoft.Insights/scheduledQueryRules@2022-06-15' = {
  name: '${alertNamePrefix}-parked-messages'
  location: location
  tags: tags
  properties: {
    displayName: '${alertNamePrefix}: parked messages'
    description: 'The app parked a message it cannot process (bad input, a partner endpoint refusing, a missing setting): the work did not happen. Runbook: docs/operations.md#parked-messages'
    severity: 1
    enabled: true
    scopes: [
      appInsights.id
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: parkedMessagesQuery
          timeAggregation: 'Total'
          metricMeasureColumn: 'parked'
          dimensions: [
            {
              name: 'tenant_id'
              operator: 'Include'
              values: [
                '*'
              ]
            }
            {
              name: 'queue'
              operator: 'Include'
              values: [
                '*'
              ]
            }
            {
              name: 'reason'
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}

resource feedHealthAlert 'Microsoft.Insights/scheduledQueryRules@2022-06-15' = {
  name: '${alertNamePrefix}-feed-health'
  location: location
  tags: tags
  properties: {
    displayName: '${alertNamePrefix}: feed health'
    description: 'A tenant\'s audit feed is unhealthy (subscription stopped, content lagging, permission lost). Runbook: docs/operations.md#feed-health'
    severity: 2
    enabled: true
    scopes: [
      appInsights.id
    ]
    evaluationFrequency: 'PT15M'
    windowSize: 'PT1H'
    criteria: {
      allOf: [
        {
          query: feedHealthQuery
          timeAggregation: 'Total'
          metricMeasureColumn: 'events'
          dimensions: [
            {
              name: 'tenant_id'
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}

resource remediationFailuresAlert 'Microsoft.Insights/scheduledQueryRules@2022-06-15' = {
  name: '${alertNamePrefix}-remediation-failures'
  location: location
  tags: tags
  properties: {
    displayName: '${alertNamePrefix}: remediation failures'
    description: 'A remediation action failed for good (or was dead-lettered). Runbook: docs/operations.md#remediation-failures'
    severity: 1
    enabled: true
    scopes: [
      appInsights.id
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: remediationFailuresQuery
          timeAggregation: 'Total'
          metricMeasureColumn: 'failures'
          dimensions: [
            {
              name: 'tenant_id'
              operator: 'Include'
              values: [
                '*'
              ]
            }
            {
              name: 'action'
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}

output logAnalyticsWorkspaceId string = workspace.id
output logAnalyticsWorkspaceName string = workspace.name
output applicationInsightsName string = appInsights.name
output applicationInsightsId string = appInsights.id
output actionGroupId string = actionGroup.id
