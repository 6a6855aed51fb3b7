package pipeline

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/talim/realtime/services/chat/internal/store"
)

// summaries is the write-behind of the denormalised room summaries (lastSeq,
// lastMessage, lastActivityAt) and the senders' read markers. FerretDB runs every
// update statement as its own query plus transaction (1–3 ms each over
// PostgreSQL), so writing them before the ack cost two statements per message;
// instead one writer per instance coalesces them per room and per (room, sender)
// and writes them with chunked bulk updates while sends are acked as soon as the
// messages are stored. Until written they are answered from memory
// (Unflushed, UnflushedRead), so this instance's reads never see them older
// than before; other instances may see them late by the writer's lag.
//
// Pacing: after a round that wrote something the writer waits summaryInterval
// before the next, so a busy room's summary is written once per interval, not
// once per insert, and the writer never takes the store's whole capacity from
// the inserts the acks wait for. A failed round is retried after summaryRetry.
// Close (or a Flush) cuts both waits short.
//
// Order: each round writes the read markers before the room summaries, so a
// reader that sees a room's lastSeq >= s also sees the markers of the senders of
// messages up to s written by this instance (a sender's own message never
// counts as unread). Both updates only move forward ($max, lastSeq < s), so
// rounds and instances cannot move them back.
type summaries struct {
	mu       sync.Mutex
	changed  *sync.Cond               // broadcast when a round ends or the writer stops
	rooms    map[string]store.Message // pending: newest stored message per room
	marks    map[markKey]int64        // pending: sender read markers
	flRooms  map[string]store.Message // being written
	flMarks  map[markKey]int64
	running  bool
	closed   bool
	waiters  int           // Flush/FlushRoom calls waiting: no pauses meanwhile
	wake     chan struct{} // cuts the writer's pause short (Flush, Close)
	failures int
	wg       sync.WaitGroup
}

type markKey struct{ room, user string }

const (
	// summaryRetry is the pause after a failed summary write before it is retried.
	summaryRetry = 200 * time.Millisecond
	// summaryInterval is the pause after a round that wrote something.
	summaryInterval = 100 * time.Millisecond
)

// errClosed is returned by Flush after Close gave up on pending summaries.
var errClosed = errors.New("summary writer closed")

func (m *summaries) init() {
	if m.changed == nil {
		m.changed = sync.NewCond(&m.mu)
		m.rooms, m.marks = map[string]store.Message{}, map[markKey]int64{}
		m.wake = make(chan struct{}, 1)
	}
}

func (m *summaries) add(s *Sequencer, lasts []store.Message, marks []store.ReadMark) {
	m.mu.Lock()
	m.init()
	for _, l := range lasts {
		if cur, ok := m.rooms[l.RoomID]; !ok || l.Seq > cur.Seq {
			m.rooms[l.RoomID] = l
		}
	}
	for _, k := range marks {
		key := markKey{k.RoomID, k.UserID}
		m.marks[key] = max(m.marks[key], k.Seq)
	}
	start := !m.running && !m.closed
	if start {
		m.running = true
		m.wg.Add(1)
	}
	m.mu.Unlock()
	if start {
		go m.run(s)
	}
}

// pause waits d, or less when hurried (Flush, Close). The pacing pause (retry
// false) is skipped while someone waits for the writer or it is closing; a
// retry pause is always kept, or a Flush would spin on a store that is down.
func (m *summaries) pause(d time.Duration, retry bool) {
	m.mu.Lock()
	skip, wake := !retry && (m.waiters > 0 || m.closed), m.wake
	m.mu.Unlock()
	if skip {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	if retry {
		<-t.C
		return
	}
	select {
	case <-t.C:
	case <-wake:
	}
}

// hurryUp cuts the writer's current pause short.
func (m *summaries) hurryUp() {
	m.mu.Lock()
	m.init()
	wake := m.wake
	m.mu.Unlock()
	select {
	case wake <- struct{}{}:
	default:
	}
}

// run writes pending summaries until none are left (or the writer is closed and
// its last attempt failed), then exits.
func (m *summaries) run(s *Sequencer) {
	defer m.wg.Done()
	for {
		m.mu.Lock()
		if len(m.rooms) == 0 && len(m.marks) == 0 {
			m.running = false
			m.changed.Broadcast()
			m.mu.Unlock()
			return
		}
		m.flRooms, m.flMarks = m.rooms, m.marks
		m.rooms, m.marks = map[string]store.Message{}, map[markKey]int64{}
		rooms, marks := m.flRooms, m.flMarks
		m.mu.Unlock()

		ml := make([]store.ReadMark, 0, len(marks))
		for k, seq := range marks {
			ml = append(ml, store.ReadMark{RoomID: k.room, UserID: k.user, Seq: seq})
		}
		rl := make([]store.Message, 0, len(rooms))
		for _, l := range rooms {
			rl = append(rl, l)
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.o.WriteTimeout)
		err := s.o.Store.AdvanceReads(ctx, ml)
		if err == nil {
			err = s.o.Store.AdvanceRooms(ctx, rl)
		}
		cancel()

		m.mu.Lock()
		if err != nil {
			// Keep them pending (merged with newer ones) and retry after a pause.
			for id, l := range rooms {
				if cur, ok := m.rooms[id]; !ok || l.Seq > cur.Seq {
					m.rooms[id] = l
				}
			}
			for k, seq := range marks {
				m.marks[k] = max(m.marks[k], seq)
			}
			m.failures++
		}
		m.flRooms, m.flMarks = nil, nil
		closed := m.closed
		if err != nil && closed {
			// Closing and the store is down: give up (a room's next message
			// rewrites its summary; see Flush for what a lost marker costs).
			m.running = false
			m.changed.Broadcast()
			m.mu.Unlock()
			s.o.Logger.Warn("room summaries and read markers not written before shutdown", "rooms", len(m.rooms), "markers", len(m.marks), "err", err)
			return
		}
		m.changed.Broadcast()
		m.mu.Unlock()
		switch {
		case err != nil:
			s.o.Logger.Warn("write room summaries and read markers; retrying", "rooms", len(rooms), "markers", len(marks), "err", err)
			m.pause(summaryRetry, true)
		case !closed:
			m.pause(summaryInterval, false)
		}
	}
}

// waitUntil blocks until done() (called with m.mu held) or ctx ends.
func (m *summaries) waitUntil(ctx context.Context, done func() bool) error {
	m.mu.Lock()
	m.init()
	m.waiters++
	m.mu.Unlock()
	m.hurryUp()
	m.mu.Lock()
	defer func() { m.waiters--; m.mu.Unlock() }()
	return waitCond(ctx, m.changed, func() (bool, error) {
		switch {
		case done():
			return true, nil
		case ctx.Err() != nil:
			return false, ctx.Err()
		case m.closed && !m.running:
			return false, errClosed
		}
		return false, nil
	})
}

// Unflushed returns the newest message of roomID stored by this instance whose
// room summary is not written yet (ok is false when there is none).
func (s *Sequencer) Unflushed(roomID string) (store.Message, bool) {
	m := &s.sum
	m.mu.Lock()
	defer m.mu.Unlock()
	a, okA := m.rooms[roomID]
	b, okB := m.flRooms[roomID]
	if okB && (!okA || b.Seq > a.Seq) {
		return b, true
	}
	return a, okA
}

// UnflushedRead returns the read marker of userID in roomID that this instance
// has not written yet (0 when none): the seq of their newest own message.
func (s *Sequencer) UnflushedRead(roomID, userID string) int64 {
	m := &s.sum
	m.mu.Lock()
	defer m.mu.Unlock()
	k := markKey{roomID, userID}
	return max(m.marks[k], m.flMarks[k])
}

// Flush waits until the summary writer has written everything pending (or ctx
// ends). Summaries still in memory at a crash are lost (a room's next message
// rewrites its summary; a lost sender read marker makes their own last message
// count as unread until they read).
func (s *Sequencer) Flush(ctx context.Context) error {
	m := &s.sum
	return m.waitUntil(ctx, func() bool { return !m.running && len(m.rooms) == 0 && len(m.marks) == 0 })
}

// FlushRoom waits until this instance has no room summary or read marker of
// roomID pending or being written (or ctx ends). FerretDB v1 applies an update by
// rewriting the whole document, so an update racing the summary writer on the
// same document can lose the other's fields (e.g. archived, role, a newer read
// marker): writers of rooms and memberships documents call FlushRoom first.
func (s *Sequencer) FlushRoom(ctx context.Context, roomID string) error {
	m := &s.sum
	busy := func() bool {
		_, a := m.rooms[roomID]
		_, b := m.flRooms[roomID]
		if a || b {
			return true
		}
		for k := range m.marks {
			if k.room == roomID {
				return true
			}
		}
		for k := range m.flMarks {
			if k.room == roomID {
				return true
			}
		}
		return false
	}
	m.mu.Lock()
	pending := busy()
	m.mu.Unlock()
	if !pending {
		return nil
	}
	return m.waitUntil(ctx, func() bool { return !busy() })
}

// Close refuses new sends, waits for the batches in flight, then makes the
// summary writer write what is pending and stop: it gives up after its first
// failed attempt (no retry loop outlives Close). It returns an error when
// summaries were left unwritten or ctx ended first. Safe to call more than once.
func (s *Sequencer) Close(ctx context.Context) error {
	s.closeMu.Lock()
	s.closing.Store(true)
	s.closeMu.Unlock()
	lanes := make(chan struct{})
	go func() { s.lanesWG.Wait(); close(lanes) }()
	select {
	case <-lanes:
	case <-ctx.Done():
		return ctx.Err()
	}
	m := &s.sum
	m.mu.Lock()
	m.init()
	m.closed = true
	m.changed.Broadcast()
	m.mu.Unlock()
	m.hurryUp()
	err := m.waitUntil(ctx, func() bool { return !m.running && len(m.rooms) == 0 && len(m.marks) == 0 })
	done := make(chan struct{})
	go func() { m.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	return err
}
