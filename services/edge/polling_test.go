package edge_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"go.uber.org/goleak"

	"github.com/talim/realtime/services/edge"
	"github.com/talim/realtime/services/edge/edgetest"
)

// pollClient is a raw Engine.IO long-polling client: every request and answer as it
// is on the wire (docs/socketio.md "Transports").
type pollClient struct {
	t    testing.TB
	base string // http://host/socket.io/?EIO=4&transport=polling
	sid  string
	open sioOpen
	buf  []string // packets received and not consumed by until yet
}

func (h *harness) pollBase() string {
	return h.httpURL() + "/socket.io/?EIO=4&transport=polling"
}

// pollOpen makes the polling handshake (extra is appended to the query).
func pollOpen(t testing.TB, h *harness, extra string) *pollClient {
	t.Helper()
	c := &pollClient{t: t, base: h.pollBase()}
	st, body := pollDo(t, http.MethodGet, c.base+extra, "")
	if st != 200 || !strings.HasPrefix(body, "0{") {
		t.Fatalf("handshake: %d %s", st, body)
	}
	if err := json.Unmarshal([]byte(body[1:]), &c.open); err != nil {
		t.Fatalf("open packet %q: %v", body, err)
	}
	c.sid = c.open.SID
	return c
}

func pollDo(t testing.TB, method, u, body string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (c *pollClient) url() string { return c.base + "&sid=" + c.sid }

// post sends packets in one POST and expects "ok".
func (c *pollClient) post(packets ...string) {
	c.t.Helper()
	if st, body := pollDo(c.t, http.MethodPost, c.url(), strings.Join(packets, "\x1e")); st != 200 || body != "ok" {
		c.t.Fatalf("POST %q: %d %s", packets, st, body)
	}
}

// get makes one GET and returns its packets.
func (c *pollClient) get() []string {
	c.t.Helper()
	st, body := pollDo(c.t, http.MethodGet, c.url(), "")
	if st != 200 {
		c.t.Fatalf("GET: %d %s", st, body)
	}
	return strings.Split(body, "\x1e")
}

// until polls until a packet with prefix arrives, answering pings; it returns it.
func (c *pollClient) until(prefix string) string {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if len(c.buf) == 0 {
			c.buf = c.get()
		}
		for len(c.buf) > 0 {
			p := c.buf[0]
			c.buf = c.buf[1:]
			if p == "2" {
				c.post("3")
			}
			if strings.HasPrefix(p, prefix) {
				return p
			}
		}
	}
	c.t.Fatalf("no packet %q within 10 s", prefix)
	return ""
}

func (c *pollClient) connect(h *harness, user string) {
	c.t.Helper()
	c.post(fmt.Sprintf(`40{"token":%q}`, h.token(user, time.Hour)))
	c.until(`40{"sid":`)
	c.until(`42["connected",`)
}

func TestPolling_HandshakeEventsAndClose(t *testing.T) {
	t.Parallel()
	h := startEdge(t, nil)
	c := pollOpen(t, h, "&t=abc")
	if got := c.open.Upgrades; len(got) != 1 || got[0] != "websocket" {
		t.Fatalf("upgrades %v", got)
	}
	if c.open.PingInterval != 25000 || c.open.PingTimeout != 20000 || c.open.MaxPayload != 65536 {
		t.Fatalf("open %+v", c.open)
	}
	c.connect(h, "u1")
	// Two events in one POST; the acks come back (record-separated) on the next GETs.
	c.post(`421["ping",{}]`, `422["no-such-event",{}]`)
	if got := c.until("431"); got != `431[{}]` {
		t.Fatalf("ack %s", got)
	}
	if got := c.until("432"); !strings.Contains(got, `"code":"unknown_event"`) {
		t.Fatalf("error ack %s", got)
	}
	// A delivery for the user reaches the polling session.
	edgetest.PublishOutbound(t, h.nc, "u1", edgetest.Event("notification", map[string]any{"id": "n1"}))
	if got := c.until(`42["notification"`); got != `42["notification",{"id":"n1"}]` {
		t.Fatalf("notification %s", got)
	}
	// Engine.IO close from the client: the GET gets the close packet; for a short
	// while (the client's last requests may still be on their way) so does every
	// later GET, then the session is unknown.
	c.post("1")
	c.until("1")
	if got := c.get(); len(got) != 1 || got[0] != "1" {
		t.Fatalf("GET right after close: %q", got)
	}
	eventually(t, 10*time.Second, func() bool {
		st, body := pollDo(t, http.MethodGet, c.url(), "")
		return st == 400 && strings.Contains(body, "session closed or expired")
	}, "the closed session forgotten")
}

func TestPolling_AuthRefusals(t *testing.T) {
	t.Parallel()
	h := startEdge(t, nil)
	c := pollOpen(t, h, "")
	c.post(`40{"token":"not-a-jwt"}`)
	got := c.get()
	if len(got) != 2 || got[0] != `44{"message":"unauthorized: invalid token"}` || got[1] != "1" {
		t.Fatalf("refusal %q", got)
	}
	// A bad token in the handshake request itself is refused before any session.
	if st, body := pollDo(t, http.MethodGet, h.pollBase()+"&token=bad", ""); st != 401 || !strings.Contains(body, "invalid token") {
		t.Fatalf("handshake with a bad token: %d %s", st, body)
	}
	// Authorization header: authenticated at the handshake, CONNECT needs no auth.
	req, _ := http.NewRequest(http.MethodGet, h.pollBase(), nil)
	req.Header.Set("Authorization", "Bearer "+h.token("u2", time.Hour))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var open sioOpen
	if err := json.Unmarshal(b[1:], &open); err != nil {
		t.Fatalf("open %s: %v", b, err)
	}
	c2 := &pollClient{t: t, base: h.pollBase(), sid: open.SID}
	c2.post("40")
	if got := c2.until(`42["connected",`); !strings.Contains(got, `"userId":"u2"`) {
		t.Fatalf("connected %s", got)
	}
}

func TestPolling_ConnectTimeout(t *testing.T) {
	t.Parallel()
	h := startEdge(t, func(c *edge.Config) { c.PingInterval = time.Second })
	c := pollOpen(t, h, "")
	start := time.Now()
	if got := c.get(); len(got) != 1 || got[0] != "1" {
		t.Fatalf("GET without CONNECT: %q", got)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("closed after %v", d)
	}
}

func TestPolling_BadRequests(t *testing.T) {
	t.Parallel()
	h := startEdge(t, func(c *edge.Config) { c.MaxFrameBytes = 1024 })
	t.Run("payload larger than maxPayload", func(t *testing.T) {
		c := pollOpen(t, h, "")
		c.connect(h, "u1")
		st, body := pollDo(t, http.MethodPost, c.url(), `42["ping",{"x":"`+strings.Repeat("x", 2000)+`"}]`)
		if st != 413 || !strings.Contains(body, "maxPayload") {
			t.Fatalf("%d %s", st, body)
		}
		c.until("1") // closed (1009)
	})
	t.Run("overlapping GETs", func(t *testing.T) {
		c := pollOpen(t, h, "")
		c.connect(h, "u1")
		// Two GETs at once: one waits, the other is refused and closes the session,
		// which answers the waiting one with the close packet.
		type answer struct {
			st   int
			body string
		}
		answers := make(chan answer, 2)
		for range 2 {
			go func() {
				st, body := pollDo(t, http.MethodGet, c.url(), "")
				answers <- answer{st, body}
			}()
		}
		a, b := <-answers, <-answers
		if a.st != 400 {
			a, b = b, a
		}
		if a.st != 400 || !strings.Contains(a.body, "another GET") || b.st != 200 || !strings.HasSuffix(b.body, "1") {
			t.Fatalf("overlapping GETs: %+v %+v", a, b)
		}
	})
	t.Run("malformed packet closes", func(t *testing.T) {
		c := pollOpen(t, h, "")
		c.connect(h, "u1")
		c.post(`42["ping",{`)
		c.until("1")
	})
	t.Run("bad event keeps the session", func(t *testing.T) {
		c := pollOpen(t, h, "")
		c.connect(h, "u1")
		c.post(`427["connect",{}]`)
		if got := c.until("437"); !strings.Contains(got, "bad_request") {
			t.Fatalf("%s", got)
		}
		c.post(`428["ping",{}]`)
		c.until("438")
	})
}

// TestPolling_OtherEdge: a sid is signed and names its edge; another edge of the
// same deployment (same secret) says where the session lives, and a forged sid is
// just unknown.
func TestPolling_OtherEdge(t *testing.T) {
	t.Parallel()
	ns := startNATS(t)
	a := startEdgeOn(t, ns, nil)
	b := startEdgeOn(t, ns, nil)
	c := pollOpen(t, a, "")
	c.connect(a, "u1")
	onB := b.pollBase() + "&sid=" + c.sid
	st, body := pollDo(t, http.MethodGet, onB, "")
	if st != 400 || !strings.Contains(body, "is held by edge edge-") || !strings.Contains(body, "cookie affinity") {
		t.Fatalf("GET on the other edge: %d %s", st, body)
	}
	if st, body := pollDo(t, http.MethodPost, onB, `421["ping",{}]`); st != 400 || !strings.Contains(body, "is held by edge") {
		t.Fatalf("POST on the other edge: %d %s", st, body)
	}
	i := strings.LastIndexByte(c.sid, '~')
	forged := "edge-elsewhere" + c.sid[i:]
	if st, body := pollDo(t, http.MethodGet, b.pollBase()+"&sid="+forged, ""); st != 400 || !strings.Contains(body, "unknown session id") {
		t.Fatalf("forged sid: %d %s", st, body)
	}
	// The session on its own edge is untouched.
	c.post(`421["ping",{}]`)
	c.until("431")
}

// TestPolling_Upgrade runs the Engine.IO upgrade by hand: probe, noop to the pending
// GET, upgrade packet; packets queued before the upgrade arrive first on the
// WebSocket, and the session carries on there.
func TestPolling_Upgrade(t *testing.T) {
	t.Parallel()
	h := startEdge(t, nil)
	c := pollOpen(t, h, "")
	c.connect(h, "u1")
	pending := make(chan []string, 1)
	go func() { pending <- c.get() }()
	conn, _, _, err := ws.Dial(context.Background(), "ws://"+h.edge.Addr()+"/socket.io/?EIO=4&transport=websocket&sid="+c.sid)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if err := wsutil.WriteClientText(conn, []byte("2probe")); err != nil {
		t.Fatal(err)
	}
	if b, err := wsutil.ReadServerText(conn); err != nil || string(b) != "3probe" {
		t.Fatalf("probe answer %q %v", b, err)
	}
	if got := <-pending; len(got) != 1 || got[0] != "6" {
		t.Fatalf("pending GET during the upgrade: %q", got)
	}
	// A delivery while the client is between transports waits in the pipe.
	edgetest.PublishOutbound(t, h.nc, "u1", edgetest.Event("notification", map[string]any{"id": "n2"}))
	if err := wsutil.WriteClientText(conn, []byte("5")); err != nil {
		t.Fatal(err)
	}
	if err := wsutil.WriteClientText(conn, []byte(`429["ping",{}]`)); err != nil {
		t.Fatal(err)
	}
	var got []string
	for len(got) < 2 {
		b, err := wsutil.ReadServerText(conn)
		if err != nil {
			t.Fatalf("read after upgrade (got %q): %v", got, err)
		}
		got = append(got, string(b))
	}
	if got[0] != `42["notification",{"id":"n2"}]` && got[1] != `42["notification",{"id":"n2"}]` || !contains(got, "439[{}]") {
		t.Fatalf("after the upgrade: %q", got)
	}
	// Polling is over for this session.
	if st, body := pollDo(t, http.MethodGet, h.pollBase()+"&sid="+c.sid+"&x=1", ""); st != 200 || body != "6" {
		t.Fatalf("GET after the upgrade: %d %s", st, body)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestPolling_SlowConsumer: a polling client that stops polling backs up like a
// WebSocket that stops reading and is closed as a slow consumer.
func TestPolling_SlowConsumer(t *testing.T) {
	t.Parallel()
	h := startEdge(t, func(c *edge.Config) { c.QueueBytes = 16 << 10; c.WriteTimeout = 500 * time.Millisecond })
	c := pollOpen(t, h, "")
	c.connect(h, "u1")
	big := strings.Repeat("x", 4000)
	for i := 0; i < 40; i++ {
		edgetest.PublishOutbound(t, h.nc, "u1", edgetest.Event("notification", map[string]any{"i": i, "pad": big}))
	}
	if !h.nc.IsConnected() {
		t.Fatal("nats")
	}
	_ = h.nc.Flush()
	eventually(t, 10*time.Second, func() bool {
		got := c.get()
		return got[len(got)-1] == "1"
	}, "the slow polling session closed")
	if n := edge.SlowConsumerCloses(h.edge); n < 1 {
		t.Fatalf("slow consumer closes %v", n)
	}
}

// TestPolling_DrainAndNoGoroutineLeak: polling sessions in every phase (waiting for
// CONNECT, connected with a GET waiting, upgraded) end with the edge's drain, the
// waiting GET gets the close packet, and no goroutine survives Run. Not parallel.
func TestPolling_DrainAndNoGoroutineLeak(t *testing.T) {
	ns := startNATS(t)
	base := goleak.IgnoreCurrent()
	h := startEdgeOn(t, ns, nil)
	_ = pollOpen(t, h, "") // never connects
	waiting := pollOpen(t, h, "")
	waiting.connect(h, "u1")
	up := pollOpen(t, h, "")
	up.connect(h, "u2")
	conn, _, _, err := ws.Dial(context.Background(), "ws://"+h.edge.Addr()+"/socket.io/?EIO=4&transport=websocket&sid="+up.sid)
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	_ = wsutil.WriteClientText(conn, []byte("2probe"))
	if b, _ := wsutil.ReadServerText(conn); string(b) != "3probe" {
		t.Fatalf("probe %q", b)
	}
	_ = wsutil.WriteClientText(conn, []byte("5"))
	_ = wsutil.WriteClientText(conn, []byte(`421["ping",{}]`))
	if b, _ := wsutil.ReadServerText(conn); string(b) != "431[{}]" {
		t.Fatalf("ack over the upgraded socket %q", b)
	}
	got := make(chan []string, 1)
	go func() { got <- waiting.get() }()
	h.stop()
	if g := <-got; g[len(g)-1] != "1" {
		t.Fatalf("waiting GET during the drain: %q", g)
	}
	_ = conn.Close()
	http.DefaultClient.CloseIdleConnections()
	if err := goleak.Find(base,
		goleak.IgnoreAnyFunction("github.com/nats-io/nats%2ego.(*Conn).flusher"),
		goleak.IgnoreAnyFunction("github.com/nats-io/nats%2ego.(*Conn).readLoop"),
		goleak.IgnoreAnyFunction("github.com/nats-io/nats%2ego.(*Conn).waitForMsgs"),
		goleak.IgnoreAnyFunction("github.com/nats-io/nats%2ego.(*asyncCallbacksHandler).asyncCBDispatcher"),
		goleak.IgnoreAnyFunction("github.com/nats-io/nats-server/v2/server.(*client).readLoop"),
		goleak.IgnoreAnyFunction("github.com/nats-io/nats-server/v2/server.(*client).writeLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
	); err != nil {
		t.Fatal(err)
	}
}
