// Package protocol holds the client protocol's constants (PROTOCOL.md §2) shared by
// the services (pkg/command), the edge and the Go client (pkg/client). It has no
// dependencies.
package protocol

// Error codes of `error` frames.
const (
	CodeBadRequest   = "bad_request"
	CodeUnknownEvent = "unknown_event"
	CodeUnauthorized = "unauthorized"
	CodeForbidden    = "forbidden"
	CodeNotFound     = "not_found"
	CodeRateLimited  = "rate_limited"
	CodeTooLarge     = "too_large"
	CodeUnavailable  = "unavailable"
	CodeInternal     = "internal"
)

// WebSocket close codes.
const (
	CloseNormal          = 1000
	CloseGoingAway       = 1001
	CloseUnsupportedData = 1003
	CloseInvalidPayload  = 1007
	ClosePolicyViolation = 1008
	CloseTooBig          = 1009
	CloseInternalError   = 1011
	CloseServiceRestart  = 1012
	CloseTokenExpired    = 4001
	CloseSlowConsumer    = 4008
	CloseTooManyConns    = 4029
)
