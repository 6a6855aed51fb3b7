package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/talim/realtime/pkg/auth"
)

// NotifyRoom is the pseudo-room under which notification deliveries are accounted:
// notification k of a run has seq k+1.
const NotifyRoom = "_notify"

// MaxConnsPerWorker keeps a worker under the 20,000 open files of one process with
// room for its stdio and the runtime's own descriptors.
const MaxConnsPerWorker = 19_500

// WorkerConfig is what the coordinator tells a worker on the first line of its stdin.
type WorkerConfig struct {
	Index    int    `json:"index"`
	SourceIP string `json:"sourceIp"`
	WSURL    string `json:"wsUrl"`
	Secret   string `json:"secret"`
	// Users: <UserPrefix><First> … <UserPrefix><First+Count-1>; global index = First+i.
	UserPrefix string `json:"userPrefix"`
	First      int    `json:"first"`
	Count      int    `json:"count"`
	// Room of global user g: Room when set, else <RoomPrefix><g/RoomSize>; none when both empty.
	Room       string `json:"room,omitempty"`
	RoomPrefix string `json:"roomPrefix,omitempty"`
	RoomSize   int    `json:"roomSize,omitempty"`
	// ProbeRoom, when set, is the open room the overload probe joins for the first time
	// (empty: the probe joins the connection's own room again).
	ProbeRoom string `json:"probeRoom,omitempty"`
	// SenderEvery: global user g may send when g%SenderEvery == 0 (1: everybody).
	SenderEvery int     `json:"senderEvery,omitempty"`
	ConnectRate float64 `json:"connectRate"` // connections/s of this worker
	PadBytes    int     `json:"padBytes,omitempty"`
}

// Cmd is a coordinator command (one JSON line on the worker's stdin).
type Cmd struct {
	Op         string  `json:"op"` // connect, join, send, drop, probe, report, exit
	Rate       float64 `json:"rate,omitempty"`
	StartNs    int64   `json:"startNs,omitempty"`
	DurationMs int64   `json:"durationMs,omitempty"`
	WindowMs   int64   `json:"windowMs,omitempty"`
	TimeoutMs  int64   `json:"timeoutMs,omitempty"`
	// Inflight bounds the joins in flight (join; default 256); Max the probing
	// connections (probe; default 20).
	Inflight int `json:"inflight,omitempty"`
	Max      int `json:"max,omitempty"`
}

// Event is a worker's answer (one JSON line on its stdout).
type Event struct {
	Type     string       `json:"type"` // ready, connected, joined, sent, dropped, probed, progress, report, error
	Worker   int          `json:"worker"`
	OK       int64        `json:"ok,omitempty"`
	Failed   int64        `json:"failed,omitempty"`
	Millis   int64        `json:"ms,omitempty"`
	Progress *Progress    `json:"progress,omitempty"`
	Stats    *WorkerStats `json:"stats,omitempty"`
	Error    string       `json:"error,omitempty"`
}

// Progress are the live counters a worker reports every second.
type Progress struct {
	Conns     int64 `json:"conns"`
	Sent      int64 `json:"sent"`
	Acked     int64 `json:"acked"`
	Delivered int64 `json:"delivered"`
	Recovered int64 `json:"recovered,omitempty"`
	Rejoined  int64 `json:"rejoined,omitempty"`
	Refused   int64 `json:"refused,omitempty"` // sends answered with an error
}

// WorkerStats is a worker's final report.
type WorkerStats struct {
	Conns       int64 `json:"conns"`
	ConnFailed  int64 `json:"connFailed"`
	Sent        int64 `json:"sent"`
	SendFailed  int64 `json:"sendFailed"`
	Acked       int64 `json:"acked"`
	Deliveries  int64 `json:"deliveries"` // every chat-message/notification frame
	Recovered   int64 `json:"recovered"`  // new seqs from history (resume)
	Reconnected int64 `json:"reconnected"`
	Rejoined    int64 `json:"rejoined"`
	// ReconnectedInSend: reconnects (dial done) before the send phase's scheduled end.
	ReconnectedInSend int64 `json:"reconnectedInSend"`
	// RejoinedInSend: rejoins acknowledged before the send phase's scheduled end.
	RejoinedInSend int64                       `json:"rejoinedInSend"`
	Errors         map[string]int64            `json:"errors,omitempty"`
	Codes          map[string]map[string]int64 `json:"codes,omitempty"` // error frames by command (send, join, rejoin, probe, …) and code
	Join           Sparse                      `json:"join"`
	Probe          Sparse                      `json:"probe"`
	Refusal        Sparse                      `json:"refusal"`    // send → error frame
	RetryAfter     Sparse                      `json:"retryAfter"` // retryAfterMs of rate_limited, in µs
	Other          map[string]int64            `json:"other,omitempty"`
	Closes         map[string]int64            `json:"closes,omitempty"`
	Rooms          map[string]*RoomStats       `json:"rooms,omitempty"`
	E2E            Sparse                      `json:"e2e"`
	Ack            Sparse                      `json:"ack"`
	Lag            Sparse                      `json:"lag"`
	Connect        Sparse                      `json:"connect"`
	Rejoin         Sparse                      `json:"rejoin"`
	CPUSeconds     float64                     `json:"cpuSeconds"`
	RSSBytes       int64                       `json:"rssBytes"`
	MaxLagMicros   int64                       `json:"maxLagUs"`
}

type worker struct {
	cfg   WorkerConfig
	conns []*conn
	out   *json.Encoder
	outMu sync.Mutex

	dropWindow atomic.Int64 // ns
	sendEndNs  atomic.Int64 // scheduled end of the running send phase

	mu                                                          sync.Mutex
	e2e, ack, lag, connect, rejoin, join, probe, refusal, retry Hist
	errs, other, closes                                         map[string]int64
	codes                                                       map[string]map[string]int64
	roomAcks                                                    map[string]*RoomStats

	nconns, nfailed, sent, nSendFailed, acks, deliveries, recov atomic.Int64
	reconnected, rejoinedN, rejoinedInSend, reconnectedInSend   atomic.Int64
}

func (w *worker) token(user string) (string, error) {
	return auth.SignHS256(w.cfg.Secret, auth.Claims{UserID: user, Name: user, ExpiresAt: time.Now().Add(6 * time.Hour)}, "", "")
}

func (w *worker) emit(e Event) {
	e.Worker = w.cfg.Index
	w.outMu.Lock()
	_ = w.out.Encode(e)
	w.outMu.Unlock()
}

func (w *worker) countErr(k string)   { w.count(&w.errs, k) }
func (w *worker) countOther(k string) { w.count(&w.other, k) }
func (w *worker) count(m *map[string]int64, k string) {
	w.mu.Lock()
	if *m == nil {
		*m = map[string]int64{}
	}
	if len(*m) < 100 {
		(*m)[k]++
	}
	w.mu.Unlock()
}

func (w *worker) closed(err error) {
	var ce closeError
	k := "io"
	if errors.As(err, &ce) {
		k = ce.Error()
	} else if err != nil {
		k = shortErr(err)
	}
	w.count(&w.closes, k)
}

func (w *worker) delivered(latNs int64, isNew bool) {
	w.deliveries.Add(1)
	if latNs >= 0 {
		w.mu.Lock()
		w.e2e.Record(latNs / 1000)
		w.mu.Unlock()
	}
	_ = isNew
}

func (w *worker) acked(room string, latNs, seq int64) {
	w.acks.Add(1)
	w.mu.Lock()
	w.ack.Record(latNs / 1000)
	r := w.roomAcks[room]
	if r == nil {
		r = NewRoomStats()
		w.roomAcks[room] = r
	}
	r.Acked++
	r.AckedMax = max(r.AckedMax, seq)
	w.mu.Unlock()
}

// refused counts an error frame answering command op (send, join, rejoin, probe,
// history, other) by code; lat is the time from the command to the error (-1:
// unknown) and retryAfterMs the frame's retryAfterMs (0: none).
func (w *worker) refused(op, code string, lat time.Duration, retryAfterMs int64) {
	if op == "send" {
		w.sendFailed0()
	}
	w.countErr(op + ": " + code)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.codes == nil {
		w.codes = map[string]map[string]int64{}
	}
	m := w.codes[op]
	if m == nil {
		m = map[string]int64{}
		w.codes[op] = m
	}
	if len(m) < 50 {
		m[code]++
	}
	if op == "send" && lat >= 0 {
		w.refusal.RecordDuration(lat)
	}
	if retryAfterMs > 0 {
		w.retry.Record(retryAfterMs * 1000)
	}
}

func (w *worker) sendFailed0()      { w.nSendFailed.Add(1) }
func (w *worker) recovered(n int64) { w.recov.Add(n) }

// rejoined records a resumed join acknowledged d after its reconnect began.
func (w *worker) rejoined(d time.Duration, now time.Time) {
	w.rejoinedN.Add(1)
	if end := w.sendEndNs.Load(); end != 0 && now.UnixNano() <= end {
		w.rejoinedInSend.Add(1)
	}
	w.record(&w.rejoin, d)
}

// reconnectedNow counts a reconnect (the new connection is up).
func (w *worker) reconnectedNow() {
	w.reconnected.Add(1)
	if end := w.sendEndNs.Load(); end != 0 && time.Now().UnixNano() <= end {
		w.reconnectedInSend.Add(1)
	}
}

func (w *worker) record(h *Hist, d time.Duration) { w.mu.Lock(); h.RecordDuration(d); w.mu.Unlock() }

// RunWorker is the worker process: it reads its WorkerConfig and then commands from
// in, and writes events to out, until "exit", EOF or ctx ends.
func RunWorker(ctx context.Context, in io.Reader, out io.Writer) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	w := &worker{out: json.NewEncoder(out), roomAcks: map[string]*RoomStats{}}
	if !sc.Scan() {
		return errors.New("bench worker: no configuration on stdin")
	}
	if err := json.Unmarshal(sc.Bytes(), &w.cfg); err != nil {
		return fmt.Errorf("bench worker: configuration: %w", err)
	}
	if err := w.validate(); err != nil {
		return err
	}
	// The send phase and the probe run in their own goroutines, so a drop (the
	// reconnect storm) or a probe is handled while messages are being sent; they are
	// owned here: cancelled and waited for before the connections close.
	var bg sync.WaitGroup
	var sending, probing atomic.Bool
	ctx, cancel := context.WithCancel(ctx)
	defer w.closeAll()
	defer bg.Wait()
	defer cancel()
	bg.Go(func() { w.progressLoop(ctx) })
	w.emit(Event{Type: "ready"})
	for sc.Scan() {
		var c Cmd
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			w.emit(Event{Type: "error", Error: err.Error()})
			continue
		}
		switch c.Op {
		case "connect":
			w.connectAll(ctx, c)
		case "join":
			w.joinAll(ctx, c)
		case "send":
			if !sending.CompareAndSwap(false, true) {
				w.emit(Event{Type: "error", Error: "send: a send phase is already running"})
				continue
			}
			bg.Go(func() { defer sending.Store(false); w.sendPhase(ctx, c) })
		case "probe":
			if !probing.CompareAndSwap(false, true) {
				w.emit(Event{Type: "error", Error: "probe: a probe is already running"})
				continue
			}
			bg.Go(func() { defer probing.Store(false); w.probeAll(ctx, c) })
		case "drop":
			w.dropAll(c)
		case "report":
			w.emit(Event{Type: "report", Stats: w.stats()})
		case "exit":
			return nil
		default:
			w.emit(Event{Type: "error", Error: "unknown op " + c.Op})
		}
	}
	return sc.Err()
}

func (w *worker) validate() error {
	c := w.cfg
	if c.Count < 0 || c.Count > MaxConnsPerWorker {
		return fmt.Errorf("bench worker: %d connections: at most %d per worker", c.Count, MaxConnsPerWorker)
	}
	if err := CheckLoopbackURL(c.WSURL); err != nil {
		return err
	}
	if c.SourceIP != "" {
		if err := CheckLoopbackHost(c.SourceIP); err != nil {
			return err
		}
	}
	if c.Secret == "" {
		return errors.New("bench worker: no JWT secret")
	}
	return nil
}

func (w *worker) roomOf(g int) string {
	switch {
	case w.cfg.Room != "":
		return w.cfg.Room
	case w.cfg.RoomPrefix != "" && w.cfg.RoomSize > 0:
		return fmt.Sprintf("%s%d", w.cfg.RoomPrefix, g/w.cfg.RoomSize)
	}
	return ""
}

func (w *worker) progressLoop(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.emit(Event{Type: "progress", Progress: &Progress{Conns: w.nconns.Load(), Sent: w.sent.Load(), Acked: w.acks.Load(), Delivered: w.deliveries.Load(),
				Recovered: w.recov.Load(), Rejoined: w.rejoinedN.Load(), Refused: w.nSendFailed.Load()}})
		}
	}
}

// connectAll opens the worker's connections at ConnectRate (at most 64 dials in
// flight) and waits for each one's "connected" frame, within the command's timeout.
func (w *worker) connectAll(ctx context.Context, c Cmd) {
	start := time.Now()
	timeout := time.Duration(c.TimeoutMs) * time.Millisecond
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	rate := w.cfg.ConnectRate
	if rate <= 0 {
		rate = 2000
	}
	w.conns = make([]*conn, w.cfg.Count)
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	pacer := Pacer{S: NewSchedule(start, rate, time.Duration(float64(w.cfg.Count)/rate*float64(time.Second))+time.Second)}
	pacer.S.N = w.cfg.Count
dial:
	for i := 0; i < w.cfg.Count && cctx.Err() == nil; {
		from, to, _, wait, done := pacer.Ready(time.Now())
		if done {
			break
		}
		if from == to {
			time.Sleep(min(wait, 50*time.Millisecond))
			continue
		}
		for ; i < to; i++ {
			g := w.cfg.First + i
			cn := &conn{w: w, idx: i, user: fmt.Sprintf("%s%d", w.cfg.UserPrefix, g), room: w.roomOf(g),
				connected: make(chan struct{}), joined: make(chan struct{})}
			w.conns[i] = cn
			select {
			case sem <- struct{}{}:
			case <-cctx.Done():
				break dial
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				t0 := time.Now()
				nc, br, err := cn.dial(cctx)
				if err != nil {
					w.nfailed.Add(1)
					w.countErr("dial: " + shortErr(err))
					return
				}
				cn.wmu.Lock()
				cn.nc = nc
				cn.wmu.Unlock()
				go cn.readLoop(ctx, nc, br)
				select {
				case <-cn.connected:
					w.nconns.Add(1)
					w.mu.Lock()
					w.connect.RecordDuration(time.Since(t0))
					w.mu.Unlock()
				case <-cctx.Done():
					w.nfailed.Add(1)
					w.countErr("connected frame: timeout")
				}
			}()
		}
	}
	wg.Wait()
	w.emit(Event{Type: "connected", OK: w.nconns.Load(), Failed: int64(w.cfg.Count) - w.nconns.Load(), Millis: time.Since(start).Milliseconds()})
}

func (w *worker) live() []*conn {
	var cs []*conn
	for _, c := range w.conns {
		if c != nil && c.room != "" && isClosed(c.connected) {
			cs = append(cs, c)
		}
	}
	return cs
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// joinAll joins every connected connection to its room, with at most c.Inflight
// joins in flight (default 256): a join's latency (sent → ack) goes to the join
// histogram, an error frame counts as a failure by code (the reader does both).
func (w *worker) joinAll(ctx context.Context, c Cmd) {
	start := time.Now()
	timeout := time.Duration(c.TimeoutMs) * time.Millisecond
	if timeout <= 0 {
		timeout = time.Minute
	}
	jctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	inflight := c.Inflight
	if inflight <= 0 {
		inflight = 256
	}
	var ok, failed atomic.Int64
	cs := w.live()
	sem := make(chan struct{}, inflight)
	var wg sync.WaitGroup
	for k, cn := range cs {
		select {
		case sem <- struct{}{}:
		case <-jctx.Done():
			failed.Add(int64(len(cs) - k)) // never sent: out of time
			w.countErr("join: not sent within the timeout")
			wg.Wait()
			w.emit(Event{Type: "joined", OK: ok.Load(), Failed: failed.Load(), Millis: time.Since(start).Milliseconds()})
			return
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := cn.sendJoin(0, false); err != nil {
				failed.Add(1)
				w.countErr("join write: " + shortErr(err))
				return
			}
			select {
			case <-cn.joined:
				if cn.hasBaseLocked() {
					ok.Add(1)
				} else {
					failed.Add(1)
				}
			case <-jctx.Done():
				failed.Add(1)
				w.countErr("join: no answer within the timeout")
			}
		})
	}
	wg.Wait()
	w.emit(Event{Type: "joined", OK: ok.Load(), Failed: failed.Load(), Millis: time.Since(start).Milliseconds()})
}

// probeAll sends one join from each of up to c.Max connections (default 20) at
// once, to the probe room (a first join) or to their own room, and waits for the
// answers (at most c.TimeoutMs, default 10 s): latency and codes are recorded by the
// reader; an unanswered probe counts as probe: timeout.
func (w *worker) probeAll(ctx context.Context, c Cmd) {
	n := c.Max
	if n <= 0 {
		n = 20
	}
	timeout := time.Duration(c.TimeoutMs) * time.Millisecond
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	var cs []*conn
	for _, cn := range w.live() {
		if len(cs) == n {
			break
		}
		if cn.hasBaseLocked() && cn.isUp() {
			cs = append(cs, cn)
		}
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var ok, failed atomic.Int64
	var wg sync.WaitGroup
	for _, cn := range cs {
		ch := make(chan bool, 1)
		cn.probeWait.Store(&ch)
		if err := cn.sendProbe(w.cfg.ProbeRoom); err != nil {
			cn.probeWait.Store(nil)
			failed.Add(1)
			w.refused("probe", "write: "+shortErr(err), -1, 0)
			continue
		}
		wg.Go(func() {
			defer cn.probeWait.Store(nil)
			select {
			case good := <-ch:
				if good {
					ok.Add(1)
				} else {
					failed.Add(1)
				}
			case <-pctx.Done():
				failed.Add(1)
				w.refused("probe", "timeout", -1, 0)
			}
		})
	}
	wg.Wait()
	w.emit(Event{Type: "probed", OK: ok.Load(), Failed: failed.Load()})
}

// sendPhase sends Rate messages/s for Duration from the worker's sender connections,
// on an open-loop schedule starting at StartNs; each event goes to a random sender.
func (w *worker) sendPhase(ctx context.Context, c Cmd) {
	var senders []*conn
	every := max(w.cfg.SenderEvery, 1)
	for _, cn := range w.live() {
		if (w.cfg.First+cn.idx)%every == 0 && cn.hasBaseLocked() {
			senders = append(senders, cn)
		}
	}
	d := time.Duration(c.DurationMs) * time.Millisecond
	w.sendEndNs.Store(time.Unix(0, c.StartNs).Add(d).UnixNano())
	if len(senders) == 0 || c.Rate <= 0 {
		select {
		case <-time.After(time.Until(time.Unix(0, c.StartNs).Add(d))):
		case <-ctx.Done():
		}
		w.emit(Event{Type: "sent"})
		return
	}
	pad := strings.Repeat("x", w.cfg.PadBytes)
	p := Pacer{S: NewSchedule(time.Unix(0, c.StartNs), c.Rate, d)}
	end := time.Unix(0, c.StartNs).Add(d + 30*time.Second) // hard stop even if far behind
	for ctx.Err() == nil && time.Now().Before(end) {
		from, to, lag, wait, done := p.Ready(time.Now())
		if done {
			break
		}
		if from == to {
			select {
			case <-time.After(wait):
			case <-ctx.Done():
			}
			continue
		}
		w.mu.Lock()
		for i := from; i < to; i++ { // the earliest is lag late; the others at most that
			w.lag.RecordDuration(max(lag-time.Duration(i-from)*p.S.Interval, 0))
		}
		w.mu.Unlock()
		for i := from; i < to; i++ {
			cn := senders[rand.IntN(len(senders))]
			for try := 0; try < 8 && cn.dropping.Load(); try++ { // reconnecting: another sender
				cn = senders[rand.IntN(len(senders))]
			}
			if err := cn.send(pad); err != nil {
				w.sendFailed0()
				w.countErr("send write: " + shortErr(err))
				continue
			}
			w.sent.Add(1)
		}
	}
	w.emit(Event{Type: "sent"})
}

func (c *conn) hasBaseLocked() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hasBase
}

func (w *worker) dropAll(c Cmd) {
	w.dropWindow.Store(int64(time.Duration(c.WindowMs) * time.Millisecond))
	for _, cn := range w.live() {
		cn.drop()
	}
	w.emit(Event{Type: "dropped"})
}

func (w *worker) closeAll() {
	for _, c := range w.conns {
		if c != nil {
			c.close()
		}
	}
}

func (w *worker) stats() *WorkerStats {
	s := &WorkerStats{Conns: w.nconns.Load(), ConnFailed: w.nfailed.Load(), Sent: w.sent.Load(), SendFailed: w.nSendFailed.Load(),
		Acked: w.acks.Load(), Deliveries: w.deliveries.Load(), Recovered: w.recov.Load(), Reconnected: w.reconnected.Load(),
		Rejoined: w.rejoinedN.Load(), RejoinedInSend: w.rejoinedInSend.Load(), ReconnectedInSend: w.reconnectedInSend.Load(),
		Rooms: map[string]*RoomStats{}}
	for _, c := range w.conns {
		if c == nil || !isClosed(c.connected) {
			continue
		}
		c.mu.Lock()
		if c.room == "" && (c.track.Unique > 0 || c.track.Dup > 0 || w.cfg.Room == "" && w.cfg.RoomPrefix == "") {
			r := s.Rooms[NotifyRoom]
			if r == nil {
				r = NewRoomStats()
				s.Rooms[NotifyRoom] = r
			}
			r.AddTrack(&c.track)
		} else if c.hasBase {
			r := s.Rooms[c.room]
			if r == nil {
				r = NewRoomStats()
				s.Rooms[c.room] = r
			}
			r.AddTrack(&c.track)
		}
		c.mu.Unlock()
	}
	w.mu.Lock()
	for k, a := range w.roomAcks {
		r := s.Rooms[k]
		if r == nil {
			r = NewRoomStats()
			s.Rooms[k] = r
		}
		r.Acked += a.Acked
		r.AckedMax = max(r.AckedMax, a.AckedMax)
	}
	s.E2E, s.Ack, s.Lag, s.Connect, s.Rejoin = w.e2e.Sparse(), w.ack.Sparse(), w.lag.Sparse(), w.connect.Sparse(), w.rejoin.Sparse()
	s.Join, s.Probe, s.Refusal, s.RetryAfter = w.join.Sparse(), w.probe.Sparse(), w.refusal.Sparse(), w.retry.Sparse()
	s.MaxLagMicros = w.lag.Max
	s.Errors, s.Other, s.Closes = copyMap(w.errs), copyMap(w.other), copyMap(w.closes)
	for op, m := range w.codes {
		if s.Codes == nil {
			s.Codes = map[string]map[string]int64{}
		}
		s.Codes[op] = copyMap(m)
	}
	w.mu.Unlock()
	if ps, err := ReadProc(0); err == nil {
		s.CPUSeconds, s.RSSBytes = ps.CPUSeconds, ps.RSSBytes
	}
	return s
}

func copyMap(m map[string]int64) map[string]int64 {
	if len(m) == 0 {
		return nil
	}
	c := make(map[string]int64, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}
