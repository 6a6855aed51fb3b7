package edge_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	edgev1 "github.com/talim/realtime/proto/talim/edge/v1"
	"github.com/talim/realtime/services/edge"
	"github.com/talim/realtime/services/edge/edgetest"
)

// sioClient is a raw Engine.IO/Socket.IO client over WebSocket text frames: no
// client logic in between, so the tests see exactly what the edge sends. It answers
// WebSocket pings but not Engine.IO pings (tests answer "2" with "3" themselves,
// or let autoPong do it).
type sioClient struct {
	t    testing.TB
	conn net.Conn
	br   io.Reader
	wmu  sync.Mutex

	autoPong bool

	mu      sync.Mutex
	frames  []string
	closed  *edgetest.CloseError
	notify  chan struct{}
	done    chan struct{}
	open    sioOpen
	pings   int
	opCodes []ws.OpCode
}

type sioOpen struct {
	SID          string   `json:"sid"`
	Upgrades     []string `json:"upgrades"`
	PingInterval int64    `json:"pingInterval"`
	PingTimeout  int64    `json:"pingTimeout"`
	MaxPayload   int64    `json:"maxPayload"`
}

func (h *harness) sioURL(query string) string {
	u := "ws://" + h.edge.Addr() + "/socket.io/?EIO=4&transport=websocket"
	if query != "" {
		u += "&" + query
	}
	return u
}

// dialSIO upgrades, reads the Engine.IO open packet and starts reading. A refused
// upgrade returns its *edgetest.HandshakeError.
func dialSIO(t testing.TB, u string) (*sioClient, error) {
	t.Helper()
	var herr *edgetest.HandshakeError
	d := ws.Dialer{
		Timeout: 5 * time.Second,
		OnStatusError: func(status int, _ []byte, resp io.Reader) {
			herr = &edgetest.HandshakeError{Status: status}
			if r, err := http.ReadResponse(bufio.NewReader(resp), nil); err == nil {
				herr.Body, _ = io.ReadAll(r.Body)
				_ = r.Body.Close()
			}
		},
	}
	conn, br, _, err := d.Dial(context.Background(), u)
	if herr != nil {
		if conn != nil {
			_ = conn.Close()
		}
		return nil, herr
	}
	if err != nil {
		return nil, err
	}
	c := &sioClient{t: t, conn: conn, br: conn, notify: make(chan struct{}), done: make(chan struct{}), autoPong: true}
	if br != nil {
		c.br = io.MultiReader(br, conn)
	}
	t.Cleanup(func() { _ = c.conn.Close() })
	go c.readLoop()
	first := c.next(5*time.Second, func(string) bool { return true })
	if !strings.HasPrefix(first, "0{") {
		t.Fatalf("first frame %q is not an Engine.IO open packet", first)
	}
	if err := json.Unmarshal([]byte(first[1:]), &c.open); err != nil {
		t.Fatalf("open packet %q: %v", first, err)
	}
	return c, nil
}

// dialSIOConnected dials and sends CONNECT with auth, expecting 40{"sid"} and the
// `connected` event.
func dialSIOConnected(t testing.TB, h *harness, user string) *sioClient {
	t.Helper()
	c, err := dialSIO(t, h.sioURL(""))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c.connect(fmt.Sprintf(`{"token":%q}`, h.token(user, time.Hour)))
	return c
}

func (c *sioClient) connect(auth string) {
	c.t.Helper()
	c.send("40" + auth)
	f := c.expectPrefix("40")
	var ok struct{ SID string }
	if err := json.Unmarshal([]byte(f[2:]), &ok); err != nil || !strings.HasPrefix(ok.SID, "c_") {
		c.t.Fatalf("CONNECT reply %q", f)
	}
	data := c.expectEvent("connected")
	var got edgetest.Connected
	if err := json.Unmarshal(data, &got); err != nil || got.ConnectionID != ok.SID {
		c.t.Fatalf("connected %s (socket id %s)", data, ok.SID)
	}
}

func (c *sioClient) readLoop() {
	defer close(c.done)
	for {
		h, err := ws.ReadHeader(c.br)
		if err != nil {
			c.finish(&edgetest.CloseError{Code: 1006, Reason: err.Error()})
			return
		}
		p := make([]byte, h.Length)
		if _, err := io.ReadFull(c.br, p); err != nil {
			c.finish(&edgetest.CloseError{Code: 1006, Reason: err.Error()})
			return
		}
		switch h.OpCode {
		case ws.OpPing:
			_ = c.write(ws.OpPong, p)
		case ws.OpClose:
			code, reason := ws.ParseCloseFrameData(p)
			_ = c.write(ws.OpClose, ws.NewCloseFrameBody(code, ""))
			c.finish(&edgetest.CloseError{Code: int(code), Reason: reason})
			_ = c.conn.Close()
			return
		case ws.OpText:
			s := string(p)
			c.mu.Lock()
			c.opCodes = append(c.opCodes, h.OpCode)
			autoPong := c.autoPong
			if s == "2" {
				c.pings++
			}
			c.mu.Unlock()
			if s == "2" && autoPong {
				_ = c.write(ws.OpText, []byte("3"))
				continue
			}
			c.mu.Lock()
			c.frames = append(c.frames, s)
			close(c.notify)
			c.notify = make(chan struct{})
			c.mu.Unlock()
		default:
			c.mu.Lock()
			c.opCodes = append(c.opCodes, h.OpCode)
			c.mu.Unlock()
		}
	}
}

func (c *sioClient) finish(e *edgetest.CloseError) {
	c.mu.Lock()
	if c.closed == nil {
		c.closed = e
	}
	close(c.notify)
	c.notify = make(chan struct{})
	c.mu.Unlock()
}

func (c *sioClient) write(op ws.OpCode, p []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return wsutil.WriteClientMessage(c.conn, op, p)
}

func (c *sioClient) send(s string) {
	c.t.Helper()
	if err := c.write(ws.OpText, []byte(s)); err != nil {
		c.t.Fatalf("send %q: %v", s, err)
	}
}

func (c *sioClient) setAutoPong(on bool) {
	c.mu.Lock()
	c.autoPong = on
	c.mu.Unlock()
}

// next removes and returns the first frame matching want; "" when the connection
// closed (or timeout passed: then the test fails).
func (c *sioClient) next(timeout time.Duration, want func(string) bool) string {
	c.t.Helper()
	deadline := time.After(timeout)
	for {
		c.mu.Lock()
		for i, f := range c.frames {
			if want(f) {
				c.frames = append(c.frames[:i], c.frames[i+1:]...)
				c.mu.Unlock()
				return f
			}
		}
		closed, notify := c.closed, c.notify
		var queued []string
		queued = append(queued, c.frames...)
		c.mu.Unlock()
		if closed != nil {
			c.t.Fatalf("connection closed (%v) while waiting; queued %q", closed, queued)
		}
		select {
		case <-notify:
		case <-deadline:
			c.t.Fatalf("no matching frame within %v; queued %q", timeout, queued)
		}
	}
}

func (c *sioClient) expectPrefix(prefix string) string {
	c.t.Helper()
	return c.next(5*time.Second, func(f string) bool { return strings.HasPrefix(f, prefix) })
}

// expectEvent waits for 42["<name>",<data>] and returns data.
func (c *sioClient) expectEvent(name string) json.RawMessage {
	c.t.Helper()
	prefix := `42["` + name + `"`
	f := c.expectPrefix(prefix)
	var arr []json.RawMessage
	if err := json.Unmarshal([]byte(f[2:]), &arr); err != nil || len(arr) != 2 {
		c.t.Fatalf("event frame %q", f)
	}
	return arr[1]
}

// expectAck waits for 43<id>[<data>] and returns data.
func (c *sioClient) expectAck(id int) json.RawMessage {
	c.t.Helper()
	prefix := fmt.Sprintf("43%d[", id)
	f := c.expectPrefix(prefix)
	var arr []json.RawMessage
	if err := json.Unmarshal([]byte(f[len(prefix)-1:]), &arr); err != nil || len(arr) != 1 {
		c.t.Fatalf("ack frame %q", f)
	}
	return arr[0]
}

func (c *sioClient) expectClose(code int, timeout time.Duration) {
	c.t.Helper()
	select {
	case <-c.done:
	case <-time.After(timeout):
		c.t.Fatalf("not closed within %v", timeout)
	}
	c.mu.Lock()
	got := c.closed
	c.mu.Unlock()
	if got == nil || got.Code != code {
		c.t.Fatalf("closed with %v, want %d", got, code)
	}
}

func TestSocketIO_OpenPacket(t *testing.T) {
	t.Parallel()
	h := startEdge(t, func(c *edge.Config) { c.PingInterval = 7 * time.Second; c.MaxFrameBytes = 32768 })
	c, err := dialSIO(t, h.sioURL(""))
	if err != nil {
		t.Fatal(err)
	}
	o := c.open
	if len(o.SID) < 16 || o.Upgrades == nil || len(o.Upgrades) != 0 || o.PingInterval != 7000 || o.PingTimeout != 5600 || o.MaxPayload != 32768 {
		t.Fatalf("open packet %+v", o)
	}
}

func TestSocketIO_PingPong(t *testing.T) {
	t.Parallel()
	h := startEdge(t, func(c *edge.Config) { c.PingInterval = 600 * time.Millisecond })
	c := dialSIOConnected(t, h, "u1")
	// Answered pings keep the connection open.
	eventually(t, 5*time.Second, func() bool { c.mu.Lock(); defer c.mu.Unlock(); return c.pings >= 2 }, "two pings")
	// An unanswered ping closes it after pingTimeout (480 ms).
	c.setAutoPong(false)
	start := time.Now()
	c.expectClose(1001, 3*time.Second)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("pong timeout took %v", d)
	}
}

func TestSocketIO_Connect(t *testing.T) {
	t.Parallel()
	h := startEdge(t, func(c *edge.Config) { c.MaxConnsPerUser = 1 })

	t.Run("auth token", func(t *testing.T) {
		c := dialSIOConnected(t, h, "u1")
		// The per-user cap applies once the user is known: CONNECT_ERROR, then 4029.
		d, err := dialSIO(t, h.sioURL(""))
		if err != nil {
			t.Fatal(err)
		}
		d.send(fmt.Sprintf(`40{"token":%q}`, h.token("u1", time.Hour)))
		if f := d.expectPrefix("44"); !strings.Contains(f, "rate_limited") {
			t.Fatalf("CONNECT_ERROR %q", f)
		}
		d.expectClose(4029, 5*time.Second)
		c.send("41") // client DISCONNECT
		c.expectClose(1000, 5*time.Second)
	})
	t.Run("query token", func(t *testing.T) {
		eventually(t, 5*time.Second, func() bool { return edge.UserSubscriptions(h.edge) == 0 }, "u1 released")
		c, err := dialSIO(t, h.sioURL("token="+url.QueryEscape(h.token("u1", time.Hour))))
		if err != nil {
			t.Fatal(err)
		}
		c.connect("") // 40 without auth: the query authenticated
		// Over the cap with credentials in the query: refused before the upgrade.
		_, err = dialSIO(t, h.sioURL("token="+url.QueryEscape(h.token("u1", time.Hour))))
		if he, ok := err.(*edgetest.HandshakeError); !ok || he.Status != 429 {
			t.Fatalf("second connection: %v", err)
		}
	})
	t.Run("invalid query token is 401", func(t *testing.T) {
		_, err := dialSIO(t, h.sioURL("token=garbage"))
		he, ok := err.(*edgetest.HandshakeError)
		if !ok || he.Status != 401 || !strings.Contains(string(he.Body), `"unauthorized"`) {
			t.Fatalf("got %v", err)
		}
	})
	for _, tc := range []struct{ name, connect, message string }{
		{"no auth", "40", "unauthorized: missing token"},
		{"empty token", `40{"token":""}`, "unauthorized: missing token"},
		{"bad token", `40{"token":"not-a-jwt"}`, "unauthorized: invalid token"},
		{"dev userId outside dev mode", `40{"userId":"u2"}`, "unauthorized: missing token"},
		{"auth not an object", `40{"token":17}`, "unauthorized: auth must be an object like {token}"},
	} {
		t.Run("refused "+tc.name, func(t *testing.T) {
			c, err := dialSIO(t, h.sioURL(""))
			if err != nil {
				t.Fatal(err)
			}
			c.send(tc.connect)
			f := c.expectPrefix("44")
			var e struct{ Message string }
			if err := json.Unmarshal([]byte(f[2:]), &e); err != nil || !strings.HasPrefix(e.Message, tc.message) {
				t.Fatalf("CONNECT_ERROR %q, want message %q", f, tc.message)
			}
			c.expectClose(1008, 5*time.Second)
		})
	}
	t.Run("event before CONNECT closes", func(t *testing.T) {
		c, err := dialSIO(t, h.sioURL(""))
		if err != nil {
			t.Fatal(err)
		}
		c.send(`42["list-rooms",{}]`)
		c.expectClose(1008, 5*time.Second)
	})
}

func TestSocketIO_ConnectTimeout(t *testing.T) {
	t.Parallel()
	h := startEdge(t, func(c *edge.Config) { c.PingInterval = time.Second })
	c, err := dialSIO(t, h.sioURL(""))
	if err != nil {
		t.Fatal(err)
	}
	c.expectClose(1008, 5*time.Second)
}

func TestSocketIO_DevModeUserID(t *testing.T) {
	t.Parallel()
	h := startEdge(t, func(c *edge.Config) { c.DevMode = true })
	c, err := dialSIO(t, h.sioURL(""))
	if err != nil {
		t.Fatal(err)
	}
	c.connect(`{"userId":"s1"}`)
	q, err := dialSIO(t, h.sioURL("userId=s2"))
	if err != nil {
		t.Fatal(err)
	}
	q.connect("")
}

func TestSocketIO_CommandsAndAcks(t *testing.T) {
	t.Parallel()
	h := startEdge(t, nil)
	chat := edgetest.NewResponder(t, h.nc, "chat", func(cmd *edgev1.Command) *edgev1.Reply {
		if strings.Contains(string(cmd.GetData()), "forbidden-room") {
			return edgetest.Fail("forbidden", "you may not post in forbidden-room")
		}
		return edgetest.Ack(map[string]any{"message": json.RawMessage(cmd.GetData())})
	})
	c := dialSIOConnected(t, h, "u1")

	c.send(`421["send-chat-message",{"roomId":"r1","content":"hi","clientMsgId":"m1"}]`)
	if got := string(c.expectAck(1)); got != `{"message":{"roomId":"r1","content":"hi","clientMsgId":"m1"}}` {
		t.Fatalf("ack data %s", got)
	}
	cmds := chat.Commands()
	if len(cmds) != 1 || cmds[0].GetIdentity().GetUserId() != "u1" || cmds[0].GetEvent() != "send-chat-message" {
		t.Fatalf("commands %v", cmds)
	}

	c.send(`422["send-chat-message",{"roomId":"forbidden-room","content":"hi","clientMsgId":"m2"}]`)
	if got := string(c.expectAck(2)); got != `{"error":{"code":"forbidden","message":"you may not post in forbidden-room"}}` {
		t.Fatalf("error ack %s", got)
	}

	// Without an ack id, failures are `error` events.
	c.send(`42["send-chat-message",{"roomId":"forbidden-room","content":"hi","clientMsgId":"m3"}]`)
	if got := string(c.expectEvent("error")); got != `{"code":"forbidden","message":"you may not post in forbidden-room"}` {
		t.Fatalf("error event %s", got)
	}

	for _, tc := range []struct{ name, frame, code string }{
		{"unknown event", `4210["no-such-event",{}]`, "unknown_event"},
		{"data not an object", `4210["send-chat-message","r1"]`, "bad_request"},
		{"reserved name", `4210["connect",{}]`, "bad_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.send(tc.frame)
			var e struct {
				Error struct{ Code, Message string }
			}
			if err := json.Unmarshal(c.expectAck(10), &e); err != nil || e.Error.Code != tc.code || e.Error.Message == "" {
				t.Fatalf("ack %+v", e)
			}
		})
	}

	// Edge-local events work as well, ack with no data arguments included.
	c.send(`427["ping"]`)
	if got := string(c.expectAck(7)); got != `{}` {
		t.Fatalf("ping ack %s", got)
	}
	// Other namespaces get CONNECT_ERROR; the main one stays usable.
	c.send(`40/admin,`)
	if f := c.expectPrefix("44/admin,"); !strings.Contains(f, "Invalid namespace") {
		t.Fatalf("namespace refusal %q", f)
	}
	c.send(`428["ping",{}]`)
	c.expectAck(8)
}

func TestSocketIO_RateLimitedAck(t *testing.T) {
	t.Parallel()
	h := startEdge(t, func(c *edge.Config) { c.CommandRate = 1; c.CommandBurst = 1 })
	c := dialSIOConnected(t, h, "u1")
	c.send(`421["ping"]`)
	c.expectAck(1)
	c.send(`422["ping"]`)
	var e struct {
		Error struct {
			Code         string
			RetryAfterMs int64
		}
	}
	if err := json.Unmarshal(c.expectAck(2), &e); err != nil || e.Error.Code != "rate_limited" || e.Error.RetryAfterMs <= 0 {
		t.Fatalf("rate limited ack %+v", e)
	}
}

func TestSocketIO_ServerEventsAndMixedRoom(t *testing.T) {
	t.Parallel()
	h := startEdge(t, nil)
	// join-chat-room joins data.roomId; send-chat-message publishes the message to
	// both members' subjects (as the chat service does) and acks.
	edgetest.NewResponder(t, h.nc, "chat", func(cmd *edgev1.Command) *edgev1.Reply {
		var d struct{ RoomID, Content string }
		_ = json.Unmarshal(cmd.GetData(), &d)
		switch cmd.GetEvent() {
		case "join-chat-room":
			return &edgev1.Reply{Data: []byte(fmt.Sprintf(`{"roomId":%q,"lastSeq":0}`, d.RoomID)), JoinRooms: []string{d.RoomID}}
		case "send-chat-message":
			msg := fmt.Sprintf(`{"message":{"roomId":%q,"senderId":%q,"content":%q}}`, d.RoomID, cmd.GetIdentity().GetUserId(), d.Content)
			for _, u := range []string{"native", "sio"} {
				edgetest.PublishOutbound(t, h.nc, u, &edgev1.Outbound{Event: "chat-message", Data: []byte(msg), RoomId: d.RoomID})
			}
			return &edgev1.Reply{Data: []byte(msg)}
		}
		return edgetest.Echo(cmd)
	})
	n := edgetest.Dial(t, h.wsURL(), h.token("native", time.Hour))
	s := dialSIOConnected(t, h, "sio")
	if _, perr := n.Request("join-chat-room", map[string]any{"roomId": "r1"}); perr != nil {
		t.Fatal(perr)
	}
	s.send(`421["join-chat-room",{"roomId":"r1"}]`)
	if got := string(s.expectAck(1)); got != `{"roomId":"r1","lastSeq":0}` {
		t.Fatalf("join ack %s", got)
	}

	s.send(`422["send-chat-message",{"roomId":"r1","content":"from sio","clientMsgId":"a"}]`)
	s.expectAck(2)
	if got := string(n.Expect(t, "chat-message", 5*time.Second)); !strings.Contains(got, `"from sio"`) {
		t.Fatalf("native got %s", got)
	}
	if got := string(s.expectEvent("chat-message")); !strings.Contains(got, `"from sio"`) || !strings.Contains(got, `"senderId":"sio"`) {
		t.Fatalf("sio got %s", got)
	}
	if _, perr := n.Request("send-chat-message", map[string]any{"roomId": "r1", "content": "from native", "clientMsgId": "b"}); perr != nil {
		t.Fatal(perr)
	}
	n.Expect(t, "chat-message", 5*time.Second)
	if got := string(s.expectEvent("chat-message")); !strings.Contains(got, `"from native"`) {
		t.Fatalf("sio got %s", got)
	}

	// A user-level event (no room) reaches the Socket.IO connection, with data as is.
	edgetest.PublishOutbound(t, h.nc, "sio", edgetest.Event("notification", map[string]any{"notification": map[string]any{"id": "n_1", "title": "T"}}))
	if got := string(s.expectEvent("notification")); got != `{"notification":{"id":"n_1","title":"T"}}` {
		t.Fatalf("notification %s", got)
	}
	// A control close is a plain WebSocket close (socket.io-client then reconnects).
	edgetest.PublishOutbound(t, h.nc, "sio", &edgev1.Outbound{Control: &edgev1.Control{CloseCode: 4001, CloseReason: "revoked"}})
	s.expectClose(4001, 5*time.Second)
	s.mu.Lock()
	left := append([]string(nil), s.frames...)
	s.mu.Unlock()
	for _, f := range left {
		if f == "41" {
			t.Fatalf("server sent a Socket.IO DISCONNECT (41): socket.io-client would not reconnect")
		}
	}
}

func TestSocketIO_HTTPRefusals(t *testing.T) {
	t.Parallel()
	h := startEdge(t, nil)
	base := h.httpURL() + "/socket.io/"
	for _, tc := range []struct{ name, method, query, want string }{
		{"unknown transport", "GET", "?EIO=4&transport=xhr", `unknown transport`},
		{"no transport", "GET", "?EIO=4", `unknown transport`},
		{"websocket without upgrade", "GET", "?EIO=4&transport=websocket", `needs a GET with Upgrade: websocket`},
		{"polling POST without sid", "POST", "?EIO=4&transport=polling", `starts with a GET without sid`},
		{"polling unknown sid", "GET", "?EIO=4&transport=polling&sid=abc", `unknown session id`},
		{"polling POST unknown sid", "POST", "?EIO=4&transport=polling&sid=abc", `unknown session id`},
		{"EIO 3", "GET", "?EIO=3&transport=websocket", `socket.io-client v3/v4`},
		{"no EIO", "GET", "?transport=websocket", `Engine.IO protocol 4`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, base+tc.query, strings.NewReader(""))
			req.Header.Set("Origin", "http://"+h.edge.Addr())
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 400 || !strings.Contains(string(b), `"code":"bad_request"`) || !strings.Contains(string(b), tc.want) {
				t.Fatalf("%d %s", resp.StatusCode, b)
			}
			if resp.Header.Get("Access-Control-Allow-Origin") == "" {
				t.Fatalf("no CORS header on the refusal: the browser would hide the message")
			}
		})
	}
}

func TestSocketIO_FramingCloses(t *testing.T) {
	t.Parallel()
	h := startEdge(t, func(c *edge.Config) { c.MaxFrameBytes = 1024 })
	for _, tc := range []struct {
		name string
		op   ws.OpCode
		p    string
		code int
	}{
		{"binary frame", ws.OpBinary, "\x00\x01", 1003},
		{"too big", ws.OpText, `42["ping",{"x":"` + strings.Repeat("x", 2000) + `"}]`, 1009},
		{"malformed packet", ws.OpText, `42["ping",{`, 1008},
		{"binary attachment", ws.OpText, `451-["ping",{"_placeholder":true,"num":0}]`, 1008},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialSIOConnected(t, h, "u1")
			if err := c.write(tc.op, []byte(tc.p)); err != nil {
				t.Fatal(err)
			}
			c.expectClose(tc.code, 5*time.Second)
		})
	}
}

func TestSocketIO_TokenExpiryCloses4001(t *testing.T) {
	t.Parallel()
	h := startEdge(t, nil)
	c, err := dialSIO(t, h.sioURL(""))
	if err != nil {
		t.Fatal(err)
	}
	c.connect(fmt.Sprintf(`{"token":%q}`, h.token("u1", 1500*time.Millisecond)))
	c.expectClose(4001, 5*time.Second)
}

func TestSocketIO_DrainClosesWith1012(t *testing.T) {
	t.Parallel()
	h := startEdge(t, func(c *edge.Config) { c.DrainWindow = 300 * time.Millisecond })
	c := dialSIOConnected(t, h, "u1")
	n := edgetest.Dial(t, h.wsURL(), h.token("u2", time.Hour))
	pending, err := dialSIO(t, h.sioURL("")) // upgraded, no CONNECT yet
	if err != nil {
		t.Fatal(err)
	}
	go h.stop()
	c.expectClose(1012, 5*time.Second)
	n.ExpectClose(t, 1012, 5*time.Second)
	// A CONNECT arriving during the drain is closed with 1012 too (reconnect elsewhere).
	pending.send(fmt.Sprintf(`40{"token":%q}`, h.token("u3", time.Hour)))
	pending.expectClose(1012, 5*time.Second)
}

func TestSocketIO_ProtocolEncoding(t *testing.T) {
	t.Parallel()
	p := edge.SocketIO{}
	for _, tc := range []struct{ name, got, want string }{
		{"event", string(p.AppendEvent(nil, "chat-message", []byte(`{"message":{"seq":1}}`))), `42["chat-message",{"message":{"seq":1}}]`},
		{"event without data", string(p.AppendEvent(nil, "x", nil)), `42["x",{}]`},
		{"ack", string(p.AppendAck(nil, []byte("17"), []byte(`{"roomId":"r"}`))), `4317[{"roomId":"r"}]`},
		{"error ack", string(p.AppendError(nil, []byte("3"), "forbidden", "no \"way\"", 0)), `433[{"error":{"code":"forbidden","message":"no \"way\""}}]`},
		{"error ack retry", string(p.AppendError(nil, []byte("3"), "rate_limited", "slow", 250)), `433[{"error":{"code":"rate_limited","message":"slow","retryAfterMs":250}}]`},
		{"error event", string(p.AppendError(nil, nil, "internal", "x", 0)), `42["error",{"code":"internal","message":"x"}]`},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: got %s, want %s", tc.name, tc.got, tc.want)
		}
	}
	env, err := p.Decode([]byte(`425["join-chat-room",{"roomId":"r"}]`))
	if err != nil || string(env.Event) != "join-chat-room" || string(env.Data) != `{"roomId":"r"}` || string(env.ID) != "5" {
		t.Fatalf("decode event: %+v %v", env, err)
	}
	for _, f := range []string{"3", "2", "40", "41", `40/admin,`} {
		if env, err := p.Decode([]byte(f)); err != nil || len(env.Event) != 0 {
			t.Fatalf("decode %q: %+v %v", f, env, err)
		}
	}
	if _, err := p.Decode([]byte(`429["x","not an object"]`)); err == nil || string(err.ID) != "9" {
		t.Fatalf("decode non-object data: %v", err)
	}
	if _, err := p.Decode([]byte(`9`)); err == nil {
		t.Fatal("decode of an unknown packet type succeeded")
	}
}
