package chat_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/talim/realtime/pkg/grpcx"
	sgv1 "github.com/talim/realtime/proto/talim/safeguarding/v1"
	"github.com/talim/realtime/services/chat"
	"github.com/talim/realtime/services/chat/internal/audit"
	"github.com/talim/realtime/services/chat/internal/core"
)

// fakeNotifier records what chat asked the notification service to send.
type fakeNotifier struct {
	mu    sync.Mutex
	calls []map[string]string
	to    [][]string
}

func (f *fakeNotifier) NotifyLeads(_ context.Context, leads []string, _, _ string, data map[string]string, _ string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls, f.to = append(f.calls, data), append(f.to, leads)
	return nil
}

func (f *fakeNotifier) count() int { f.mu.Lock(); defer f.mu.Unlock(); return len(f.calls) }

// fakeAudit is the audit log as chat sees it (audit.Appender).
type fakeAudit struct {
	mu      sync.Mutex
	entries []audit.Entry
}

func (f *fakeAudit) Append(_ context.Context, e audit.Entry) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.entries = append(f.entries, e)
	return int64(len(f.entries)), nil
}

func (f *fakeAudit) kinds() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, e := range f.entries {
		out = append(out, e.Kind+":"+e.Actor)
	}
	return out
}

type sgHarness struct {
	*harness
	sg     []sgv1.SafeguardingServiceClient // one per instance
	notif  *fakeNotifier
	audits *fakeAudit
}

func newSG(t *testing.T, instances int) *sgHarness {
	t.Helper()
	n, a := &fakeNotifier{}, &fakeAudit{}
	h := newHarnessWith(t, instances, func(c *chat.Config) { c.Notifier, c.Audit = n, a })
	s := &sgHarness{harness: h, notif: n, audits: a}
	for _, svc := range h.svcs {
		conn, err := grpc.NewClient(svc.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithPerRPCCredentials(grpcx.TokenCredentials{Token: testToken, Insecure: true}))
		if err != nil {
			t.Fatalf("grpc client: %v", err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		s.sg = append(s.sg, sgv1.NewSafeguardingServiceClient(conn))
	}
	return s
}

// setPolicy changes the policy through instance i, from its current version.
func (s *sgHarness) setPolicy(i int, change func(p *sgv1.Policy)) *sgv1.Policy {
	s.t.Helper()
	cur, err := s.sg[i].GetPolicy(s.ctx(), &sgv1.GetPolicyRequest{})
	if err != nil {
		s.t.Fatalf("get policy: %v", err)
	}
	p := cur.GetPolicy()
	change(p)
	res, err := s.sg[i].SetPolicy(s.ctx(), &sgv1.SetPolicyRequest{Policy: p, ExpectedVersion: p.GetVersion(), Actor: "dsl"})
	if err != nil {
		s.t.Fatalf("set policy: %v", err)
	}
	return res.GetPolicy()
}

// seen makes chat record the users' token roles (any command does).
func seen(us ...*user) {
	for _, u := range us {
		u.ok("list-rooms", nil, nil)
	}
}

func TestSafeguarding_DirectRoomPolicyRows(t *testing.T) {
	s := newSG(t, 2)
	t1, t2 := s.user("t1", "teacher"), s.user("t2", "teacher")
	s1, s2 := s.user("s1", "student"), s.user("s2", "student")
	g1, a1 := s.user("g1", "guardian"), s.user("a1", "admin")
	seen(t1, t2, s1, s2, g1, a1)
	rows := []struct {
		from, to *user
		ok       bool
	}{
		{s1, s2, false}, {s2, s1, false}, {t1, s1, true}, {s1, t1, true}, {g1, t1, true}, {t1, g1, true},
		{t1, t2, true}, {g1, s1, false}, {a1, s1, true}, {s1, a1, true},
	}
	for _, r := range rows {
		if r.ok {
			r.from.ok("open-direct-room", map[string]any{"userId": r.to.id}, nil)
		} else {
			r.from.fail("forbidden", "open-direct-room", map[string]any{"userId": r.to.id})
		}
	}
	// Never seen: unclassified, refused to a student.
	s1.fail("forbidden", "open-direct-room", map[string]any{"userId": "nobody"})

	// A change through instance 1 applies to the next command on either instance.
	p := s.setPolicy(1, func(p *sgv1.Policy) { p.DirectPairs = append(p.DirectPairs, "student:student") })
	if p.GetVersion() != 1 {
		t.Fatalf("version %d", p.GetVersion())
	}
	for range 6 { // commands are spread over both instances by the queue group
		s1.ok("open-direct-room", map[string]any{"userId": "s2"}, nil)
	}
	// A stale expected version is refused and changes nothing.
	_, err := s.sg[0].SetPolicy(s.ctx(), &sgv1.SetPolicyRequest{Policy: &sgv1.Policy{}, ExpectedVersion: 0, Actor: "dsl"})
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("stale set: %v", err)
	}
	// Turning it off again stops sends in the existing student–student room.
	s.setPolicy(0, func(p *sgv1.Policy) { p.DirectPairs = []string{"teacher:student"} })
	t1.ok("open-direct-room", map[string]any{"userId": "s1"}, nil)
	for range 4 {
		s1.fail("forbidden", "send-chat-message", map[string]any{"roomId": dmID(s1, s2), "content": "hi", "clientMsgId": "c1"})
	}
	if k := s.audits.kinds(); len(k) != 2 || k[0] != "policy.changed:dsl" {
		t.Fatalf("audit %v", k)
	}
}

func dmID(a, b *user) string { return core.DirectRoomID(a.id, b.id) }

func TestSafeguarding_BlockReportMute(t *testing.T) {
	s := newSG(t, 1)
	t1, s1, s2 := s.user("t1", "teacher"), s.user("s1", "student"), s.user("s2", "student")
	seen(t1, s1, s2)
	s.setPolicy(0, func(p *sgv1.Policy) { p.Leads = []string{"dsl"} })
	room := dmID(t1, s1)
	t1.ok("open-direct-room", map[string]any{"userId": "s1"}, nil)
	m := t1.send(room, "hello", "c1")

	// s1 blocks t1: t1 can neither open nor send in their direct room; s1 still can.
	s1.ok("block-user", map[string]any{"userId": "t1"}, nil)
	t1.fail("forbidden", "open-direct-room", map[string]any{"userId": "s1"})
	t1.fail("forbidden", "send-chat-message", map[string]any{"roomId": room, "content": "x", "clientMsgId": "c2"})
	s1.send(room, "ok from me", "c3")
	s1.ok("unblock-user", map[string]any{"userId": "t1"}, nil)
	t1.send(room, "again", "c4")

	// Reports: a member reports, the leads are notified, the queue shows it.
	var rep struct{ ReportID string }
	s1.ok("report-message", map[string]any{"roomId": room, "messageId": m.ID, "reason": "inappropriate", "text": "not nice"}, &rep)
	s1.ok("report-message", map[string]any{"roomId": room, "messageId": m.ID, "reason": "inappropriate"}, nil) // idempotent
	if s.notif.count() != 1 || s.notif.to[0][0] != "dsl" {
		t.Fatalf("notifications %v to %v", s.notif.calls, s.notif.to)
	}
	q, err := s.sg[0].ListReports(s.ctx(), &sgv1.ListReportsRequest{Status: "open"})
	if err != nil || len(q.GetReports()) != 1 || q.GetReports()[0].GetReportId() != rep.ReportID || q.GetReports()[0].GetText() != "not nice" {
		t.Fatalf("queue %v %v", q, err)
	}
	// Someone else's room's message cannot be reported.
	s2.fail("forbidden", "report-message", map[string]any{"roomId": room, "messageId": m.ID, "reason": "spam"})

	// Mute is per member and shows in list-rooms.
	s1.ok("mute-room", map[string]any{"roomId": room, "muted": true}, nil)
	var lr struct {
		Rooms []struct {
			RoomID string
			Muted  bool
		}
	}
	s1.ok("list-rooms", nil, &lr)
	if len(lr.Rooms) != 1 || !lr.Rooms[0].Muted {
		t.Fatalf("list-rooms %+v", lr)
	}
	lr.Rooms = nil
	t1.ok("list-rooms", nil, &lr)
	if len(lr.Rooms) != 1 || lr.Rooms[0].Muted {
		t.Fatalf("mute leaked to the other member")
	}
	s2.fail("forbidden", "mute-room", map[string]any{"roomId": room, "muted": true})
}

func TestSafeguarding_BadInput(t *testing.T) {
	s := newSG(t, 1)
	u := s.user("s1", "student")
	cases := []struct{ event, data string }{
		{"report-message", `{"roomId":{"$gt":""},"messageId":"m","reason":"spam"}`},
		{"report-message", `{"roomId":"r","messageId":{"$gt":""},"reason":"spam"}`},
		{"report-message", `{"roomId":"r","messageId":"m","reason":{"$gt":""}}`},
		{"report-message", `{"roomId":"r","messageId":"m","reason":"spam","text":{"$gt":""}}`},
		{"report-message", `{"roomId":"r","messageId":"m","reason":"because"}`},
		{"report-message", `{"roomId":"r","messageId":"m"}`},
		{"report-message", `{"roomId":"r","messageId":"m","reason":"spam","text":"` + strings.Repeat("x", 1001) + `"}`},
		{"block-user", `{"userId":{"$gt":""}}`},
		{"block-user", `{"userId":42}`},
		{"block-user", `{"userId":"s1"}`},
		{"unblock-user", `{"userId":{"$ne":null}}`},
		{"mute-room", `{"roomId":{"$gt":""},"muted":true}`},
		{"mute-room", `{"roomId":"r","muted":"yes"}`},
		{"mute-room", `{"roomId":"r"}`},
		{"release-held-message", `{"heldId":{"$gt":""},"release":true}`},
		{"release-held-message", `{"heldId":"h","release":"true"}`},
		{"release-held-message", `{"heldId":"h"}`},
		{"report-message", `[]`},
	}
	for _, c := range cases {
		u.fail("bad_request", c.event, c.data)
	}
	// A non-lead cannot release anything.
	u.fail("forbidden", "release-held-message", `{"heldId":"h1","release":true}`)
	// gRPC: injection-shaped ids and missing actors are InvalidArgument.
	for name, call := range map[string]func() error{
		"set policy no actor": func() error {
			_, err := s.sg[0].SetPolicy(s.ctx(), &sgv1.SetPolicyRequest{Policy: &sgv1.Policy{}})
			return err
		},
		"set policy bad pair": func() error {
			_, err := s.sg[0].SetPolicy(s.ctx(), &sgv1.SetPolicyRequest{Policy: &sgv1.Policy{DirectPairs: []string{`{"$gt":""}`}}, Actor: "dsl"})
			return err
		},
		"set policy bad zone": func() error {
			_, err := s.sg[0].SetPolicy(s.ctx(), &sgv1.SetPolicyRequest{Policy: &sgv1.Policy{Hours: &sgv1.SchoolHours{TimeZone: "Mars/Base", Start: "08:00", End: "16:00"}}, Actor: "dsl"})
			return err
		},
		"school operator": func() error {
			_, err := s.sg[0].GetPolicy(s.ctx(), &sgv1.GetPolicyRequest{School: `{"$gt":""}`})
			return err
		},
		"rules bad action": func() error {
			_, err := s.sg[0].SetContentRules(s.ctx(), &sgv1.SetContentRulesRequest{Actor: "dsl", Rules: []*sgv1.ContentRule{{Id: "x", Category: "profanity", Action: "explode", Words: []string{"a"}}}})
			return err
		},
		"decide operator id": func() error {
			_, err := s.sg[0].DecideHeldMessage(s.ctx(), &sgv1.DecideHeldMessageRequest{HeldId: `{"$gt":""}`, Actor: "dsl"})
			return err
		},
		"block self": func() error {
			_, err := s.sg[0].SetBlock(s.ctx(), &sgv1.SetBlockRequest{BlockerId: "a", BlockedId: "a", Actor: "x"})
			return err
		},
	} {
		if status.Code(call()) != codes.InvalidArgument {
			t.Errorf("%s: %v", name, call())
		}
	}
	if p, err := s.sg[0].GetPolicy(s.ctx(), &sgv1.GetPolicyRequest{}); err != nil || p.GetPolicy().GetVersion() != 0 {
		t.Fatalf("policy changed by bad input: %v %v", p, err)
	}
}
