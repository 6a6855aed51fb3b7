package notification

// NotifyCommandEnv is NotifyCommand with an explicit environment lookup.
var NotifyCommandEnv = notifyCommand

// WebhooksCommandEnv is WebhooksCommand with an explicit environment lookup.
var WebhooksCommandEnv = webhooksCommand
