package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/talim/realtime/services/chat"
	"github.com/talim/realtime/services/edge"
	"github.com/talim/realtime/services/presence"
)

// TestFault_StoreOutage_UnavailableThenRecovers: the store (a dedicated FerretDB)
// goes away in the middle of traffic and comes back on the same address and data.
// While it is away sends fail with unavailable and no ack is given; afterwards the
// same services (no restart) store the retries, every acked message exactly once.
func TestFault_StoreOutage_UnavailableThenRecovers(t *testing.T) {
	ns := startNATSAt(t)
	fdb := startFerretAt(t)
	rg := newRig(t, ns.URL(), fdb.URI())
	b := rg.startBasic(func(e *edge.Config, _ *chat.Config, _ *presence.Config) { e.RequestTimeout = 1500 * time.Millisecond })
	const room = "f-store"
	rg.createRoom(b.Chat, room, "ann", "ben")

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	members := []*member{
		rg.newMember(ctx, wsURL(b.Edge), "ann", room, nil),
		rg.newMember(ctx, wsURL(b.Edge), "ben", room, nil),
	}
	l := newLedger()
	var duringOutage int
	runTraffic(t, ctx, l, members, room, 10*time.Millisecond, 10, 10, func() {
		fdb.stop()
		waitUntil(t, "sends failing with unavailable", func() bool { return l.errCount("unavailable") >= 2 })
		// Nothing is acked while the store is away (a batch already in flight may
		// finish: allow the senders' one in-flight message each).
		before := l.count()
		waitUntil(t, "more unavailable answers", func() bool { return l.errCount("unavailable") >= 4 })
		duringOutage = l.count() - before
		fdb.start()
	})
	acked, errs := l.snapshot()
	t.Logf("%d acks; errors on the way (retried): %v; acks while the store was away: %d", len(acked), errs, duringOutage)
	if duringOutage > len(members) {
		t.Errorf("%d sends acked while the store was away", duringOutage)
	}
	for code, n := range errs {
		if code != "unavailable" {
			t.Errorf("%d %s errors during a store outage; want only unavailable", n, code)
		}
	}
	stored := rg.verifyStored(room, acked)
	for _, m := range members {
		expectHistory(t, m, stored)
	}
}
