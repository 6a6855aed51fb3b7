package client

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// fakeServer speaks enough of the protocol for the client's tests: connected, acks
// and errors, rooms with seq-numbered messages, history paging, clientMsgId dedupe,
// auth-refresh. Knobs let tests drop live deliveries, kill sockets and refuse dials.
type fakeServer struct {
	t   *testing.T
	srv *httptest.Server
	url string

	mu         sync.Mutex
	conns      map[*fakeConn]struct{}
	nConns     int
	dials      []time.Time
	refuse     int // HTTP status for upgrades; 0 accepts
	rooms      map[string][]json.RawMessage
	byClientID map[string]json.RawMessage
	received   map[string]int // clientMsgId → send-chat-message frames received
	joins      []fakeJoin
	histReqs   []map[string]any
	refreshes  []string
	ids        []json.RawMessage
	pageSize   int                  // history page size for sinceSeq/afterSeq (default 200)
	dropLive   func(seq int64) bool // skip live delivery of a message
	dropBefore func(clientMsgID string) bool
	dupLive    bool // deliver every live message twice
	rateLimit  func(clientMsgID string) bool
}

type fakeJoin struct {
	Conn     int
	RoomID   string
	SinceSeq *int64
}

type fakeConn struct {
	n      int
	nc     net.Conn
	user   string
	wmu    sync.Mutex
	joined map[string]bool
}

func newFakeServer(t *testing.T) *fakeServer {
	t.Helper()
	s := &fakeServer{
		t: t, conns: map[*fakeConn]struct{}{}, rooms: map[string][]json.RawMessage{},
		byClientID: map[string]json.RawMessage{}, received: map[string]int{}, pageSize: 200,
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serveWS))
	s.url = "ws" + strings.TrimPrefix(s.srv.URL, "http") + "/ws"
	t.Cleanup(func() {
		s.killAll()
		s.srv.Close()
	})
	return s
}

func (s *fakeServer) serveWS(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.dials = append(s.dials, time.Now())
	refuse := s.refuse
	s.mu.Unlock()
	user := r.URL.Query().Get("userId")
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		user = subOf(tok)
	}
	if user == "" && refuse == 0 {
		refuse = http.StatusUnauthorized
	}
	if refuse != 0 {
		w.Header().Set("Content-Type", "application/json")
		body := fmt.Sprintf(`{"error":{"code":"refused","message":"status %d"}}`, refuse)
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		w.WriteHeader(refuse)
		fmt.Fprint(w, body)
		return
	}
	nc, _, _, err := ws.UpgradeHTTP(r, w)
	if err != nil {
		return
	}
	s.mu.Lock()
	s.nConns++
	c := &fakeConn{n: s.nConns, nc: nc, user: user, joined: map[string]bool{}}
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		nc.Close()
	}()
	c.write("connected", nil, map[string]any{"userId": user, "connectionId": fmt.Sprintf("c_%d", c.n),
		"serverTime": time.Now().UTC().Format(time.RFC3339Nano), "pingIntervalMs": 25000})
	for {
		p, op, err := wsutil.ReadClientData(nc)
		if err != nil {
			return
		}
		if op != ws.OpText {
			continue
		}
		var env struct {
			Event string          `json:"event"`
			ID    json.RawMessage `json:"id"`
			Data  json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(p, &env); err != nil {
			c.write("error", nil, map[string]any{"code": "bad_request", "message": err.Error()})
			continue
		}
		s.mu.Lock()
		s.ids = append(s.ids, env.ID)
		s.mu.Unlock()
		s.handle(c, env.Event, env.ID, env.Data)
	}
}

func subOf(tok string) string {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return tok
	}
	b, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims struct{ Sub string }
	_ = json.Unmarshal(b, &claims)
	return claims.Sub
}

// fakeJWT builds an unsigned token the fake server accepts and the client can read
// the exp of.
func fakeJWT(sub string, exp time.Time) string {
	enc := base64.RawURLEncoding
	claims, _ := json.Marshal(map[string]any{"sub": sub, "exp": exp.Unix(), "nonce": time.Now().UnixNano()})
	return enc.EncodeToString([]byte(`{"alg":"none"}`)) + "." + enc.EncodeToString(claims) + ".sig"
}

func (c *fakeConn) write(event string, id json.RawMessage, data any) {
	env := map[string]any{"event": event, "data": data}
	if len(id) > 0 {
		env["id"] = id
	}
	p, _ := json.Marshal(env)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = wsutil.WriteServerText(c.nc, p)
}

func (s *fakeServer) handle(c *fakeConn, event string, id json.RawMessage, raw json.RawMessage) {
	var d struct {
		RoomID      string  `json:"roomId"`
		SinceSeq    *int64  `json:"sinceSeq"`
		AfterSeq    *int64  `json:"afterSeq"`
		BeforeSeq   *int64  `json:"beforeSeq"`
		Limit       int     `json:"limit"`
		Content     string  `json:"content"`
		ClientMsgID string  `json:"clientMsgId"`
		Token       string  `json:"token"`
		Code        string  `json:"code"`
		RetryAfter  int64   `json:"retryAfterMs"`
		Extra       *string `json:"extra"`
	}
	_ = json.Unmarshal(raw, &d)
	switch event {
	case "echo":
		c.write("ack", id, json.RawMessage(raw))
	case "noreply":
	case "fail":
		c.write("error", id, map[string]any{"code": d.Code, "message": "failed as asked", "retryAfterMs": d.RetryAfter})
	case "ping":
		c.write("ack", id, map[string]any{})
	case "auth-refresh":
		s.mu.Lock()
		s.refreshes = append(s.refreshes, d.Token)
		s.mu.Unlock()
		c.write("ack", id, map[string]any{})
	case "join-chat-room":
		s.mu.Lock()
		s.joins = append(s.joins, fakeJoin{Conn: c.n, RoomID: d.RoomID, SinceSeq: d.SinceSeq})
		c.joined[d.RoomID] = true
		msgs := s.rooms[d.RoomID]
		last := int64(len(msgs))
		var page []json.RawMessage
		more := false
		if d.SinceSeq != nil {
			page, more = s.pageAfter(d.RoomID, *d.SinceSeq, s.pageSize)
		} else {
			limit := d.Limit
			if limit <= 0 {
				limit = 50
			}
			from := max(0, len(msgs)-limit)
			page, more = append([]json.RawMessage(nil), msgs[from:]...), from > 0
		}
		s.mu.Unlock()
		c.write("ack", id, map[string]any{"roomId": d.RoomID, "lastSeq": last, "lastReadSeq": 0, "unread": 0})
		c.write("chat-room-history", nil, map[string]any{"roomId": d.RoomID, "messages": page, "hasMore": more})
	case "leave-chat-room":
		s.mu.Lock()
		delete(c.joined, d.RoomID)
		s.mu.Unlock()
		c.write("ack", id, map[string]any{"roomId": d.RoomID})
	case "get-chat-room-history":
		s.mu.Lock()
		var m map[string]any
		_ = json.Unmarshal(raw, &m)
		s.histReqs = append(s.histReqs, m)
		after := int64(0)
		if d.AfterSeq != nil {
			after = *d.AfterSeq
		}
		limit := d.Limit
		if limit <= 0 || limit > s.pageSize {
			limit = s.pageSize
		}
		page, more := s.pageAfter(d.RoomID, after, limit)
		s.mu.Unlock()
		c.write("ack", id, map[string]any{"roomId": d.RoomID, "messages": page, "hasMore": more})
	case "send-chat-message":
		s.mu.Lock()
		s.received[d.ClientMsgID]++
		if m, ok := s.byClientID[d.ClientMsgID]; ok {
			s.mu.Unlock()
			c.write("ack", id, map[string]any{"message": m})
			return
		}
		if s.rateLimit != nil && s.rateLimit(d.ClientMsgID) {
			s.mu.Unlock()
			c.write("error", id, map[string]any{"code": "rate_limited", "message": "slow down", "retryAfterMs": 30})
			return
		}
		drop := s.dropBefore != nil && s.dropBefore(d.ClientMsgID)
		s.mu.Unlock()
		m := s.store(d.RoomID, c.user, d.Content, d.ClientMsgID)
		if drop {
			c.nc.Close() // stored, but the ack is lost with the socket
		}
		s.broadcast(d.RoomID, m)
		if !drop {
			c.write("ack", id, map[string]any{"message": m})
		}
	default:
		c.write("error", id, map[string]any{"code": "unknown_event", "message": event})
	}
}

// pageAfter returns up to limit messages with seq > after. Caller holds s.mu.
func (s *fakeServer) pageAfter(roomID string, after int64, limit int) ([]json.RawMessage, bool) {
	msgs := s.rooms[roomID]
	from := min(int(max(after, 0)), len(msgs))
	to := min(from+limit, len(msgs))
	return append([]json.RawMessage(nil), msgs[from:to]...), to < len(msgs)
}

func (s *fakeServer) store(roomID, sender, content, clientMsgID string) json.RawMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	seq := len(s.rooms[roomID]) + 1
	m, _ := json.Marshal(map[string]any{
		"id": fmt.Sprintf("m_%s_%d", roomID, seq), "roomId": roomID, "seq": seq, "senderId": sender,
		"senderName": "User " + sender, "type": "text", "content": content, "clientMsgId": clientMsgID,
		"createdAt": time.Now().UTC().Format(time.RFC3339Nano), "editedAt": nil, "deleted": false,
		"futureField": "kept",
	})
	s.rooms[roomID] = append(s.rooms[roomID], m)
	if clientMsgID != "" {
		s.byClientID[clientMsgID] = m
	}
	return m
}

func (s *fakeServer) broadcast(roomID string, m json.RawMessage) {
	var seq struct{ Seq int64 }
	_ = json.Unmarshal(m, &seq)
	s.mu.Lock()
	var to []*fakeConn
	for c := range s.conns {
		if c.joined[roomID] {
			to = append(to, c)
		}
	}
	drop := s.dropLive != nil && s.dropLive(seq.Seq)
	dup := s.dupLive
	s.mu.Unlock()
	if drop {
		return
	}
	for _, c := range to {
		c.write("chat-message", nil, map[string]any{"message": m})
		if dup {
			c.write("chat-message", nil, map[string]any{"message": m})
		}
	}
}

// post stores and delivers a message from another user.
func (s *fakeServer) post(roomID, content string) {
	s.broadcast(roomID, s.store(roomID, "other", content, ""))
}

func (s *fakeServer) killAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.nc.Close()
	}
}

func (s *fakeServer) closeAll(code ws.StatusCode) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.wmu.Lock()
		_ = ws.WriteFrame(c.nc, ws.NewCloseFrame(ws.NewCloseFrameBody(code, "test")))
		c.wmu.Unlock()
	}
}

func (s *fakeServer) set(fn func(s *fakeServer)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(s)
}

func (s *fakeServer) get(fn func(s *fakeServer)) { s.set(fn) }

func (s *fakeServer) connCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
