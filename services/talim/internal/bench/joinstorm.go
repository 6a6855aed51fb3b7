package bench

import (
	"context"
	"time"
)

// joinStorm is the join-storm scenario: one open room with no members, and every
// connection joins it for the first time (JoinInflight joins in flight per worker).
// The measured phase (CPU, profiles, scrapes) is the join phase.
func (r *run) joinStorm(ctx context.Context) error {
	base := r.measure()
	start := time.Now()
	r.obs.begin(ctx, start, r.o.Duration)
	r.res.sendStart = start
	r.sendStartNs.Store(start.UnixNano())
	r.logf("join storm: %d connections join %s, %d in flight per worker", r.res.Connections.Reached, r.roomName(0), r.o.JoinInflight)
	// A join storm that does not finish in 10 minutes has failed anyway.
	if err := r.joinPhase(ctx, 10*time.Minute); err != nil {
		return err
	}
	r.res.sendEnd = time.Now()
	r.res.sysBase, r.res.sysEnd = base, r.measure()
	r.obs.end(ctx)
	return nil
}
