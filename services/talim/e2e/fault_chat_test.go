package e2e

import (
	"context"
	"testing"
	"time"
)

// TestFault_ChatInstanceKilled_NothingAckedLost: two chat instances share the
// queue group; one dies in the middle of traffic — its NATS connection is cut at
// once (a crashed process: in-flight replies and fan-out are lost; an insert it had
// started may still land), then its Run is cancelled. The survivor takes every
// command; retries with the same clientMsgId return the original message.
func TestFault_ChatInstanceKilled_NothingAckedLost(t *testing.T) {
	ns := startNATSAt(t)
	fdb := startFerretAt(t)
	rg := newRig(t, ns.URL(), fdb.URI())
	b := rg.startBasic(nil)
	// The victim reaches NATS through a proxy the test can cut.
	px := newTCPProxy(t, ns.URL()[len("nats://"):])
	_, victim := rg.startChat("chat-2", rg.chatConfig("nats://"+px.Addr()))
	const room = "f-chat"
	rg.createRoom(b.Chat, room, "ann", "ben", "cy")

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	members := []*member{
		rg.newMember(ctx, wsURL(b.Edge), "ann", room, nil),
		rg.newMember(ctx, wsURL(b.Edge), "ben", room, nil),
		rg.newMember(ctx, wsURL(b.Edge), "cy", room, nil),
	}
	l := newLedger()
	runTraffic(t, ctx, l, members, room, 5*time.Millisecond, 20, 20, func() {
		px.cut()
		// Its graceful stop now waits out its NATS drain timeout; traffic goes on.
		go victim.Stop()
	})
	acked, errs := l.snapshot()
	t.Logf("%d acks; errors on the way (retried): %v", len(acked), errs)
	stored := rg.verifyStored(room, acked)
	for _, m := range members {
		expectHistory(t, m, stored)
	}
}
