package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"time"
)

// Options configure one run.
type Options struct {
	Scenario string
	Label    string
	// Conns: idle and notify connections; fanout room members; rooms and
	// reconnect-storm derive it from Rooms×RoomSize.
	Conns    int
	Rooms    int
	RoomSize int
	// Rate: messages/s in total (fanout, rooms, reconnect-storm) or notifications/s (notify).
	Rate     float64
	Duration time.Duration
	// Senders: how many members of the fanout room send (rooms: every member may).
	Senders  int
	PadBytes int
	// Workers: load processes (default: enough for MaxConnsPerWorker, at least 1 per 10,000).
	Workers     int
	ConnectRate float64       // connections/s in total
	Settle      time.Duration // idle: wait after the last connect before measuring RSS
	DropWindow  time.Duration // reconnect-storm: reconnects spread over this window
	// JoinInflight bounds the joins in flight per worker (default 256).
	JoinInflight int
	// ProbeAfter, when set (rooms, fanout, reconnect-storm), sends a join probe that
	// long after the send phase ends: up to ProbeConns connections per worker (default
	// 20) join ProbeRoom (ProbeFresh by default, or ProbeOwn).
	ProbeAfter time.Duration
	ProbeConns int
	ProbeRoom  string
	// Profile, when set, is a directory: the started system serves pprof, and the
	// run writes CPU profiles of the measured phase and /metrics scrapes there.
	Profile string
	// Target, when set, is an already running system; otherwise StartSystem runs one.
	Target *Target
	System SystemOptions
	// InProcess runs the workers as goroutines (tests) instead of processes.
	InProcess bool
	// WorkerExe is the binary re-executed as `bench worker` (default: this executable).
	WorkerExe string
	Progress  io.Writer // progress bar (nil: none)
	Log       io.Writer // phase messages (nil: none)
	// Timeout bounds the whole run.
	Timeout time.Duration
}

func (o *Options) defaults() error {
	switch o.Scenario {
	case Idle, Notify:
		o.Conns = orInt(o.Conns, 1000)
	case Fanout:
		o.Conns = orInt(o.Conns, 1000)
		o.Senders = min(orInt(o.Senders, 20), o.Conns)
		o.Rate = orFloat(o.Rate, 100)
	case Rooms:
		o.Rooms, o.RoomSize = orInt(o.Rooms, 2000), orInt(o.RoomSize, 5)
		o.Conns = o.Rooms * o.RoomSize
		o.Rate = orFloat(o.Rate, 1000)
	case ReconnectStorm:
		o.Rooms, o.RoomSize = orInt(o.Rooms, 100), orInt(o.RoomSize, 10)
		o.Conns = o.Rooms * o.RoomSize
		o.Rate = orFloat(o.Rate, 200)
		o.DropWindow = orDur(o.DropWindow, 5*time.Second)
	case JoinStorm:
		o.Conns = orInt(o.Conns, 10_000)
	default:
		return fmt.Errorf("bench: unknown scenario %q (%s)", o.Scenario, strings.Join(Scenarios, ", "))
	}
	if o.JoinInflight < 0 || o.JoinInflight > 10_000 {
		return fmt.Errorf("bench: %d joins in flight: want 1..10000", o.JoinInflight)
	}
	o.JoinInflight = orInt(o.JoinInflight, 256)
	if o.ProbeAfter < 0 || o.ProbeAfter > 10*time.Minute {
		return fmt.Errorf("bench: probe after %s: want 0..10m", o.ProbeAfter)
	}
	if o.ProbeAfter > 0 && o.Scenario != Rooms && o.Scenario != Fanout && o.Scenario != ReconnectStorm {
		return fmt.Errorf("bench: --probe-after is for rooms, fanout and reconnect-storm, not %s", o.Scenario)
	}
	if o.ProbeConns < 0 || o.ProbeConns > 1000 {
		return fmt.Errorf("bench: %d probe connections per worker: want 1..1000", o.ProbeConns)
	}
	o.ProbeConns = orInt(o.ProbeConns, 20)
	o.ProbeRoom = orStr(o.ProbeRoom, ProbeFresh)
	if o.ProbeRoom != ProbeFresh && o.ProbeRoom != ProbeOwn {
		return fmt.Errorf("bench: probe room %q: want %s or %s", o.ProbeRoom, ProbeFresh, ProbeOwn)
	}
	if o.Conns <= 0 || o.Conns > 200_000 {
		return fmt.Errorf("bench: %d connections: want 1..200000", o.Conns)
	}
	if o.Rate < 0 || o.Rate > 1_000_000 {
		return fmt.Errorf("bench: rate %v: want 0..1000000", o.Rate)
	}
	if o.Scenario == Notify {
		o.Rate = orFloat(o.Rate, 10)
	}
	o.Duration = orDur(o.Duration, 20*time.Second)
	if o.Duration > time.Hour {
		return errors.New("bench: duration over 1h")
	}
	need := (o.Conns + MaxConnsPerWorker - 1) / MaxConnsPerWorker
	o.Workers = max(o.Workers, need, (o.Conns+9_999)/10_000)
	if o.Workers > 200 {
		return errors.New("bench: more than 200 workers")
	}
	o.ConnectRate = orFloat(o.ConnectRate, 3000)
	o.Settle = orDur(o.Settle, 10*time.Second)
	o.Timeout = orDur(o.Timeout, o.Duration+15*time.Minute)
	if o.Target != nil {
		if err := CheckLoopbackURL(o.Target.WSURL); err != nil {
			return err
		}
		if o.Target.GRPCAddr != "" {
			if err := CheckLoopbackAddr(o.Target.GRPCAddr); err != nil {
				return err
			}
		}
		for _, a := range o.Target.adminAddrs() {
			if err := CheckLoopbackAddr(a); err != nil {
				return err
			}
		}
	}
	return nil
}

func orInt(v, d int) int {
	if v == 0 {
		return d
	}
	return v
}
func orFloat(v, d float64) float64 {
	if v == 0 {
		return d
	}
	return v
}
func orDur(v, d time.Duration) time.Duration {
	if v == 0 {
		return d
	}
	return v
}

func (r *run) logw() io.Writer {
	if r.o.Log != nil {
		return r.o.Log
	}
	return io.Discard
}

func (r *run) logf(format string, args ...any) {
	fmt.Fprintf(r.logw(), "bench: "+format+"\n", args...)
}

// run is one benchmark run.
type run struct {
	o       Options
	t       Target
	sys     *System
	workers []*workerHandle
	adm     *admin
	runID   string
	res     Result
	obs     *observer // admin scrapes and profiles (nil: no admin address known)
	// sendStartNs is read by the progress bar while the scenario runs.
	sendStartNs atomic.Int64
	users       []string
}

func (r *run) user(g int) string { return fmt.Sprintf("bench-u%d", g) }

// Run executes one scenario and returns its result.
func Run(ctx context.Context, o Options) (*Result, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	r := &run{o: o, runID: fmt.Sprintf("%x", time.Now().Unix()%0xffffff)}
	r.res.init(o)
	if o.Target != nil {
		r.t = *o.Target
	} else {
		r.logf("starting the system (talim dev, store %s, edge alone: %v)", orStr(o.System.Store, "postgresql"), o.System.EdgeAlone)
		sys, err := StartSystem(ctx, o.System)
		if err != nil {
			return nil, err
		}
		defer sys.Close()
		r.sys, r.t = sys, sys.Target
		r.res.ChildEnv = ChildEnv
	}
	r.users = make([]string, o.Conns)
	for g := range r.users {
		r.users[g] = r.user(g)
	}
	if o.Scenario != Idle {
		adm, err := dialAdmin(r.t.GRPCAddr, r.t.ServiceToken)
		if err != nil {
			return nil, err
		}
		defer adm.cc.Close()
		r.adm = adm
	}
	r.obs = newObserver(r.t, o.Profile, r.logf)
	if err := r.setupRooms(ctx); err != nil {
		return nil, err
	}
	defer r.stopWorkers()
	if err := r.spawn(ctx); err != nil {
		return nil, err
	}
	base := r.measure()
	stopBar := r.bar(ctx)
	defer stopBar()
	t0 := time.Now()
	r.logf("connecting %d connections from %d workers", o.Conns, len(r.workers))
	evs, err := r.all(ctx, Cmd{Op: "connect", TimeoutMs: int64(max(2*time.Minute, time.Duration(float64(o.Conns)/o.ConnectRate*3*float64(time.Second))) / time.Millisecond)}, "connected", 10*time.Minute)
	if err != nil {
		return nil, err
	}
	for _, e := range evs {
		r.res.Connections.Reached += e.OK
		r.res.Connections.Failed += e.Failed
	}
	r.res.Connections.Seconds = time.Since(t0).Seconds()
	r.logf("connected %d (failed %d) in %.1fs", r.res.Connections.Reached, r.res.Connections.Failed, r.res.Connections.Seconds)
	switch o.Scenario {
	case Idle:
		err = r.idle(ctx, base)
	case Notify:
		err = r.notify(ctx)
	case JoinStorm:
		err = r.joinStorm(ctx)
	default:
		err = r.chat(ctx)
	}
	if err != nil {
		return nil, err
	}
	if err := r.collect(ctx); err != nil {
		return nil, err
	}
	return &r.res, nil
}

func orStr(v, d string) string {
	if v == "" {
		return d
	}
	return v
}

// collect asks every worker for its report and folds them into the result.
func (r *run) collect(ctx context.Context) error {
	evs, err := r.all(ctx, Cmd{Op: "report"}, "report", time.Minute)
	if err != nil {
		return err
	}
	var stats []*WorkerStats
	for _, e := range evs {
		if e.Stats != nil {
			stats = append(stats, e.Stats)
		}
	}
	r.res.fold(stats)
	r.res.finish(r)
	return nil
}
