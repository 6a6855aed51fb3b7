package bench

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Scenarios.
const (
	Idle           = "idle"
	Fanout         = "fanout"
	Rooms          = "rooms"
	Notify         = "notify"
	ReconnectStorm = "reconnect-storm"
	JoinStorm      = "join-storm"
)

// Scenarios lists every scenario, one a line.
var Scenarios = []string{
	Idle,
	Fanout,
	Rooms,
	Notify,
	ReconnectStorm,
	JoinStorm,
}

// IsScenario reports whether name is a scenario.
func IsScenario(name string) bool { return slices.Contains(Scenarios, name) }

// Probe rooms (Options.ProbeRoom).
const (
	ProbeFresh = "fresh" // a first join of an open room created up front, with no members
	ProbeOwn   = "own"   // the connection's own room again
)

// setupRooms creates the scenario's rooms through ChatAdminService (8 at a time).
func (r *run) setupRooms(ctx context.Context) error {
	var rooms map[string][]string
	switch r.o.Scenario {
	case Fanout:
		rooms = map[string][]string{r.roomName(0): r.users}
	case Rooms, ReconnectStorm:
		rooms = map[string][]string{}
		for g, u := range r.users {
			k := r.roomName(g / r.o.RoomSize)
			rooms[k] = append(rooms[k], u)
		}
	case JoinStorm:
		return r.adm.createOpenRoom(ctx, r.roomName(0))
	default:
		return nil
	}
	if r.o.ProbeAfter > 0 && r.o.ProbeRoom == ProbeFresh {
		if err := r.adm.createOpenRoom(ctx, r.probeRoom()); err != nil {
			return err
		}
	}
	t0 := time.Now()
	sem := make(chan struct{}, 8)
	var mu sync.Mutex
	var first error
	var wg sync.WaitGroup
	for name, us := range rooms {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := r.adm.createRoom(ctx, name, us); err != nil {
				mu.Lock()
				first = cmpErr(first, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	r.logf("created %d rooms in %.1fs", len(rooms), time.Since(t0).Seconds())
	return first
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

func (r *run) roomPrefix() string { return "bench-" + r.runID + "-r" }
func (r *run) roomName(i int) string {
	switch r.o.Scenario {
	case Fanout:
		return "bench-" + r.runID + "-fanout"
	case JoinStorm:
		return "bench-" + r.runID + "-open"
	}
	return fmt.Sprintf("%s%d", r.roomPrefix(), i)
}

// probeRoom is the open room the overload probe joins (ProbeFresh).
func (r *run) probeRoom() string { return "bench-" + r.runID + "-probe" }

func (r *run) idle(ctx context.Context, base procSet) error {
	r.logf("settling %s before measuring", r.o.Settle)
	select {
	case <-time.After(r.o.Settle):
	case <-ctx.Done():
		return ctx.Err()
	}
	after := r.measure()
	r.res.Idle = &IdleResult{RSSBeforeBytes: base.edge.RSSBytes, RSSAfterBytes: after.edge.RSSBytes}
	if n := r.res.Connections.Reached; n > 0 {
		r.res.Idle.PerConnBytes = float64(after.edge.RSSBytes-base.edge.RSSBytes) / float64(n)
	}
	r.res.Idle.EdgeAlone = r.t.EdgePID != r.t.ServicesPID
	r.res.Idle.Note = "edge RSS after connecting and settling minus before, divided by connections"
	if !r.res.Idle.EdgeAlone {
		r.res.Idle.Note += "; the edge shares its process with NATS, the services and FerretDB, so the figure includes their share"
	}
	// A second sample 2 s later shows whether RSS was still moving.
	time.Sleep(2 * time.Second)
	r.res.Idle.RSSAfter2sBytes = r.measure().edge.RSSBytes
	r.res.sysBase, r.res.sysEnd = base, after
	return nil
}

// joinPhase joins every connection to its room and records the counts and time.
func (r *run) joinPhase(ctx context.Context, timeout time.Duration) error {
	t0 := time.Now()
	evs, err := r.all(ctx, Cmd{Op: "join", TimeoutMs: timeout.Milliseconds(), Inflight: r.o.JoinInflight}, "joined", timeout+time.Minute)
	if err != nil {
		return err
	}
	for _, e := range evs {
		r.res.Connections.Joined += e.OK
		r.res.Connections.JoinFailed += e.Failed
	}
	r.res.JoinSeconds = round3(time.Since(t0).Seconds())
	r.logf("joined %d (failed %d) in %.1fs", r.res.Connections.Joined, r.res.Connections.JoinFailed, r.res.JoinSeconds)
	return nil
}

// chat runs fanout, rooms and reconnect-storm: join, send on schedule, probe, drain.
func (r *run) chat(ctx context.Context) error {
	if err := r.joinPhase(ctx, 2*time.Minute); err != nil {
		return err
	}
	base := r.measure()
	start := time.Now().Add(time.Second)
	r.obs.begin(ctx, start, r.o.Duration)
	n := len(r.workers)
	var dropErr chan error
	if r.o.Scenario == ReconnectStorm {
		dropErr = make(chan error, 1)
		go func() {
			select {
			case <-time.After(time.Until(start.Add(r.o.Duration / 3))):
			case <-ctx.Done():
				dropErr <- ctx.Err()
				return
			}
			r.logf("dropping every connection; reconnects spread over %s", r.o.DropWindow)
			_, err := r.all(ctx, Cmd{Op: "drop", WindowMs: r.o.DropWindow.Milliseconds()}, "dropped", time.Minute)
			dropErr <- err
		}()
	}
	r.res.sendStart = start
	r.sendStartNs.Store(start.UnixNano())
	if _, err := r.all(ctx, Cmd{Op: "send", Rate: r.o.Rate / float64(n), StartNs: start.UnixNano(), DurationMs: r.o.Duration.Milliseconds()}, "sent", r.o.Duration+2*time.Minute); err != nil {
		return err
	}
	r.res.sendEnd = time.Now()
	var probeErr chan error
	if r.o.ProbeAfter > 0 {
		probeErr = make(chan error, 1)
		go func() { probeErr <- r.probe(ctx, r.res.sendEnd.Add(r.o.ProbeAfter)) }()
	}
	if dropErr != nil {
		if err := <-dropErr; err != nil {
			return err
		}
	}
	r.drain(ctx)
	r.res.sysBase, r.res.sysEnd = base, r.measure()
	r.obs.end(ctx)
	if probeErr != nil {
		if err := <-probeErr; err != nil {
			return err
		}
	}
	return nil
}

// probe waits until at, then has every worker send its join probe and waits for the
// answers (each bounded by 10 s).
func (r *run) probe(ctx context.Context, at time.Time) error {
	select {
	case <-time.After(time.Until(at)):
	case <-ctx.Done():
		return ctx.Err()
	}
	r.logf("probe: %d joins per worker, %s after the send phase", r.o.ProbeConns, r.o.ProbeAfter)
	evs, err := r.all(ctx, Cmd{Op: "probe", Max: r.o.ProbeConns, TimeoutMs: 10_000}, "probed", time.Minute)
	if err != nil {
		return err
	}
	p := &ProbeResult{After: r.o.ProbeAfter.String(), Room: r.o.ProbeRoom}
	for _, e := range evs {
		p.OK += e.OK
		p.Failed += e.Failed
	}
	r.res.Probe = p
	return nil
}

// drain waits until deliveries, acks, refusals, rejoins and recoveries stop growing
// for 2 s with every send answered, or for 10 s (at most 30 s in all).
func (r *run) drain(ctx context.Context) {
	last, stable := int64(-1), time.Now()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		p := r.progress()
		answered := p.Acked+p.Refused >= p.Sent
		if n := p.Delivered + p.Acked + p.Refused + p.Recovered + p.Rejoined; n != last {
			last, stable = n, time.Now()
		} else if s := time.Since(stable); s > 10*time.Second || answered && s > 2*time.Second {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// notify sends Rate notifications/s for Duration, each to every connected user.
func (r *run) notify(ctx context.Context) error {
	base := r.measure()
	start := time.Now().Add(500 * time.Millisecond)
	p := Pacer{S: NewSchedule(start, r.o.Rate, r.o.Duration)}
	r.obs.begin(ctx, start, r.o.Duration)
	r.res.sendStart = start
	r.sendStartNs.Store(start.UnixNano())
	var wg sync.WaitGroup
	var mu sync.Mutex
	sem := make(chan struct{}, 16)
	end := start.Add(r.o.Duration + 30*time.Second)
	for ctx.Err() == nil && time.Now().Before(end) {
		from, to, lag, wait, done := p.Ready(time.Now())
		if done {
			break
		}
		if from == to {
			time.Sleep(wait)
			continue
		}
		for k := from; k < to; k++ {
			mu.Lock()
			r.res.lag.RecordDuration(lag)
			mu.Unlock()
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				t0 := time.Now()
				err := r.adm.notify(ctx, k, r.users)
				mu.Lock()
				defer mu.Unlock()
				r.res.Messages.Sent++
				if err != nil {
					r.res.Messages.SendFailed++
					r.res.addErr("notify: " + shortErr(err))
					return
				}
				r.res.ack.RecordDuration(time.Since(t0))
				r.res.notifyAcked++
				r.res.notifyMax = max(r.res.notifyMax, int64(k+1))
			})
		}
	}
	wg.Wait()
	r.res.sendEnd = time.Now()
	r.drain(ctx)
	r.res.sysBase, r.res.sysEnd = base, r.measure()
	r.obs.end(ctx)
	return nil
}
