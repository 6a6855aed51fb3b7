package command

import (
	"errors"
	"fmt"

	"github.com/talim/realtime/pkg/protocol"
)

// Protocol error codes (docs/protocol.md "Errors"), from pkg/protocol.
const (
	CodeBadRequest   = protocol.CodeBadRequest
	CodeUnknownEvent = protocol.CodeUnknownEvent
	CodeUnauthorized = protocol.CodeUnauthorized
	CodeForbidden    = protocol.CodeForbidden
	CodeNotFound     = protocol.CodeNotFound
	CodeRateLimited  = protocol.CodeRateLimited
	CodeTooLarge     = protocol.CodeTooLarge
	CodeUnavailable  = protocol.CodeUnavailable
	CodeInternal     = protocol.CodeInternal
)

// Error is a protocol error a handler returns to the client.
type Error struct {
	Code         string
	Message      string
	RetryAfterMs int64
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// ErrUnavailable marks failures of a backing store or service: the command did
// nothing and is safe to retry. Wrap it: fmt.Errorf("insert message: %w: %w", ErrUnavailable, err).
var ErrUnavailable = errors.New("unavailable")

// Errorf builds a protocol error with code.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// BadRequest is a bad_request error.
func BadRequest(format string, args ...any) *Error { return Errorf(CodeBadRequest, format, args...) }

// Forbidden is a forbidden error.
func Forbidden(format string, args ...any) *Error { return Errorf(CodeForbidden, format, args...) }

// NotFound is a not_found error.
func NotFound(format string, args ...any) *Error { return Errorf(CodeNotFound, format, args...) }

// AsError converts any handler error into a protocol error. Errors that are not
// *Error become unavailable (when they wrap ErrUnavailable) or internal; internal
// details never reach clients.
func AsError(err error) (*Error, bool) {
	var pe *Error
	if errors.As(err, &pe) {
		return pe, true
	}
	if errors.Is(err, ErrUnavailable) {
		return &Error{Code: CodeUnavailable, Message: "a backing service is unavailable; nothing was stored, retry later"}, false
	}
	return &Error{Code: CodeInternal, Message: "internal error"}, false
}
