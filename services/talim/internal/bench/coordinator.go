package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
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

// workerHandle is the coordinator's side of one worker. Its events are sorted by
// type, so commands that run at once (send and drop, send and probe) each await
// their own answer.
type workerHandle struct {
	idx   int
	in    io.WriteCloser
	inMu  sync.Mutex
	mu    sync.Mutex
	byTyp map[string]chan Event
	errs  chan Event
	gone  chan struct{} // closed when the worker's output ends
	prog  atomic.Pointer[Progress]
	cmd   *exec.Cmd
	pid   int
	done  chan struct{}
}

// events returns the channel of events of type typ.
func (h *workerHandle) events(typ string) chan Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	ch := h.byTyp[typ]
	if ch == nil {
		ch = make(chan Event, 16)
		h.byTyp[typ] = ch
	}
	return ch
}

func (h *workerHandle) send(c Cmd) error {
	b, _ := json.Marshal(c)
	h.inMu.Lock()
	defer h.inMu.Unlock()
	_, err := h.in.Write(append(b, '\n'))
	return err
}

// await waits for the next event of type typ; an error event fails it.
func (h *workerHandle) await(ctx context.Context, typ string, d time.Duration) (Event, error) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case e := <-h.events(typ):
		return e, nil
	case e := <-h.errs:
		return e, fmt.Errorf("worker %d: %s", h.idx, e.Error)
	case <-h.gone:
		select { // the event may have arrived just before the end
		case e := <-h.events(typ):
			return e, nil
		default:
		}
		return Event{}, fmt.Errorf("worker %d exited while waiting for %s", h.idx, typ)
	case <-t.C:
		return Event{}, fmt.Errorf("worker %d: no %s within %s", h.idx, typ, d)
	case <-ctx.Done():
		return Event{}, ctx.Err()
	}
}

func (r *run) startWorker(ctx context.Context, cfg WorkerConfig) (*workerHandle, error) {
	h := &workerHandle{idx: cfg.Index, byTyp: map[string]chan Event{}, errs: make(chan Event, 16), gone: make(chan struct{}), done: make(chan struct{})}
	var out io.ReadCloser
	if r.o.InProcess {
		inR, inW := io.Pipe()
		outR, outW := io.Pipe()
		h.in, out = inW, outR
		go func() {
			defer close(h.done)
			err := RunWorker(ctx, inR, outW)
			outW.CloseWithError(err)
		}()
		h.pid = os.Getpid()
	} else {
		exe := r.o.WorkerExe
		if exe == "" {
			var err error
			if exe, err = os.Executable(); err != nil {
				return nil, err
			}
		}
		h.cmd = exec.Command(exe, "bench", "worker")
		h.cmd.Stderr = r.logw()
		var err error
		if h.in, err = h.cmd.StdinPipe(); err != nil {
			return nil, err
		}
		if out, err = h.cmd.StdoutPipe(); err != nil {
			return nil, err
		}
		if err := h.cmd.Start(); err != nil {
			return nil, fmt.Errorf("start worker: %w", err)
		}
		h.pid = h.cmd.Process.Pid
		go func() { _ = h.cmd.Wait(); close(h.done) }()
	}
	go func() {
		defer close(h.gone)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 64<<20)
		for sc.Scan() {
			var e Event
			if json.Unmarshal(sc.Bytes(), &e) != nil {
				continue
			}
			switch e.Type {
			case "progress":
				h.prog.Store(e.Progress)
				continue
			case "error":
				select {
				case h.errs <- e:
				default: // nobody is listening to that many errors
				}
				continue
			}
			select {
			case h.events(e.Type) <- e:
			case <-ctx.Done():
				return
			}
		}
	}()
	b, _ := json.Marshal(cfg)
	if _, err := h.in.Write(append(b, '\n')); err != nil { // before any command: no lock needed
		return nil, err
	}
	if _, err := h.await(ctx, "ready", 30*time.Second); err != nil {
		return nil, err
	}
	return h, nil
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

// all sends c to every worker and waits for each one's typ event.
func (r *run) all(ctx context.Context, c Cmd, typ string, d time.Duration) ([]Event, error) {
	for _, h := range r.workers {
		if err := h.send(c); err != nil {
			return nil, fmt.Errorf("worker %d: %w", h.idx, err)
		}
	}
	evs := make([]Event, len(r.workers))
	errs := make([]error, len(r.workers))
	var wg sync.WaitGroup
	for i, h := range r.workers {
		wg.Go(func() { evs[i], errs[i] = h.await(ctx, typ, d) })
	}
	wg.Wait()
	return evs, errors.Join(errs...)
}

func (r *run) progress() Progress {
	var p Progress
	for _, h := range r.workers {
		if q := h.prog.Load(); q != nil {
			p.Conns += q.Conns
			p.Sent += q.Sent
			p.Acked += q.Acked
			p.Delivered += q.Delivered
			p.Recovered += q.Recovered
			p.Rejoined += q.Rejoined
			p.Refused += q.Refused
		}
	}
	return p
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

// spawn starts the workers, splitting the users evenly.
func (r *run) spawn(ctx context.Context) error {
	n := r.o.Workers
	per := (r.o.Conns + n - 1) / n
	for k := range n {
		first := k * per
		count := min(per, r.o.Conns-first)
		if count <= 0 {
			break
		}
		ip, err := SourceIP(k)
		if err != nil {
			return err
		}
		cfg := WorkerConfig{Index: k, SourceIP: ip, WSURL: r.t.WSURL, Secret: r.t.JWTSecret, UserPrefix: "bench-u",
			First: first, Count: count, ConnectRate: r.o.ConnectRate / float64(n), PadBytes: r.o.PadBytes, SenderEvery: 1}
		switch r.o.Scenario {
		case Fanout:
			cfg.Room = r.roomName(0)
			cfg.SenderEvery = max(r.o.Conns/r.o.Senders, 1)
		case Rooms, ReconnectStorm:
			cfg.RoomPrefix, cfg.RoomSize = r.roomPrefix(), r.o.RoomSize
		case JoinStorm:
			cfg.Room = r.roomName(0)
		}
		if r.o.ProbeAfter > 0 && r.o.ProbeRoom == ProbeFresh {
			cfg.ProbeRoom = r.probeRoom()
		}
		h, err := r.startWorker(ctx, cfg)
		if err != nil {
			return err
		}
		r.workers = append(r.workers, h)
	}
	return nil
}

func (r *run) stopWorkers() {
	for _, h := range r.workers {
		_ = h.send(Cmd{Op: "exit"})
		_ = h.in.Close()
	}
	for _, h := range r.workers {
		select {
		case <-h.done:
		case <-time.After(15 * time.Second):
			if h.cmd != nil && h.cmd.Process != nil {
				_ = h.cmd.Process.Kill()
			}
		}
	}
}

// measure reads the system's processes.
func (r *run) measure() procSet {
	var s procSet
	if r.t.EdgePID > 0 {
		s.edge, _ = ReadProc(r.t.EdgePID)
	}
	if r.t.ServicesPID > 0 && r.t.ServicesPID != r.t.EdgePID {
		s.services, _ = ReadProc(r.t.ServicesPID)
	}
	if r.t.StoreMatch != "" {
		pids := FindByCmdline(r.t.StoreMatch) // the postmaster; its backends are its children
		for _, p := range pids {
			pids = append(pids, Descendants(p)...)
		}
		s.store = ReadTree(pids)
	}
	return s
}

type procSet struct{ edge, services, store ProcStat }

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

// bar prints a progress line on o.Progress every second until stopped.
func (r *run) bar(ctx context.Context) func() {
	if r.o.Progress == nil {
		return func() {}
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		t0 := time.Now()
		tty, n := isTerminal(r.o.Progress), 0
		for {
			select {
			case <-stop:
				if tty {
					fmt.Fprintln(r.o.Progress)
				}
				return
			case <-ctx.Done():
				return
			case <-t.C:
				p := r.progress()
				frac := float64(p.Conns) / float64(r.o.Conns)
				phase := "connect"
				if ns := r.sendStartNs.Load(); ns != 0 {
					phase = "send"
					frac = min(max(time.Since(time.Unix(0, ns)).Seconds(), 0)/r.o.Duration.Seconds(), 1)
				}
				const width = 30
				filled := int(max(frac, 0) * width)
				bar := make([]byte, width)
				for i := range bar {
					bar[i] = '-'
					if i < filled {
						bar[i] = '#'
					}
				}
				line := fmt.Sprintf("[%s] %3.0f%% %-7s %5.0fs conns=%d sent=%d acked=%d delivered=%d",
					bar, frac*100, phase, time.Since(t0).Seconds(), p.Conns, p.Sent, p.Acked, p.Delivered)
				if tty {
					fmt.Fprintf(r.o.Progress, "\r%s   ", line)
				} else if n++; n%5 == 0 {
					fmt.Fprintln(r.o.Progress, line) // a log file gets a line every 5 s
				}
			}
		}
	}()
	return func() { close(stop); <-done }
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
