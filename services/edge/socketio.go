package edge

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gobwas/ws"

	"github.com/talim/realtime/pkg/auth"
	"github.com/talim/realtime/pkg/command"
	"github.com/talim/realtime/services/edge/internal/envelope"
	"github.com/talim/realtime/services/edge/internal/sio"
)

// Socket.IO v4 compatibility (docs/protocol.md "Socket.IO clients"): Engine.IO v4 + Socket.IO v5 over the
// WebSocket transport at /socket.io/. This file holds the Protocol implementation
// (events, acks and errors as Socket.IO packets) and the HTTP endpoint; the session
// (handshake, CONNECT authentication, Engine.IO ping/pong, read loop) is in
// socketio_conn.go. Everything after the CONNECT — rate limits, routing, rooms,
// watches, the writer and its back-pressure, drain, metrics — is the shared Conn.

// SocketIO is the Socket.IO protocol adapter. Events are 42["<event>",<data>]; the
// answer to a command with an ack id is an ACK 43<id>[<data>] on success and
// 43<id>[{"error":{"code":...,"message":...}}] on failure; failures of commands
// without an ack id are 42["error",{"code":...,"message":...}] events (the same
// data as the native error event).
//
// Envelope ids of this protocol are the decimal digits of the Socket.IO ack id.
type SocketIO struct{}

var _ Protocol = SocketIO{}

// Name implements Protocol.
func (SocketIO) Name() string { return "socketio" }

// Decode implements Protocol. It is stateless: it turns an EVENT on the main
// namespace into an envelope and returns an empty envelope for every other packet.
// The session (socketio_conn.go) uses sio.Session instead, which also tracks the
// CONNECT state; Decode exists for the interface and for tools.
func (SocketIO) Decode(msg []byte) (envelope.Envelope, *envelope.Error) {
	ep, err := sio.ParseEIO(msg)
	if err != nil {
		return envelope.Envelope{}, &envelope.Error{Reason: err.Error()}
	}
	if ep.Type != sio.EIOMessage {
		return envelope.Envelope{}, nil
	}
	p, err := sio.ParseSIO(ep.Data)
	if err != nil {
		return envelope.Envelope{}, &envelope.Error{Reason: err.Error()}
	}
	if p.Type != sio.SIOEvent || p.Namespace != sio.DefaultNamespace {
		return envelope.Envelope{}, nil
	}
	id := sioEnvelopeID(p.AckID)
	name, arg, err := sio.ParseEvent(p.Data)
	if err != nil {
		return envelope.Envelope{}, &envelope.Error{Reason: err.Error(), ID: id}
	}
	if len(arg) == 0 || arg[0] != '{' {
		return envelope.Envelope{}, &envelope.Error{Reason: "data must be an object", ID: id}
	}
	return envelope.Envelope{Event: []byte(name), Data: arg, ID: id}, nil
}

// sioEnvelopeID is the envelope id of a Socket.IO ack id (nil when the client asked
// for no ack, ackID < 0).
func sioEnvelopeID(ackID int64) envelope.ID {
	if ackID < 0 {
		return nil
	}
	return strconv.AppendInt(nil, ackID, 10)
}

// sioAckID is the inverse of sioEnvelopeID (-1 when id is absent or not ours).
func sioAckID(id envelope.ID) int64 {
	if !id.Present() {
		return -1
	}
	n, err := strconv.ParseInt(string(id), 10, 64)
	if err != nil || n < 0 {
		return -1
	}
	return n
}

// AppendEvent implements Protocol: 42["<event>",<data>] (data {} when empty, as in
// the native protocol).
func (SocketIO) AppendEvent(dst []byte, event string, data []byte) []byte {
	if len(data) == 0 {
		data = emptyObject
	}
	return sio.AppendEvent(dst, event, data)
}

// AppendAck implements Protocol: 43<id>[<data>]. A command without ack id gets
// nothing (Conn.sendAck never calls it then).
func (SocketIO) AppendAck(dst []byte, id envelope.ID, data []byte) []byte {
	if len(data) == 0 {
		data = emptyObject
	}
	return sio.AppendAck(dst, sioAckID(id), data)
}

// AppendError implements Protocol: 43<id>[{"error":{...}}] when the command had an
// ack id, else the event 42["error",{...}].
func (SocketIO) AppendError(dst []byte, id envelope.ID, code, message string, retryAfterMs int64) []byte {
	if ack := sioAckID(id); ack >= 0 {
		dst = append(dst, '4', '3')
		dst = strconv.AppendInt(dst, ack, 10)
		dst = append(dst, `[{"error":`...)
		dst = appendErrorData(dst, code, message, retryAfterMs)
		return append(dst, "}]"...)
	}
	dst = append(dst, `42["error",`...)
	dst = appendErrorData(dst, code, message, retryAfterMs)
	return append(dst, ']')
}

// appendErrorData appends {"code":...,"message":...[,"retryAfterMs":...]}, the data
// of the native error event.
func appendErrorData(dst []byte, code, message string, retryAfterMs int64) []byte {
	dst = append(dst, `{"code":`...)
	dst = envelope.AppendString(dst, code)
	dst = append(dst, `,"message":`...)
	dst = envelope.AppendString(dst, message)
	if retryAfterMs > 0 {
		dst = append(dst, `,"retryAfterMs":`...)
		dst = strconv.AppendInt(dst, retryAfterMs, 10)
	}
	return append(dst, '}')
}

// Messages of the HTTP refusals specific to /socket.io/ (a socket.io-client shows
// them as the body of a failed request; see docs).
const (
	sioTransportMessage = `unknown transport: use transport=polling or transport=websocket`
	sioVersionMessage   = `only Engine.IO protocol 4 (socket.io-client v3/v4, EIO=4) is supported`
)

// handleSocketIO serves GET/POST /socket.io/ (docs/protocol.md "Socket.IO clients"): the long-polling
// transport and the upgrade of a polling session are in polling.go; a WebSocket
// opened directly (transports: ["websocket"]) is served here. Refusals before the
// upgrade are the native ones (503 draining, 403 Origin, 429 connect rate; 401 and
// 429 user cap when the request carries credentials) plus 400 for other Engine.IO
// versions and transports. Without credentials in the request the connection is
// upgraded and authenticated by the Socket.IO CONNECT (auth.token).
func (s *Server) handleSocketIO(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if v := q.Get("EIO"); v != "4" {
		s.sioBadRequest(w, r, "sio_version", sioVersionMessage)
		return
	}
	sid := q.Get("sid")
	switch q.Get("transport") {
	case "polling":
		s.handlePolling(w, r, sid)
		return
	case "websocket":
	default:
		s.sioBadRequest(w, r, "sio_transport", sioTransportMessage)
		return
	}
	if r.Method != http.MethodGet || !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		s.sioBadRequest(w, r, "sio_transport", "transport=websocket needs a GET with Upgrade: websocket")
		return
	}
	if sid != "" {
		s.handlePollUpgrade(w, r, sid)
		return
	}
	if !s.admit(w, r) {
		return
	}
	var claims *auth.Claims
	if s.hasCredentials(r) {
		c, ok := s.authenticateAndReserve(w, r)
		if !ok {
			return
		}
		claims = &c
	}
	conn, rw, _, err := ws.UpgradeHTTP(r, w)
	if err != nil {
		if claims != nil {
			s.hub.release(claims.UserID)
		}
		s.metrics.refused("handshake")
		if conn != nil {
			_ = conn.Close()
		}
		return
	}
	s.serveSocketIO(conn, leftovers(conn, rw), claims)
}

// sioBadRequest answers 400 with the JSON error body. Allowed cross-origin pages get
// CORS headers, so that a browser lets socket.io-client (and the developer tools)
// read the message.
func (s *Server) sioBadRequest(w http.ResponseWriter, r *http.Request, reason, message string) {
	if o := r.Header.Get("Origin"); o != "" && s.originAllowed(r) {
		w.Header().Set("Access-Control-Allow-Origin", o)
		w.Header().Set("Access-Control-Allow-Credentials", "true")
		w.Header().Add("Vary", "Origin")
	}
	s.refuse(w, http.StatusBadRequest, command.CodeBadRequest, reason, message)
}

// hasCredentials reports whether the upgrade request itself carries credentials
// (?token=, Authorization: Bearer, or ?userId= in DevMode); they are then checked
// before the upgrade, exactly like on /ws.
func (s *Server) hasCredentials(r *http.Request) bool {
	q := r.URL.Query()
	if q.Get("token") != "" || r.Header.Get("Authorization") != "" {
		return true
	}
	return s.cfg.DevMode && q.Get("userId") != ""
}

// sioAuth is the auth object of a Socket.IO CONNECT (socket.io-client's `auth`
// option).
type sioAuth struct {
	Token  string `json:"token"`
	UserID string `json:"userId"` // DevMode only
	// PID and Offset are sent by socket.io-client on reconnection when the
	// previous CONNECT reply carried a pid (socketio_recovery.go).
	PID    string `json:"pid"`
	Offset string `json:"offset"`
}

// sioAuthenticate verifies the CONNECT auth object. The returned message is the
// CONNECT_ERROR text on failure.
func (s *Server) sioAuthenticate(a sioAuth) (auth.Claims, string) {
	if a.Token == "" && s.cfg.DevMode && a.UserID != "" && len(a.UserID) <= 128 {
		return auth.Claims{UserID: a.UserID, Name: a.UserID}, ""
	}
	claims, err := s.verifier.Verify(a.Token)
	if err != nil {
		if errors.Is(err, auth.ErrMissingToken) {
			return claims, "unauthorized: missing token (connect with auth: {token})"
		}
		return claims, "unauthorized: invalid token"
	}
	return claims, ""
}

// sioTimeouts derives the Engine.IO timings from the edge's ping interval: the
// server pings every PingInterval and a pong must come within pingTimeout =
// 4/5 of it (25 s / 20 s by default, socket.io's own defaults). A client must send
// its CONNECT within PingInterval of the upgrade, bounded to 1..10 s
// (socket.io-client sends it right after the open packet).
func (s *Server) sioTimeouts() (pingInterval, pingTimeout, connectTimeout time.Duration) {
	pingInterval = s.cfg.PingInterval
	pingTimeout = pingInterval * 4 / 5
	connectTimeout = min(max(pingInterval, time.Second), 10*time.Second)
	return pingInterval, pingTimeout, connectTimeout
}
