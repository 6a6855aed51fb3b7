package edge

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	edgev1 "github.com/talim/realtime/proto/talim/edge/v1"
	"github.com/talim/realtime/services/edge/internal/sio"
)

// Connection state recovery (Socket.IO 4.6's connectionStateRecovery; see
// docs/socketio.md, "Connection state recovery"). Every accepted Socket.IO
// connection gets a private session id (pid) in its CONNECT reply, and each
// chat-message it receives carries the offset "<seq>:<roomId>" as its last
// argument. When the connection ends for a reason the client recovers from, the
// edge keeps, for sioRecoveryWindow and at most sioRecoveryMax sessions, the
// user, the rooms the connection had joined and the last seq delivered per room.
// A CONNECT bringing that pid back, for the same user, within the window joins the
// rooms again through chat (membership is checked again) with sinceSeq, sends the
// missed chat-message events in seq order and replies with the same pid, so that
// socket.io-client sets socket.recovered. Anything else (unknown, expired, forged
// pid, another user's pid, a pid of another edge) is a fresh connection.

const (
	// sioRecoveryWindow is how long a disconnected session can be recovered
	// (socket.io's default maxDisconnectionDuration).
	sioRecoveryWindow = 2 * time.Minute
	// sioRecoveryMax bounds the sessions kept per edge; the oldest goes first.
	sioRecoveryMax = 10000
	// sioRecoveryMaxPages bounds the history pages fetched per room.
	sioRecoveryMaxPages = 10
	// sioRecoveryMaxRooms bounds the rooms recorded per session.
	sioRecoveryMaxRooms = 256
)

// sioTrack is the recovery state of one live Socket.IO connection.
type sioTrack struct {
	pid     string
	mu      sync.Mutex
	lastSeq map[string]int64 // per room, the last seq delivered
	floor   map[string]int64 // per room, the lastSeq of the join ack
	discard bool             // ended by a Socket.IO DISCONNECT: not recoverable
}

// delivered records that the chat-message seq of room was queued; it reports
// false when that seq (or a later one) was already queued (a live message that
// the recovery already sent from the store).
func (t *sioTrack) delivered(room string, seq int64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if seq <= t.lastSeq[room] {
		return false
	}
	if t.lastSeq == nil {
		t.lastSeq = make(map[string]int64)
	}
	t.lastSeq[room] = seq
	return true
}

// joined records the lastSeq of a join-chat-room ack: the client got the room's
// history up to there, so a recovery resumes after it. It is not a delivery: a
// live message up to it may still come (its fan-out can trail the join), so it
// does not take part in the live dedupe of delivered.
func (t *sioTrack) joined(ack []byte) {
	var a struct {
		RoomID  string `json:"roomId"`
		LastSeq int64  `json:"lastSeq"`
	}
	if json.Unmarshal(ack, &a) != nil || a.RoomID == "" || a.LastSeq <= 0 {
		return
	}
	t.mu.Lock()
	if t.floor == nil {
		t.floor = make(map[string]int64)
	}
	if len(t.floor) < sioRecoveryMaxRooms {
		t.floor[a.RoomID] = max(t.floor[a.RoomID], a.LastSeq)
	}
	t.mu.Unlock()
}

// sioSaved is a disconnected session kept for recovery.
type sioSaved struct {
	pid     string
	userID  string
	lastSeq map[string]int64 // per joined room, the last seq delivered (0: none)
	expires time.Time
}

// sioRecoveryStore holds the disconnected sessions of one edge, bounded in count
// and time. Safe for concurrent use; it starts no goroutine (expired entries go
// on put and take).
type sioRecoveryStore struct {
	mu     sync.Mutex
	byPID  map[string]*sioSaved
	order  []*sioSaved // insertion order, oldest first
	window time.Duration
	max    int
	now    func() time.Time
}

func newSIORecoveryStore(window time.Duration, maxSessions int) *sioRecoveryStore {
	return &sioRecoveryStore{byPID: make(map[string]*sioSaved), window: window, max: maxSessions, now: time.Now}
}

// expireLocked drops expired entries and, past max, the oldest ones.
func (st *sioRecoveryStore) expireLocked(now time.Time) {
	i := 0
	for i < len(st.order) && (now.After(st.order[i].expires) || len(st.order)-i > st.max) {
		if st.byPID[st.order[i].pid] == st.order[i] {
			delete(st.byPID, st.order[i].pid)
		}
		i++
	}
	if i > 0 {
		clear(st.order[:i])
		st.order = slices.Delete(st.order, 0, i)
	}
}

func (st *sioRecoveryStore) put(e *sioSaved) {
	st.mu.Lock()
	defer st.mu.Unlock()
	now := st.now()
	e.expires = now.Add(st.window)
	st.byPID[e.pid] = e
	st.order = append(st.order, e)
	st.expireLocked(now)
}

// take removes and returns the session of pid when it belongs to userID and has
// not expired; nil otherwise (another user's pid stays for its owner).
func (st *sioRecoveryStore) take(pid, userID string) *sioSaved {
	if pid == "" {
		return nil
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	now := st.now()
	st.expireLocked(now)
	e := st.byPID[pid]
	if e == nil || subtle.ConstantTimeCompare([]byte(e.userID), []byte(userID)) != 1 {
		return nil
	}
	delete(st.byPID, pid)
	if i := slices.Index(st.order, e); i >= 0 {
		st.order = slices.Delete(st.order, i, i+1)
	}
	return e
}

func (st *sioRecoveryStore) len() int {
	st.mu.Lock()
	defer st.mu.Unlock()
	return len(st.byPID)
}

// newPID returns an unguessable private session id (128 random bits).
func newPID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// sioOffset is the recovery offset of a chat-message: "<seq>:<roomId>".
func sioOffset(seq int64, room string) string {
	return strconv.FormatInt(seq, 10) + ":" + room
}

// parseSIOOffset is the inverse of sioOffset (ok false when malformed).
func parseSIOOffset(off string) (seq int64, room string, ok bool) {
	n, room, found := strings.Cut(off, ":")
	if !found || room == "" {
		return 0, "", false
	}
	seq, err := strconv.ParseInt(n, 10, 64)
	if err != nil || seq < 0 {
		return 0, "", false
	}
	return seq, room, true
}

// saveForRecovery keeps the session of an ending connection (called once, from
// terminate, with the rooms it had joined).
func (s *Server) saveForRecovery(c *Conn, rooms map[string]struct{}, d Disconnect) {
	t := c.sio
	if t == nil || s.sioRecovery == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	// Ends the client asked for, and server-side closes that revoke the session
	// (token expiry, control closes, abuse), are not recoverable.
	if t.discard || d.Code == 4001 || d.Code == 1008 {
		return
	}
	e := &sioSaved{pid: t.pid, userID: c.userID, lastSeq: make(map[string]int64, len(rooms))}
	for r := range rooms {
		if len(e.lastSeq) >= sioRecoveryMaxRooms {
			break
		}
		e.lastSeq[r] = max(t.lastSeq[r], t.floor[r])
	}
	s.sioRecovery.put(e)
}

// recoverSession restores saved on the new connection c: for each room (in name
// order) it joins through chat with sinceSeq and sends the missed chat-message
// events in seq order. offset is the client's last offset: it lowers the seq of
// its room when the client saw less than the edge queued. Rooms chat refuses (no
// longer a member, chat unavailable) are skipped. It runs on the reader goroutine
// before the first client frame is read.
func (sc *sioConn) recoverSession(saved *sioSaved, offset string) {
	c := sc.c
	if oseq, oroom, ok := parseSIOOffset(offset); ok {
		if last, in := saved.lastSeq[oroom]; in && oseq < last {
			saved.lastSeq[oroom] = oseq
		}
	}
	rooms := make([]string, 0, len(saved.lastSeq))
	for r := range saved.lastSeq {
		rooms = append(rooms, r)
	}
	slices.Sort(rooms)
	for _, room := range rooms {
		if c.closed.Load() {
			return
		}
		since := saved.lastSeq[room]
		data, _ := json.Marshal(map[string]any{"roomId": room, "sinceSeq": since})
		rep, err := c.request("join-chat-room", data)
		if err != nil || rep.GetError() != nil {
			c.s.log.Debug("socket.io recovery: join refused", "conn", c.id, "room", room, "err", err, "reply", rep.GetError().GetMessage())
			continue
		}
		c.joinRooms(rep.GetJoinRooms())
		more := false
		for _, f := range rep.GetFrames() {
			if f.GetEvent() == "chat-room-history" {
				since, more = sc.sendHistory(room, f.GetData(), since)
			}
		}
		for page := 0; more && page < sioRecoveryMaxPages; page++ {
			data, _ := json.Marshal(map[string]any{"roomId": room, "afterSeq": since})
			rep, err := c.request("get-chat-room-history", data)
			if err != nil || rep.GetError() != nil {
				break
			}
			since, more = sc.sendHistory(room, rep.GetData(), since)
		}
	}
}

// sendHistory sends the messages of a history page as chat-message events; it
// returns the last seq sent (or since) and the page's hasMore.
func (sc *sioConn) sendHistory(room string, page []byte, since int64) (int64, bool) {
	var p struct {
		Messages []json.RawMessage `json:"messages"`
		HasMore  bool              `json:"hasMore"`
	}
	if err := json.Unmarshal(page, &p); err != nil {
		return since, false
	}
	for _, m := range p.Messages {
		var h struct {
			Seq int64 `json:"seq"`
		}
		if json.Unmarshal(m, &h) != nil || h.Seq <= since {
			continue
		}
		since = h.Seq
		if !sc.c.sio.delivered(room, h.Seq) {
			continue
		}
		data := append(append([]byte(`{"message":`), m...), '}')
		off := sioOffset(h.Seq, room)
		sc.enqueueText(func(dst []byte) []byte { return sio.AppendEventOffset(dst, "chat-message", data, off) })
	}
	return since, p.HasMore
}

// request sends one command of the connection's identity to its service and
// waits for the reply (the recovery's own commands, not the client's).
func (c *Conn) request(event string, data []byte) (*edgev1.Reply, error) {
	rt := routes[event]
	deadline := time.Now().Add(c.s.cfg.RequestTimeout)
	payload, err := proto.Marshal(&edgev1.Command{
		Identity: c.identity, ConnectionId: c.id, EdgeId: c.s.rt.InstanceID, Event: rt.event,
		Data: data, DeadlineUnixMs: deadline.UnixMilli(),
		Trace: map[string]string{"traceparent": newTraceparent()},
	})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	msg, err := c.s.rt.NC.RequestWithContext(ctx, rt.subject, payload)
	if err != nil {
		return nil, err
	}
	var rep edgev1.Reply
	if err := proto.Unmarshal(msg.Data, &rep); err != nil {
		return nil, err
	}
	return &rep, nil
}
