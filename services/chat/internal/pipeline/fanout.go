package pipeline

import (
	"context"
	"log/slog"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Job is one unit of delivery for a room: it publishes (typically one Outbound to
// each member's subject). Jobs of a room run one at a time, in enqueue order.
type Job func(ctx context.Context) (publishes int)

// DefaultWorkers bounds how many rooms publish at once. A 2,000-member fan-out is
// 2,000 buffered nc.Publish calls of one shared payload (a few ms); with 16 workers
// a few huge rooms cannot occupy every slot for long.
const DefaultWorkers = 16

// Fanout runs delivery jobs asynchronously: per room in order, across rooms in
// parallel on at most Workers goroutines at once, so a big room's fan-out never
// holds up the sender's ack or other rooms beyond the worker bound.
type Fanout struct {
	log     *slog.Logger
	sem     chan struct{}
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	mu      sync.Mutex
	rooms   map[string]*[]Job // rooms with a running drainer
	publish prometheus.Counter
	queued  prometheus.Gauge
}

// NewFanout returns a fanout with workers concurrent rooms (DefaultWorkers if <= 0).
func NewFanout(workers int, log *slog.Logger, reg prometheus.Registerer) *Fanout {
	if workers <= 0 {
		workers = DefaultWorkers
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := &Fanout{log: log, sem: make(chan struct{}, workers), ctx: ctx, cancel: cancel, rooms: map[string]*[]Job{},
		publish: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "talim", Subsystem: "chat", Name: "fanout_publishes_total", Help: "Outbound messages published to user subjects."}),
		queued:  prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "talim", Subsystem: "chat", Name: "fanout_queued_jobs", Help: "Delivery jobs waiting to run."}),
	}
	if reg != nil {
		reg.MustRegister(f.publish, f.queued)
	}
	return f
}

// Enqueue schedules jobs for roomID after the room's earlier jobs. It never blocks.
func (f *Fanout) Enqueue(roomID string, jobs ...Job) {
	if len(jobs) == 0 {
		return
	}
	f.mu.Lock()
	q, running := f.rooms[roomID]
	if !running {
		q = new([]Job)
		f.rooms[roomID] = q
	}
	*q = append(*q, jobs...)
	f.queued.Add(float64(len(jobs)))
	f.mu.Unlock()
	if !running {
		f.wg.Add(1)
		go f.drain(roomID, q)
	}
}

func (f *Fanout) drain(roomID string, q *[]Job) {
	defer f.wg.Done()
	for {
		f.mu.Lock()
		if len(*q) == 0 {
			delete(f.rooms, roomID)
			f.mu.Unlock()
			return
		}
		jobs := *q
		*q = nil
		f.mu.Unlock()
		f.sem <- struct{}{}
		for _, j := range jobs {
			f.queued.Dec()
			f.publish.Add(float64(f.run(j)))
		}
		<-f.sem
	}
}

func (f *Fanout) run(j Job) (n int) {
	defer func() {
		if p := recover(); p != nil {
			f.log.Error("fan-out job panicked", "panic", p)
		}
	}()
	return j(f.ctx)
}

// Close waits for queued jobs until ctx ends, then cancels the rest.
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
