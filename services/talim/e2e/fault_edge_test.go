package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/talim/realtime/services/chat"
	"github.com/talim/realtime/services/edge"
	"github.com/talim/realtime/services/edge/edgetest"
	"github.com/talim/realtime/services/presence"
)

// TestFault_EdgeKilled_ClientsResumeOnSecondEdge: two edges; ann and ben are on
// edge 2, cy on edge 1. Edge 2 dies in the middle of traffic: ann's socket is cut
// without a close frame (a crash as the client sees it), then edge 2 shuts down
// (ben gets 1012). Their clients reconnect — the dialer now leads to edge 1 —,
// re-join with sinceSeq and resend their outbox; nothing acked is lost or doubled.
func TestFault_EdgeKilled_ClientsResumeOnSecondEdge(t *testing.T) {
	ns := startNATSAt(t)
	fdb := startFerretAt(t)
	rg := newRig(t, ns.URL(), fdb.URI())
	b := rg.startBasic(nil)
	edge2, edge2Proc := rg.startEdge("edge-2", rg.edgeConfig(ns.URL()))
	const room = "f-edge"
	rg.createRoom(b.Chat, room, "ann", "ben", "cy")

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	crash, drain := &router{target: edge2.Addr()}, &router{target: edge2.Addr()}
	ann := rg.newMember(ctx, wsURL(edge2), "ann", room, crash)
	ben := rg.newMember(ctx, wsURL(edge2), "ben", room, drain)
	cy := rg.newMember(ctx, wsURL(b.Edge), "cy", room, nil)
	members := []*member{ann, ben, cy}
	annConn, benConn := ann.c.ConnectionID(), ben.c.ConnectionID()
	l := newLedger()
	runTraffic(t, ctx, l, members, room, 5*time.Millisecond, 20, 20, func() {
		crash.point(b.Edge.Addr())
		drain.point(b.Edge.Addr())
		crash.cut()
		edge2Proc.Stop()
	})
	if ann.c.ConnectionID() == annConn || ben.c.ConnectionID() == benConn {
		t.Fatalf("clients did not reconnect: ann %s→%s, ben %s→%s", annConn, ann.c.ConnectionID(), benConn, ben.c.ConnectionID())
	}
	acked, errs := l.snapshot()
	t.Logf("%d acks; errors on the way (retried): %v", len(acked), errs)
	stored := rg.verifyStored(room, acked)
	for _, m := range members {
		expectHistory(t, m, stored)
	}
}

// metricValue scrapes one unlabelled counter or gauge from an admin /metrics.
func metricValue(t testing.TB, adminAddr, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + adminAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			var v float64
			fmt.Sscanf(rest, "%g", &v)
			return v
		}
	}
	return 0
}

// TestFault_SlowConsumer_ClosedWith4008_OthersContinue: a member's connection that
// never reads fills its bounded queue and is closed with 4008; the sender and a
// reading member get every message in order meanwhile, and the slow member resumes
// with sinceSeq on a new connection.
func TestFault_SlowConsumer_ClosedWith4008_OthersContinue(t *testing.T) {
	ns := startNATSAt(t)
	fdb := startFerretAt(t)
	rg := newRig(t, ns.URL(), fdb.URI())
	b := rg.startBasic(func(e *edge.Config, _ *chat.Config, _ *presence.Config) {
		e.QueueBytes, e.QueueFrames = 256<<10, 128
		e.CommandRate, e.CommandBurst = 2000, 2000
		e.WriteTimeout = 10 * time.Second
	})
	const room = "f-slow"
	rg.createRoom(b.Chat, room, "ann", "ben", "slow")
	url := wsURL(b.Edge)
	ann := edgetest.Dial(t, url, rg.token("ann"))
	ben := edgetest.Dial(t, url, rg.token("ben"))
	// A bounded receive buffer (not below the MSS: see WithReadBuffer) so the
	// kernel does not absorb megabytes first.
	slow := edgetest.Dial(t, url, rg.token("slow"), edgetest.Paused(), edgetest.WithReadBuffer(64<<10))
	for _, c := range []*edgetest.Client{ann, ben} {
		if _, perr := c.Request("join-chat-room", map[string]any{"roomId": room}); perr != nil {
			t.Fatal(perr)
		}
		c.Expect(t, "chat-room-history", 5*time.Second)
	}
	// 3900 '<', JSON-escaped to \u003c: ~23 KB frames fill the buffers sooner.
	pad := strings.Repeat("<", 3900)
	sent := 0
	deadline := time.Now().Add(rigWait)
	for metricValue(t, b.Edge.AdminAddr(), "talim_edge_slow_consumer_closes_total") == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("slow consumer not closed after %d messages", sent)
		}
		for range 5 {
			sent++
			if err := ann.Emit("send-chat-message", map[string]any{"roomId": room, "content": pad, "clientMsgId": fmt.Sprintf("s-%04d", sent)}); err != nil {
				t.Fatal(err)
			}
		}
		// ben reads along (a burst stays well under the queue limit): every
		// message, in seq order.
		for want := sent - 4; want <= sent; want++ {
			var ev struct{ Message chatMessage }
			if err := json.Unmarshal(ben.Expect(t, "chat-message", 10*time.Second), &ev); err != nil {
				t.Fatal(err)
			}
			if ev.Message.Seq != int64(want) {
				t.Fatalf("ben got seq %d, want %d", ev.Message.Seq, want)
			}
		}
	}
	t.Logf("slow consumer closed after %d messages of ~23 KB", sent)
	slow.Resume()
	slow.ExpectClose(t, 4008, 15*time.Second)
	for _, c := range []*edgetest.Client{ann, ben} {
		if _, perr := c.Request("ping", nil); perr != nil {
			t.Fatalf("a reading client was affected: %v", perr)
		}
	}
	// Sent without ids (no acks) and handled concurrently: seq order is not send
	// order. Every message is stored once, seqs 1..sent.
	stored := rg.storedMessages(room)
	seen := map[string]bool{}
	for i, m := range stored {
		if m.Seq != int64(i+1) || seen[m.ClientMsgID] || !strings.HasPrefix(m.ClientMsgID, "s-") {
			t.Fatalf("stored #%d: seq %d clientMsgId %s (duplicate: %v)", i+1, m.Seq, m.ClientMsgID, seen[m.ClientMsgID])
		}
		seen[m.ClientMsgID] = true
	}
	if len(stored) != sent {
		t.Fatalf("%d messages stored, %d sent", len(stored), sent)
	}

	// The slow member comes back and catches up from the store (the last five; a
	// history page of these 23 KB messages must stay under the queue limit, see
	// TestFault_HistoryPageLargerThanQueue).
	again := edgetest.Dial(t, url, rg.token("slow"))
	data, perr := again.Request("join-chat-room", map[string]any{"roomId": room, "sinceSeq": sent - 5})
	if perr != nil {
		t.Fatal(perr)
	}
	var ack struct{ LastSeq int64 }
	_ = json.Unmarshal(data, &ack)
	var h chatHistory
	_ = json.Unmarshal(again.Expect(t, "chat-room-history", 5*time.Second), &h)
	if ack.LastSeq != int64(sent) || len(h.Messages) != 5 || h.Messages[0].Seq != int64(sent-4) {
		t.Fatalf("resume: lastSeq %d (stored %d), history %d messages", ack.LastSeq, sent, len(h.Messages))
	}
}

// TestFault_HistoryPageLargerThanQueue: with the DEFAULT limits (1 MiB outbound
// queue, 4000-character messages, history pages of 50) one member posts 50
// messages of 4000 '<' (each JSON-escaped to \u003c: 24 KB per message, 1.2 MB for
// 50). A join used to produce one chat-room-history frame larger than the queue and
// the edge closed the joining connection with 4008, on every resume again. Chat now
// caps a page at 256 KiB of messages and sets hasMore (core.MaxPageBytes): the join
// delivers the oldest part, the member pages on with get-chat-room-history and
// receives all 50 in order on the same connection, and the newest page keeps the
// newest message.
func TestFault_HistoryPageLargerThanQueue(t *testing.T) {
	ns := startNATSAt(t)
	fdb := startFerretAt(t)
	rg := newRig(t, ns.URL(), fdb.URI())
	b := rg.startBasic(func(e *edge.Config, _ *chat.Config, _ *presence.Config) {
		// Default queue limits; only the command rate is raised so that 50 sends
		// in a row are not rate_limited (20/s, burst 40 by default).
		e.CommandRate, e.CommandBurst = 2000, 2000
	})
	const room = "f-bigpage"
	const sent = 50
	rg.createRoom(b.Chat, room, "ann", "ben")
	ann := edgetest.Dial(t, wsURL(b.Edge), rg.token("ann"))
	long := strings.Repeat("<", 4000)
	for i := 1; i <= sent; i++ {
		if _, perr := ann.Request("send-chat-message", map[string]any{"roomId": room, "content": long, "clientMsgId": fmt.Sprintf("b-%d", i)}); perr != nil {
			t.Fatal(perr)
		}
	}
	ben := edgetest.Dial(t, wsURL(b.Edge), rg.token("ben"))
	if _, perr := ben.Request("join-chat-room", map[string]any{"roomId": room, "sinceSeq": 0}); perr != nil {
		t.Fatalf("join: %v", perr)
	}
	var h chatHistory
	if err := json.Unmarshal(ben.Expect(t, "chat-room-history", 10*time.Second), &h); err != nil {
		t.Fatal(err)
	}
	if len(h.Messages) == 0 || len(h.Messages) == sent || h.Messages[0].Seq != 1 || !h.HasMore {
		t.Fatalf("join history: %d messages from seq %d, hasMore %v; want a first part from seq 1 with hasMore", len(h.Messages), firstSeq(h), h.HasMore)
	}
	got := len(h.Messages)
	last := h.Messages[got-1].Seq
	for pages := 0; h.HasMore; pages++ {
		if pages > sent {
			t.Fatal("paging does not end")
		}
		data, perr := ben.Request("get-chat-room-history", map[string]any{"roomId": room, "afterSeq": last})
		if perr != nil {
			t.Fatalf("page after %d: %v", last, perr)
		}
		h = chatHistory{}
		if err := json.Unmarshal(data, &h); err != nil {
			t.Fatal(err)
		}
		for _, m := range h.Messages {
			if m.Seq != last+1 {
				t.Fatalf("page after %d: seq %d out of order", last, m.Seq)
			}
			last = m.Seq
			got++
		}
	}
	if got != sent || last != sent {
		t.Fatalf("paged %d messages up to seq %d, want %d", got, last, sent)
	}
	// The newest page (a join without sinceSeq) keeps the newest messages.
	data, perr := ben.Request("get-chat-room-history", map[string]any{"roomId": room})
	if perr != nil {
		t.Fatal(perr)
	}
	h = chatHistory{}
	_ = json.Unmarshal(data, &h)
	if n := len(h.Messages); n == 0 || h.Messages[n-1].Seq != sent || !h.HasMore {
		t.Fatalf("newest page: %d messages, hasMore %v; want the newest with hasMore", n, h.HasMore)
	}
	if e := ben.CloseErr(); e != nil {
		t.Fatalf("connection closed: %v", e)
	}
}

func firstSeq(h chatHistory) int64 {
	if len(h.Messages) == 0 {
		return 0
	}
	return h.Messages[0].Seq
}
