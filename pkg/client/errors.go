package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/talim/realtime/pkg/protocol"
)

// ErrDisconnected is returned by requests made while no connection is up, and by
// pending requests whose connection dropped before the answer came. Sends that go
// through the outbox never fail with it: they are kept and re-sent.
var ErrDisconnected = errors.New("client: disconnected")

// ErrClosed is returned by every call made after Close, and by outbox sends that were
// still waiting when Close was called.
var ErrClosed = errors.New("client: closed")

// ErrOutboxFull is returned by Send when Options.OutboxLimit sends are already waiting
// for their ack.
var ErrOutboxFull = errors.New("client: outbox full")

// ErrWriteQueueFull is returned when a connection has more than
// Options.MaxWriteQueue bytes waiting to be written (the socket does not drain).
var ErrWriteQueueFull = errors.New("client: write queue full")

// ErrFrameTooLarge ends a connection whose server sent a frame over Options.MaxFrame.
var ErrFrameTooLarge = errors.New("client: frame too large")

// ErrAlreadyConnected is returned by a second call to Connect.
var ErrAlreadyConnected = errors.New("client: Connect already called")

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

// Error is the server's answer to a command that failed: the data of an `error` frame.
// Compare codes with errors.As, or with errors.Is against an *Error carrying only a
// Code (errors.Is(err, &client.Error{Code: client.CodeForbidden})).
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// RetryAfterMs is set with rate_limited.
	RetryAfterMs int64 `json:"retryAfterMs,omitempty"`
}

func (e *Error) Error() string {
	if e.Message == "" {
		return "client: server error " + e.Code
	}
	return "client: server error " + e.Code + ": " + e.Message
}

// Is matches another *Error with the same Code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

func decodeError(data json.RawMessage) *Error {
	e := &Error{}
	if err := json.Unmarshal(data, e); err != nil || e.Code == "" {
		return &Error{Code: CodeInternal, Message: "malformed error frame: " + string(data)}
	}
	return e
}

// CloseError is the close frame the server ended a connection with.
type CloseError struct {
	Code   int
	Reason string
}

func (e *CloseError) Error() string {
	return "client: connection closed by server: " + strconv.Itoa(e.Code) + " " + e.Reason
}

// Close codes with a meaning for reconnecting: names for the table in pkg/protocol
// (docs/protocol.md "Close codes").
const (
	CloseNormal            = protocol.CloseNormal
	CloseGoingAway         = protocol.CloseGoingAway
	CloseUnsupportedData   = protocol.CloseUnsupportedData
	CloseInvalidPayload    = protocol.CloseInvalidPayload
	ClosePolicyViolation   = protocol.ClosePolicyViolation
	CloseMessageTooBig     = protocol.CloseTooBig
	CloseInternal          = protocol.CloseInternalError
	CloseServiceRestart    = protocol.CloseServiceRestart
	CloseTokenExpired      = protocol.CloseTokenExpired
	CloseSlowConsumer      = protocol.CloseSlowConsumer
	CloseTooManyConnection = protocol.CloseTooManyConns
)

// HandshakeError is a refusal of the WebSocket upgrade: a plain HTTP response.
type HandshakeError struct {
	Status  int
	Code    string // error.code of the JSON body, when there was one
	Message string
}

func (e *HandshakeError) Error() string {
	msg := fmt.Sprintf("client: handshake refused: HTTP %d", e.Status)
	if e.Code != "" {
		msg += " " + e.Code
	}
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}

// terminal reports whether err ends the reconnect loop: the server told us that
// retrying the same way cannot work. refreshable says whether a new token may help
// (Options.TokenFunc is set).
func terminal(err error, refreshable bool) bool {
	var ce *CloseError
	if errors.As(err, &ce) {
		switch ce.Code {
		case CloseUnsupportedData, CloseInvalidPayload, ClosePolicyViolation,
			CloseMessageTooBig, CloseTooManyConnection:
			return true
		case CloseTokenExpired:
			return !refreshable
		}
		return false
	}
	var he *HandshakeError
	if errors.As(err, &he) {
		switch he.Status {
		case 401:
			return !refreshable
		case 403, 404, 400:
			return true
		}
		return false
	}
	return errors.Is(err, ErrFrameTooLarge)
}
