package edge

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"time"

	"github.com/gobwas/ws"
	"golang.org/x/time/rate"

	"github.com/talim/realtime/pkg/auth"
	"github.com/talim/realtime/pkg/command"
	edgev1 "github.com/talim/realtime/proto/talim/edge/v1"
	"github.com/talim/realtime/services/edge/internal/envelope"
	"github.com/talim/realtime/services/edge/internal/sio"
	"github.com/talim/realtime/services/edge/internal/writer"
	"github.com/talim/realtime/services/edge/internal/wsio"
)

// A Socket.IO connection has two phases.
//
//  1. Handshake, on the HTTP handler's goroutine, before any Conn exists: the
//     Engine.IO open packet is written directly to the socket, then the reader waits
//     (at most the connect timeout, see sioTimeouts) for the CONNECT of namespace "/"
//     and authenticates its auth object, unless the upgrade request was already
//     authenticated. Refusals are a CONNECT_ERROR 44{"message":"unauthorized: ..."}
//     followed by a WebSocket close. Packets for other namespaces get the codec's
//     CONNECT_ERROR and the connection stays up.
//  2. Session: the Conn is built and registered exactly like a native one (serve in
//     conn.go) with proto = protoSocketIO, the CONNECT reply 40{"sid":<connection
//     id>} is its first frame and the native greeting follows as the event
//     42["connected",{...}]. This goroutine then reads until the socket closes;
//     events go through Conn.handleCommand, the ping timer sends Engine.IO pings.
//
// Server-side ends (drain 1012, slow consumer 4008, token expiry 4001, presence or
// membership control closes) are plain WebSocket closes, never a Socket.IO
// DISCONNECT: socket.io-client reconnects after a transport close but not after a
// server DISCONNECT ("io server disconnect").
//
// Unlike native connections, a Socket.IO connection keeps a reader goroutine for its
// whole life (the codec's Session must see frames in order from one goroutine).

// Socket.IO specific disconnects (docs/protocol.md "Close codes").
var (
	disconnectSIOPingTimeout = Disconnect{Code: 1001, Reason: "ping timeout"}
	disconnectSIOProtocol    = Disconnect{Code: 1008, Reason: "invalid socket.io packet"}
	disconnectSIONoConnect   = Disconnect{Code: 1008, Reason: "no socket.io CONNECT in time"}
	disconnectSIORefused     = Disconnect{Code: 1008, Reason: "socket.io CONNECT refused"}
)

// sioMaxHandshakeFrames bounds the frames a client may send before its CONNECT of "/"
// is accepted (socket.io-client sends one; a few more for other namespaces).
const sioMaxHandshakeFrames = 16

// sioConn is the Socket.IO state of one connection.
type sioConn struct {
	s    *Server
	nc   net.Conn
	rd   wsio.Reader
	sess *sio.Session
	c    *Conn // set when the CONNECT is accepted

	pingInterval, pingTimeout time.Duration
	pinged                    bool // a ping is out; only touched by the ping timer

	// pid and offset are the recovery fields of the CONNECT auth object
	// (socketio_recovery.go); "" when absent.
	pid, offset string

	// closed, when set (polling, polling.go), is the writer's done hook and ends the
	// connection's count in connsWG; otherwise readLoop ends it.
	closed func(error)
}

// serveSocketIO runs an upgraded /socket.io/ connection until it closes. claims is
// nil when the upgrade request carried no credentials (the CONNECT must then bring
// them); otherwise the user's connection slot is already reserved.
func (s *Server) serveSocketIO(nc net.Conn, src io.Reader, claims *auth.Claims) {
	pi, pt, ct := s.sioTimeouts()
	sc := &sioConn{s: s, nc: nc, sess: sio.NewSession(nil), pingInterval: pi, pingTimeout: pt}
	sc.rd = wsio.Reader{Src: src, MaxMessage: s.cfg.MaxFrameBytes}
	reserved := claims != nil
	release := func() {
		if reserved {
			s.hub.release(claims.UserID)
			reserved = false
		}
	}
	open := sc.sess.Open(wsio.Begin(nil), pi, pt, int64(s.cfg.MaxFrameBytes))
	if err := sc.writeDirect(wsio.Finish(open, ws.OpText)); err != nil {
		release()
		sc.abort()
		return
	}
	_ = nc.SetReadDeadline(time.Now().Add(ct))
	accepted, ok := sc.handshake(claims)
	if !ok {
		release()
		return
	}
	if claims == nil {
		claims = &accepted
		if !sc.reserve(claims.UserID) {
			return
		}
	}
	_ = nc.SetReadDeadline(time.Time{})
	sc.start(*claims)
	sc.readLoop()
}

// handshake reads until the CONNECT of "/" is accepted. With pre is nil the CONNECT's
// auth object is verified and its claims returned. ok is false when the connection
// was closed (refusal, timeout, protocol error, client gone).
func (sc *sioConn) handshake(pre *auth.Claims) (claims auth.Claims, ok bool) {
	s := sc.s
	for frames := 0; ; frames++ {
		if frames > sioMaxHandshakeFrames {
			sc.refuse(nil, disconnectSIOProtocol)
			return claims, false
		}
		msg, err := sc.rd.Next()
		if err != nil {
			var ne net.Error
			switch {
			case errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded):
				s.metrics.refused("sio_connect_timeout")
				sc.refuse(nil, disconnectSIONoConnect)
			case wsio.CloseCode(err) != 0:
				sc.refuse(nil, Disconnect{Code: wsio.CloseCode(err), Reason: err.Error()})
			default:
				sc.abort()
			}
			return claims, false
		}
		switch msg.Op {
		case ws.OpPing:
			err = sc.writeDirect(wsio.Control(ws.OpPong, msg.Payload))
			msg.Release()
			if err != nil {
				sc.abort()
				return claims, false
			}
			continue
		case ws.OpClose:
			code, _ := ws.ParseCloseFrameData(msg.Payload)
			msg.Release()
			if code.Empty() {
				code = ws.StatusNormalClosure
			}
			sc.refuse(nil, Disconnect{Code: code})
			return claims, false
		case ws.OpText:
		default:
			msg.Release()
			continue
		}
		got, done, alive := sc.handshakeText(msg.Payload, pre)
		msg.Release()
		if !alive || done {
			return got, alive
		}
	}
}

// handshakeText handles one text message before the CONNECT of "/" is accepted (both
// transports). done means the CONNECT was accepted (claims are the ones of pre, or
// those of its auth object); ok false means the connection was refused and closed.
// payload is not used after the call.
func (sc *sioConn) handshakeText(payload []byte, pre *auth.Claims) (claims auth.Claims, done, ok bool) {
	s := sc.s
	in, herr := sc.sess.Handle(payload, wsio.Begin(nil))
	if herr != nil {
		sc.refuse(nil, disconnectSIOProtocol)
		return claims, false, false
	}
	var a sioAuth
	authErr := false
	if in.Kind == sio.KindConnect && len(in.Data) > 0 {
		authErr = json.Unmarshal(in.Data, &a) != nil
		if !authErr && len(a.PID) <= 64 && len(a.Offset) <= 512 {
			sc.pid, sc.offset = a.PID, a.Offset
		}
	}
	switch in.Kind {
	case sio.KindReply:
		if err := sc.writeDirect(wsio.Finish(in.Reply, ws.OpText)); err != nil {
			sc.abort()
			return claims, false, false
		}
	case sio.KindClose:
		sc.refuse(nil, disconnectByClient)
		return claims, false, false
	case sio.KindConnect:
		if s.draining.Load() {
			sc.refuse(nil, DisconnectRestart) // reconnect to another edge
			return claims, false, false
		}
		if pre != nil {
			return *pre, true, true
		}
		reason := "unauthorized: auth must be an object like {token}"
		if !authErr {
			claims, reason = s.sioAuthenticate(a)
		}
		if reason != "" {
			s.metrics.refused("unauthorized")
			sc.refuse(sc.sess.Reject(wsio.Begin(nil), reason), disconnectSIORefused)
			return claims, false, false
		}
		return claims, true, true
	}
	return claims, false, true
}

// reserve takes a connection slot for a user authenticated by CONNECT, or refuses
// the CONNECT (user cap: 4029).
func (sc *sioConn) reserve(userID string) bool {
	err := sc.s.hub.reserve(userID, sc.s.cfg.MaxConnsPerUser)
	if err == nil {
		return true
	}
	if errors.Is(err, errUserCap) {
		sc.s.metrics.refused("user_cap")
		sc.refuse(sc.sess.Reject(wsio.Begin(nil), "rate_limited: too many connections for this user"), DisconnectTooMany)
		return false
	}
	sc.s.log.Error("reserve connection", "err", err)
	sc.s.metrics.refused("internal")
	sc.refuse(sc.sess.Reject(wsio.Begin(nil), "unavailable: temporarily unavailable, retry"), DisconnectInternal)
	return false
}

// start registers the accepted connection; it mirrors serve in conn.go (keep them
// in step) except for the reader and the ping timer.
func (sc *sioConn) start(claims auth.Claims) {
	s := sc.s
	c := &Conn{
		s: s, id: newConnID(), proto: protoSocketIO, userID: claims.UserID, netConn: sc.nc,
		identity:  &edgev1.Identity{UserId: claims.UserID, DisplayName: claims.Name, Roles: claims.Roles},
		limiter:   rate.NewLimiter(rate.Limit(s.cfg.CommandRate), s.cfg.CommandBurst),
		expiresAt: claims.ExpiresAt,
	}
	c.w = writer.New(sc.nc, &s.wopts)
	if sc.closed != nil {
		c.w.SetDone(sc.closed)
	}
	c.lastRead.Store(time.Now().UnixNano())
	sc.c = c
	// The socket id is the connection id, so socket.id === connected.connectionId.
	sc.sess.SocketID = c.id
	saved := s.sioRecovery.take(sc.pid, claims.UserID)
	c.sio = &sioTrack{pid: newPID()}
	if saved != nil {
		c.sio.pid = saved.pid // the same pid again: socket.recovered === true
	}
	sc.sess.PID = c.sio.pid
	sc.enqueueText(func(dst []byte) []byte { return sc.sess.Accept(dst) })

	s.connsMu.Lock()
	s.conns[c] = struct{}{}
	s.connsWG.Add(1) // Done when readLoop ends (after the socket closed), or by sc.closed
	s.connsMu.Unlock()
	s.hub.attach(c)
	s.metrics.connected()
	s.publishConnEvent(c, true)

	c.sendEvent("connected", appendConnected(nil, c.userID, c.id, time.Now(), s.cfg.PingInterval))
	c.mu.Lock()
	c.pingTimer = time.AfterFunc(sc.pingInterval, sc.onPingTimer)
	if !c.expiresAt.IsZero() {
		c.expTimer = time.AfterFunc(time.Until(c.expiresAt), c.onExpiry)
	}
	c.mu.Unlock()
	if s.draining.Load() {
		c.Close(DisconnectRestart) // slipped in after drain took its snapshot
		return
	}
	if saved != nil {
		sc.recoverSession(saved, sc.offset)
	}
}

// readLoop reads the accepted connection until it ends.
func (sc *sioConn) readLoop() {
	c := sc.c
	defer c.s.connsWG.Done()
	defer sc.rd.Close()
	scratch := make([]byte, 0, 64)
	for {
		msg, err := sc.rd.Next()
		if err != nil {
			c.readFailed(err)
			return
		}
		c.lastRead.Store(time.Now().UnixNano())
		c.s.metrics.frameIn(len(msg.Payload))
		if c.closed.Load() {
			msg.Release()
			continue // closing: drain input until the socket closes
		}
		switch msg.Op {
		case ws.OpText:
			scratch = sc.handleText(msg.Payload, scratch[:0])
		case ws.OpPing:
			c.enqueue(wsio.Control(ws.OpPong, msg.Payload), nil)
		case ws.OpClose:
			code, _ := ws.ParseCloseFrameData(msg.Payload)
			msg.Release()
			c.closeByClient(code)
			continue
		}
		msg.Release()
	}
}

// handleText handles one Socket.IO frame of an accepted connection; it returns the
// scratch buffer for reuse.
func (sc *sioConn) handleText(frame, scratch []byte) []byte {
	c := sc.c
	in, err := sc.sess.Handle(frame, scratch)
	if err != nil {
		c.s.log.Debug("socket.io protocol error", "conn", c.id, "err", err)
		c.Close(disconnectSIOProtocol)
		return scratch
	}
	switch in.Kind {
	case sio.KindReply:
		sc.enqueueText(func(dst []byte) []byte { return append(dst, in.Reply...) })
		if in.Namespace != sio.DefaultNamespace {
			c.abuse(false) // a refused namespace CONNECT counts like a protocol error
		}
		return in.Reply[:0]
	case sio.KindClose:
		if len(frame) >= 2 && frame[0] == '4' && frame[1] == '1' { // Socket.IO DISCONNECT
			c.sio.mu.Lock()
			c.sio.discard = true // socket.disconnect(): not recoverable
			c.sio.mu.Unlock()
		}
		c.closeByClient(ws.StatusNormalClosure)
	case sio.KindEvent:
		if len(in.Data) == 0 || in.Data[0] != '{' {
			c.sendError(sioEnvelopeID(in.AckID), command.CodeBadRequest, "data must be an object", 0)
			c.abuse(false)
			return scratch
		}
		c.handleCommand(envelope.Envelope{Event: []byte(in.Name), Data: in.Data, ID: sioEnvelopeID(in.AckID)})
	case sio.KindBadEvent:
		c.sendError(sioEnvelopeID(in.AckID), command.CodeBadRequest, in.Err.Error(), 0)
		c.abuse(false)
	}
	return scratch
}

// onPingTimer alternates between sending an Engine.IO ping (every pingInterval) and,
// pingTimeout later, checking that the client answered it.
func (sc *sioConn) onPingTimer() {
	c := sc.c
	if c.closed.Load() {
		return
	}
	var next time.Duration
	if sc.pinged && sc.sess.PongOverdue(time.Now(), 0) {
		c.Close(disconnectSIOPingTimeout)
		return
	}
	if sc.pinged && sc.pingInterval > sc.pingTimeout {
		sc.pinged = false
		next = sc.pingInterval - sc.pingTimeout
	} else {
		sc.enqueueText(sc.sess.Ping)
		sc.pinged = true
		next = sc.pingTimeout
	}
	c.mu.Lock()
	if !c.closed.Load() {
		c.pingTimer.Reset(next)
	}
	c.mu.Unlock()
}

// enqueueText queues one text frame whose payload build appends, in a pooled buffer.
func (sc *sioConn) enqueueText(build func(dst []byte) []byte) {
	b := writer.GetBuf()
	f := build(wsio.Begin(*b))
	*b = f
	sc.c.enqueue(wsio.Finish(f, ws.OpText), b)
}

// writeDirect writes frames during the handshake, before the Conn and its writer
// exist (only this goroutine writes then).
func (sc *sioConn) writeDirect(frames ...[]byte) error {
	_ = sc.nc.SetWriteDeadline(time.Now().Add(sc.s.cfg.WriteTimeout))
	bufs := net.Buffers(frames)
	_, err := bufs.WriteTo(sc.nc)
	_ = sc.nc.SetWriteDeadline(time.Time{})
	return err
}

// refuse ends a connection during the handshake: the optional Socket.IO payload
// (a CONNECT_ERROR), then a close frame with d, then the socket is closed.
func (sc *sioConn) refuse(payload []byte, d Disconnect) {
	frames := make([][]byte, 0, 2)
	if payload != nil {
		frames = append(frames, wsio.Finish(payload, ws.OpText))
	}
	frames = append(frames, wsio.CloseFrame(d.Code, d.Reason))
	_ = sc.writeDirect(frames...)
	sc.abort()
}

// abort closes the socket of a connection that never became a Conn.
func (sc *sioConn) abort() {
	sc.rd.Close()
	_ = sc.nc.Close()
}
