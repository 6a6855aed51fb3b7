package chat_test

import (
	"context"
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
