// Package webhooktest holds the integration tests of pkg/webhook: the outbox,
// dispatcher and WebhookService against the embedded FerretDB and a real loopback
// receiver that verifies every signature. They live here because pkg must not
// depend on pkg/devstack (scripts/check-lean.sh); the package has no code.
package webhooktest
