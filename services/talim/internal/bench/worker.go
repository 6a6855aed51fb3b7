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
	// SenderEvery: global user g may send when g%SenderEvery == 0 (1: everybody).
	SenderEvery int     `json:"senderEvery,omitempty"`
	ConnectRate float64 `json:"connectRate"` // connections/s of this worker
	PadBytes    int     `json:"padBytes,omitempty"`
}

// Cmd is a coordinator command (one JSON line on the worker's stdin).
type Cmd struct {
	Op         string  `json:"op"` // connect, join, send, drop, report, exit
	Rate       float64 `json:"rate,omitempty"`
	StartNs    int64   `json:"startNs,omitempty"`
	DurationMs int64   `json:"durationMs,omitempty"`
	WindowMs   int64   `json:"windowMs,omitempty"`
	TimeoutMs  int64   `json:"timeoutMs,omitempty"`
}

// Event is a worker's answer (one JSON line on its stdout).
type Event struct {
	Type     string       `json:"type"` // ready, connected, joined, sent, dropped, progress, report, error
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
}

// WorkerStats is a worker's final report.
type WorkerStats struct {
	Conns        int64                 `json:"conns"`
	ConnFailed   int64                 `json:"connFailed"`
	Sent         int64                 `json:"sent"`
	SendFailed   int64                 `json:"sendFailed"`
	Acked        int64                 `json:"acked"`
	Deliveries   int64                 `json:"deliveries"` // every chat-message/notification frame
	Recovered    int64                 `json:"recovered"`  // new seqs from history (resume)
	Reconnected  int64                 `json:"reconnected"`
	Errors       map[string]int64      `json:"errors,omitempty"`
	Other        map[string]int64      `json:"other,omitempty"`
	Closes       map[string]int64      `json:"closes,omitempty"`
	Rooms        map[string]*RoomStats `json:"rooms,omitempty"`
	E2E          Sparse                `json:"e2e"`
	Ack          Sparse                `json:"ack"`
	Lag          Sparse                `json:"lag"`
	Connect      Sparse                `json:"connect"`
	Rejoin       Sparse                `json:"rejoin"`
	CPUSeconds   float64               `json:"cpuSeconds"`
	RSSBytes     int64                 `json:"rssBytes"`
	MaxLagMicros int64                 `json:"maxLagUs"`
}

type worker struct {
	cfg   WorkerConfig
	conns []*conn
	out   *json.Encoder
	outMu sync.Mutex

	dropWindow time.Duration

	mu                             sync.Mutex
	e2e, ack, lag, connect, rejoin Hist
	errs, other, closes            map[string]int64
	roomAcks                       map[string]*RoomStats

	nconns, nfailed, sent, nSendFailed, acks, deliveries, recov atomic.Int64
	reconnected                                                 atomic.Int64
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

func (w *worker) sendFailed(code string) {
	w.sendFailed0()
	w.countErr("send: " + code)
}
func (w *worker) sendFailed0()             { w.nSendFailed.Add(1) }
func (w *worker) recovered(n int64)        { w.recov.Add(n) }
func (w *worker) rejoined(d time.Duration) { w.mu.Lock(); w.rejoin.RecordDuration(d); w.mu.Unlock() }

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
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer w.closeAll()
	go w.progressLoop(ctx)
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
			w.sendPhase(ctx, c)
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
			w.emit(Event{Type: "progress", Progress: &Progress{Conns: w.nconns.Load(), Sent: w.sent.Load(), Acked: w.acks.Load(), Delivered: w.deliveries.Load()}})
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

// joinAll joins every connected connection to its room (at most 256 joins in flight).
func (w *worker) joinAll(ctx context.Context, c Cmd) {
	start := time.Now()
	timeout := time.Duration(c.TimeoutMs) * time.Millisecond
	if timeout <= 0 {
		timeout = time.Minute
	}
	deadline := time.After(timeout)
	var ok, failed int64
	cs := w.live()
	const inflight = 256
	for i := 0; i < len(cs); i += inflight {
		batch := cs[i:min(i+inflight, len(cs))]
		for _, cn := range batch {
			if err := cn.sendJoin(0, false); err != nil {
				w.countErr("join write: " + shortErr(err))
			}
		}
		for _, cn := range batch {
			select {
			case <-cn.joined:
				cn.mu.Lock()
				if cn.hasBase {
					ok++
				} else {
					failed++
				}
				cn.mu.Unlock()
			case <-deadline:
				failed++
			case <-ctx.Done():
				return
			}
		}
	}
	w.emit(Event{Type: "joined", OK: ok, Failed: failed, Millis: time.Since(start).Milliseconds()})
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
	if len(senders) == 0 || c.Rate <= 0 {
		time.Sleep(time.Until(time.Unix(0, c.StartNs).Add(d)))
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
			time.Sleep(wait)
			continue
		}
		w.mu.Lock()
		for i := from; i < to; i++ { // the earliest is lag late; the others at most that
			w.lag.RecordDuration(max(lag-time.Duration(i-from)*p.S.Interval, 0))
		}
		w.mu.Unlock()
		for i := from; i < to; i++ {
			cn := senders[rand.IntN(len(senders))]
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
	w.dropWindow = time.Duration(c.WindowMs) * time.Millisecond
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
	s.MaxLagMicros = w.lag.Max
	s.Errors, s.Other, s.Closes = copyMap(w.errs), copyMap(w.other), copyMap(w.closes)
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
