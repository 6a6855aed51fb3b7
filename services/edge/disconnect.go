package edge

import (
	"strconv"

	"github.com/gobwas/ws"

	"github.com/talim/realtime/pkg/protocol"
)

// Disconnect is why the server closes a connection: the WebSocket close code and a
// short reason (it must fit a close frame: at most 123 bytes). The codes come from
// the one table in pkg/protocol (docs/protocol.md "Close codes").
type Disconnect struct {
	Code   ws.StatusCode
	Reason string
}

func (d Disconnect) Error() string {
	return "disconnect " + strconv.Itoa(int(d.Code)) + ": " + d.Reason
}

// label is the metrics label of the code.
func (d Disconnect) label() string { return strconv.Itoa(int(d.Code)) }

// Server-initiated disconnects.
var (
	DisconnectNormal      = Disconnect{Code: protocol.CloseNormal, Reason: "normal closure"}
	DisconnectIdle        = Disconnect{Code: protocol.CloseGoingAway, Reason: "idle timeout"}
	DisconnectProtocol    = Disconnect{Code: protocol.CloseProtocolError, Reason: "protocol error"}
	DisconnectBinary      = Disconnect{Code: protocol.CloseUnsupportedData, Reason: "binary frames are not supported"}
	DisconnectInvalidUTF8 = Disconnect{Code: protocol.CloseInvalidPayload, Reason: "invalid UTF-8"}
	DisconnectAbuse       = Disconnect{Code: protocol.ClosePolicyViolation, Reason: "repeated protocol violations"}
	DisconnectTooBig      = Disconnect{Code: protocol.CloseTooBig, Reason: "message too big"}
	DisconnectInternal    = Disconnect{Code: protocol.CloseInternalError, Reason: "internal error"}
	DisconnectRestart     = Disconnect{Code: protocol.CloseServiceRestart, Reason: "server restarting, reconnect"}
	DisconnectExpired     = Disconnect{Code: protocol.CloseTokenExpired, Reason: "token expired"}
	DisconnectSlow        = Disconnect{Code: protocol.CloseSlowConsumer, Reason: "slow consumer, reconnect and resume"}
	DisconnectTooMany     = Disconnect{Code: protocol.CloseTooManyConns, Reason: "too many connections"}
)

// Pseudo-disconnects recorded when the client ended the connection.
var (
	disconnectByClient = Disconnect{Code: protocol.CloseNormal, Reason: "client closed"}
	disconnectAbnormal = Disconnect{Code: protocol.CloseAbnormal, Reason: "connection lost"}
)
