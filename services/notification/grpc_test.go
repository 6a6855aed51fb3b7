package notification_test

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/talim/realtime/pkg/grpcx"
	notificationv1 "github.com/talim/realtime/proto/talim/notification/v1"
	"github.com/talim/realtime/services/notification"
)

func TestGRPC_ServiceToken(t *testing.T) {
	t.Parallel()
	e := start(t)
	for name, token := range map[string]string{"missing": "", "wrong": "not-the-token"} {
		c := notificationv1.NewNotificationServiceClient(dial(t, e.svc.GRPCAddr(), token))
		_, err := c.UnreadCount(ctxT(t), &notificationv1.UnreadCountRequest{UserId: "u1"})
		if status.Code(err) != codes.Unauthenticated {
			t.Errorf("%s token: %v, want Unauthenticated", name, err)
		}
		_, err = c.Send(ctxT(t), &notificationv1.SendRequest{Recipients: []string{"u1"}, Category: "c", Title: "t", IdempotencyKey: "k"})
		if status.Code(err) != codes.Unauthenticated {
			t.Errorf("%s token send: %v", name, err)
		}
	}
	// Health needs no token.
	h, err := healthpb.NewHealthClient(dial(t, e.svc.GRPCAddr(), "")).Check(ctxT(t), &healthpb.HealthCheckRequest{})
	if err != nil || h.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health = %v, %v", h, err)
	}
}

func TestGRPC_SendValidation(t *testing.T) {
	t.Parallel()
	e := start(t)
	valid := func() *notificationv1.SendRequest {
		return &notificationv1.SendRequest{Recipients: []string{"u1"}, Category: "c", Title: "t", IdempotencyKey: "k"}
	}
	many := make([]string, 10001)
	for i := range many {
		many[i] = "u"
	}
	bigData := map[string]string{}
	for i := range 33 {
		bigData[string(rune('a'+i%26))+strings.Repeat("x", i)] = "v"
	}
	cases := []struct {
		name  string
		mod   func(*notificationv1.SendRequest)
		field string
	}{
		{"no recipients", func(r *notificationv1.SendRequest) { r.Recipients = nil }, "recipients"},
		{"too many recipients", func(r *notificationv1.SendRequest) { r.Recipients = many }, "recipients"},
		{"empty recipient", func(r *notificationv1.SendRequest) { r.Recipients = []string{"u1", ""} }, "recipients[1]"},
		{"long recipient", func(r *notificationv1.SendRequest) { r.Recipients = []string{strings.Repeat("u", 129)} }, "recipients[0]"},
		{"recipient with space", func(r *notificationv1.SendRequest) { r.Recipients = []string{"a b"} }, "recipients[0]"},
		{"recipient wildcard", func(r *notificationv1.SendRequest) { r.Recipients = []string{"u.>"} }, "recipients[0]"},
		{"no category", func(r *notificationv1.SendRequest) { r.Category = "" }, "category"},
		{"long category", func(r *notificationv1.SendRequest) { r.Category = strings.Repeat("c", 65) }, "category"},
		{"no title", func(r *notificationv1.SendRequest) { r.Title = "" }, "title"},
		{"long title", func(r *notificationv1.SendRequest) { r.Title = strings.Repeat("é", 201) }, "title"},
		{"long body", func(r *notificationv1.SendRequest) { r.Body = strings.Repeat("b", 4001) }, "body"},
		{"too much data", func(r *notificationv1.SendRequest) { r.Data = bigData }, "data"},
		{"empty data key", func(r *notificationv1.SendRequest) { r.Data = map[string]string{"": "v"} }, "data"},
		{"long data key", func(r *notificationv1.SendRequest) { r.Data = map[string]string{strings.Repeat("k", 65): "v"} }, "data"},
		{"long data value", func(r *notificationv1.SendRequest) { r.Data = map[string]string{"k": strings.Repeat("v", 1025)} }, "data[k]"},
		{"unknown priority", func(r *notificationv1.SendRequest) { r.Priority = 9 }, "priority"},
		{"past expiry", func(r *notificationv1.SendRequest) { r.ExpiresAt = timestamppb.New(time.Now().Add(-time.Second)) }, "expires_at"},
		{"no key", func(r *notificationv1.SendRequest) { r.IdempotencyKey = "" }, "idempotency_key"},
		{"long key", func(r *notificationv1.SendRequest) { r.IdempotencyKey = strings.Repeat("k", 129) }, "idempotency_key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := valid()
			c.mod(req)
			_, err := e.client.Send(ctxT(t), req)
			assertViolation(t, err, c.field)
		})
	}
	// At the limits it is accepted.
	req := valid()
	req.Recipients = []string{strings.Repeat("u", 128), "a-b_c:d@e.f"}
	req.Category, req.Title, req.Body = strings.Repeat("c", 64), strings.Repeat("é", 200), strings.Repeat("b", 4000)
	req.Data = map[string]string{strings.Repeat("k", 64): strings.Repeat("v", 1024)}
	req.IdempotencyKey = strings.Repeat("k", 128)
	if _, err := e.client.Send(ctxT(t), req); err != nil {
		t.Fatalf("at the limits: %v", err)
	}
	// The other methods validate too.
	_, err := e.client.List(ctxT(t), &notificationv1.ListRequest{UserId: ""})
	assertViolation(t, err, "user_id")
	_, err = e.client.List(ctxT(t), &notificationv1.ListRequest{UserId: "u1", Limit: 201})
	assertViolation(t, err, "limit")
	_, err = e.client.MarkRead(ctxT(t), &notificationv1.MarkReadRequest{UserId: "u1"})
	assertViolation(t, err, "ids")
	_, err = e.client.UnreadCount(ctxT(t), &notificationv1.UnreadCountRequest{UserId: "a b"})
	assertViolation(t, err, "user_id")
	_, err = e.client.AckStatus(ctxT(t), &notificationv1.AckStatusRequest{})
	assertViolation(t, err, "send_id")
	if _, err := e.client.AckStatus(ctxT(t), &notificationv1.AckStatusRequest{SendId: "s_unknown"}); status.Code(err) != codes.NotFound {
		t.Fatalf("unknown send: %v", err)
	}
}

func assertViolation(t *testing.T, err error, field string) {
	t.Helper()
	st := status.Convert(err)
	if st.Code() != codes.InvalidArgument {
		t.Fatalf("err = %v, want InvalidArgument", err)
	}
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				if v.GetField() == field {
					return
				}
			}
		}
	}
	t.Fatalf("no violation of %q in %v", field, st.Details())
}

func TestGRPC_ListMarkReadUnreadCount(t *testing.T) {
	t.Parallel()
	e := start(t)
	e.send(t, &notificationv1.SendRequest{Recipients: []string{"u1"}, Title: "one", Priority: notificationv1.Priority_PRIORITY_LOW,
		Data: map[string]string{"k": "v"}, IdempotencyKey: "1"})
	e.send(t, &notificationv1.SendRequest{Recipients: []string{"u1"}, Title: "two", IdempotencyKey: "2"})
	ctx := ctxT(t)
	lr, err := e.client.List(ctx, &notificationv1.ListRequest{UserId: "u1", Limit: 1})
	if err != nil || len(lr.GetNotifications()) != 1 || !lr.GetHasMore() || lr.GetUnread() != 2 || lr.GetNotifications()[0].GetTitle() != "two" {
		t.Fatalf("list = %v, %v", lr, err)
	}
	lr2, err := e.client.List(ctx, &notificationv1.ListRequest{UserId: "u1", Before: lr.GetNotifications()[0].GetId()})
	if err != nil || len(lr2.GetNotifications()) != 1 || lr2.GetHasMore() {
		t.Fatalf("page 2 = %v, %v", lr2, err)
	}
	n := lr2.GetNotifications()[0]
	if n.GetTitle() != "one" || n.GetPriority() != notificationv1.Priority_PRIORITY_LOW || n.GetData()["k"] != "v" ||
		n.GetUserId() != "u1" || n.GetSendId() == "" || n.GetReadAt() != nil || n.GetCreatedAt() == nil {
		t.Fatalf("notification = %v", n)
	}
	sub := e.subscribe(t, "u1")
	mr, err := e.client.MarkRead(ctx, &notificationv1.MarkReadRequest{UserId: "u1", Ids: []string{n.GetId()}})
	if err != nil || mr.GetUnread() != 1 {
		t.Fatalf("mark read = %v, %v", mr, err)
	}
	if out := sub.next(t); out.GetEvent() != "notification-read" || out.GetExceptConnection() != "" {
		t.Fatalf("sync = %v", out)
	}
	if _, err := e.client.MarkRead(ctx, &notificationv1.MarkReadRequest{UserId: "u2", Ids: []string{n.GetId()}}); status.Code(err) != codes.NotFound {
		t.Fatalf("other user's mark read: %v", err)
	}
	if _, err := e.client.MarkRead(ctx, &notificationv1.MarkReadRequest{UserId: "u1", All: true}); err != nil {
		t.Fatal(err)
	}
	uc, err := e.client.UnreadCount(ctx, &notificationv1.UnreadCountRequest{UserId: "u1"})
	if err != nil || uc.GetUnread() != 0 {
		t.Fatalf("unread = %v, %v", uc, err)
	}
}

// RegisterGRPC works before Run; calls are Unavailable until the service connects.
func TestGRPC_UnavailableBeforeRun(t *testing.T) {
	t.Parallel()
	svc, err := notification.New(notification.Config{ServiceToken: testToken}, nil)
	if err != nil {
		t.Fatal(err)
	}
	gs, err := grpcx.NewServer(grpcx.Options{ServiceToken: testToken})
	if err != nil {
		t.Fatal(err)
	}
	svc.RegisterGRPC(gs.Server)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = gs.Serve(ln) }()
	t.Cleanup(gs.Stop)
	c := notificationv1.NewNotificationServiceClient(dial(t, ln.Addr().String(), testToken))
	_, err = c.UnreadCount(ctxT(t), &notificationv1.UnreadCountRequest{UserId: "u1"})
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("err = %v, want Unavailable", err)
	}
}

func TestNotifyCommand(t *testing.T) {
	t.Parallel()
	e := start(t)
	sub := e.subscribe(t, "s1")
	var out, errb bytes.Buffer
	code := notification.NotifyCommand(context.Background(), []string{
		"--to", "s1,s2", "--title", "Exam moved", "--body", "to Friday", "--priority", "high", "--require-ack",
		"--data", "room=42", "--data", "x=y", "--idempotency-key", "cli-1", "--addr", e.svc.GRPCAddr(), "--token", testToken,
	}, &out, &errb)
	if code != 0 || !strings.Contains(out.String(), "2 recipients") || !strings.HasPrefix(out.String(), "send s_") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
	if ev := sub.next(t); !strings.Contains(string(ev.GetData()), `"room":"42"`) || !strings.Contains(string(ev.GetData()), `"priority":"high"`) {
		t.Fatalf("event = %s", ev.GetData())
	}
	if lr := e.list(t, "s2", nil); len(lr.Notifications) != 1 || !lr.Notifications[0].RequireAck || lr.Notifications[0].Body != "to Friday" {
		t.Fatalf("s2 = %+v", lr)
	}

	// Token from <TALIM_DATA_DIR>/service-token, address from TALIM_GRPC_ADDR.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "service-token"), []byte(testToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"TALIM_DATA_DIR": dir, "TALIM_GRPC_ADDR": e.svc.GRPCAddr()}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	out.Reset()
	if code := notification.NotifyCommandEnv(context.Background(), []string{"--to", "s1", "--title", "again", "--idempotency-key", "cli-1"}, &out, &errb, lookup); code != 0 || !strings.Contains(out.String(), "duplicate") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
	// Wrong token and usage errors.
	errb.Reset()
	if code := notification.NotifyCommandEnv(context.Background(), []string{"--to", "s1", "--title", "x", "--token", "bad"}, &out, &errb, lookup); code != 1 || !strings.Contains(errb.String(), "Unauthenticated") {
		t.Fatalf("bad token: exit %d, stderr %q", code, errb.String())
	}
	if code := notification.NotifyCommandEnv(context.Background(), []string{"--to", "s1", "--title", "x"}, &out, &errb,
		func(string) (string, bool) { return "", false }); code != 2 || !strings.Contains(errb.String(), "service token") {
		t.Fatalf("no token anywhere: exit %d, stderr %q", code, errb.String())
	}
	if code := notification.NotifyCommand(context.Background(), []string{"--title", "x"}, &out, &errb); code != 2 {
		t.Fatalf("missing --to: exit %d", code)
	}
	if code := notification.NotifyCommand(context.Background(), []string{"--to", "a", "--title", "x", "--priority", "urgent"}, &out, &errb); code != 2 {
		t.Fatalf("bad priority: exit %d", code)
	}
}
