package notification_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/talim/realtime/pkg/devstack/testkit"
	"github.com/talim/realtime/pkg/grpcx"
	"github.com/talim/realtime/pkg/service"
	"github.com/talim/realtime/pkg/subject"
	edgev1 "github.com/talim/realtime/proto/talim/edge/v1"
	notificationv1 "github.com/talim/realtime/proto/talim/notification/v1"
	"github.com/talim/realtime/services/notification"
)

const testToken = "test-service-token"

// env is one running notification service with its own NATS and database.
type env struct {
	svc    *notification.Service
	nc     *nats.Conn
	db     *mongo.Database
	conn   *grpc.ClientConn
	client notificationv1.NotificationServiceClient
}

func start(t testing.TB, configure ...func(*notification.Config)) *env {
	t.Helper()
	ns := testkit.NATS(t)
	uri, dbName := testkit.Mongo(t)
	cfg := notification.Config{
		NATS: service.NATS{URL: ns.ClientURL()}, Mongo: service.Mongo{URI: uri, Database: dbName},
		AdminAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0", ServiceToken: testToken,
	}
	for _, f := range configure {
		f(&cfg)
	}
	svc, err := notification.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	testkit.Run(t, "notification", svc)
	e := &env{svc: svc, nc: testkit.NATSConn(t, ns.ClientURL())}
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	e.db = client.Database(dbName)
	e.conn = dial(t, svc.GRPCAddr(), testToken)
	e.client = notificationv1.NewNotificationServiceClient(e.conn)
	return e
}

func dial(t testing.TB, addr, token string) *grpc.ClientConn {
	t.Helper()
	opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(grpcx.TokenCredentials{Token: token, Insecure: true}))
	}
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// send calls Send and fails the test on error.
func (e *env) send(t testing.TB, req *notificationv1.SendRequest) *notificationv1.SendResponse {
	t.Helper()
	if req.Category == "" {
		req.Category = "general"
	}
	if req.Title == "" {
		req.Title = "Hello"
	}
	resp, err := e.client.Send(ctxT(t), req)
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	return resp
}

// cmd sends a client event as the edge does and returns the reply.
func (e *env) cmd(t testing.TB, user, connID, event string, data any) *edgev1.Reply {
	t.Helper()
	raw, ok := data.(string)
	if !ok {
		b, err := json.Marshal(data)
		if err != nil {
			t.Fatal(err)
		}
		raw = string(b)
	}
	b, err := proto.Marshal(&edgev1.Command{
		Identity: &edgev1.Identity{UserId: user}, ConnectionId: connID, EdgeId: "edge-test", Event: event, Data: []byte(raw),
	})
	if err != nil {
		t.Fatal(err)
	}
	m, err := e.nc.Request(subject.Command("notification", event), b, 10*time.Second)
	if err != nil {
		t.Fatalf("%s: %v", event, err)
	}
	var r edgev1.Reply
	if err := proto.Unmarshal(m.Data, &r); err != nil {
		t.Fatal(err)
	}
	return &r
}

// ok decodes a successful reply's data into v.
func ok(t testing.TB, r *edgev1.Reply, v any) {
	t.Helper()
	if r.GetError() != nil {
		t.Fatalf("error reply: %s: %s", r.GetError().GetCode(), r.GetError().GetMessage())
	}
	if err := json.Unmarshal(r.GetData(), v); err != nil {
		t.Fatalf("decode %s: %v", r.GetData(), err)
	}
}

func errCode(t testing.TB, r *edgev1.Reply, code string) {
	t.Helper()
	if r.GetError().GetCode() != code {
		t.Fatalf("reply = %v (data %s), want error %s", r.GetError(), r.GetData(), code)
	}
}

// userSub receives what is published to a user's subject.
type userSub struct {
	ch chan *nats.Msg
}

func (e *env) subscribe(t testing.TB, user string) *userSub {
	t.Helper()
	s := &userSub{ch: make(chan *nats.Msg, 1024)}
	sub, err := e.nc.ChanSubscribe(subject.User(user), s.ch)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := e.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return s
}

// next returns the next outbound event, failing after 5s.
func (s *userSub) next(t testing.TB) *edgev1.Outbound {
	t.Helper()
	select {
	case m := <-s.ch:
		var out edgev1.Outbound
		if err := proto.Unmarshal(m.Data, &out); err != nil {
			t.Fatal(err)
		}
		return &out
	case <-time.After(5 * time.Second):
		t.Fatal("no outbound event within 5s")
		return nil
	}
}

// none checks that nothing more arrived (after a NATS round trip).
func (s *userSub) none(t testing.TB, nc *nats.Conn) {
	t.Helper()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-s.ch:
		t.Fatalf("unexpected event on %s: %q", m.Subject, m.Data)
	default:
	}
}

// wireNote is the client notification object.
type wireNote struct {
	ID         string            `json:"id"`
	Category   string            `json:"category"`
	Title      string            `json:"title"`
	Body       string            `json:"body"`
	Data       map[string]string `json:"data"`
	Priority   string            `json:"priority"`
	RequireAck bool              `json:"requireAck"`
	CreatedAt  string            `json:"createdAt"`
	ReadAt     *string           `json:"readAt"`
	AckedAt    *string           `json:"ackedAt"`
	ExpiresAt  *string           `json:"expiresAt"`
}

type listReply struct {
	Notifications []wireNote `json:"notifications"`
	HasMore       bool       `json:"hasMore"`
	Unread        int64      `json:"unread"`
}

func (e *env) list(t testing.TB, user string, data any) listReply {
	t.Helper()
	var lr listReply
	ok(t, e.cmd(t, user, "c-"+user, "list-notifications", data), &lr)
	return lr
}

func (e *env) countDocs(t testing.TB, coll string, filter any) int64 {
	t.Helper()
	n, err := e.db.Collection(coll).CountDocuments(ctxT(t), filter)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
