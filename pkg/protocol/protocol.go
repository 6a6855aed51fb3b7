// Package protocol holds the client protocol's constants: the error codes of
// `error` frames (docs/protocol.md "Errors"), used by pkg/command for the services
// and by the Go client (pkg/client), and the close codes (docs/protocol.md "Close
// codes"), used by the edge (services/edge/disconnect.go) and the Go client. It has
// no dependencies.
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

// WebSocket close codes: the one table the edge (services/edge/disconnect.go) and
// the Go client (pkg/client) use (docs/protocol.md "Close codes"). 1000-1015 are
// RFC 6455 codes; 4000-4999 are Talim's.
const (
	CloseNormal          = 1000 // the client or the server ended the session
	CloseGoingAway       = 1001 // idle timeout (no pong)
	CloseProtocolError   = 1002 // a frame broke RFC 6455
	CloseUnsupportedData = 1003 // a binary frame
	CloseAbnormal        = 1006 // never sent: the connection was lost without a close frame
	CloseInvalidPayload  = 1007 // a text frame that is not UTF-8
	ClosePolicyViolation = 1008 // repeated protocol violations
	CloseTooBig          = 1009 // a message over the frame limit
	CloseInternalError   = 1011 // the server failed
	CloseServiceRestart  = 1012 // the server is draining: reconnect (to another edge) and resume
	CloseTokenExpired    = 4001 // the token expired or was revoked: reconnect with a fresh one
	CloseSlowConsumer    = 4008 // the outbound queue overflowed: reconnect and resume
	CloseTooManyConns    = 4029 // too many connections for this user
)
