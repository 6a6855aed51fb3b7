package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/talim/realtime/pkg/client"
)

// received collects the chat messages a client delivers to the application.
type received struct {
	mu   sync.Mutex
	msgs []client.Message
}

func (r *received) add(m client.Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, m)
}

func (r *received) snapshot() []client.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.msgs)
}

// killableDialer records the client's TCP connections and can refuse new ones, so the
// test can cut a client off the network the hard way (no close frame).
type killableDialer struct {
	mu      sync.Mutex
	offline bool
	conns   []net.Conn
}

func (d *killableDialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d.mu.Lock()
	offline := d.offline
	d.mu.Unlock()
	if offline {
		return nil, errors.New("test: network down")
	}
	nc, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err == nil {
		d.mu.Lock()
		d.conns = append(d.conns, nc)
		d.mu.Unlock()
	}
	return nc, err
}

func (d *killableDialer) cut() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.offline = true
	for _, nc := range d.conns {
		nc.Close()
	}
	d.conns = nil
}

func (d *killableDialer) restore() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.offline = false
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestClient_E2E_ResumeAndOutboxAfterSocketKill: t1 and s1 chat in room-123 through
// pkg/client; s1's socket is killed while t1 keeps sending and s1 sends through its
// outbox; after the reconnect both hold every message exactly once, in seq order.
func TestClient_E2E_ResumeAndOutboxAfterSocketKill(t *testing.T) {
	st := newStack(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	backoff := client.Backoff{Initial: 50 * time.Millisecond, Max: 300 * time.Millisecond}
	teacher := client.New(client.Options{URL: st.WSURL, Token: token(t, st, "t1", "teacher"), Backoff: backoff})
	defer teacher.Close()
	kd := &killableDialer{}
	student := client.New(client.Options{
		URL: st.WSURL, Token: token(t, st, "s1", "student"), Backoff: backoff,
		Dialer: ws.Dialer{NetDial: kd.dial},
	})
	defer student.Close()
	var atTeacher, atStudent received
	teacher.OnMessage(atTeacher.add)
	student.OnMessage(atStudent.add)

	for _, c := range []*client.Client{teacher, student} {
		if err := c.Connect(ctx); err != nil {
			t.Fatalf("connect: %v", err)
		}
	}
	if student.UserID() != "s1" {
		t.Fatalf("student user %q", student.UserID())
	}
	base := int64(-1)
	for _, c := range []*client.Client{teacher, student} {
		res, err := c.JoinRoom(ctx, "room-123", client.JoinOptions{})
		if err != nil {
			t.Fatalf("join room-123: %v", err)
		}
		if base < 0 {
			base = res.LastSeq
		}
	}

	var sentMu sync.Mutex
	var sent []client.Message // every ack, both senders
	teacherSends := func(from, to int) {
		t.Helper()
		for i := from; i <= to; i++ {
			m, err := teacher.Send(ctx, "room-123", fmt.Sprintf("teacher %d", i), client.SendOptions{})
			if err != nil {
				t.Fatalf("teacher send %d: %v", i, err)
			}
			sentMu.Lock()
			sent = append(sent, m)
			sentMu.Unlock()
		}
	}

	teacherSends(1, 5)
	waitFor(t, "student got the first 5", func() bool { return len(atStudent.snapshot()) >= 5 })

	// Cut the student off: socket closed under it, reconnects refused.
	kd.cut()
	waitFor(t, "student disconnected", func() bool { return student.Status() != client.StatusConnected })

	// While offline the student sends three messages (outbox), the teacher keeps going.
	var wg sync.WaitGroup
	outboxErrs := make(chan error, 3)
	for i := 1; i <= 3; i++ {
		before := student.Outbox()
		wg.Go(func() {
			m, err := student.Send(ctx, "room-123", fmt.Sprintf("student offline %d", i), client.SendOptions{})
			if err != nil {
				outboxErrs <- err
				return
			}
			sentMu.Lock()
			sent = append(sent, m)
			sentMu.Unlock()
		})
		waitFor(t, "queued in the outbox", func() bool { return student.Outbox() == before+1 })
	}
	teacherSends(6, 15)

	kd.restore()
	waitFor(t, "student reconnected", func() bool { return student.Status() == client.StatusConnected })
	wg.Wait()
	close(outboxErrs)
	for err := range outboxErrs {
		t.Fatalf("outbox send: %v", err)
	}
	teacherSends(16, 20)

	const total = 23 // 20 from the teacher, 3 from the student's outbox
	want := make([]int64, 0, total)
	for s := base + 1; s <= base+total; s++ {
		want = append(want, s)
	}
	for name, r := range map[string]*received{"teacher": &atTeacher, "student": &atStudent} {
		waitFor(t, name+" got every message", func() bool { return len(r.snapshot()) >= total })
		msgs := r.snapshot()
		seqs := make([]int64, 0, len(msgs))
		for _, m := range msgs {
			seqs = append(seqs, m.Seq)
		}
		if !slices.Equal(seqs, want) {
			t.Fatalf("%s received seqs %v, want %v exactly once each", name, seqs, want)
		}
	}

	// Each acked message appears exactly once, under its acked seq, and the outbox
	// messages kept their order.
	sentMu.Lock()
	defer sentMu.Unlock()
	if len(sent) != total {
		t.Fatalf("%d acks, want %d", len(sent), total)
	}
	bySeq := map[int64]client.Message{}
	for _, m := range atStudent.snapshot() {
		bySeq[m.Seq] = m
	}
	var studentSeqs []int64
	for _, m := range sent {
		got, ok := bySeq[m.Seq]
		if !ok || got.ID != m.ID || got.Content != m.Content || got.ClientMsgID != m.ClientMsgID {
			t.Fatalf("ack %+v does not match delivery %+v", m, got)
		}
		if m.SenderID == "s1" {
			studentSeqs = append(studentSeqs, m.Seq)
		}
	}
	slices.Sort(studentSeqs)
	for i, s := range studentSeqs {
		if want := fmt.Sprintf("student offline %d", i+1); bySeq[s].Content != want {
			t.Fatalf("outbox order: seq %d holds %q, want %q", s, bySeq[s].Content, want)
		}
	}
}
