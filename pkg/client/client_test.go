package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

type collector struct {
	mu   sync.Mutex
	msgs []Message
}

func (c *collector) add(m Message) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.msgs = append(c.msgs, m)
}

func (c *collector) seqs(roomID string) []int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []int64
	for _, m := range c.msgs {
		if m.RoomID == roomID {
			out = append(out, m.Seq)
		}
	}
	return out
}

func seqRange(from, to int64) []int64 {
	var out []int64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

func newTestClient(t *testing.T, s *fakeServer, user string, mod func(*Options)) (*Client, *collector) {
	t.Helper()
	opts := Options{
		URL:            s.url,
		Token:          user,
		Backoff:        Backoff{Initial: 10 * time.Millisecond, Max: 40 * time.Millisecond},
		CommandTimeout: 5 * time.Second,
	}
	if mod != nil {
		mod(&opts)
	}
	c := New(opts)
	col := &collector{}
	c.OnMessage(col.add)
	t.Cleanup(func() { c.Close() })
	return c, col
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestConn_Request_AcksErrorsAndIDs(t *testing.T) {
	t.Parallel()
	s := newFakeServer(t)
	ctx := ctxT(t)
	cn, err := DialRaw(ctx, Options{URL: s.url, Token: "u1"})
	if err != nil {
		t.Fatal(err)
	}
	defer cn.Close()
	if cn.UserID() != "u1" || cn.ConnectionID() == "" || cn.Hello().PingIntervalMs != 25000 {
		t.Fatalf("hello = %+v", cn.Hello())
	}
	tests := []struct {
		name     string
		event    string
		data     any
		wantData string
		wantErr  *Error
	}{
		{name: "ack returns data", event: "echo", data: map[string]int{"x": 1}, wantData: `{"x":1}`},
		{name: "error frame", event: "fail", data: map[string]string{"code": CodeForbidden}, wantErr: &Error{Code: CodeForbidden}},
		{name: "rate limited carries retryAfterMs", event: "fail", data: map[string]any{"code": CodeRateLimited, "retryAfterMs": 1500}, wantErr: &Error{Code: CodeRateLimited, RetryAfterMs: 1500}},
		{name: "unknown event", event: "nope", wantErr: &Error{Code: CodeUnknownEvent}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := cn.Request(ctx, tc.event, tc.data)
			if tc.wantErr == nil {
				if err != nil || string(got) != tc.wantData {
					t.Fatalf("got %s, %v; want %s", got, err, tc.wantData)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Code != tc.wantErr.Code || e.RetryAfterMs != tc.wantErr.RetryAfterMs {
				t.Fatalf("err = %#v, want %#v", err, tc.wantErr)
			}
			if !errors.Is(err, &Error{Code: tc.wantErr.Code}) {
				t.Fatalf("errors.Is by code fails for %v", err)
			}
		})
	}
	// Concurrent requests each get their own answer.
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			got, err := cn.Request(ctx, "echo", map[string]int{"i": i})
			if err != nil || string(got) != fmt.Sprintf(`{"i":%d}`, i) {
				t.Errorf("request %d: %s %v", i, got, err)
			}
		})
	}
	wg.Wait()
	// Ids are distinct positive integers.
	s.get(func(s *fakeServer) {
		seen := map[string]bool{}
		for _, id := range s.ids {
			if len(id) == 0 || id[0] == '"' || seen[string(id)] || string(id) == "0" {
				t.Errorf("bad or repeated id %s", id)
			}
			seen[string(id)] = true
		}
	})
	// A pending request fails with ErrDisconnected when the socket dies.
	errc := make(chan error, 1)
	go func() {
		_, err := cn.Request(ctx, "noreply", nil)
		errc <- err
	}()
	eventually(t, 5*time.Second, "noreply received", func() bool {
		var n int
		s.get(func(s *fakeServer) { n = len(s.ids) })
		return n == 55
	})
	s.killAll()
	if err := <-errc; !errors.Is(err, ErrDisconnected) {
		t.Fatalf("pending request after kill: %v", err)
	}
	<-cn.Done()
	if _, err := cn.Request(ctx, "echo", nil); !errors.Is(err, ErrDisconnected) {
		t.Fatalf("request on dead conn: %v", err)
	}
}

func TestClient_Handshake_Refused(t *testing.T) {
	t.Parallel()
	s := newFakeServer(t)
	s.set(func(s *fakeServer) { s.refuse = 401 })
	c, _ := newTestClient(t, s, "u1", nil)
	err := c.Connect(ctxT(t))
	var he *HandshakeError
	if !errors.As(err, &he) || he.Status != 401 || he.Code != "refused" {
		t.Fatalf("err = %v", err)
	}
	if !terminal(err, false) || terminal(err, true) {
		t.Fatal("401 is terminal only without TokenFunc")
	}
}

func TestBackoff_FullJitterWithinBounds(t *testing.T) {
	t.Parallel()
	b := Options{}.withDefaults().Backoff
	wantCaps := []time.Duration{250, 500, 1000, 2000, 4000, 8000, 10000, 10000}
	for n, want := range wantCaps {
		if got := b.Cap(n); got != want*time.Millisecond {
			t.Fatalf("Cap(%d) = %v, want %v", n, got, want*time.Millisecond)
		}
		var sum time.Duration
		for range 2000 {
			d := b.Delay(n)
			if d < 0 || d > b.Cap(n) {
				t.Fatalf("Delay(%d) = %v outside [0, %v]", n, d, b.Cap(n))
			}
			sum += d
		}
		// Full jitter: the mean is about half the cap.
		if mean := sum / 2000; mean < b.Cap(n)*4/10 || mean > b.Cap(n)*6/10 {
			t.Fatalf("Delay(%d) mean %v, cap %v: not uniform", n, mean, b.Cap(n))
		}
	}
}

func TestClient_Reconnect_BackoffBoundsAndStatus(t *testing.T) {
	t.Parallel()
	s := newFakeServer(t)
	var mu sync.Mutex
	var statuses []Status
	c, _ := newTestClient(t, s, "u1", func(o *Options) {
		o.Backoff = Backoff{Initial: 20 * time.Millisecond, Max: 80 * time.Millisecond}
		o.OnStatus = func(st Status, _ error) {
			mu.Lock()
			statuses = append(statuses, st)
			mu.Unlock()
		}
	})
	if err := c.Connect(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	first := c.ConnectionID()
	s.set(func(s *fakeServer) { s.refuse = 503; s.dials = nil })
	s.killAll()
	eventually(t, 5*time.Second, "6 refused dials", func() bool {
		var n int
		s.get(func(s *fakeServer) { n = len(s.dials) })
		return n >= 6
	})
	s.set(func(s *fakeServer) { s.refuse = 0 })
	eventually(t, 5*time.Second, "reconnected", func() bool { return c.Status() == StatusConnected })
	if c.ConnectionID() == first {
		t.Fatal("connection id did not change")
	}
	s.get(func(s *fakeServer) {
		for i := 1; i < len(s.dials); i++ {
			// Each wait is at most the cap (80ms) plus the time a refused dial takes.
			if gap := s.dials[i].Sub(s.dials[i-1]); gap > 80*time.Millisecond+250*time.Millisecond {
				t.Errorf("gap %d = %v, over the backoff cap", i, gap)
			}
		}
	})
	mu.Lock()
	defer mu.Unlock()
	for _, want := range []Status{StatusConnecting, StatusConnected, StatusDisconnected} {
		if !slices.Contains(statuses, want) {
			t.Fatalf("statuses %v lack %s", statuses, want)
		}
	}
	if statuses[len(statuses)-1] != StatusConnected {
		t.Fatalf("last status %v", statuses)
	}
}

func TestClient_Reconnect_StopsOnTerminalClose(t *testing.T) {
	t.Parallel()
	s := newFakeServer(t)
	c, _ := newTestClient(t, s, "u1", nil)
	if err := c.Connect(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	s.closeAll(ws.StatusCode(CloseTooManyConnection))
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("client did not stop on 4029")
	}
	var ce *CloseError
	if c.Status() != StatusError || !errors.As(c.Err(), &ce) || ce.Code != CloseTooManyConnection {
		t.Fatalf("status %s err %v", c.Status(), c.Err())
	}
	if _, err := c.Request(ctxT(t), "ping", nil); !errors.Is(err, ErrDisconnected) {
		t.Fatalf("request after stop: %v", err)
	}
}

func TestClient_Resume_SinceSeqPagingAndDedupe(t *testing.T) {
	t.Parallel()
	s := newFakeServer(t)
	s.set(func(s *fakeServer) { s.pageSize = 3; s.dupLive = true })
	for i := range 3 {
		s.post("r1", fmt.Sprint("old ", i))
	}
	c, col := newTestClient(t, s, "u1", nil)
	ctx := ctxT(t)
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := c.JoinRoom(ctx, "r1", JoinOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.LastSeq != 3 || len(res.History) != 3 || res.History[2].Seq != 3 || res.History[0].Content != "old 0" {
		t.Fatalf("join result %+v", res)
	}
	s.post("r1", "live 4")
	s.post("r1", "live 5")
	eventually(t, 5*time.Second, "live 4,5", func() bool { return len(col.seqs("r1")) == 2 })

	// Drop the connection and refuse to reconnect while 7 messages are posted.
	s.set(func(s *fakeServer) { s.refuse = 503 })
	s.killAll()
	eventually(t, 5*time.Second, "disconnected", func() bool { return c.Status() != StatusConnected })
	for i := 6; i <= 12; i++ {
		s.post("r1", fmt.Sprint("missed ", i))
	}
	s.set(func(s *fakeServer) { s.refuse = 0 })
	eventually(t, 5*time.Second, "resumed to 12", func() bool { return len(col.seqs("r1")) >= 9 })
	s.post("r1", "live 13")
	eventually(t, 5*time.Second, "live 13", func() bool { return len(col.seqs("r1")) >= 10 })
	if got := col.seqs("r1"); !slices.Equal(got, seqRange(4, 13)) {
		t.Fatalf("delivered %v, want 4..13 once each", got)
	}
	s.get(func(s *fakeServer) {
		last := s.joins[len(s.joins)-1]
		if last.SinceSeq == nil || *last.SinceSeq != 5 || last.Conn == 1 {
			t.Errorf("rejoin %+v, want sinceSeq 5 on a new connection", last)
		}
		// 7 missed with pages of 3: the join's page, then afterSeq 8 and 11.
		if len(s.histReqs) != 2 || s.histReqs[0]["afterSeq"] != float64(8) || s.histReqs[1]["afterSeq"] != float64(11) {
			t.Errorf("history paging %v", s.histReqs)
		}
	})
	col.mu.Lock()
	m := col.msgs[len(col.msgs)-1]
	col.mu.Unlock()
	if m.Content != "live 13" || !strings.Contains(string(m.Raw), "futureField") {
		t.Fatalf("message %+v lost fields", m)
	}
	if got := c.Rooms()["r1"]; got != 13 {
		t.Fatalf("tracked seq %d", got)
	}
}

func TestClient_GapFill_DeliversInOrder(t *testing.T) {
	t.Parallel()
	s := newFakeServer(t)
	s.set(func(s *fakeServer) { s.dropLive = func(seq int64) bool { return seq == 3 || seq == 4 } })
	c, col := newTestClient(t, s, "u1", nil)
	ctx := ctxT(t)
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.JoinRoom(ctx, "r1", JoinOptions{}); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 6; i++ {
		s.post("r1", fmt.Sprint("m", i))
	}
	eventually(t, 5*time.Second, "6 messages", func() bool { return len(col.seqs("r1")) >= 6 })
	if got := col.seqs("r1"); !slices.Equal(got, seqRange(1, 6)) {
		t.Fatalf("delivered %v", got)
	}
	s.get(func(s *fakeServer) {
		if len(s.histReqs) != 1 || s.histReqs[0]["afterSeq"] != float64(2) || s.histReqs[0]["limit"] != float64(2) {
			t.Errorf("gap fill requests %v, want one afterSeq 2 limit 2", s.histReqs)
		}
	})
}

func TestClient_Outbox_FlushInOrderWithSameClientMsgID(t *testing.T) {
	t.Parallel()
	s := newFakeServer(t)
	c, col := newTestClient(t, s, "u1", nil)
	ctx := ctxT(t)
	// A send made before Connect waits in the outbox too.
	type res struct {
		m   Message
		err error
	}
	results := make([]chan res, 5)
	send := func(i int, id string) {
		results[i] = make(chan res, 1)
		before := c.Outbox()
		go func() {
			m, err := c.Send(ctx, "r1", fmt.Sprint("queued ", i), SendOptions{ClientMsgID: id})
			results[i] <- res{m, err}
		}()
		eventually(t, 5*time.Second, "queued", func() bool { return c.Outbox() == before+1 })
	}
	send(0, "")
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if r := <-results[0]; r.err != nil || r.m.Seq != 1 || r.m.ClientMsgID == "" {
		t.Fatalf("send before connect: %+v", r)
	}
	if _, err := c.JoinRoom(ctx, "r1", JoinOptions{}); err != nil {
		t.Fatal(err)
	}

	// Offline: three sends wait, in order.
	s.set(func(s *fakeServer) { s.refuse = 503 })
	s.killAll()
	eventually(t, 5*time.Second, "disconnected", func() bool { return c.Status() != StatusConnected })
	for i := 1; i <= 3; i++ {
		send(i, fmt.Sprint("cm-", i))
	}
	s.set(func(s *fakeServer) { s.refuse = 0 })
	for i := 1; i <= 3; i++ {
		r := <-results[i]
		if r.err != nil || r.m.Seq != int64(i+1) || r.m.ClientMsgID != fmt.Sprint("cm-", i) || r.m.Content != fmt.Sprint("queued ", i) {
			t.Fatalf("send %d: %+v", i, r)
		}
	}

	// A send whose socket drops before the ack is sent again with the same id.
	s.set(func(s *fakeServer) {
		s.dropBefore = func(id string) bool { return id == "cm-lost" && s.received[id] == 1 }
	})
	send(4, "cm-lost")
	r := <-results[4]
	if r.err != nil || r.m.Seq != 5 {
		t.Fatalf("lost-ack send: %+v", r)
	}
	eventually(t, 5*time.Second, "5 delivered", func() bool { return len(col.seqs("r1")) >= 4 })
	s.get(func(s *fakeServer) {
		if s.received["cm-lost"] != 2 || len(s.rooms["r1"]) != 5 {
			t.Errorf("cm-lost received %d times, room has %d messages", s.received["cm-lost"], len(s.rooms["r1"]))
		}
		for i := 1; i <= 3; i++ {
			if n := s.received[fmt.Sprint("cm-", i)]; n != 1 {
				t.Errorf("cm-%d received %d times", i, n)
			}
		}
	})
	// Seq 1 was stored before the join (it is History), 2..5 are delivered once.
	if got := col.seqs("r1"); !slices.Equal(got, seqRange(2, 5)) {
		t.Fatalf("delivered %v", got)
	}
	if c.Outbox() != 0 {
		t.Fatalf("outbox %d", c.Outbox())
	}
}

func TestClient_Outbox_LimitAndClose(t *testing.T) {
	t.Parallel()
	s := newFakeServer(t)
	c, _ := newTestClient(t, s, "u1", func(o *Options) { o.OutboxLimit = 2 })
	ctx := ctxT(t)
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			_, err := c.Send(ctx, "r1", "x", SendOptions{})
			errs <- err
		}()
	}
	eventually(t, 5*time.Second, "2 queued", func() bool { return c.Outbox() == 2 })
	if _, err := c.Send(ctx, "r1", "x", SendOptions{}); !errors.Is(err, ErrOutboxFull) {
		t.Fatalf("third send: %v", err)
	}
	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if _, err := c.Send(short, "r1", "x", SendOptions{}); !errors.Is(err, ErrOutboxFull) {
		t.Fatalf("still full: %v", err)
	}
	c.Close()
	for range 2 {
		if err := <-errs; !errors.Is(err, ErrClosed) {
			t.Fatalf("queued send after Close: %v", err)
		}
	}
	if _, err := c.Send(ctx, "r1", "x", SendOptions{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("send after Close: %v", err)
	}
}

func TestClient_RateLimitedSendIsRetried(t *testing.T) {
	t.Parallel()
	s := newFakeServer(t)
	c, _ := newTestClient(t, s, "u1", nil)
	ctx := ctxT(t)
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	s.set(func(s *fakeServer) { s.rateLimit = func(id string) bool { return s.received[id] <= 2 } })
	start := time.Now()
	m, err := c.Send(ctx, "r1", "hello", SendOptions{ClientMsgID: "rl"})
	if err != nil || m.Seq != 1 {
		t.Fatalf("send %+v %v", m, err)
	}
	if time.Since(start) < 60*time.Millisecond {
		t.Fatalf("retried before retryAfterMs: %v", time.Since(start))
	}
	s.get(func(s *fakeServer) {
		if s.received["rl"] != 3 || len(s.rooms["r1"]) != 1 {
			t.Errorf("received %d, stored %d", s.received["rl"], len(s.rooms["r1"]))
		}
	})
}

func TestClient_TokenRefresh_SendsAuthRefresh(t *testing.T) {
	t.Parallel()
	s := newFakeServer(t)
	var mu sync.Mutex
	var issued []string
	c, _ := newTestClient(t, s, "", func(o *Options) {
		o.TokenFunc = func(context.Context) (string, error) {
			tok := fakeJWT("u1", time.Now().Add(1500*time.Millisecond))
			mu.Lock()
			issued = append(issued, tok)
			mu.Unlock()
			return tok, nil
		}
	})
	if err := c.Connect(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if c.UserID() != "u1" {
		t.Fatalf("user %q", c.UserID())
	}
	eventually(t, 5*time.Second, "auth-refresh", func() bool {
		var n int
		s.get(func(s *fakeServer) { n = len(s.refreshes) })
		return n >= 1
	})
	mu.Lock()
	defer mu.Unlock()
	s.get(func(s *fakeServer) {
		if len(issued) < 2 || s.refreshes[0] != issued[1] {
			t.Errorf("refresh sent %q, tokens issued %d", s.refreshes[0], len(issued))
		}
	})
}

func TestClient_RequestWhileDisconnected(t *testing.T) {
	t.Parallel()
	s := newFakeServer(t)
	c, _ := newTestClient(t, s, "u1", nil)
	if _, err := c.ListRooms(ctxT(t)); !errors.Is(err, ErrDisconnected) {
		t.Fatalf("err %v", err)
	}
	if _, err := c.JoinRoom(ctxT(t), "r1", JoinOptions{}); !errors.Is(err, ErrDisconnected) {
		t.Fatalf("join err %v", err)
	}
}

func TestClient_On_Unsubscribe(t *testing.T) {
	t.Parallel()
	s := newFakeServer(t)
	c, _ := newTestClient(t, s, "u1", nil)
	ctx := ctxT(t)
	got := make(chan json.RawMessage, 10)
	unsub := c.On("chat-message", func(d json.RawMessage) { got <- d })
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.JoinRoom(ctx, "r1", JoinOptions{}); err != nil {
		t.Fatal(err)
	}
	s.post("r1", "one")
	select {
	case d := <-got:
		if !strings.Contains(string(d), `"content":"one"`) {
			t.Fatalf("data %s", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no event")
	}
	unsub()
	unsub()
	s.post("r1", "two")
	if _, err := c.Request(ctx, "ping", nil); err != nil { // the event is read before this ack
		t.Fatal(err)
	}
	select {
	case d := <-got:
		t.Fatalf("event after unsubscribe: %s", d)
	default:
	}
}

func TestClient_Close_LeavesNoGoroutines(t *testing.T) {
	s := newFakeServer(t) // not parallel: counts goroutines
	base := runtime.NumGoroutine()
	for i := range 3 {
		c := New(Options{URL: s.url, Token: "u1", Backoff: Backoff{Initial: time.Millisecond, Max: 5 * time.Millisecond},
			TokenFunc: func(context.Context) (string, error) { return fakeJWT("u1", time.Now().Add(time.Hour)), nil }})
		ctx := ctxT(t)
		if err := c.Connect(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := c.JoinRoom(ctx, "r1", JoinOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Send(ctx, "r1", "hi", SendOptions{}); err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			s.killAll()
			eventually(t, 5*time.Second, "reconnected", func() bool { return c.Status() == StatusConnected && s.connCount() == 1 })
		}
		if i == 2 { // close while reconnecting against a refusing server
			s.set(func(s *fakeServer) { s.refuse = 503 })
			s.killAll()
			eventually(t, 5*time.Second, "disconnected", func() bool { return c.Status() != StatusConnected })
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		select {
		case <-c.Done():
		default:
			t.Fatal("Done not closed after Close")
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("goroutines: %d > %d\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestClient_Close_DuringFirstConnect(t *testing.T) {
	t.Parallel()
	dialing := make(chan struct{})
	c := New(Options{URL: "ws://127.0.0.1:1/ws", Token: "u1", Dialer: ws.Dialer{
		NetDial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			close(dialing)
			<-ctx.Done()
			return nil, ctx.Err()
		},
	}})
	errc := make(chan error, 1)
	go func() { errc <- c.Connect(context.Background()) }()
	<-dialing
	closed := make(chan struct{})
	go func() {
		c.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close hangs during Connect")
	}
	if err := <-errc; err == nil {
		t.Fatal("Connect succeeded after Close")
	}
	<-c.Done()
}
