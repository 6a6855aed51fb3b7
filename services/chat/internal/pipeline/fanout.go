package pipeline

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/talim/realtime/pkg/tracing"
	"github.com/talim/realtime/services/chat/internal/roster"
)

// Delivery is one room event: Payload (a marshaled edgev1.Outbound) goes to every
// member of the room except the user Except (empty: nobody is left out).
type Delivery struct {
	Payload []byte
	Except  string
	Trace   context.Context // carries the span of the command that caused it (tracing); nil: none
}

// FanoutOptions configures a Fanout.
type FanoutOptions struct {
	// Members returns the room's current member snapshot.
	Members func(ctx context.Context, roomID string) (*roster.Members, error)
	// Publish sends data on a user's subject (buffered: nats.Conn.Publish), with
	// headers h (trace context; nil for untraced rounds).
	Publish func(subject string, data []byte, h map[string][]string) error
	// Workers bounds the rooms publishing at once (default DefaultWorkers).
	Workers int
	// MaxRound bounds the deliveries of one room published per round (default 64).
	MaxRound int
	// MaxRoomQueue and MaxRoomDelay bound one room's backlog: past either, Busy
	// reports the room (defaults 1,024 deliveries, 2 s).
	MaxRoomQueue int
	MaxRoomDelay time.Duration
	// MaxBacklog bounds the publishes (deliveries × members) queued across rooms;
	// past it Busy reports every room (default 500,000: about 2 s of publishing).
	MaxBacklog int
	// BigRoomInterval spaces the rounds of rooms with at least BigRoom members
	// (defaults 10 ms and 256): a busy big room then publishes one batch per
	// member every 10 ms instead of one message per event, which cuts NATS
	// messages and the edges' socket writes by the batch size for at most that
	// much latency. Small rooms are never delayed. Negative: no spacing.
	BigRoomInterval time.Duration
	BigRoom         int
	// BigRoomRound bounds the events of one round of a big room (default 16), so
	// one NATS message stays small and downstream queues, counted in messages,
	// never hold seconds of events.
	BigRoomRound int
	Logger       *slog.Logger
	Registry     prometheus.Registerer
}

// DefaultWorkers bounds how many rooms publish at once.
const DefaultWorkers = 16

// maxSizes bounds the remembered member counts (past it they are forgotten).
const maxSizes = 100_000

// parallelMembers is the member count from which a round publishes its shards on
// parallel goroutines (below it one goroutine is cheaper).
const parallelMembers = 256

// Fanout publishes room events to the members' subjects. Per room, deliveries go
// out in enqueue order: a room has at most one round in flight, and a round
// publishes, to each member, ONE message holding every delivery queued for the
// room since the previous round (an edgev1.Outbound batch; group delivery without
// a timer), so a busy room costs fewer NATS messages than deliveries. A round of
// a big room publishes its member shards (roster.Shards, by hash of the user) on
// parallel goroutines; a user is always in the same shard, so each user's events
// stay in order. Rooms publish in parallel on at most Workers goroutines.
//
// The backlog is bounded: Busy reports a room whose queue is longer or older than
// its bound, or any room while the total backlog is over MaxBacklog, and the
// sender is refused at once (rate_limited with a retry hint) instead of queueing
// deliveries that would arrive seconds late and starve everything else.
type Fanout struct {
	o       FanoutOptions
	log     *slog.Logger
	sem     chan struct{}
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	mu      sync.Mutex
	rooms   map[string]*roomQueue // rooms with a running drainer
	sizes   map[string]int        // member counts seen by recent rounds (backlog estimate)
	backlog int                   // queued deliveries × members at enqueue time (estimate)
	idle    *sync.Cond            // signalled when a drainer exits

	publish   prometheus.Counter
	messages  prometheus.Counter
	queued    prometheus.Gauge
	roundSize prometheus.Histogram
	refused   prometheus.Counter
}

type roomQueue struct {
	ds      []queued
	members int // last known member count (backlog estimate)
}

type queued struct {
	Delivery
	at time.Time
}

// NewFanout returns a fanout.
func NewFanout(o FanoutOptions) *Fanout {
	if o.Workers <= 0 {
		o.Workers = DefaultWorkers
	}
	if o.MaxRound <= 0 {
		o.MaxRound = 64
	}
	if o.MaxRoomQueue <= 0 {
		o.MaxRoomQueue = 1024
	}
	if o.MaxRoomDelay <= 0 {
		o.MaxRoomDelay = 2 * time.Second
	}
	if o.MaxBacklog <= 0 {
		o.MaxBacklog = 500_000
	}
	if o.BigRoomInterval == 0 {
		o.BigRoomInterval = 10 * time.Millisecond
	}
	if o.BigRoom <= 0 {
		o.BigRoom = parallelMembers
	}
	if o.BigRoomRound <= 0 {
		o.BigRoomRound = 16
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := &Fanout{o: o, log: o.Logger, sem: make(chan struct{}, o.Workers), ctx: ctx, cancel: cancel, rooms: map[string]*roomQueue{}, sizes: map[string]int{},
		publish:  prometheus.NewCounter(prometheus.CounterOpts{Namespace: "talim", Subsystem: "chat", Name: "fanout_publishes_total", Help: "Room events delivered to member subjects (one per member and event)."}),
		messages: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "talim", Subsystem: "chat", Name: "fanout_nats_messages_total", Help: "NATS messages published by the fan-out (a batch carries several events)."}),
		queued:   prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "talim", Subsystem: "chat", Name: "fanout_queued_jobs", Help: "Room events waiting to be published."}),
		roundSize: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "talim", Subsystem: "chat", Name: "fanout_round_events",
			Help: "Room events published per member per round (batch size).", Buckets: []float64{1, 2, 4, 8, 16, 32, 64}}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "talim", Subsystem: "chat", Name: "fanout_busy_total", Help: "Sends refused because the room's fan-out backlog was over its bound."}),
	}
	f.idle = sync.NewCond(&f.mu)
	if o.Registry != nil {
		o.Registry.MustRegister(f.publish, f.messages, f.queued, f.roundSize, f.refused)
	}
	return f
}

// Enqueue schedules deliveries for roomID after the room's earlier ones. It never
// blocks; bound the input with Busy.
func (f *Fanout) Enqueue(roomID string, ds ...Delivery) {
	if len(ds) == 0 {
		return
	}
	now := time.Now()
	f.mu.Lock()
	q, running := f.rooms[roomID]
	if !running {
		q = &roomQueue{members: max(f.sizes[roomID], 1)}
		f.rooms[roomID] = q
	}
	for _, d := range ds {
		q.ds = append(q.ds, queued{Delivery: d, at: now})
	}
	f.backlog += len(ds) * q.members
	f.queued.Add(float64(len(ds)))
	if !running {
		f.wg.Add(1)
	}
	f.mu.Unlock()
	if !running {
		go f.drain(roomID, q)
	}
}

// Busy reports whether a send to roomID should be refused now, and a retry hint.
func (f *Fanout) Busy(roomID string) (bool, time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.backlog > f.o.MaxBacklog {
		f.refused.Inc()
		return true, time.Second
	}
	q, ok := f.rooms[roomID]
	if !ok || len(q.ds) == 0 {
		return false, 0
	}
	if len(q.ds) >= f.o.MaxRoomQueue || time.Since(q.ds[0].at) > f.o.MaxRoomDelay {
		f.refused.Inc()
		return true, min(f.o.MaxRoomDelay, time.Second)
	}
	return false, 0
}

// Backlog is the estimated number of queued publishes (deliveries × members).
func (f *Fanout) Backlog() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.backlog
}

func (f *Fanout) drain(roomID string, q *roomQueue) {
	defer f.wg.Done()
	var last time.Time // start of this drainer's previous round
	for {
		f.mu.Lock()
		if wait := f.o.BigRoomInterval - time.Since(last); q.members >= f.o.BigRoom && wait > 0 && f.ctx.Err() == nil {
			// A big room right after a round: let events gather into one batch.
			f.mu.Unlock()
			select {
			case <-time.After(wait):
			case <-f.ctx.Done():
			}
			f.mu.Lock()
		}
		if len(q.ds) == 0 {
			delete(f.rooms, roomID)
			f.idle.Broadcast()
			f.mu.Unlock()
			return
		}
		n := min(len(q.ds), f.o.MaxRound)
		if q.members >= f.o.BigRoom {
			n = min(n, f.o.BigRoomRound)
		}
		round := make([]Delivery, n)
		for i := range n {
			round[i] = q.ds[i].Delivery
		}
		q.ds = q.ds[n:]
		if len(q.ds) == 0 {
			q.ds = nil
		}
		est := n * q.members
		f.mu.Unlock()

		f.sem <- struct{}{}
		last = time.Now()
		members := f.round(roomID, round)
		<-f.sem

		f.mu.Lock()
		f.backlog -= est
		if members > 0 {
			// Later estimates use the real size; earlier queued ones are corrected
			// as they drain (the backlog is a bound, not a ledger).
			f.backlog += len(q.ds) * (members - q.members)
			q.members = members
			if len(f.sizes) >= maxSizes {
				clear(f.sizes)
			}
			f.sizes[roomID] = members
		}
		f.backlog = max(f.backlog, 0)
		f.queued.Sub(float64(n))
		f.mu.Unlock()
	}
}

// round publishes ds to the room's members and returns the member count.
func (f *Fanout) round(roomID string, ds []Delivery) (members int) {
	defer func() {
		if p := recover(); p != nil {
			f.log.Error("fan-out round panicked", "room", roomID, "panic", p)
		}
	}()
	tctx, span := tracing.StartBatch("chat fanout", len(ds), func(i int) context.Context { return orBackground(ds[i].Trace) })
	defer span.End()
	hdr := tracing.Header(tctx)
	ms, err := f.o.Members(f.ctx, roomID)
	if err != nil {
		f.log.Warn("fan-out: load members", "room", roomID, "err", err)
		return 0
	}
	all := batch(ds, "")
	var except map[string][]byte // the payload of each user left out of some event
	for _, d := range ds {
		if _, ok := except[d.Except]; d.Except != "" && !ok {
			if except == nil {
				except = map[string][]byte{}
			}
			except[d.Except] = batch(ds, d.Except)
		}
	}
	f.roundSize.Observe(float64(len(ds)))
	shard := func(k int) (events, msgs int) {
		subs := ms.Subjects[k]
		for i, u := range ms.Shards[k] {
			b, n := all, len(ds)
			if e, ok := except[u]; ok {
				if b = e; b == nil {
					continue
				}
				n = len(ds) - countExcept(ds, u)
			}
			if err := f.o.Publish(subs[i], b, hdr); err != nil {
				f.log.Warn("fan-out: publish", "room", roomID, "user", u, "err", err)
				continue
			}
			events += n
			msgs++
		}
		return events, msgs
	}
	var events, msgs int
	if ms.N < parallelMembers {
		for k := range roster.Shards {
			e, m := shard(k)
			events, msgs = events+e, msgs+m
		}
	} else {
		var wg sync.WaitGroup
		var mu sync.Mutex
		for k := range roster.Shards {
			if len(ms.Shards[k]) == 0 {
				continue
			}
			wg.Go(func() {
				e, m := shard(k)
				mu.Lock()
				events, msgs = events+e, msgs+m
				mu.Unlock()
			})
		}
		wg.Wait()
	}
	f.publish.Add(float64(events))
	f.messages.Add(float64(msgs))
	return ms.N
}

func countExcept(ds []Delivery, u string) int {
	n := 0
	for _, d := range ds {
		if d.Except == u {
			n++
		}
	}
	return n
}

// outboundBatchField is edgev1.Outbound.batch (field 10).
const outboundBatchField = 10

// batch returns the payload for a member: the single delivery as it is, or an
// edgev1.Outbound whose batch holds the deliveries in order (the encoding of a
// repeated message field is its items' encodings, each with tag and length, so
// the batch is built without decoding them). Deliveries for except are left
// out; nil when none is left.
func batch(ds []Delivery, except string) []byte {
	var one []byte
	n, size := 0, 0
	for _, d := range ds {
		if except != "" && d.Except == except {
			continue
		}
		one = d.Payload
		n++
		size += len(d.Payload) + 6
	}
	switch n {
	case 0:
		return nil
	case 1:
		return one
	}
	b := make([]byte, 0, size)
	for _, d := range ds {
		if except != "" && d.Except == except {
			continue
		}
		b = protowire.AppendTag(b, outboundBatchField, protowire.BytesType)
		b = protowire.AppendBytes(b, d.Payload)
	}
	return b
}

// Wait blocks until no room has queued deliveries or ctx ends.
func (f *Fanout) Wait(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return waitCond(ctx, f.idle, func() (bool, error) { return len(f.rooms) == 0, ctx.Err() })
}

// Close waits for queued deliveries until ctx ends, then cancels the rest.
func (f *Fanout) Close(ctx context.Context) {
	done := make(chan struct{})
	go func() { f.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		f.cancel()
		<-done
	}
	f.cancel()
}

func orBackground(ctx context.Context) context.Context {
	if ctx == nil {
		return context.Background()
	}
	return ctx
}
