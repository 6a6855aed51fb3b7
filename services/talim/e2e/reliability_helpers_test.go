package e2e

// Helpers of the reliability suite (fault_*, cluster_*, security_* tests): a "rig"
// runs infrastructure the test owns (NATS on a fixed port so it can come back on the
// same address, a FerretDB it can stop and start again) and every service as its own
// instance with its own lifetime, so a test can kill and restart any of them.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/nats-io/nats.go"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/talim/realtime/pkg/auth"
	"github.com/talim/realtime/pkg/client"
	"github.com/talim/realtime/pkg/config"
	"github.com/talim/realtime/pkg/devstack"
	"github.com/talim/realtime/pkg/devstack/testkit"
	"github.com/talim/realtime/pkg/grpcx"
	"github.com/talim/realtime/pkg/service"
	chatv1 "github.com/talim/realtime/proto/talim/chat/v1"
	"github.com/talim/realtime/services/chat"
	"github.com/talim/realtime/services/edge"
	"github.com/talim/realtime/services/notification"
	"github.com/talim/realtime/services/presence"
)

// rigWait bounds every wait of the reliability tests.
const rigWait = 20 * time.Second

// fastBackoff makes pkg/client reconnect quickly in tests.
var fastBackoff = client.Backoff{Initial: 20 * time.Millisecond, Max: 250 * time.Millisecond}

// rigLog is where the services log; TALIM_TEST_LOG=1 shows them.
func rigLog() *slog.Logger {
	if os.Getenv("TALIM_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// freeAddr returns a loopback address whose port was free a moment ago (for servers
// that must come back on the same address after a restart).
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func portOf(t testing.TB, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	fmt.Sscanf(p, "%d", &n)
	return n
}

// natsAt is a standalone NATS server on a fixed loopback port that can be stopped
// and started again on the same port. Its cleanup is registered when it is first
// started, so it runs after the services started later have stopped.
type natsAt struct {
	t    testing.TB
	port int
	mu   sync.Mutex
	cur  *devstack.NATS
}

func startNATSAt(t testing.TB) *natsAt {
	t.Helper()
	n := &natsAt{t: t, port: portOf(t, freeAddr(t))}
	n.start()
	t.Cleanup(n.stop)
	return n
}

func (n *natsAt) URL() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.port) }

func (n *natsAt) start() {
	n.t.Helper()
	var ns *devstack.NATS
	var err error
	// The old listener may take a moment to release the port after a shutdown.
	deadline := time.Now().Add(rigWait)
	for {
		ns, err = devstack.StartNATS(devstack.NATSOptions{Host: "127.0.0.1", Port: n.port, ServerName: fmt.Sprintf("rig-%d", n.port)})
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		n.t.Fatalf("start nats on %d: %v", n.port, err)
	}
	n.mu.Lock()
	n.cur = ns
	n.mu.Unlock()
}

func (n *natsAt) stop() {
	n.mu.Lock()
	ns := n.cur
	n.cur = nil
	n.mu.Unlock()
	if ns != nil {
		ns.Shutdown()
	}
}

// ferretMu serialises FerretDB starts: ferretdb.New writes a package global
// (version.Get().Package), which the race detector reports when two start at once.
var ferretMu sync.Mutex

// ferretAt is a FerretDB (SQLite) on a fixed loopback address and data directory
// that can be stopped (the store goes away) and started again with the same data.
type ferretAt struct {
	t         testing.TB
	addr, dir string
	mu        sync.Mutex
	cur       *devstack.FerretDB
}

func startFerretAt(t testing.TB) *ferretAt {
	t.Helper()
	f := &ferretAt{t: t, addr: freeAddr(t), dir: t.TempDir()}
	f.start()
	t.Cleanup(f.stop)
	return f
}

func (f *ferretAt) URI() string { return "mongodb://" + f.addr + "/" }

func (f *ferretAt) start() {
	f.t.Helper()
	ferretMu.Lock()
	defer ferretMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var fd *devstack.FerretDB
	var err error
	deadline := time.Now().Add(rigWait)
	for {
		fd, err = devstack.StartFerretDB(ctx, devstack.FerretOptions{ListenAddr: f.addr, Handler: devstack.FerretHandlerSQLite, Dir: f.dir})
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		f.t.Fatalf("start ferretdb on %s: %v", f.addr, err)
	}
	f.mu.Lock()
	f.cur = fd
	f.mu.Unlock()
}

func (f *ferretAt) stop() {
	f.mu.Lock()
	fd := f.cur
	f.cur = nil
	f.mu.Unlock()
	if fd != nil {
		fd.Close()
	}
}

// rig is one system under test: its infrastructure addresses, secrets, and the
// default configuration of every service (StartStack's defaults on loopback).
type rig struct {
	t                testing.TB
	NATSURL          string // may be a comma-separated list
	MongoURI         string
	DB               string
	Secret, SvcToken string
	log              *slog.Logger
}

func newRig(t testing.TB, natsURL, mongoURI string) *rig {
	return &rig{t: t, NATSURL: natsURL, MongoURI: mongoURI, DB: "talim", Secret: "rig-jwt-secret-" + t.Name(),
		SvcToken: "rig-service-token", log: rigLog()}
}

func noEnv(string) (string, bool) { return "", false }

func loadDefaults(t testing.TB, register func(*config.Set)) {
	t.Helper()
	set := config.NewSet(nil, noEnv)
	register(set)
	if err := set.Load(); err != nil {
		t.Fatal(err)
	}
}

// Short intervals for every test: presence heartbeats and grace, edge drain.
const (
	rigHeartbeat = 300 * time.Millisecond
	rigGrace     = 300 * time.Millisecond
)

func (r *rig) edgeConfig(natsURL string) edge.Config {
	var c edge.Config
	loadDefaults(r.t, c.Register)
	c.NATS = service.NATS{URL: natsURL}
	c.Addr, c.AdminAddr, c.JWTSecret = "127.0.0.1:0", "127.0.0.1:0", r.Secret
	c.PresenceHeartbeat, c.DrainWindow = rigHeartbeat, 200*time.Millisecond
	c.ConnectRate, c.ConnectBurst = 1000, 1000
	return c
}

func (r *rig) chatConfig(natsURL string) chat.Config {
	var c chat.Config
	loadDefaults(r.t, c.Register)
	c.NATS, c.Mongo = service.NATS{URL: natsURL}, service.Mongo{URI: r.MongoURI, Database: r.DB}
	c.AdminAddr, c.GRPCAddr, c.ServiceToken = "127.0.0.1:0", "127.0.0.1:0", r.SvcToken
	return c
}

func (r *rig) notificationConfig(natsURL string) notification.Config {
	var c notification.Config
	loadDefaults(r.t, c.Register)
	c.NATS, c.Mongo = service.NATS{URL: natsURL}, service.Mongo{URI: r.MongoURI, Database: r.DB}
	c.AdminAddr, c.GRPCAddr, c.ServiceToken = "127.0.0.1:0", "127.0.0.1:0", r.SvcToken
	return c
}

func (r *rig) presenceConfig(natsURL string) presence.Config {
	var c presence.Config
	loadDefaults(r.t, c.Register)
	c.NATS, c.Mongo = service.NATS{URL: natsURL}, service.Mongo{URI: r.MongoURI, Database: r.DB}
	c.AdminAddr, c.Grace, c.Heartbeat = "127.0.0.1:0", rigGrace, rigHeartbeat
	return c
}

type runner = testkit.Runner

// proc is one running service instance (testkit.Run).
type proc = testkit.Proc

// run starts svc.Run and waits until it is ready; the instance stops at cleanup.
func (r *rig) run(name string, svc runner) *proc {
	r.t.Helper()
	return testkit.Run(r.t, name, svc)
}

func (r *rig) startEdge(name string, cfg edge.Config) (*edge.Server, *proc) {
	r.t.Helper()
	e, err := edge.New(cfg, r.log.With("service", name))
	if err != nil {
		r.t.Fatal(err)
	}
	return e, r.run(name, e)
}

func (r *rig) startChat(name string, cfg chat.Config) (*chat.Service, *proc) {
	r.t.Helper()
	s, err := chat.New(cfg, r.log.With("service", name))
	if err != nil {
		r.t.Fatal(err)
	}
	return s, r.run(name, s)
}

func (r *rig) startNotification(name string, cfg notification.Config) (*notification.Service, *proc) {
	r.t.Helper()
	s, err := notification.New(cfg, r.log.With("service", name))
	if err != nil {
		r.t.Fatal(err)
	}
	return s, r.run(name, s)
}

func (r *rig) startPresence(name string, cfg presence.Config) (*presence.Service, *proc) {
	r.t.Helper()
	s, err := presence.New(cfg, r.log.With("service", name))
	if err != nil {
		r.t.Fatal(err)
	}
	return s, r.run(name, s)
}

// basic is the usual set: one edge, one chat, one notification, one presence.
type basic struct {
	*rig
	Edge         *edge.Server
	EdgeProc     *proc
	Chat         *chat.Service
	ChatProc     *proc
	Notification *notification.Service
	Presence     *presence.Service
	PresenceProc *proc
}

// startBasic starts one instance of every service; adjust may change the configs.
func (r *rig) startBasic(adjust func(*edge.Config, *chat.Config, *presence.Config)) *basic {
	r.t.Helper()
	ec, cc, pc, nc := r.edgeConfig(r.NATSURL), r.chatConfig(r.NATSURL), r.presenceConfig(r.NATSURL), r.notificationConfig(r.NATSURL)
	if adjust != nil {
		adjust(&ec, &cc, &pc)
	}
	b := &basic{rig: r}
	b.Chat, b.ChatProc = r.startChat("chat", cc)
	b.Notification, _ = r.startNotification("notification", nc)
	b.Presence, b.PresenceProc = r.startPresence("presence", pc)
	b.Edge, b.EdgeProc = r.startEdge("edge", ec)
	return b
}

func wsURL(e *edge.Server) string { return "ws://" + e.Addr() + "/ws" }

// token signs an HS256 token with the rig's secret.
func (r *rig) token(user string, roles ...string) string {
	r.t.Helper()
	tok, err := auth.SignHS256(r.Secret, auth.Claims{UserID: user, Name: "User " + user, Roles: roles, ExpiresAt: time.Now().Add(time.Hour)}, "", "")
	if err != nil {
		r.t.Fatal(err)
	}
	return tok
}

// grpcConn dials a gRPC API (chat or notification) with the service token.
func (r *rig) grpcConn(addr string) *grpc.ClientConn {
	r.t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(grpcx.TokenCredentials{Token: r.SvcToken, Insecure: true}))
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { conn.Close() })
	return conn
}

// createRoom creates a group room through ChatAdminService on a chat instance.
func (r *rig) createRoom(c *chat.Service, id string, members ...string) {
	r.t.Helper()
	req := &chatv1.CreateRoomRequest{RoomId: id, Name: id, Type: chatv1.RoomType_ROOM_TYPE_GROUP}
	for _, m := range members {
		req.Members = append(req.Members, &chatv1.Member{UserId: m, Role: chatv1.Role_ROLE_MEMBER})
	}
	ctx, cancel := context.WithTimeout(context.Background(), rigWait)
	defer cancel()
	if _, err := chatv1.NewChatAdminServiceClient(r.grpcConn(c.GRPCAddr())).CreateRoom(ctx, req); err != nil {
		r.t.Fatalf("create room %s: %v", id, err)
	}
}

// router is a re-pointable dialer for pkg/client: every dial goes to the current
// target, whatever URL the client was given, and it can cut the live sockets.
type router struct {
	mu     sync.Mutex
	target string
	conns  []net.Conn
}

func (rt *router) point(addr string) {
	rt.mu.Lock()
	rt.target = addr
	rt.mu.Unlock()
}

func (rt *router) dial(ctx context.Context, network, _ string) (net.Conn, error) {
	rt.mu.Lock()
	target := rt.target
	rt.mu.Unlock()
	nc, err := (&net.Dialer{}).DialContext(ctx, network, target)
	if err == nil {
		rt.mu.Lock()
		rt.conns = append(rt.conns, nc)
		rt.mu.Unlock()
	}
	return nc, err
}

// cut closes every socket dialed so far (a crash as the clients see it: no close frame).
func (rt *router) cut() {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	for _, nc := range rt.conns {
		nc.Close()
	}
	rt.conns = nil
}

// member is one pkg/client user of a fault test: what its application received.
type member struct {
	user string
	c    *client.Client
	got  inbox
}

// inbox collects the chat messages a client delivers to its application.
type inbox struct {
	mu   sync.Mutex
	msgs []client.Message
}

func (r *inbox) add(m client.Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, m)
}

func (r *inbox) snapshot() []client.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.msgs)
}

// newMember connects a pkg/client Client (through rt when not nil) and joins room.
func (r *rig) newMember(ctx context.Context, url, user, room string, rt *router) *member {
	r.t.Helper()
	o := client.Options{URL: url, Token: r.token(user), Backoff: fastBackoff, StableAfter: time.Second, CommandTimeout: 5 * time.Second}
	if rt != nil {
		o.Dialer = ws.Dialer{NetDial: rt.dial}
	}
	m := &member{user: user, c: client.New(o)}
	m.c.OnMessage(m.got.add)
	r.t.Cleanup(func() { m.c.Close() })
	if err := m.c.Connect(ctx); err != nil {
		r.t.Fatalf("%s connect: %v", user, err)
	}
	if _, err := m.c.JoinRoom(ctx, room, client.JoinOptions{}); err != nil {
		r.t.Fatalf("%s join %s: %v", user, room, err)
	}
	return m
}

// ledger records the acks of a test: clientMsgId → acked seq, and the error codes
// seen on the way (a send is retried with the same clientMsgId until acked).
type ledger struct {
	mu     sync.Mutex
	acked  map[string]int64
	errors map[string]int // error code (or "disconnected"/"other") → count
}

func newLedger() *ledger { return &ledger{acked: map[string]int64{}, errors: map[string]int{}} }

func (l *ledger) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked)
}

func (l *ledger) errCount(code string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.errors[code]
}

func (l *ledger) snapshot() (map[string]int64, map[string]int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	a := make(map[string]int64, len(l.acked))
	for k, v := range l.acked {
		a[k] = v
	}
	e := make(map[string]int, len(l.errors))
	for k, v := range l.errors {
		e[k] = v
	}
	return a, e
}

func errCode(err error) string {
	var pe *client.Error
	switch {
	case errors.As(err, &pe):
		return pe.Code
	case errors.Is(err, client.ErrDisconnected):
		return "disconnected"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	}
	return "other"
}

// sendN sends up to n messages from m into room, one after the other, each retried
// with its clientMsgId until acked (every retry is a fresh Send bounded by 10 s; the
// whole loop by ctx). pace, when set, waits between messages. It stops early, after
// the current message is acked, when stop (if not nil) is closed.
func (l *ledger) sendN(ctx context.Context, m *member, room, prefix string, n int, pace time.Duration, stop <-chan struct{}) error {
	for i := 1; i <= n; i++ {
		select {
		case <-stop:
			return nil
		default:
		}
		id := fmt.Sprintf("%s-%03d", prefix, i)
		for attempt := 0; ; attempt++ {
			if ctx.Err() != nil {
				return fmt.Errorf("%s: %w after %d attempts", id, ctx.Err(), attempt)
			}
			sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			msg, err := m.c.Send(sctx, room, fmt.Sprintf("%s says %d", m.user, i), client.SendOptions{ClientMsgID: id})
			cancel()
			if err == nil {
				l.mu.Lock()
				if prev, ok := l.acked[id]; ok && prev != msg.Seq {
					l.mu.Unlock()
					return fmt.Errorf("%s acked twice with different seqs %d and %d", id, prev, msg.Seq)
				}
				l.acked[id] = msg.Seq
				l.mu.Unlock()
				break
			}
			code := errCode(err)
			l.mu.Lock()
			l.errors[code]++
			l.mu.Unlock()
			switch code {
			case "unavailable", "disconnected", "timeout", "internal", "rate_limited", "other":
			default:
				return fmt.Errorf("%s: unexpected error %v", id, err)
			}
			select {
			case <-ctx.Done():
			case <-time.After(min(25*time.Millisecond<<min(attempt, 4), 400*time.Millisecond)):
			}
		}
		if pace > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(pace):
			}
		}
	}
	return nil
}

// storedMessage is a message document read straight from MongoDB.
type storedMessage struct {
	ID          string `bson:"_id"`
	RoomID      string `bson:"roomId"`
	Seq         int64  `bson:"seq"`
	SenderID    string `bson:"senderId"`
	SenderName  string `bson:"senderName"`
	ClientMsgID string `bson:"clientMsgId"`
	Content     string `bson:"content"`
}

func mongoClient(t testing.TB, uri string) *mongo.Client {
	t.Helper()
	mc, err := mongo.Connect(options.Client().ApplyURI(uri).SetServerSelectionTimeout(10 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = mc.Disconnect(ctx)
	})
	return mc
}

// storedMessages reads a room's messages from the store, by seq.
func (r *rig) storedMessages(room string) []storedMessage {
	r.t.Helper()
	mc := mongoClient(r.t, r.MongoURI)
	ctx, cancel := context.WithTimeout(context.Background(), rigWait)
	defer cancel()
	cur, err := mc.Database(r.DB).Collection("messages").Find(ctx, bson.D{{Key: "roomId", Value: room}},
		options.Find().SetSort(bson.D{{Key: "seq", Value: 1}}))
	if err != nil {
		r.t.Fatalf("read messages of %s: %v", room, err)
	}
	var out []storedMessage
	if err := cur.All(ctx, &out); err != nil {
		r.t.Fatalf("read messages of %s: %v", room, err)
	}
	return out
}

// verifyStored checks the store against the acks: every (roomId, senderId,
// clientMsgId) exactly once, seq 1..N contiguous, every ack stored under its acked
// seq, and nothing stored that was not acked (every send was retried until acked).
func (r *rig) verifyStored(room string, acked map[string]int64) []storedMessage {
	r.t.Helper()
	msgs := r.storedMessages(room)
	count := map[string]int{}
	for i, m := range msgs {
		count[m.SenderID+"/"+m.ClientMsgID]++
		if m.Seq != int64(i+1) {
			r.t.Fatalf("room %s: stored seq #%d is %d: seqs not contiguous from 1", room, i+1, m.Seq)
		}
		if seq, ok := acked[m.ClientMsgID]; !ok {
			r.t.Errorf("room %s: stored %s (seq %d) was never acked", room, m.ClientMsgID, m.Seq)
		} else if seq != m.Seq {
			r.t.Errorf("room %s: %s acked with seq %d, stored with %d", room, m.ClientMsgID, seq, m.Seq)
		}
	}
	for k, n := range count {
		if n != 1 {
			r.t.Errorf("room %s: %s stored %d times", room, k, n)
		}
	}
	if len(msgs) != len(acked) {
		r.t.Errorf("room %s: %d messages stored, %d acked", room, len(msgs), len(acked))
	}
	return msgs
}

// expectHistory waits until m's application received n messages and checks they are
// exactly the stored ones, in seq order, each once.
func expectHistory(t testing.TB, m *member, stored []storedMessage) {
	t.Helper()
	deadline := time.Now().Add(rigWait)
	for len(m.got.snapshot()) < len(stored) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	got := m.got.snapshot()
	ids := make([]string, 0, len(got))
	seqs := make([]int64, 0, len(got))
	for _, g := range got {
		ids = append(ids, g.ID)
		seqs = append(seqs, g.Seq)
	}
	want := make([]string, 0, len(stored))
	for _, s := range stored {
		want = append(want, s.ID)
	}
	if !slices.Equal(ids, want) {
		t.Fatalf("%s holds %d messages (seqs %v), want the %d stored ones in order", m.user, len(got), compactSeqs(seqs), len(stored))
	}
}

// compactSeqs renders seqs as ranges ("1-17,19,21-30") for failure messages.
func compactSeqs(seqs []int64) string {
	var b strings.Builder
	for i := 0; i < len(seqs); {
		j := i
		for j+1 < len(seqs) && seqs[j+1] == seqs[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		if j == i {
			fmt.Fprintf(&b, "%d", seqs[i])
		} else {
			fmt.Fprintf(&b, "%d-%d", seqs[i], seqs[j])
		}
		i = j + 1
	}
	return b.String()
}

// waitUntil polls cond every 10 ms until it holds or rigWait passes.
func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(rigWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", rigWait, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// presenceQuery asks presence (talim.presence.v1.query) who is online.
func presenceQuery(nc *nats.Conn, users ...string) (map[string]string, error) {
	req, _ := json.Marshal(map[string]any{"userIds": users})
	msg, err := nc.Request("talim.presence.v1.query", req, 2*time.Second)
	if err != nil {
		return nil, err
	}
	var resp struct {
		Online   []string          `json:"online"`
		Statuses map[string]string `json:"statuses"`
		Error    string            `json:"error"`
	}
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return nil, err
	}
	if resp.Error != "" {
		return nil, errors.New(resp.Error)
	}
	return resp.Statuses, nil
}

func natsConn(t testing.TB, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// tcpProxy forwards loopback TCP connections to a target; cut drops every
// connection at once and refuses new ones (a process that died, as its peers see it).
type tcpProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
	down   bool
}

func newTCPProxy(t testing.TB, target string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{ln: ln, target: target}
	go p.serve()
	t.Cleanup(p.cut)
	return p
}

func (p *tcpProxy) Addr() string { return p.ln.Addr().String() }

func (p *tcpProxy) serve() {
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		out, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			in.Close()
			continue
		}
		p.mu.Lock()
		if p.down {
			p.mu.Unlock()
			in.Close()
			out.Close()
			return
		}
		p.conns = append(p.conns, in, out)
		p.mu.Unlock()
		go pipe(in, out)
		go pipe(out, in)
	}
}

func pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	dst.Close()
	src.Close()
}

func (p *tcpProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	p.ln.Close()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// runTraffic makes every member send messages (each retried until acked), runs fault
// once `at` acks are in, and stops the senders once `after` more acks came in after
// the fault; it returns when every send is acked. A last message from
// the first member afterwards lets every client notice a gap at the tail (live
// delivery is at most once; a client learns of a missed message from the next one,
// or from the re-join after a reconnect).
func runTraffic(t *testing.T, ctx context.Context, l *ledger, members []*member, room string, pace time.Duration, at, after int, fault func()) {
	t.Helper()
	errc := make(chan error, len(members))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, m := range members {
		wg.Go(func() { errc <- l.sendN(ctx, m, room, m.user, 500, pace, stop) })
	}
	waitUntil(t, fmt.Sprintf("%d acks before the fault", at), func() bool { return l.count() >= at })
	t0 := time.Now()
	fault()
	t.Logf("fault injected in %s", time.Since(t0).Round(time.Millisecond))
	resumed := l.count()
	waitUntil(t, fmt.Sprintf("%d acks after the fault", after), func() bool { return l.count() >= resumed+after })
	t.Logf("%d more acks %s after the fault began", after, time.Since(t0).Round(time.Millisecond))
	close(stop)
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			t.Fatalf("traffic: %v", err)
		}
	}
	if err := l.sendN(ctx, members[0], room, members[0].user+"-final", 1, 0, nil); err != nil {
		t.Fatalf("final send: %v", err)
	}
}
