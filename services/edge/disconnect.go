package edge

import (
	"strconv"

	"github.com/gobwas/ws"
)

// Disconnect is why the server closes a connection: the WebSocket close code and a
// short reason (it must fit a close frame: at most 123 bytes). Codes follow
// PROTOCOL.md §2: 1000–1015 are RFC 6455 codes, 4000–4999 are Talim's (4001 token
// expired or revoked, 4008 slow consumer, 4029 too many connections).
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
	DisconnectNormal      = Disconnect{Code: 1000, Reason: "normal closure"}
	DisconnectIdle        = Disconnect{Code: 1001, Reason: "idle timeout"}
	DisconnectProtocol    = Disconnect{Code: 1002, Reason: "protocol error"}
	DisconnectBinary      = Disconnect{Code: 1003, Reason: "binary frames are not supported"}
	DisconnectInvalidUTF8 = Disconnect{Code: 1007, Reason: "invalid UTF-8"}
	DisconnectAbuse       = Disconnect{Code: 1008, Reason: "repeated protocol violations"}
	DisconnectTooBig      = Disconnect{Code: 1009, Reason: "message too big"}
	DisconnectInternal    = Disconnect{Code: 1011, Reason: "internal error"}
	DisconnectRestart     = Disconnect{Code: 1012, Reason: "server restarting, reconnect"}
	DisconnectExpired     = Disconnect{Code: 4001, Reason: "token expired"}
	DisconnectSlow        = Disconnect{Code: 4008, Reason: "slow consumer, reconnect and resume"}
	DisconnectTooMany     = Disconnect{Code: 4029, Reason: "too many connections"}
)

// Pseudo-disconnects recorded when the client ended the connection.
var (
	disconnectByClient = Disconnect{Code: 1000, Reason: "client closed"}
	disconnectAbnormal = Disconnect{Code: 1006, Reason: "connection lost"}
)
