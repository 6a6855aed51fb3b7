package edge

import (
	"github.com/talim/realtime/services/edge/internal/envelope"
)

// Protocol adapts one client wire protocol to the shared session machinery (auth,
// limits, routing, per-user subscriptions, joined-room filtering, writer and
// back-pressure, drain, metrics). The native JSON protocol is Native; a Socket.IO
// adapter implements the same interface and registers under its own index, so a
// fan-out frame is encoded at most once per protocol in use.
//
// Implementations append the message payload only: the session wraps it in a
// WebSocket text frame. Appenders must not retain dst and must produce output that
// depends only on their arguments (frames are shared between connections).
type Protocol interface {
	// Name is a short label for logs and metrics ("native", "socketio").
	Name() string
	// Decode parses one inbound text message into an envelope. The envelope's slices
	// alias msg. A protocol-level message that is not a client event (e.g. an
	// Engine.IO pong) returns an envelope with an empty Event and no error; the
	// session then ignores it.
	Decode(msg []byte) (envelope.Envelope, *envelope.Error)
	// AppendEvent appends a server event.
	AppendEvent(dst []byte, event string, data []byte) []byte
	// AppendAck appends the success answer to the command with id.
	AppendAck(dst []byte, id envelope.ID, data []byte) []byte
	// AppendError appends the failure answer to the command with id (or an error
	// event when id is absent).
	AppendError(dst []byte, id envelope.ID, code, message string, retryAfterMs int64) []byte
}

// Protocol indexes (fan-out caches one frame per index).
const (
	protoNative = iota
	protoSocketIO
	maxProtocols
)

// Native is the native JSON protocol of docs/protocol.md "Frames".
type Native struct{}

var _ Protocol = Native{}

// Name implements Protocol.
func (Native) Name() string { return "native" }

// Decode implements Protocol.
func (Native) Decode(msg []byte) (envelope.Envelope, *envelope.Error) { return envelope.Decode(msg) }

// AppendEvent implements Protocol.
func (Native) AppendEvent(dst []byte, event string, data []byte) []byte {
	return envelope.AppendEvent(dst, event, data)
}

// AppendAck implements Protocol.
func (Native) AppendAck(dst []byte, id envelope.ID, data []byte) []byte {
	return envelope.AppendAck(dst, id, data)
}

// AppendError implements Protocol.
func (Native) AppendError(dst []byte, id envelope.ID, code, message string, retryAfterMs int64) []byte {
	return envelope.AppendError(dst, id, code, message, retryAfterMs)
}
