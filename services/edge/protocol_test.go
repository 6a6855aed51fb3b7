package edge_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"

	edgev1 "github.com/talim/realtime/proto/talim/edge/v1"
	"github.com/talim/realtime/services/edge"
	"github.com/talim/realtime/services/edge/edgetest"
)

func TestProtocol_Errors(t *testing.T) {
	t.Parallel()
	h := startEdge(t, nil)
	c := edgetest.Dial(t, h.wsURL(), h.token("u1", time.Hour))
	cases := []struct {
		name, send, code, id string
	}{
		{"malformed json", `{"event":`, "bad_request", ""},
		{"not an object", `[1,2]`, "bad_request", ""},
		{"bad event name", `{"event":"Bad Event","id":5}`, "bad_request", "5"},
		{"data not object", `{"id":"x1","event":"ping","data":[1]}`, "bad_request", `"x1"`},
		{"float id", `{"event":"ping","id":1.5}`, "bad_request", ""},
		{"unknown event int id", `{"event":"no-such-event","id":17}`, "unknown_event", "17"},
		{"unknown event string id", `{"event":"no-such-event","id":"abc-1"}`, "unknown_event", `"abc-1"`},
		{"unknown event no id", `{"event":"no-such-event"}`, "unknown_event", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := c.Send(tc.send); err != nil {
				t.Fatal(err)
			}
			f, err := c.Next(5 * time.Second)
			if err != nil {
				t.Fatal(err)
			}
			var pe edgetest.ProtoError
			_ = json.Unmarshal(f.Data, &pe)
			if f.Event != "error" || pe.Code != tc.code || string(f.ID) != tc.id {
				t.Fatalf("got %s, want error %s with id %q", f.Raw, tc.code, tc.id)
			}
		})
	}
	// Still open and working.
	for _, id := range []string{`42`, `"str-id"`, `-7`} {
		f := mustRequest(t, c, id, "ping")
		if string(f) != "{}" {
			t.Fatalf("ping ack data %s", f)
		}
	}
}

func mustRequest(t *testing.T, c *edgetest.Client, id, event string) json.RawMessage {
	t.Helper()
	data, perr := c.RequestWithID(json.RawMessage(id), event, nil, 5*time.Second)
	if perr != nil {
		t.Fatalf("%s id %s: %v", event, id, perr)
	}
	return data
}

func TestProtocol_CloseCodes(t *testing.T) {
	t.Parallel()
	h := startEdge(t, func(c *edge.Config) { c.MaxFrameBytes = 1024 })
	tok := h.token("u1", time.Hour)
	cases := []struct {
		name string
		op   ws.OpCode
		p    []byte
		code int
	}{
		{"too big", ws.OpText, []byte(`{"event":"ping","data":{"x":"` + strings.Repeat("a", 2000) + `"}}`), 1009},
		{"binary", ws.OpBinary, []byte{1, 2, 3}, 1003},
		{"invalid utf-8", ws.OpText, []byte("{\"event\":\"ping\",\"data\":{\"x\":\"\xff\xfe\"}}"), 1007},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := edgetest.Dial(t, h.wsURL(), tok)
			if err := c.SendFrame(tc.op, tc.p); err != nil {
				t.Fatal(err)
			}
			c.ExpectClose(t, tc.code, 5*time.Second)
		})
	}
}

func TestProtocol_RateLimit(t *testing.T) {
	t.Parallel()
	h := startEdge(t, func(c *edge.Config) { c.CommandRate = 1; c.CommandBurst = 3 })
	c := edgetest.Dial(t, h.wsURL(), h.token("u1", time.Hour))
	for i := 0; i < 3; i++ {
		if _, perr := c.Request("ping", nil); perr != nil {
			t.Fatalf("ping %d: %v", i, perr)
		}
	}
	_, perr := c.Request("ping", nil)
	if perr == nil || perr.Code != "rate_limited" || perr.RetryAfterMs <= 0 || perr.RetryAfterMs > 1000 {
		t.Fatalf("4th ping: %+v", perr)
	}
}

func TestProtocol_AbuseCloses1008(t *testing.T) {
	t.Parallel()
	h := startEdge(t, nil)
	c := edgetest.Dial(t, h.wsURL(), h.token("u1", time.Hour))
	for i := 0; i < 25; i++ {
		if err := c.Send(`not json`); err != nil {
			break
		}
	}
	c.ExpectClose(t, 1008, 5*time.Second)
}

func TestProtocol_RateLimitedAbuseCloses1008(t *testing.T) {
	t.Parallel()
	h := startEdge(t, func(c *edge.Config) { c.CommandRate = 1; c.CommandBurst = 1 })
	c := edgetest.Dial(t, h.wsURL(), h.token("u1", time.Hour))
	for i := 0; i < 120; i++ {
		if err := c.Send(`{"event":"ping"}`); err != nil {
			break
		}
	}
	c.ExpectClose(t, 1008, 5*time.Second)
}

func TestProtocol_IdleTimeout(t *testing.T) {
	t.Parallel()
	h := startEdge(t, func(c *edge.Config) { c.PingInterval = 100 * time.Millisecond })
	quiet := edgetest.Dial(t, h.wsURL(), h.token("u1", time.Hour), edgetest.WithoutPong())
	alive := edgetest.Dial(t, h.wsURL(), h.token("u2", time.Hour))
	quiet.ExpectClose(t, 1001, 3*time.Second)
	// A client that answers pings stays.
	if _, perr := alive.Request("ping", nil); perr != nil {
		t.Fatalf("ping on a ponging client: %v", perr)
	}
}

func TestAuth_ExpiryAndRefresh(t *testing.T) {
	t.Parallel()
	h := startEdge(t, nil)
	t.Run("expires without refresh", func(t *testing.T) {
		t.Parallel()
		c := edgetest.Dial(t, h.wsURL(), h.token("u1", 1200*time.Millisecond))
		c.ExpectClose(t, 4001, 5*time.Second)
	})
	t.Run("refresh extends", func(t *testing.T) {
		t.Parallel()
		c := edgetest.Dial(t, h.wsURL(), h.token("u2", 1200*time.Millisecond))
		data, perr := c.Request("auth-refresh", map[string]any{"token": h.token("u2", time.Hour)})
		if perr != nil {
			t.Fatalf("auth-refresh: %v", perr)
		}
		var ack struct{ ExpiresAt string }
		if err := json.Unmarshal(data, &ack); err != nil || ack.ExpiresAt == "" {
			t.Fatalf("auth-refresh ack %s", data)
		}
		select {
		case <-c.Done():
			t.Fatalf("closed after refresh: %v", c.CloseErr())
		case <-time.After(2 * time.Second):
		}
		if _, perr := c.Request("ping", nil); perr != nil {
			t.Fatalf("ping after refresh: %v", perr)
		}
	})
	t.Run("refresh with another user refused", func(t *testing.T) {
		t.Parallel()
		c := edgetest.Dial(t, h.wsURL(), h.token("u3", time.Hour))
		_, perr := c.Request("auth-refresh", map[string]any{"token": h.token("someone-else", time.Hour)})
		if perr == nil || perr.Code != "forbidden" {
			t.Fatalf("auth-refresh with another sub: %+v", perr)
		}
		_, perr = c.Request("auth-refresh", map[string]any{"token": "garbage"})
		if perr == nil || perr.Code != "unauthorized" {
			t.Fatalf("auth-refresh with garbage: %+v", perr)
		}
	})
}

func TestRouting_ForwardAndReply(t *testing.T) {
	t.Parallel()
	h := startEdge(t, nil)
	resp := edgetest.NewResponder(t, h.nc, "chat", func(cmd *edgev1.Command) *edgev1.Reply {
		switch cmd.GetEvent() {
		case "join-chat-room":
			return &edgev1.Reply{
				Data:      []byte(`{"roomId":"r1","lastSeq":3}`),
				Frames:    []*edgev1.Frame{{Event: "chat-room-history", Data: []byte(`{"roomId":"r1","messages":[],"hasMore":false}`)}, {Event: "second", Data: []byte(`{}`)}},
				JoinRooms: []string{"r1"},
			}
		case "send-chat-message":
			return edgetest.Fail("forbidden", "not a member")
		}
		return edgetest.Echo(cmd)
	})
	c := edgetest.Dial(t, h.wsURL(), h.token("u1", time.Hour))
	data, perr := c.Request("join-chat-room", map[string]any{"roomId": "r1", "userId": "spoofed"})
	if perr != nil || string(data) != `{"roomId":"r1","lastSeq":3}` {
		t.Fatalf("join: %s %v", data, perr)
	}
	// Frames follow the ack, in order.
	if f, _ := c.Next(5 * time.Second); f.Event != "chat-room-history" {
		t.Fatalf("first frame after ack: %s", f.Raw)
	}
	if f, _ := c.Next(5 * time.Second); f.Event != "second" {
		t.Fatalf("second frame after ack: %s", f.Raw)
	}
	_, perr = c.Request("send-chat-message", map[string]any{"roomId": "r1"})
	if perr == nil || perr.Code != "forbidden" {
		t.Fatalf("service error: %+v", perr)
	}
	cmds := resp.Commands()
	if len(cmds) != 2 {
		t.Fatalf("responder got %d commands", len(cmds))
	}
	cmd := cmds[0]
	if cmd.GetIdentity().GetUserId() != "u1" || cmd.GetIdentity().GetDisplayName() != "User u1" ||
		cmd.GetConnectionId() != c.Connected.ConnectionID || cmd.GetEdgeId() != h.edge.ID() ||
		cmd.GetDeadlineUnixMs() <= time.Now().UnixMilli() || !strings.HasPrefix(cmd.GetTrace()["traceparent"], "00-") {
		t.Fatalf("command %v", cmd)
	}
	if string(cmd.GetData()) != `{"roomId":"r1","userId":"spoofed"}` {
		t.Fatalf("command data %s", cmd.GetData())
	}
}

func TestRouting_Unavailable(t *testing.T) {
	t.Parallel()
	h := startEdge(t, func(c *edge.Config) { c.RequestTimeout = 300 * time.Millisecond })
	c := edgetest.Dial(t, h.wsURL(), h.token("u1", time.Hour))
	t.Run("no responders", func(t *testing.T) {
		_, perr := c.Request("list-notifications", nil)
		if perr == nil || perr.Code != "unavailable" {
			t.Fatalf("no responders: %+v", perr)
		}
	})
	t.Run("slow service", func(t *testing.T) {
		release := make(chan struct{})
		defer close(release)
		edgetest.NewResponder(t, h.nc, "presence", func(cmd *edgev1.Command) *edgev1.Reply {
			select {
			case <-release:
			case <-time.After(2 * time.Second):
			}
			return edgetest.Echo(cmd)
		})
		start := time.Now()
		_, perr := c.Request("set-status", map[string]any{"status": "away"})
		if perr == nil || perr.Code != "unavailable" {
			t.Fatalf("slow service: %+v", perr)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("timeout took %v", d)
		}
		if _, perr := c.Request("ping", nil); perr != nil {
			t.Fatalf("connection unhealthy after a timeout: %v", perr)
		}
	})
}
