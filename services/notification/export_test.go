package notification

// NotifyCommandEnv is NotifyCommand with an explicit environment lookup.
var NotifyCommandEnv = notifyCommand
