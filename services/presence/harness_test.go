package presence

import (
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/talim/realtime/pkg/devstack/testkit"
	"github.com/talim/realtime/pkg/service"
	"github.com/talim/realtime/pkg/subject"
	chatv1 "github.com/talim/realtime/proto/talim/chat/v1"
	edgev1 "github.com/talim/realtime/proto/talim/edge/v1"
	presencev1 "github.com/talim/realtime/proto/talim/presence/v1"
)

// Short timings for tests: heartbeat 200ms, grace 300ms.
const (
	testHeartbeat = 200 * time.Millisecond
	testGrace     = 300 * time.Millisecond
)

func TestMain(m *testing.M) { testkit.Main(m) }

// harness is one NATS server and database shared by the replicas of a test, a
// client that plays the edges, and a recorder of every StatusChange.
type harness struct {
	t        *testing.T
	natsURL  string
	mongoURI string
	db       string
	nc       *nats.Conn

	mu      sync.Mutex
	changes []recorded
	notify  chan struct{}
}

type recorded struct {
	at time.Time
	sc *presencev1.StatusChange
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	n := testkit.NATS(t)
	uri, db := testkit.Mongo(t)
	h := &harness{t: t, natsURL: n.ClientURL(), mongoURI: uri, db: db, notify: make(chan struct{}, 1)}
	h.nc = testkit.NATSConn(t, h.natsURL)
	if _, err := h.nc.Subscribe(subject.PresenceChanged+">", func(m *nats.Msg) {
		var sc presencev1.StatusChange
		if err := proto.Unmarshal(m.Data, &sc); err != nil {
			t.Errorf("bad StatusChange: %v", err)
			return
		}
		h.mu.Lock()
		h.changes = append(h.changes, recorded{time.Now(), &sc})
		h.mu.Unlock()
		select {
		case h.notify <- struct{}{}:
		default:
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := h.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *harness) config(mutate func(*Config)) Config {
	cfg := Config{
		NATS:               service.NATS{URL: h.natsURL},
		Mongo:              service.Mongo{URI: h.mongoURI, Database: h.db},
		AdminAddr:          "127.0.0.1:0",
		Grace:              testGrace,
		Heartbeat:          testHeartbeat,
		Visibility:         VisibilityAll,
		VisibilityTTL:      time.Minute,
		SharedRoomsTimeout: 300 * time.Millisecond,
		MaxSubscriptions:   200,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	return cfg
}

// start runs a replica until the returned stop is called (or the test ends).
func (h *harness) start(mutate func(*Config)) (*Service, func()) {
	h.t.Helper()
	svc, err := New(h.config(mutate), nil)
	if err != nil {
		h.t.Fatal(err)
	}
	p := testkit.Run(h.t, "presence", svc)
	stop := func() { p.Stop() }
	return svc, stop
}

func nowMs() int64 { return time.Now().UnixMilli() }

func (h *harness) publish(subj string, m proto.Message) {
	h.t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.nc.Publish(subj, b); err != nil {
		h.t.Fatal(err)
	}
	if err := h.nc.Flush(); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) connect(edge, conn, user string) {
	h.t.Helper()
	h.publish(subject.PresenceConn+edge, &presencev1.ConnectionEvent{
		Kind: presencev1.ConnectionEvent_KIND_CONNECTED, EdgeId: edge, ConnectionId: conn, UserId: user, AtUnixMs: nowMs(),
	})
}

func (h *harness) disconnect(edge, conn, user string) {
	h.t.Helper()
	h.publish(subject.PresenceConn+edge, &presencev1.ConnectionEvent{
		Kind: presencev1.ConnectionEvent_KIND_DISCONNECTED, EdgeId: edge, ConnectionId: conn, UserId: user, AtUnixMs: nowMs(),
	})
}

// heartbeat publishes one heartbeat of edge listing conns (connection → user).
func (h *harness) heartbeat(edge string, conns map[string]string, stopping bool) {
	h.t.Helper()
	hb := &presencev1.Heartbeat{EdgeId: edge, IntervalMs: testHeartbeat.Milliseconds(), AtUnixMs: nowMs(), Stopping: stopping}
	for c, u := range conns {
		hb.Connections = append(hb.Connections, &presencev1.Connection{ConnectionId: c, UserId: u})
	}
	h.publish(subject.PresenceHeartbeat+edge, hb)
}

// simEdge heartbeats like a real edge until stopped (without a final heartbeat,
// as an edge that dies).
type simEdge struct {
	h     *harness
	id    string
	mu    sync.Mutex
	conns map[string]string
	quit  chan struct{}
	done  chan struct{}
}

func (h *harness) edge(id string) *simEdge {
	e := &simEdge{h: h, id: id, conns: map[string]string{}, quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(e.done)
		tick := time.NewTicker(testHeartbeat)
		defer tick.Stop()
		for {
			select {
			case <-e.quit:
				return
			case <-tick.C:
				e.mu.Lock()
				hb := &presencev1.Heartbeat{EdgeId: id, IntervalMs: testHeartbeat.Milliseconds(), AtUnixMs: nowMs()}
				for c, u := range e.conns {
					hb.Connections = append(hb.Connections, &presencev1.Connection{ConnectionId: c, UserId: u})
				}
				b, _ := proto.Marshal(hb)
				_ = h.nc.Publish(subject.PresenceHeartbeat+id, b)
				e.mu.Unlock()
			}
		}
	}()
	h.t.Cleanup(e.kill)
	return e
}

func (e *simEdge) connect(conn, user string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.conns[conn] = user
	e.h.connect(e.id, conn, user)
}

func (e *simEdge) disconnect(conn string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	user := e.conns[conn]
	delete(e.conns, conn)
	e.h.disconnect(e.id, conn, user)
}

// kill stops heartbeating without a word; it returns when the last heartbeat went out.
func (e *simEdge) kill() {
	select {
	case <-e.quit:
	default:
		close(e.quit)
	}
	<-e.done
}

// command sends a client event as the edge would and returns the reply.
func (h *harness) command(user, edge, conn, event, data string) *edgev1.Reply {
	h.t.Helper()
	b, err := proto.Marshal(&edgev1.Command{
		Identity: &edgev1.Identity{UserId: user}, ConnectionId: conn, EdgeId: edge, Event: event, Data: []byte(data),
		DeadlineUnixMs: time.Now().Add(5 * time.Second).UnixMilli(),
	})
	if err != nil {
		h.t.Fatal(err)
	}
	m, err := h.nc.Request(subject.Command("presence", event), b, 5*time.Second)
	if err != nil {
		h.t.Fatalf("%s: %v", event, err)
	}
	var r edgev1.Reply
	if err := proto.Unmarshal(m.Data, &r); err != nil {
		h.t.Fatal(err)
	}
	return &r
}

type ackItem struct {
	UserID     string  `json:"userId"`
	Status     string  `json:"status"`
	LastSeenAt *string `json:"lastSeenAt"`
}

// subscribe sends subscribe-presence and returns the ack items by user.
func (h *harness) subscribe(user, edge, conn string, ids ...string) (map[string]ackItem, *edgev1.Reply) {
	h.t.Helper()
	data, _ := json.Marshal(map[string]any{"userIds": ids})
	r := h.command(user, edge, conn, "subscribe-presence", string(data))
	if r.GetError() != nil {
		h.t.Fatalf("subscribe-presence: %v", r.GetError())
	}
	var ack struct {
		Presence []ackItem `json:"presence"`
	}
	if err := json.Unmarshal(r.GetData(), &ack); err != nil {
		h.t.Fatalf("ack %s: %v", r.GetData(), err)
	}
	out := map[string]ackItem{}
	for _, it := range ack.Presence {
		out[it.UserID] = it
	}
	if len(ack.Presence) != len(ids) {
		h.t.Fatalf("ack has %d entries for %d ids: %s", len(ack.Presence), len(ids), r.GetData())
	}
	return out, r
}

// changesFor returns the StatusChanges recorded for user so far.
func (h *harness) changesFor(user string) []recorded {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []recorded
	for _, r := range h.changes {
		if r.sc.GetUserId() == user {
			out = append(out, r)
		}
	}
	return out
}

// waitChange waits until the n-th (1-based) change of user arrived and returns it.
func (h *harness) waitChange(user string, n int, within time.Duration) recorded {
	h.t.Helper()
	deadline := time.After(within)
	for {
		if cs := h.changesFor(user); len(cs) >= n {
			return cs[n-1]
		}
		select {
		case <-h.notify:
		case <-time.After(5 * time.Millisecond):
		case <-deadline:
			h.t.Fatalf("no change #%d for %s within %s; got %v", n, user, within, h.changesFor(user))
		}
	}
}

// expectNoMore fails if user gets more than n changes during d.
func (h *harness) expectNoMore(user string, n int, d time.Duration) {
	h.t.Helper()
	deadline := time.After(d)
	for {
		if cs := h.changesFor(user); len(cs) > n {
			h.t.Fatalf("unexpected change for %s: %v", user, cs[n].sc)
		}
		select {
		case <-h.notify:
		case <-time.After(10 * time.Millisecond):
		case <-deadline:
			return
		}
	}
}

// query asks talim.presence.v1.query.
func (h *harness) query(ids ...string) QueryResponse {
	h.t.Helper()
	b, _ := json.Marshal(QueryRequest{UserIDs: ids})
	m, err := h.nc.Request(subject.PresenceQuery, b, 5*time.Second)
	if err != nil {
		h.t.Fatal(err)
	}
	var r QueryResponse
	if err := json.Unmarshal(m.Data, &r); err != nil {
		h.t.Fatal(err)
	}
	return r
}

// fakeChat answers shared-rooms requests from a room table: users see each other
// when they share a room.
type fakeChat struct {
	mu    sync.Mutex
	rooms map[string][]string
	asks  int
	sub   *nats.Subscription
}

func (h *harness) fakeChat(rooms map[string][]string) *fakeChat {
	h.t.Helper()
	fc := &fakeChat{rooms: rooms}
	sub, err := h.nc.QueueSubscribe(subject.ChatSharedRooms, "chat", func(m *nats.Msg) {
		var req chatv1.SharedRoomsRequest
		if err := proto.Unmarshal(m.Data, &req); err != nil {
			return
		}
		fc.mu.Lock()
		fc.asks++
		var visible []string
		for _, other := range req.GetOtherUserIds() {
			for _, members := range fc.rooms {
				if contains(members, req.GetUserId()) && contains(members, other) {
					visible = append(visible, other)
					break
				}
			}
		}
		fc.mu.Unlock()
		b, _ := proto.Marshal(&chatv1.SharedRoomsResponse{VisibleUserIds: visible})
		_ = m.Respond(b)
	})
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.nc.Flush(); err != nil {
		h.t.Fatal(err)
	}
	fc.sub = sub
	return fc
}

func (fc *fakeChat) setRoom(room string, members ...string) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	fc.rooms[room] = members
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func protoMarshal(m proto.Message) ([]byte, error) { return proto.Marshal(m) }
