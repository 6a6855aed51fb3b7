package pipeline

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/talim/realtime/pkg/command"
	"github.com/talim/realtime/pkg/tracing"
	"github.com/talim/realtime/services/chat/internal/store"
)

// Store is what the sequencer needs from the store. It is the seam the tests use
// to inject failures; *store.Store implements it.
type Store interface {
	// Rooms returns the rooms documents of ids (missing ones are skipped): the
	// lastSeq of rooms whose next seq is not cached.
	Rooms(ctx context.Context, ids []string) ([]store.Room, error)
	MaxSeq(ctx context.Context, roomID string) (int64, error)
	// InsertMessages is an ordered InsertMany: it stores a prefix of msgs.
	InsertMessages(ctx context.Context, msgs []store.Message) (int, error)
	Message(ctx context.Context, id string) (*store.Message, error)
	AdvanceRooms(ctx context.Context, lasts []store.Message) error
	AdvanceReads(ctx context.Context, marks []store.ReadMark) error
}

var _ Store = (*store.Store)(nil)

// DefaultMaxBatch bounds one InsertMany (messages of any number of rooms).
const DefaultMaxBatch = 256

// DefaultLanes is the number of batches one instance writes at once. Rooms are
// spread over the lanes by hash, so a room is in at most one batch in flight.
const DefaultLanes = 4

// maxConflictRetries bounds retries of one room's messages after seq conflicts
// with other instances within one batch; each retry makes progress for the
// instance that won, so hitting it means sustained contention on one room.
const maxConflictRetries = 32

// SequencerOptions configures a Sequencer.
type SequencerOptions struct {
	Store    Store
	Logger   *slog.Logger
	Registry prometheus.Registerer
	// MaxBatch bounds the messages of one batch (default DefaultMaxBatch).
	MaxBatch int
	// Lanes is the number of concurrent batch writers (default DefaultLanes).
	Lanes int
	// Committed is called by the room's lane, in seq order per room, with each
	// room's newly stored messages of a batch (not with duplicates), before the
	// senders are acked. It must not block for long (enqueue to the Fanout). ctx
	// carries only the span of the first message's send (tracing), no deadline.
	Committed func(ctx context.Context, roomID string, msgs []store.Message)
	// WriteTimeout bounds the store round trips of one batch (default 5s).
	WriteTimeout time.Duration
	// MaxPending bounds the sends queued on one lane (default 2 × MaxBatch); past
	// it Append refuses at once (unavailable with a retry hint) instead of queueing
	// behind a store that is not keeping up.
	MaxPending int
}

// busyRetry is the retry hint of a send refused because its lane was full.
const busyRetry = 500 * time.Millisecond

// Sequencer assigns seqs and stores messages with group commit across rooms.
type Sequencer struct {
	o     SequencerOptions
	seed  maphash.Seed
	lanes []*lane
	mu    sync.Mutex
	next  map[string]int64 // next seq per room, as far as this instance knows
	sum   summaries

	closeMu sync.RWMutex   // held (read) while a send is queued; Close takes it to set closing
	closing atomic.Bool    // Close was called: sends are refused
	lanesWG sync.WaitGroup // running lane writers

	stored    prometheus.Counter
	dups      prometheus.Counter
	conflicts prometheus.Counter
	refused   prometheus.Counter
	batch     prometheus.Histogram
}

// lane is one batch writer: a goroutine runs while sends are queued and writes
// everything queued (up to MaxBatch) per round trip.
type lane = groupQueue[*request]

type request struct {
	ctx   context.Context
	msg   store.Message
	known int64 // a seq of the room known to be stored (hint; negative: none)
	done  chan result
}

type result struct {
	msg store.Message
	dup bool
	err error
}

// maxNextCache bounds the per-room next-seq cache; past it the cache is reset
// (a cold room costs a share of one rooms read per batch).
const maxNextCache = 100_000

// NewSequencer returns a sequencer.
func NewSequencer(o SequencerOptions) *Sequencer {
	if o.MaxBatch <= 0 {
		o.MaxBatch = DefaultMaxBatch
	}
	if o.Lanes <= 0 {
		o.Lanes = DefaultLanes
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 5 * time.Second
	}
	if o.MaxPending <= 0 {
		o.MaxPending = 2 * o.MaxBatch
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Sequencer{o: o, seed: maphash.MakeSeed(), next: map[string]int64{},
		stored:    prometheus.NewCounter(prometheus.CounterOpts{Namespace: "talim", Subsystem: "chat", Name: "messages_stored_total", Help: "Messages stored."}),
		dups:      prometheus.NewCounter(prometheus.CounterOpts{Namespace: "talim", Subsystem: "chat", Name: "messages_duplicate_total", Help: "Sends answered with an already stored message (idempotent retries)."}),
		conflicts: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "talim", Subsystem: "chat", Name: "seq_conflicts_total", Help: "Inserts that lost a seq to another instance and were retried."}),
		refused:   prometheus.NewCounter(prometheus.CounterOpts{Namespace: "talim", Subsystem: "chat", Name: "sends_refused_total", Help: "Sends refused at once because their writer lane was full (store behind)."}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "talim", Subsystem: "chat", Name: "batch_size",
			Help: "Messages per group-commit insert.", Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512}}),
	}
	for range o.Lanes {
		s.lanes = append(s.lanes, &lane{})
	}
	if o.Registry != nil {
		o.Registry.MustRegister(s.stored, s.dups, s.conflicts, s.refused, s.batch)
	}
	return s
}

// Append stores msg (msg.Seq and msg.CreatedAt are assigned) and returns the stored
// message. When a message with the same id (same room, sender and clientMsgId) is
// already stored, it returns that one and dup = true; nothing new is stored.
func (s *Sequencer) Append(ctx context.Context, msg store.Message) (store.Message, bool, error) {
	return s.AppendAfter(ctx, msg, -1)
}

// AppendAfter is Append with a hint: known is a seq of the room known to be
// stored (e.g. the room's lastSeq from the member cache, 0 for a room that had
// no message; negative: no hint). A room whose
// next seq is not cached starts from known+1 without reading the store; a stale
// hint costs one seq conflict, never a gap (every seq up to a stored one is
// stored).
func (s *Sequencer) AppendAfter(ctx context.Context, msg store.Message, known int64) (store.Message, bool, error) {
	req := &request{ctx: ctx, msg: msg, known: known, done: make(chan result, 1)}
	l := s.lanes[maphash.String(s.seed, msg.RoomID)%uint64(len(s.lanes))]
	s.closeMu.RLock()
	if s.closing.Load() {
		s.closeMu.RUnlock()
		return store.Message{}, false, fmt.Errorf("store message: %w: chat is shutting down", command.ErrUnavailable)
	}
	ok, start := l.push(req, s.o.MaxPending)
	if !ok {
		s.closeMu.RUnlock()
		s.refused.Inc()
		return store.Message{}, false, &command.Error{Code: command.CodeUnavailable,
			Message: "the message store is behind; nothing was stored, retry later", RetryAfterMs: busyRetry.Milliseconds()}
	}
	if start {
		s.lanesWG.Add(1) // under closeMu: Close waits only after no send can start a lane
	}
	s.closeMu.RUnlock()
	if start {
		go s.run(l)
	}
	select {
	case r := <-req.done:
		return r.msg, r.dup, r.err
	case <-ctx.Done():
		return store.Message{}, false, fmt.Errorf("store message: %w: %w", command.ErrUnavailable, ctx.Err())
	}
}

// run is the lane's writer: it takes everything queued (group commit without a
// timer: what arrived while the previous batch was in flight), stores it, repeats
// until the queue is empty, then exits.
func (s *Sequencer) run(l *lane) {
	defer s.lanesWG.Done()
	for batch := l.take(s.o.MaxBatch); batch != nil; batch = l.take(s.o.MaxBatch) {
		s.commit(batch)
	}
}

// group is the waiters of one message id within a batch.
type group struct {
	msg     store.Message
	waiters []*request
}

func (g *group) finish(r result) {
	for _, w := range g.waiters {
		w.done <- r
	}
}

// chain is one room's part of a batch, in arrival order. stored is the prefix
// that is stored (seqs assigned); rest waits for an insert.
type chain struct {
	room     string
	known    int64 // highest hint of the chain's sends (negative: none)
	stored   []*group
	rest     []*group
	attempts int
	fresh    bool // next seq was read from the store during this batch
}

// commit stores one batch. The invariant that keeps every room gap-free:
//
//   - the insert is ONE ordered InsertMany of the batch sorted by room: each
//     room's unstored messages form one contiguous run with the consecutive seqs
//     next(room), next(room)+1, …, where next(room) is one above a seq known to be
//     stored (cached from our own inserts, or read: rooms.lastSeq, max seq);
//   - an ordered InsertMany stores a prefix of the batch, so it stores a prefix of
//     every room's run: a stored seq s always has s-1 stored;
//   - after a failure at position k only the rooms of the first k messages are
//     settled; the retry starts at k, and every room's remaining run is numbered
//     again from its next seq (unchanged for rooms that were not reached, re-read
//     for the room that lost a seq to another instance);
//   - an error that is not a duplicate key fails every message from k on and
//     forgets their rooms' next seqs (the outcome may be unknown): the next batch
//     starts those rooms from the store again;
//   - a room belongs to one lane, so one instance never has two batches of a room
//     in flight; between instances the unique index {roomId, seq} arbitrates.
func (s *Sequencer) commit(batch []*request) {
	// Drop sends whose client gave up before we wrote, and merge duplicates of one
	// id within the batch (racing retries on this instance) onto one document.
	byID := make(map[string]*group, len(batch))
	byRoom := map[string]*chain{}
	var chains []*chain
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
		c, ok := byRoom[r.msg.RoomID]
		if !ok {
			c = &chain{room: r.msg.RoomID, known: -1}
			byRoom[c.room] = c
			chains = append(chains, c)
		}
		c.rest = append(c.rest, g)
		c.known = max(c.known, r.known)
	}
	if len(chains) == 0 {
		return
	}
	bctx, span := tracing.StartBatch("chat store batch", len(batch), func(i int) context.Context { return batch[i].ctx })
	defer span.End()
	ctx, cancel := context.WithTimeout(bctx, s.o.WriteTimeout)
	defer cancel()

	s.loadNext(ctx, chains, false)
	for {
		pending := chains[:0:0]
		for _, c := range chains {
			if len(c.rest) > 0 {
				pending = append(pending, c)
			}
		}
		if len(pending) == 0 {
			break
		}
		if !s.insert(ctx, pending) {
			break
		}
	}
	s.finish(chains)
}

// loadNext reads the next seq of the chains' rooms that are not cached (or all of
// them when refresh is set) with one read of their rooms documents. The summary
// may lag behind the messages (a crash between insert and summary update, or
// another instance's write in flight); the insert then conflicts and the room's
// max seq is read. A failed read fails the rooms it was for.
func (s *Sequencer) loadNext(ctx context.Context, chains []*chain, refresh bool) {
	var ids []string
	s.mu.Lock()
	for _, c := range chains {
		if len(c.rest) == 0 {
			continue
		}
		_, ok := s.next[c.room]
		switch {
		case refresh && !c.fresh:
			ids = append(ids, c.room)
		case !ok && c.known >= 0 && !refresh:
			s.next[c.room] = c.known + 1 // the hint: no read
		case !ok:
			ids = append(ids, c.room)
		}
	}
	s.mu.Unlock()
	if len(ids) == 0 {
		return
	}
	rooms, err := s.o.Store.Rooms(ctx, ids)
	if err != nil {
		want := make(map[string]bool, len(ids))
		for _, id := range ids {
			want[id] = true
		}
		for _, c := range chains {
			if want[c.room] {
				s.failRest(c, fmt.Errorf("next seq of %s: %w", c.room, err))
			}
		}
		return
	}
	last := make(map[string]int64, len(rooms))
	for _, r := range rooms {
		last[r.ID] = r.LastSeq
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.next) >= maxNextCache {
		clear(s.next)
	}
	for _, id := range ids {
		// Missing room: start at 1 (rooms are never deleted; sends check the room
		// exists first, so this is only a race with its creation).
		s.next[id] = max(s.next[id], last[id]+1)
	}
}

// insert writes the pending chains with one ordered InsertMany and settles what
// it stored and the message it stopped at. It reports whether anything is left
// to retry.
func (s *Sequencer) insert(ctx context.Context, pending []*chain) bool {
	var msgs []store.Message
	now := store.Now()
	s.mu.Lock()
	for _, c := range pending {
		next, ok := s.next[c.room]
		if !ok {
			// Forgotten meanwhile (cache reset): read it again, then retry.
			s.mu.Unlock()
			s.loadNext(ctx, pending, false)
			return true
		}
		for i, g := range c.rest {
			g.msg.Seq, g.msg.CreatedAt = next+int64(i), now
			msgs = append(msgs, g.msg)
		}
	}
	s.mu.Unlock()
	n, err := s.o.Store.InsertMessages(ctx, msgs)
	s.batch.Observe(float64(n))
	// Settle the stored prefix: whole runs of the first rooms, part of the room
	// the insert stopped in.
	left := n
	var stop *chain
	var after []*chain
	for i, c := range pending {
		k := min(left, len(c.rest))
		left -= k
		if k > 0 {
			c.stored = append(c.stored, c.rest[:k]...)
			c.rest = c.rest[k:]
			s.setNext(c.room, c.stored[len(c.stored)-1].msg.Seq+1)
		}
		if len(c.rest) > 0 && stop == nil {
			stop, after = c, pending[i+1:]
		}
	}
	if err == nil || stop == nil {
		return false
	}
	if !errors.Is(err, store.ErrDuplicate) {
		// Unknown outcome of the rest (e.g. network error): forget their seqs.
		err = fmt.Errorf("store messages: %w", err)
		s.failRest(stop, err)
		for _, c := range after {
			s.failRest(c, err)
		}
		return false
	}
	d := stop.rest[0]
	existing, gerr := s.o.Store.Message(ctx, d.msg.ID)
	switch {
	case gerr == nil:
		// Idempotent duplicate: the original is stored already.
		s.dups.Add(float64(len(d.waiters)))
		d.finish(result{msg: *existing, dup: true})
		stop.rest = stop.rest[1:]
	case errors.Is(gerr, store.ErrNotFound):
		// The seq was taken by another instance: learn the room's max seq and
		// retry. Another instance writes our rooms, so the cached next seq of the
		// rooms not reached yet is likely stale too: refresh them with one read of
		// their summaries instead of discovering each conflict with a round trip.
		s.conflicts.Inc()
		if stop.attempts++; stop.attempts > maxConflictRetries {
			s.failRest(stop, fmt.Errorf("store messages of %s: %w: seq contention", stop.room, command.ErrUnavailable))
			break
		}
		last, merr := s.o.Store.MaxSeq(ctx, stop.room)
		if merr != nil {
			s.failRest(stop, fmt.Errorf("store messages of %s: %w", stop.room, merr))
			break
		}
		s.setNext(stop.room, last+1)
		stop.fresh = true
		s.loadNext(ctx, after, true)
		for _, c := range after {
			c.fresh = true
		}
	default:
		s.failRest(stop, fmt.Errorf("classify duplicate in %s: %w", stop.room, gerr))
	}
	return true
}

// failRest fails the chain's unstored messages and forgets the room's next seq.
func (s *Sequencer) failRest(c *chain, err error) {
	for _, g := range c.rest {
		g.finish(result{err: err})
	}
	c.rest = nil
	s.forgetNext(c.room)
}

// finish queues the room summaries and the senders' read markers for the
// summary writer (see summaries), hands the stored messages to Committed and
// acks: the ack waits for the durable insert only.
func (s *Sequencer) finish(chains []*chain) {
	var lasts []store.Message
	var marks []store.ReadMark
	stored := 0
	for _, c := range chains {
		if len(c.stored) == 0 {
			continue
		}
		stored += len(c.stored)
		lasts = append(lasts, c.stored[len(c.stored)-1].msg)
		bySender := map[string]int{}
		for _, g := range c.stored {
			if g.msg.Type == store.MessageTypeSystem {
				continue
			}
			if i, ok := bySender[g.msg.SenderID]; ok {
				marks[i].Seq = g.msg.Seq
				continue
			}
			bySender[g.msg.SenderID] = len(marks)
			marks = append(marks, store.ReadMark{RoomID: c.room, UserID: g.msg.SenderID, Seq: g.msg.Seq})
		}
	}
	if stored == 0 {
		return
	}
	s.stored.Add(float64(stored))
	s.sum.add(s, lasts, marks)
	for _, c := range chains {
		if len(c.stored) == 0 {
			continue
		}
		if s.o.Committed != nil {
			msgs := make([]store.Message, len(c.stored))
			for i, g := range c.stored {
				msgs[i] = g.msg
			}
			s.o.Committed(tracing.Detach(c.stored[0].waiters[0].ctx), c.room, msgs)
		}
		for _, g := range c.stored {
			g.finish(result{msg: g.msg})
		}
	}
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
