package e2e

import (
	"context"
	"testing"
	"time"
)

// TestFault_NATSRestart_NothingAckedLost: the only NATS server is shut down in the
// middle of chat traffic and started again on the same port. Every service
// reconnects by itself; sends made meanwhile fail (unavailable) or wait, and are
// retried with their clientMsgId. Afterwards every acked message is stored exactly
// once with gap-free seqs, and every client holds the same gap-free history.
func TestFault_NATSRestart_NothingAckedLost(t *testing.T) {
	ns := startNATSAt(t)
	fdb := startFerretAt(t)
	rg := newRig(t, ns.URL(), fdb.URI())
	b := rg.startBasic(nil)
	const room = "f-nats"
	rg.createRoom(b.Chat, room, "ann", "ben", "cy")

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	members := []*member{
		rg.newMember(ctx, wsURL(b.Edge), "ann", room, nil),
		rg.newMember(ctx, wsURL(b.Edge), "ben", room, nil),
		rg.newMember(ctx, wsURL(b.Edge), "cy", room, nil),
	}
	l := newLedger()
	var outage time.Duration
	runTraffic(t, ctx, l, members, room, 10*time.Millisecond, 20, 20, func() {
		start := time.Now()
		ns.stop()
		// Down long enough for every in-flight request to fail or be buffered.
		time.Sleep(300 * time.Millisecond)
		ns.start()
		outage = time.Since(start)
	})
	acked, errs := l.snapshot()
	t.Logf("NATS down for %s; %d acks; errors on the way (retried): %v", outage.Round(time.Millisecond), len(acked), errs)
	stored := rg.verifyStored(room, acked)
	for _, m := range members {
		expectHistory(t, m, stored)
	}
}
