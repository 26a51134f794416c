// The partner Logic App: the deliver_alerts function POSTs each incident (itdr or OCSF JSON)
// to its HTTP trigger; the workflow e-mails it (Office 365 Outlook) and posts it to a Teams
// channel, in parallel, so one channel failing does not stop the other.
//
// The trigger URL carries a SAS signature: it is a secret. Bicep writes it straight into Key
// Vault (secret `partnerEndpointSecretName`), the Function App reads it through a Key Vault
// reference (ITDR_PARTNER_ENDPOINT); it never appears in an output, a log or a parameter file.
//
// The trigger admits only the Function App's outbound addresses (accessControl.triggers): a leaked
// URL is useless from anywhere else. main.bicep passes the NAT gateway's static IP with network
// 'private', and the site's possible outbound addresses otherwise.
//
// A repeated delivery is dropped: deliver_alerts sends every incident revision with an
// `Idempotency-Key` (and retries with the same key). The trigger takes the key as the run's
// client tracking id; runs go one at a time, and the first step asks the workflow's own run
// history (ARM, with its system-assigned identity: Logic App Operator on this workflow, in
// rbac.bicep) for a succeeded run with that tracking id. If there is one, the run ends before
// anything is sent. If the look-up itself fails (ARM throttling, a role not yet propagated), the
// alert is sent anyway: the trigger answered 202 already, so dropping it would lose it silently, and
// a rare repeat is the lesser harm.
//
// The two API connections are created unauthenticated: someone with a mailbox and Teams
// membership must authorize them once after deployment (docs/deploy.md section 6).
param name string
param connectionNamePrefix string
param location string
param tags object

@description('Recipients of the alert e-mail, separated by semicolons.')
param alertRecipients string

@description('Teams team (group) ID.')
param teamsGroupId string

@description('Teams channel ID inside that team.')
param teamsChannelId string

@description('Key Vault that receives the trigger URL.')
param keyVaultName string

param partnerEndpointSecretName string = 'partner-endpoint'

@description('IPv4 addresses or CIDR ranges allowed to call the trigger: the Function App\'s outbound addresses.')
param allowedCallerIpAddresses array

resource office365Connection 'Microsoft.Web/connections@2016-06-01' = {
  name: '${connectionNamePrefix}-office365'
  location: location
  tags: tags
  properties: {
    displayName: 'ITDR partner alerts (Office 365 Outlook)'
    api: {
      id: subscriptionResourceId('Microsoft.Web/locations/managedApis', location, 'office365')
    }
  }
}

resource teamsConnection 'Microsoft.Web/connections@2016-06-01' = {
  name: '${connectionNamePrefix}-teams'
  location: location
  tags: tags
  properties: {
    displayName: 'ITDR partner alerts (Microsoft Teams)'
    api: {
      id: subscriptionResourceId('Microsoft.Web/locations/managedApis', location, 'teams')
    }
  }
}

// Workflow Definition Language expressions (@...) are Logic Apps syntax, evaluated at run time.
// Alert text comes from audit records an attacker can shape (rule names, app names, user agents): every
// value put into the HTML body is escaped (&, <, >); the subject is plain text.
var titleExpr = 'coalesce(triggerBody()?[\'title\'], triggerBody()?[\'finding_info\']?[\'title\'], \'ITDR alert\')'
var severityExpr = 'string(coalesce(triggerBody()?[\'severity\'], \'unknown\'))'
var tenantExpr = 'string(coalesce(triggerBody()?[\'tenant_id\'], triggerBody()?[\'cloud\']?[\'account\']?[\'uid\'], \'\'))'
var alertTitle = '@{${titleExpr}}'
var alertSeverity = '@{${severityExpr}}'
var alertHtml = '<p><b>@{replace(replace(replace(string(${titleExpr}), \'&\', \'&amp;\'), \'<\', \'&lt;\'), \'>\', \'&gt;\')}</b></p><p>Severity: @{replace(replace(replace(${severityExpr}, \'&\', \'&amp;\'), \'<\', \'&lt;\'), \'>\', \'&gt;\')}<br/>Tenant: @{replace(replace(replace(${tenantExpr}, \'&\', \'&amp;\'), \'<\', \'&lt;\'), \'>\', \'&gt;\')}</p><pre>@{replace(replace(replace(string(triggerBody()), \'&\', \'&amp;\'), \'<\', \'&lt;\'), \'>\', \'&gt;\')}</pre>'
// notices (proof of life, the weekly report) are not alarms
// The run history filter with the key quoted (a quote in the key is doubled, OData style).
var keyExpr = 'string(coalesce(triggerOutputs()?[\'headers\']?[\'Idempotency-Key\'], guid()))'
var runsFilter = 'encodeUriComponent(concat(\'ClientTrackingId eq \'\'\', replace(${keyExpr}, \'\'\'\', \'\'\'\'\'\'), \'\'\' and Status eq \'\'Succeeded\'\'\'))'
var importance = '@{if(or(equals(triggerBody()?[\'kind\'], \'proof_of_life\'), equals(triggerBody()?[\'kind\'], \'weekly_report\')), \'Normal\', \'High\')}'

resource workflow 'Microsoft.Logic/workflows@2019-05-01' = {
  name: name
  location: location
  tags: tags
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    state: 'Enabled'
    accessControl: {
      triggers: {
        allowedCallerIpAddresses: [for ip in allowedCallerIpAddresses: {
          addressRange: ip
        }]
      }
    }
    definition: {
      '$schema': 'https://schema.management.azure.com/providers/Microsoft.Logic/schemas/2016-06-01/workflowdefinition.json#'
      contentVersion: '1.0.0.0'
      parameters: {
        '$connections': {
          type: 'Object'
          defaultValue: {}
        }
      }
      triggers: {
        manual: {
          type: 'Request'
          kind: 'Http'
          inputs: {
            method: 'POST'
            schema: {
              type: 'object'
            }
          }
          correlation: {
            clientTrackingId: '@{${keyExpr}}'
          }
          runtimeConfiguration: {
            concurrency: {
              runs: 1
            }
          }
        }
      }
      actions: {
        Find_repeated_key: {
          type: 'Http'
          runAfter: {}
          inputs: {
            method: 'GET'
            uri: '@{concat(\'https://management.azure.com\', workflow()?[\'id\'], \'/runs?api-version=2016-06-01&$top=1&$filter=\', ${runsFilter})}'
            authentication: {
              type: 'ManagedServiceIdentity'
              audience: 'https://management.azure.com/'
            }
          }
        }
        Drop_repeated_key: {
          type: 'If'
          runAfter: {
            Find_repeated_key: [
              'Succeeded'
              'Failed'
              'TimedOut'
            ]
          }
          expression: {
            and: [
              {
                equals: [
                  '@actions(\'Find_repeated_key\')?[\'status\']'
                  'Succeeded'
                ]
              }
              {
                greater: [
                  '@length(coalesce(body(\'Find_repeated_key\')?[\'value\'], createArray()))'
                  0
                ]
              }
            ]
          }
          actions: {
            Already_delivered: {
              type: 'Terminate'
              runAfter: {}
              inputs: {
                runStatus: 'Cancelled'
              }
            }
          }
          else: {
            actions: {}
          }
        }
        Send_alert_email: {
          type: 'ApiConnection'
          runAfter: {
            Drop_repeated_key: [
              'Succeeded'
            ]
          }
          inputs: {
            host: {
              connection: {
                name: '@parameters(\'$connections\')[\'office365\'][\'connectionId\']'
              }
            }
            method: 'post'
            path: '/v2/Mail'
            body: {
              To: alertRecipients
              Subject: '[ITDR ${alertSeverity}] ${alertTitle}'
              Body: alertHtml
              Importance: importance
            }
          }
        }
        Post_alert_to_Teams: {
          type: 'ApiConnection'
          runAfter: {
            Drop_repeated_key: [
              'Succeeded'
            ]
          }
          inputs: {
            host: {
              connection: {
                name: '@parameters(\'$connections\')[\'teams\'][\'connectionId\']'
              }
            }
            method: 'post'
            path: '/beta/teams/conversation/message/poster/@{encodeURIComponent(\'Flow bot\')}/location/@{encodeURIComponent(\'Channel\')}'
            body: {
              recipient: {
                groupId: teamsGroupId
                channelId: teamsChannelId
              }
              messageBody: alertHtml
            }
          }
        }
      }
      outputs: {}
    }
    parameters: {
      '$connections': {
        value: {
          office365: {
            connectionId: office365Connection.id
            connectionName: office365Connection.name
            id: office365Connection.properties.api.id
          }
          teams: {
            connectionId: teamsConnection.id
            connectionName: teamsConnection.name
            id: teamsConnection.properties.api.id
          }
        }
      }
    }
  }
}

resource manualTrigger 'Microsoft.Logic/workflows/triggers@2019-05-01' existing = {
  parent: workflow
  name: 'manual'
}

resource keyVault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource partnerEndpointSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: keyVault
  name: partnerEndpointSecretName
  tags: tags
  properties: {
    // checkov:skip=CKV_AZURE_41: the trigger URL has no natural expiry; it is rotated by regenerating the Logic App access keys and redeploying
    contentType: 'text/uri'
    value: manualTrigger.listCallbackUrl().value
  }
}

output name string = workflow.name
output id string = workflow.id
output principalId string = workflow.identity.principalId
output office365ConnectionName string = office365Connection.name
output teamsConnectionName string = teamsConnection.name
// The secret's URI (not its value): the Function App's Key Vault reference points here.
output partnerEndpointSecretUri string = partnerEndpointSecret.properties.secretUri
output partnerEndpointSecretName string = partnerEndpointSecret.name
