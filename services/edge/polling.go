package edge

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"

	"github.com/talim/realtime/pkg/auth"
	"github.com/talim/realtime/services/edge/internal/sio"
	"github.com/talim/realtime/services/edge/internal/wsio"
)

// Engine.IO v4 HTTP long-polling on /socket.io/ (docs/socketio.md, docs/protocol.md "Socket.IO clients").
//
// A polling session is a Socket.IO connection like any other: the same sioConn
// (handshake, CONNECT authentication, Engine.IO pings) and, once the CONNECT is
// accepted, the same Conn with its rate limits, rooms, writer queue, slow-consumer
// close and drain. Only its net.Conn differs: a pollPipe (polling_pipe.go) that
// keeps outbound packets for the next GET. Requests:
//
//	GET  ?EIO=4&transport=polling            handshake: the open packet, "upgrades":["websocket"]
//	GET  ?EIO=4&transport=polling&sid=S      waits for packets (record-separated), "1" at the end
//	POST ?EIO=4&transport=polling&sid=S      packets from the client, answered "ok"
//	GET  ?EIO=4&transport=websocket&sid=S    upgrade: 2probe/3probe, noop to the GET, then 5
//
// One GET and one POST at a time per session; an overlapping request is refused
// (400) and closes the session, as in the reference server. Inbound packets are
// handled under pollSession.inMu, whether they come from a POST or, after the
// upgrade, from the WebSocket reader, so the codec's Session still sees them one at
// a time and in order.
//
// Several edges: the sid names the edge that holds the session and is signed
// (HMAC-SHA256, key derived from the JWT secret, so every edge of a deployment can
// verify it). A request that reaches another edge is answered 400 with a message
// naming both edges; socket.io-client treats that as a transport error and makes a
// fresh handshake. Deployments keep one session on one edge with cookie affinity on
// /socket.io/ (deploy/k8s ingress).
//
// Goroutines: none per session. GETs and POSTs run on the HTTP server's request
// goroutines; the connect timeout and the linger after close are timers; after the
// upgrade the WebSocket's upgrade request goroutine reads it (counted in connsWG).

// pollBufferBytes bounds the packets a polling session keeps for its next GET (the
// pipe's "socket buffer"; a single larger packet is still accepted when it is empty).
// Past it, outbound frames wait in the Conn's writer queue, whose limits apply.
const pollBufferBytes = 64 << 10

// pollLinger is how long a closed session stays known so that the client's next
// GET gets its last packets and the close packet instead of "unknown session".
const pollLinger = 5 * time.Second

// pollSession is one polling (or upgraded) Socket.IO session.
type pollSession struct {
	reg  *pollRegistry
	sid  string
	sc   *sioConn
	pipe *pollPipe

	inMu     sync.Mutex // inbound packets, one at a time (see above)
	pre      *auth.Claims
	frames   int    // packets before the CONNECT was accepted
	scratch  []byte // reply scratch of handleText
	reserved atomic.Bool

	connectTimer *time.Timer
	lingerTimer  *time.Timer // guarded by reg.mu

	getBusy, postBusy, upgrading atomic.Bool
}

// pollRegistry holds this edge's polling sessions by sid.
type pollRegistry struct {
	s    *Server
	edge string // this edge's name in sids
	key  []byte

	mu       sync.Mutex
	sessions map[string]*pollSession
	closed   bool
}

func newPollRegistry(s *Server, instanceID string) *pollRegistry {
	var key []byte
	if s.cfg.JWTSecret != "" {
		m := hmac.New(sha256.New, []byte(s.cfg.JWTSecret))
		m.Write([]byte("talim edge socket.io sid v1"))
		key = m.Sum(nil)
	} else { // JWKS only: sids verify on this edge only
		key = make([]byte, 32)
		_, _ = rand.Read(key)
	}
	return &pollRegistry{s: s, edge: sidEdgeName(instanceID), key: key, sessions: map[string]*pollSession{}}
}

// sidEdgeName keeps the characters of an edge id that need no escaping in a URL.
func sidEdgeName(id string) string {
	b := []byte(id)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			b[i] = '-'
		}
	}
	if len(b) > 64 {
		b = b[len(b)-64:]
	}
	return string(b)
}

const (
	sidNonceBytes = 12
	sidMACBytes   = 12
	sidTailLen    = (sidNonceBytes + sidMACBytes) * 4 / 3 // base64url characters
)

// newSID returns <edge>~<nonce><mac>, base64url, the MAC over "<edge>~<nonce>".
func (r *pollRegistry) newSID() string {
	var nonce [sidNonceBytes]byte
	_, _ = rand.Read(nonce[:])
	body := r.edge + "~" + base64.RawURLEncoding.EncodeToString(nonce[:])
	return body + base64.RawURLEncoding.EncodeToString(r.mac(body))
}

func (r *pollRegistry) mac(body string) []byte {
	m := hmac.New(sha256.New, r.key)
	m.Write([]byte(body))
	return m.Sum(nil)[:sidMACBytes]
}

// verifySID returns the edge a well-formed, authentic sid names.
func (r *pollRegistry) verifySID(sid string) (edge string, ok bool) {
	i := strings.LastIndexByte(sid, '~')
	if i <= 0 || len(sid)-i-1 != sidTailLen {
		return "", false
	}
	split := len(sid) - sidMACBytes*4/3
	mac, err := base64.RawURLEncoding.DecodeString(sid[split:])
	if err != nil || !hmac.Equal(mac, r.mac(sid[:split])) {
		return "", false
	}
	return sid[:i], true
}

// lookup finds a session of this edge, or returns the refusal message.
func (r *pollRegistry) lookup(sid string) (*pollSession, string, string) {
	r.mu.Lock()
	ps := r.sessions[sid]
	r.mu.Unlock()
	if ps != nil {
		return ps, "", ""
	}
	edge, ok := r.verifySID(sid)
	switch {
	case !ok:
		return nil, "sio_sid_invalid", "unknown session id: make a new handshake (socket.io-client does so on its own)"
	case edge != r.edge:
		return nil, "sio_sid_other_edge", "session " + sid + " is held by edge " + edge + ", this is edge " + r.edge +
			": every request of a polling session must reach the same edge (cookie affinity for /socket.io/, docs/socketio.md); make a new handshake"
	}
	return nil, "sio_sid_unknown", "session closed or expired: make a new handshake (socket.io-client does so on its own)"
}

// add registers a new session; false after close (the edge is stopping).
func (r *pollRegistry) add(ps *pollSession) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	r.sessions[ps.sid] = ps
	return true
}

// remove forgets a session (now, or after pollLinger).
func (r *pollRegistry) remove(ps *pollSession, after time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sessions[ps.sid] != ps {
		return
	}
	if after <= 0 {
		if ps.lingerTimer != nil {
			ps.lingerTimer.Stop()
		}
		delete(r.sessions, ps.sid)
		return
	}
	if ps.lingerTimer == nil {
		ps.lingerTimer = time.AfterFunc(after, func() { r.remove(ps, 0) })
	}
}

// close ends every session still waiting for its CONNECT (accepted ones were
// drained like any connection) and stops every timer. Called once the edge drained.
func (r *pollRegistry) close() {
	r.mu.Lock()
	r.closed = true
	list := make([]*pollSession, 0, len(r.sessions))
	for _, ps := range r.sessions {
		list = append(list, ps)
	}
	r.mu.Unlock()
	for _, ps := range list {
		ps.fail(DisconnectRestart)
		r.remove(ps, 0)
	}
}

// handlePolling serves the polling transport (GET or POST, sid may be empty).
func (s *Server) handlePolling(w http.ResponseWriter, r *http.Request, sid string) {
	if sid == "" {
		if r.Method != http.MethodGet {
			s.sioBadRequest(w, r, "sio_handshake", "a polling session starts with a GET without sid")
			return
		}
		s.pollHandshake(w, r)
		return
	}
	if !s.originAllowed(r) {
		s.refuse(w, http.StatusForbidden, "forbidden", "origin", "origin not allowed")
		return
	}
	ps, reason, msg := s.polls.lookup(sid)
	if ps == nil {
		s.sioBadRequest(w, r, reason, msg)
		return
	}
	if r.Method == http.MethodGet {
		ps.get(w, r)
	} else {
		ps.post(w, r)
	}
}

// pollHandshake opens a polling session: the refusals of every connection first
// (admit; credentials in the request are checked now, like on /ws), then the open
// packet. The CONNECT must follow within the connect timeout.
func (s *Server) pollHandshake(w http.ResponseWriter, r *http.Request) {
	if !s.admit(w, r) {
		return
	}
	var pre *auth.Claims
	if s.hasCredentials(r) {
		c, ok := s.authenticateAndReserve(w, r)
		if !ok {
			return
		}
		pre = &c
	}
	pi, pt, ct := s.sioTimeouts()
	local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	pipe := newPollPipe(pollBufferBytes, local, remoteAddr(r.RemoteAddr))
	ps := &pollSession{reg: s.polls, sid: s.polls.newSID(), pipe: pipe, pre: pre}
	ps.reserved.Store(pre != nil)
	ps.sc = &sioConn{s: s, nc: pipe, sess: sio.NewSession(nil), pingInterval: pi, pingTimeout: pt,
		closed: func(error) { s.connsWG.Done() }}
	ps.sc.sess.SID = ps.sid
	pipe.onClose = ps.pipeClosed
	if !s.polls.add(ps) {
		ps.releaseSlot()
		w.Header().Set("Retry-After", "1")
		s.refuse(w, http.StatusServiceUnavailable, "unavailable", "draining", "server is restarting, connect again")
		return
	}
	ps.inMu.Lock()
	ps.connectTimer = time.AfterFunc(ct, ps.connectTimeout)
	ps.inMu.Unlock()
	open := sio.AppendOpenPolling(nil, ps.sid, pi.Milliseconds(), pt.Milliseconds(), int64(s.cfg.MaxFrameBytes))
	s.pollRespond(w, r, "text/plain; charset=UTF-8", open)
}

// remoteAddr is a net.Addr for the request's peer.
type remoteAddr string

func (a remoteAddr) Network() string { return "tcp" }
func (a remoteAddr) String() string  { return string(a) }

// pollRespond writes a 200 answer with CORS headers for an allowed Origin.
func (s *Server) pollRespond(w http.ResponseWriter, r *http.Request, contentType string, body []byte) {
	h := w.Header()
	s.corsHeaders(h, r)
	h.Set("Content-Type", contentType)
	h.Set("Cache-Control", "no-store")
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// corsHeaders lets an allowed cross-origin page read the answer, with credentials
// (socket.io-client's withCredentials). Callers checked originAllowed.
func (s *Server) corsHeaders(h http.Header, r *http.Request) {
	if o := r.Header.Get("Origin"); o != "" {
		h.Set("Access-Control-Allow-Origin", o)
		h.Set("Access-Control-Allow-Credentials", "true")
		h.Add("Vary", "Origin")
	}
}

// handleSocketIOPreflight answers CORS preflights of /socket.io/ (a page that sets
// extraHeaders on the polling transport sends them).
func (s *Server) handleSocketIOPreflight(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Origin") == "" || !s.originAllowed(r) {
		s.refuse(w, http.StatusForbidden, "forbidden", "origin", "origin not allowed")
		return
	}
	h := w.Header()
	s.corsHeaders(h, r)
	h.Set("Access-Control-Allow-Methods", "GET, POST")
	if rh := r.Header.Get("Access-Control-Request-Headers"); rh != "" {
		h.Set("Access-Control-Allow-Headers", rh)
	}
	h.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
}

// get answers a polling GET with the waiting packets (it waits for some).
func (ps *pollSession) get(w http.ResponseWriter, r *http.Request) {
	s := ps.sc.s
	if !ps.getBusy.CompareAndSwap(false, true) {
		s.sioBadRequest(w, r, "sio_overlap", "another GET of this session is still open")
		ps.fail(disconnectSIOProtocol)
		return
	}
	defer ps.getBusy.Store(false)
	payload, closing := ps.pipe.take(r.Context().Done())
	if payload == nil {
		return // the client went away
	}
	s.pollRespond(w, r, "text/plain; charset=UTF-8", payload)
	if closing {
		// Known a little longer: the client's own close POST may still be on its way.
		ps.reg.remove(ps, pollLinger)
	}
}

// post handles the packets of a polling POST.
func (ps *pollSession) post(w http.ResponseWriter, r *http.Request) {
	s := ps.sc.s
	if !ps.postBusy.CompareAndSwap(false, true) {
		s.sioBadRequest(w, r, "sio_overlap", "another POST of this session is still open")
		ps.fail(disconnectSIOProtocol)
		return
	}
	defer ps.postBusy.Store(false)
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(s.cfg.MaxFrameBytes)))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			s.corsHeaders(w.Header(), r)
			s.refuse(w, http.StatusRequestEntityTooLarge, "bad_request", "sio_too_big", "payload larger than maxPayload")
			ps.fail(DisconnectTooBig)
		}
		return
	}
	if len(body) == 0 {
		s.sioBadRequest(w, r, "sio_empty", "empty payload")
		return
	}
	for len(body) > 0 {
		pkt := body
		if i := indexByte(body, pollSeparator); i >= 0 {
			pkt, body = body[:i], body[i+1:]
		} else {
			body = nil
		}
		if !ps.handleInbound(pkt) {
			break
		}
	}
	s.pollRespond(w, r, "text/html", []byte("ok"))
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

// handleInbound handles one Engine.IO packet from the client (POST, or the WebSocket
// after the upgrade). It reports false once the session is over.
func (ps *pollSession) handleInbound(pkt []byte) bool {
	ps.inMu.Lock()
	defer ps.inMu.Unlock()
	sc := ps.sc
	if c := sc.c; c != nil {
		c.lastRead.Store(time.Now().UnixNano())
		c.s.metrics.frameIn(len(pkt))
		if c.closed.Load() {
			return false
		}
		ps.scratch = sc.handleText(pkt, ps.scratch[:0])
		return !c.closed.Load()
	}
	if ps.pipe.isClosed() {
		return false
	}
	ps.frames++
	if ps.frames > sioMaxHandshakeFrames {
		sc.refuse(nil, disconnectSIOProtocol)
		return false
	}
	claims, done, ok := sc.handshakeText(pkt, ps.pre)
	if !ok || !done {
		return ok
	}
	ps.connectTimer.Stop()
	if ps.pre == nil && !sc.reserve(claims.UserID) {
		return false
	}
	ps.reserved.Store(false) // the Conn owns the slot from here
	sc.start(claims)
	return true
}

// connectTimeout closes a session whose CONNECT did not come in time.
func (ps *pollSession) connectTimeout() {
	ps.inMu.Lock()
	defer ps.inMu.Unlock()
	if ps.sc.c != nil || ps.pipe.isClosed() {
		return
	}
	ps.sc.s.metrics.refused("sio_connect_timeout")
	ps.sc.refuse(nil, disconnectSIONoConnect)
}

// fail closes the session with d, whatever its phase.
func (ps *pollSession) fail(d Disconnect) {
	ps.inMu.Lock()
	c := ps.sc.c
	if c == nil && !ps.pipe.isClosed() {
		ps.sc.refuse(nil, d)
	}
	ps.inMu.Unlock()
	if c != nil {
		c.Close(d)
	}
}

// pipeClosed runs once the pipe closed: the slot reserved for a session that never
// connected is given back, and the session is forgotten (after the linger, so that a
// polling client still gets its close packet).
func (ps *pollSession) pipeClosed() {
	ps.releaseSlot()
	if ps.connectTimer != nil {
		ps.connectTimer.Stop()
	}
	if ps.pipe.upgraded() {
		ps.reg.remove(ps, 0)
		return
	}
	ps.reg.remove(ps, pollLinger)
}

func (ps *pollSession) releaseSlot() {
	if ps.reserved.Swap(false) {
		ps.sc.s.hub.release(ps.pre.UserID)
	}
}

// handlePollUpgrade upgrades polling session sid to WebSocket (Engine.IO upgrade).
func (s *Server) handlePollUpgrade(w http.ResponseWriter, r *http.Request, sid string) {
	if !s.originAllowed(r) {
		s.refuse(w, http.StatusForbidden, "forbidden", "origin", "origin not allowed")
		return
	}
	ps, reason, msg := s.polls.lookup(sid)
	if ps == nil {
		s.sioBadRequest(w, r, reason, msg)
		return
	}
	if ps.pipe.upgraded() || !ps.upgrading.CompareAndSwap(false, true) {
		s.sioBadRequest(w, r, "sio_upgrade", "this session is already upgrading or upgraded")
		return
	}
	conn, rw, _, err := ws.UpgradeHTTP(r, w)
	if err != nil {
		ps.upgrading.Store(false)
		s.metrics.refused("handshake")
		if conn != nil {
			_ = conn.Close()
		}
		return
	}
	ps.serveUpgrade(conn, leftovers(conn, rw))
}

// serveUpgrade runs the probe (2probe → 3probe, a noop for the GET), waits for the
// upgrade packet 5, moves the session onto the WebSocket and reads it until it ends.
func (ps *pollSession) serveUpgrade(conn net.Conn, src io.Reader) {
	s := ps.sc.s
	_, pt, _ := s.sioTimeouts()
	rd := wsio.Reader{Src: src, MaxMessage: s.cfg.MaxFrameBytes}
	defer rd.Close()
	abandon := func() {
		ps.upgrading.Store(false)
		_ = conn.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
		_, _ = conn.Write(wsio.CloseFrame(disconnectSIOProtocol.Code, "socket.io upgrade failed"))
		_ = conn.Close()
	}
	_ = conn.SetReadDeadline(time.Now().Add(pt))
	if !expectText(&rd, "2probe") {
		abandon()
		return
	}
	_ = conn.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
	if _, err := conn.Write(textFrame([]byte("3probe"))); err != nil {
		abandon()
		return
	}
	ps.pipe.sendNoop()
	if !expectText(&rd, "5") {
		abandon()
		return
	}
	_ = conn.SetReadDeadline(time.Time{})
	if err := ps.pipe.upgrade(conn, s.cfg.WriteTimeout); err != nil {
		abandon()
		return
	}
	s.connsWG.Add(1) // this reader
	defer s.connsWG.Done()
	for {
		msg, err := rd.Next()
		if err != nil {
			ps.readFailed(err)
			return
		}
		switch msg.Op {
		case ws.OpText:
			ps.handleInbound(msg.Payload)
		case ws.OpPing:
			ps.inMu.Lock()
			if c := ps.sc.c; c != nil {
				c.enqueue(wsio.Control(ws.OpPong, msg.Payload), nil)
			}
			ps.inMu.Unlock()
		case ws.OpClose:
			code, _ := ws.ParseCloseFrameData(msg.Payload)
			ps.inMu.Lock()
			c := ps.sc.c
			ps.inMu.Unlock()
			if c != nil {
				c.closeByClient(code)
			} else {
				_ = ps.pipe.Close()
			}
		}
		msg.Release()
	}
}

// expectText reads one message and reports whether it is the text want.
func expectText(rd *wsio.Reader, want string) bool {
	msg, err := rd.Next()
	if err != nil {
		return false
	}
	ok := msg.Op == ws.OpText && string(msg.Payload) == want
	msg.Release()
	return ok
}

// readFailed ends an upgraded session whose WebSocket failed.
func (ps *pollSession) readFailed(err error) {
	ps.inMu.Lock()
	c := ps.sc.c
	ps.inMu.Unlock()
	if c != nil {
		c.readFailed(err)
		return
	}
	_ = ps.pipe.Close()
}
