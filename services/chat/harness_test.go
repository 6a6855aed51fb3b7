package chat_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/talim/realtime/pkg/devstack/testkit"
	"github.com/talim/realtime/pkg/grpcx"
	"github.com/talim/realtime/pkg/subject"
	chatv1 "github.com/talim/realtime/proto/talim/chat/v1"
	edgev1 "github.com/talim/realtime/proto/talim/edge/v1"
	"github.com/talim/realtime/services/chat"
)

func TestMain(m *testing.M) { testkit.Main(m) }

const testToken = "test-service-token"

// harness runs chat instances against one in-process NATS and one fresh database,
// and talks to them like an edge (commands) and a main application (gRPC).
type harness struct {
	t        testing.TB
	natsURL  string
	mongoURI string
	db       string
	nc       *nats.Conn
	svcs     []*chat.Service
	admin    chatv1.ChatAdminServiceClient
	// configure, when set, adjusts each instance's configuration.
	configure func(*chat.Config)
}

func newHarness(t testing.TB, instances int) *harness { return newHarnessWith(t, instances, nil) }

func newHarnessWith(t testing.TB, instances int, configure func(*chat.Config)) *harness {
	t.Helper()
	n := testkit.NATS(t)
	uri, db := testkit.Mongo(t)
	h := &harness{t: t, natsURL: n.ClientURL(), mongoURI: uri, db: db, configure: configure}
	h.nc = testkit.NATSConn(t, h.natsURL)
	for range instances {
		h.startInstance()
	}
	conn, err := grpc.NewClient(h.svcs[0].GRPCAddr(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(grpcx.TokenCredentials{Token: testToken, Insecure: true}))
	if err != nil {
		t.Fatalf("grpc client: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	h.admin = chatv1.NewChatAdminServiceClient(conn)
	return h
}

func (h *harness) startInstance() *chat.Service {
	h.t.Helper()
	cfg := chat.Config{AdminAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0", ServiceToken: testToken}
	cfg.NATS.URL = h.natsURL
	cfg.Mongo.URI, cfg.Mongo.Database = h.mongoURI, h.db
	if h.configure != nil {
		h.configure(&cfg)
	}
	svc, err := chat.New(cfg, nil)
	if err != nil {
		h.t.Fatalf("new chat: %v", err)
	}
	testkit.Run(h.t, "chat", svc)
	h.svcs = append(h.svcs, svc)
	return svc
}

func (h *harness) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	h.t.Cleanup(cancel)
	return ctx
}

// user is an identity sending commands like an edge would.
type user struct {
	h     *harness
	id    string
	name  string
	roles []string
}

func (h *harness) user(id string, roles ...string) *user {
	return &user{h: h, id: id, name: "Name " + id, roles: roles}
}

// raw sends event with data (a JSON string or a value to encode) and returns the reply.
func (u *user) raw(event string, data any) *edgev1.Reply {
	u.h.t.Helper()
	var b []byte
	switch d := data.(type) {
	case string:
		b = []byte(d)
	case nil:
	default:
		var err error
		if b, err = json.Marshal(d); err != nil {
			u.h.t.Fatalf("encode: %v", err)
		}
	}
	cmd := &edgev1.Command{Identity: &edgev1.Identity{UserId: u.id, DisplayName: u.name, Roles: u.roles},
		ConnectionId: "c-" + u.id, EdgeId: "edge-test", Event: event, Data: b,
		DeadlineUnixMs: time.Now().Add(10 * time.Second).UnixMilli()}
	pb, _ := proto.Marshal(cmd)
	m, err := u.h.nc.Request(subject.Command("chat", event), pb, 15*time.Second)
	if err != nil {
		u.h.t.Fatalf("%s %s: %v", u.id, event, err)
	}
	var r edgev1.Reply
	if err := proto.Unmarshal(m.Data, &r); err != nil {
		u.h.t.Fatalf("decode reply: %v", err)
	}
	return &r
}

// ok sends and requires success, decoding the ack into out (when not nil).
func (u *user) ok(event string, data any, out any) *edgev1.Reply {
	u.h.t.Helper()
	r := u.raw(event, data)
	if r.GetError() != nil {
		u.h.t.Fatalf("%s %s %v: error %s: %s", u.id, event, data, r.GetError().GetCode(), r.GetError().GetMessage())
	}
	if out != nil {
		if err := json.Unmarshal(r.GetData(), out); err != nil {
			u.h.t.Fatalf("decode %s ack %s: %v", event, r.GetData(), err)
		}
	}
	return r
}

// fail sends and requires the error code.
func (u *user) fail(code, event string, data any) {
	u.h.t.Helper()
	r := u.raw(event, data)
	if r.GetError().GetCode() != code {
		u.h.t.Fatalf("%s %s %v: want error %s, got %v (data %s)", u.id, event, data, code, r.GetError(), r.GetData())
	}
}

type message struct {
	ID          string  `json:"id"`
	RoomID      string  `json:"roomId"`
	Seq         int64   `json:"seq"`
	SenderID    string  `json:"senderId"`
	SenderName  string  `json:"senderName"`
	Type        string  `json:"type"`
	Content     string  `json:"content"`
	ClientMsgID string  `json:"clientMsgId"`
	CreatedAt   string  `json:"createdAt"`
	EditedAt    *string `json:"editedAt"`
	Deleted     bool    `json:"deleted"`
}

type page struct {
	RoomID   string    `json:"roomId"`
	Messages []message `json:"messages"`
	HasMore  bool      `json:"hasMore"`
}

func (u *user) send(room, content, clientMsgID string) message {
	u.h.t.Helper()
	var ack struct{ Message message }
	u.ok("send-chat-message", map[string]any{"roomId": room, "content": content, "clientMsgId": clientMsgID}, &ack)
	return ack.Message
}

type joinAck struct {
	RoomID      string `json:"roomId"`
	LastSeq     int64  `json:"lastSeq"`
	LastReadSeq int64  `json:"lastReadSeq"`
	Unread      int64  `json:"unread"`
}

func (u *user) join(data map[string]any) (joinAck, page) {
	u.h.t.Helper()
	var ack joinAck
	r := u.ok("join-chat-room", data, &ack)
	if len(r.GetJoinRooms()) != 1 || r.GetJoinRooms()[0] != data["roomId"] {
		u.h.t.Fatalf("join reply join_rooms = %v", r.GetJoinRooms())
	}
	if len(r.GetFrames()) != 1 || r.GetFrames()[0].GetEvent() != "chat-room-history" {
		u.h.t.Fatalf("join reply frames = %v", r.GetFrames())
	}
	var p page
	if err := json.Unmarshal(r.GetFrames()[0].GetData(), &p); err != nil {
		u.h.t.Fatalf("decode history frame: %v", err)
	}
	return ack, p
}

// inbox collects the Outbound messages published on a user's subject.
type inbox struct {
	t   testing.TB
	mu  sync.Mutex
	got []*edgev1.Outbound
	sig chan struct{}
}

func (h *harness) inbox(userID string) *inbox {
	h.t.Helper()
	in := &inbox{t: h.t, sig: make(chan struct{}, 1)}
	sub, err := h.nc.Subscribe(subject.User(userID), func(m *nats.Msg) {
		var ob edgev1.Outbound
		if err := proto.Unmarshal(m.Data, &ob); err != nil {
			return
		}
		in.mu.Lock()
		in.got = append(in.got, flatten(&ob)...)
		in.mu.Unlock()
		select {
		case in.sig <- struct{}{}:
		default:
		}
	})
	if err != nil {
		h.t.Fatalf("subscribe: %v", err)
	}
	if err := h.nc.Flush(); err != nil {
		h.t.Fatalf("flush: %v", err)
	}
	h.t.Cleanup(func() { _ = sub.Unsubscribe() })
	return in
}

// flatten returns ob's events: the items of a batch (chat's group delivery,
// edge.proto Outbound.batch) or ob itself.
func flatten(ob *edgev1.Outbound) []*edgev1.Outbound {
	if len(ob.GetBatch()) > 0 {
		return ob.GetBatch()
	}
	return []*edgev1.Outbound{ob}
}

// events returns the collected events named event (all when empty).
func (in *inbox) events(event string) []*edgev1.Outbound {
	in.mu.Lock()
	defer in.mu.Unlock()
	var out []*edgev1.Outbound
	for _, ob := range in.got {
		if event == "" || ob.GetEvent() == event {
			out = append(out, ob)
		}
	}
	return out
}

// wait waits until n events named event arrived and returns them.
func (in *inbox) wait(event string, n int) []*edgev1.Outbound {
	in.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		if evs := in.events(event); len(evs) >= n {
			return evs
		}
		select {
		case <-in.sig:
		case <-deadline:
			in.t.Fatalf("want %d %q events, got %d: %v", n, event, len(in.events(event)), summary(in.events("")))
		}
	}
}

func summary(obs []*edgev1.Outbound) string {
	var b strings.Builder
	for _, ob := range obs {
		fmt.Fprintf(&b, "[%s room=%s seq=%d alt=%s] ", ob.GetEvent(), ob.GetRoomId(), ob.GetSeq(), ob.GetAltEvent())
	}
	return b.String()
}

func decode[T any](t testing.TB, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

// room creates a room through the admin API with members given as id=role.
func (h *harness) room(id string, typ chatv1.RoomType, members ...string) {
	h.t.Helper()
	req := &chatv1.CreateRoomRequest{RoomId: id, Name: "Room " + id, Type: typ}
	for _, m := range members {
		uid, role, _ := strings.Cut(m, "=")
		r := map[string]chatv1.Role{"owner": chatv1.Role_ROLE_OWNER, "teacher": chatv1.Role_ROLE_TEACHER,
			"readonly": chatv1.Role_ROLE_READONLY, "": chatv1.Role_ROLE_MEMBER, "member": chatv1.Role_ROLE_MEMBER}[role]
		req.Members = append(req.Members, &chatv1.Member{UserId: uid, Role: r})
	}
	if _, err := h.admin.CreateRoom(h.ctx(), req); err != nil {
		h.t.Fatalf("create room %s: %v", id, err)
	}
}
