package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/talim/realtime/pkg/command"
	"github.com/talim/realtime/services/chat/internal/store"
)

// Store is what the sequencer needs from the store.
type Store interface {
	Room(ctx context.Context, id string) (*store.Room, error)
	MaxSeq(ctx context.Context, roomID string) (int64, error)
	InsertMessages(ctx context.Context, msgs []store.Message) (int, error)
	Message(ctx context.Context, id string) (*store.Message, error)
	AdvanceRoom(ctx context.Context, last store.Message) error
	AdvanceRead(ctx context.Context, roomID, userID string, seq int64) error
}

var _ Store = (*store.Store)(nil)

// DefaultMaxBatch bounds one InsertMany. FerretDB (SQLite) stores a 128-message
// batch in about the time of a few single inserts; larger batches only add latency
// for the first sender of the batch.
const DefaultMaxBatch = 128

// maxConflictRetries bounds retries of one batch after seq conflicts with other
// instances; each retry makes progress for the instance that won, so hitting it
// means sustained contention from many instances on one room.
const maxConflictRetries = 32

// SequencerOptions configures a Sequencer.
type SequencerOptions struct {
	Store    Store
	Logger   *slog.Logger
	Registry prometheus.Registerer
	MaxBatch int
	// Committed is called by the room's writer, in seq order, with each batch of
	// newly stored messages (not with duplicates), before the senders are acked.
	// It must not block for long (enqueue to the Fanout).
	Committed func(roomID string, msgs []store.Message)
	// WriteTimeout bounds one store round trip of a batch (default 5s).
	WriteTimeout time.Duration
}

// Sequencer assigns seqs and stores messages with group commit per room.
type Sequencer struct {
	o     SequencerOptions
	mu    sync.Mutex
	rooms map[string]*roomWriter // rooms with a running writer
	next  map[string]int64       // next seq per room, as far as this instance knows

	stored    prometheus.Counter
	dups      prometheus.Counter
	conflicts prometheus.Counter
	batch     prometheus.Histogram
}

type roomWriter struct {
	pending []*request
}

type request struct {
	ctx  context.Context
	msg  store.Message
	done chan result
}

type result struct {
	msg store.Message
	dup bool
	err error
}

// maxNextCache bounds the per-room next-seq cache; past it the cache is reset
// (a cold room costs one point read of its rooms document).
const maxNextCache = 100_000

// NewSequencer returns a sequencer.
func NewSequencer(o SequencerOptions) *Sequencer {
	if o.MaxBatch <= 0 {
		o.MaxBatch = DefaultMaxBatch
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Sequencer{o: o, rooms: map[string]*roomWriter{}, next: map[string]int64{},
		stored:    prometheus.NewCounter(prometheus.CounterOpts{Namespace: "talim", Subsystem: "chat", Name: "messages_stored_total", Help: "Messages stored."}),
		dups:      prometheus.NewCounter(prometheus.CounterOpts{Namespace: "talim", Subsystem: "chat", Name: "messages_duplicate_total", Help: "Sends answered with an already stored message (idempotent retries)."}),
		conflicts: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "talim", Subsystem: "chat", Name: "seq_conflicts_total", Help: "Inserts that lost a seq to another instance and were retried."}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "talim", Subsystem: "chat", Name: "batch_size",
			Help: "Messages per group-commit insert.", Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256}}),
	}
	if o.Registry != nil {
		o.Registry.MustRegister(s.stored, s.dups, s.conflicts, s.batch)
	}
	return s
}

// Append stores msg (msg.Seq and msg.CreatedAt are assigned) and returns the stored
// message. When a message with the same id (same room, sender and clientMsgId) is
// already stored, it returns that one and dup = true; nothing new is stored.
func (s *Sequencer) Append(ctx context.Context, msg store.Message) (store.Message, bool, error) {
	req := &request{ctx: ctx, msg: msg, done: make(chan result, 1)}
	s.mu.Lock()
	w, running := s.rooms[msg.RoomID]
	if !running {
		w = &roomWriter{}
		s.rooms[msg.RoomID] = w
	}
	w.pending = append(w.pending, req)
	s.mu.Unlock()
	if !running {
		go s.run(msg.RoomID, w)
	}
	select {
	case r := <-req.done:
		return r.msg, r.dup, r.err
	case <-ctx.Done():
		return store.Message{}, false, fmt.Errorf("store message: %w: %w", command.ErrUnavailable, ctx.Err())
	}
}

// run is the room's single writer: it takes everything queued, stores it, repeats
// until the queue is empty, then exits.
func (s *Sequencer) run(roomID string, w *roomWriter) {
	for {
		s.mu.Lock()
		n := min(len(w.pending), s.o.MaxBatch)
		if n == 0 {
			delete(s.rooms, roomID)
			s.mu.Unlock()
			return
		}
		batch := w.pending[:n:n]
		w.pending = w.pending[n:]
		s.mu.Unlock()
		s.commit(roomID, batch)
	}
}

// group is the waiters of one message id within a batch.
type group struct {
	msg     store.Message
	waiters []*request
}

func (s *Sequencer) commit(roomID string, batch []*request) {
	// Drop sends whose client gave up before we wrote, and merge duplicates of one
	// id within the batch (racing retries on this instance) onto one document.
	var groups []*group
	byID := map[string]*group{}
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.done <- result{err: fmt.Errorf("store message: %w: %w", command.ErrUnavailable, err)}
			continue
		}
		if g, ok := byID[r.msg.ID]; ok {
			g.waiters = append(g.waiters, r)
			continue
		}
		g := &group{msg: r.msg, waiters: []*request{r}}
		byID[r.msg.ID] = g
		groups = append(groups, g)
	}
	if len(groups) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.o.WriteTimeout)
	defer cancel()

	var stored []*group
	pending := groups
	fail := func(err error) {
		for _, g := range pending {
			for _, r := range g.waiters {
				r.done <- result{err: err}
			}
		}
		pending = nil
	}
	for attempt := 0; len(pending) > 0; {
		next, err := s.nextSeq(ctx, roomID)
		if err != nil {
			fail(err)
			break
		}
		now := store.Now()
		msgs := make([]store.Message, len(pending))
		for i, g := range pending {
			g.msg.Seq, g.msg.CreatedAt = next+int64(i), now
			msgs[i] = g.msg
		}
		n, err := s.o.Store.InsertMessages(ctx, msgs)
		s.batch.Observe(float64(n))
		stored = append(stored, pending[:n]...)
		s.setNext(roomID, next+int64(n))
		if err == nil {
			pending = nil
			break
		}
		pending = pending[n:]
		if !errors.Is(err, store.ErrDuplicate) {
			// Unknown outcome of the rest (e.g. network error): forget the cached seq.
			s.forgetNext(roomID)
			fail(fmt.Errorf("store messages of %s: %w", roomID, err))
			break
		}
		d := pending[0]
		existing, gerr := s.o.Store.Message(ctx, d.msg.ID)
		switch {
		case gerr == nil:
			// Idempotent duplicate: the original is stored already.
			s.dups.Add(float64(len(d.waiters)))
			for _, r := range d.waiters {
				r.done <- result{msg: *existing, dup: true}
			}
			pending = pending[1:]
		case errors.Is(gerr, store.ErrNotFound):
			// The seq was taken by another instance: learn the max and retry.
			s.conflicts.Inc()
			if attempt++; attempt > maxConflictRetries {
				fail(fmt.Errorf("store messages of %s: %w: seq contention", roomID, command.ErrUnavailable))
				break
			}
			last, merr := s.o.Store.MaxSeq(ctx, roomID)
			if merr != nil {
				s.forgetNext(roomID)
				fail(fmt.Errorf("store messages of %s: %w", roomID, merr))
				break
			}
			s.setNext(roomID, last+1)
		default:
			fail(fmt.Errorf("classify duplicate in %s: %w", roomID, gerr))
		}
	}
	if len(stored) == 0 {
		return
	}
	msgs := make([]store.Message, len(stored))
	for i, g := range stored {
		msgs[i] = g.msg
	}
	s.stored.Add(float64(len(msgs)))
	s.afterStore(ctx, roomID, msgs)
	if s.o.Committed != nil {
		s.o.Committed(roomID, msgs)
	}
	for _, g := range stored {
		for _, r := range g.waiters {
			r.done <- result{msg: g.msg}
		}
	}
}

// afterStore updates the denormalised room summary and the senders' read markers.
// Failures are logged only: the messages are stored (and will be acked); the room
// summary catches up with the next message.
func (s *Sequencer) afterStore(ctx context.Context, roomID string, msgs []store.Message) {
	if err := s.o.Store.AdvanceRoom(ctx, msgs[len(msgs)-1]); err != nil {
		s.o.Logger.Warn("advance room summary", "room", roomID, "err", err)
	}
	lastBySender := map[string]int64{}
	for _, m := range msgs {
		if m.Type != store.MessageTypeSystem {
			lastBySender[m.SenderID] = m.Seq
		}
	}
	for sender, seq := range lastBySender {
		if err := s.o.Store.AdvanceRead(ctx, roomID, sender, seq); err != nil {
			s.o.Logger.Warn("advance sender read marker", "room", roomID, "user", sender, "err", err)
		}
	}
}

func (s *Sequencer) nextSeq(ctx context.Context, roomID string) (int64, error) {
	s.mu.Lock()
	n, ok := s.next[roomID]
	s.mu.Unlock()
	if ok {
		return n, nil
	}
	// A cold room starts from its summary, a point read. The summary may lag (a
	// crash between insert and summary update, or another instance's write in
	// flight); the insert then conflicts and commit re-reads the true max seq.
	r, err := s.o.Store.Room(ctx, roomID)
	if errors.Is(err, store.ErrNotFound) {
		return 1, nil
	}
	if err != nil {
		return 0, fmt.Errorf("next seq of %s: %w", roomID, err)
	}
	return r.LastSeq + 1, nil
}

func (s *Sequencer) setNext(roomID string, n int64) {
	s.mu.Lock()
	if len(s.next) >= maxNextCache {
		clear(s.next)
	}
	s.next[roomID] = n
	s.mu.Unlock()
}

func (s *Sequencer) forgetNext(roomID string) {
	s.mu.Lock()
	delete(s.next, roomID)
	s.mu.Unlock()
}

// ConflictsMetric is the counter of inserts that lost a seq to another instance.
func (s *Sequencer) ConflictsMetric() prometheus.Counter { return s.conflicts }
