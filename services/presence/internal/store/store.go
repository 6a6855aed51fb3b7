// Package store persists presence in the MongoDB collection "presence":
//
//	{_id: userId, lastSeenAt: Date, status: "away", statusAt: Date}
//
// lastSeenAt is the public lastSeenAt of an offline user (it only moves forward:
// every replica writes the same value with $max, so the writes are idempotent and
// their order does not matter). status is the user's chosen status, so an invisible
// user stays invisible across reconnects and presence restarts.
package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/talim/realtime/pkg/mongox"
)

// Collection is the collection name.
const Collection = "presence"

// Store reads and writes the presence collection.
type Store struct {
	coll *mongo.Collection
}

// New returns a store on db.
func New(db *mongo.Database) *Store { return &Store{coll: db.Collection(Collection)} }

type doc struct {
	ID         string    `bson:"_id"`
	LastSeenAt time.Time `bson:"lastSeenAt,omitempty"`
	Status     string    `bson:"status,omitempty"`
	StatusAt   time.Time `bson:"statusAt,omitempty"`
}

// Status is a stored chosen status.
type Status struct {
	UserID string
	Status string
	At     time.Time
}

// Statuses returns every user whose chosen status is not plain "online" (those are
// the only ones that change what others see).
func (s *Store) Statuses(ctx context.Context) ([]Status, error) {
	cur, err := s.coll.Find(ctx, bson.D{{Key: "status", Value: bson.D{{Key: "$in", Value: bson.A{"away", "busy", "invisible"}}}}},
		options.Find().SetProjection(bson.D{{Key: "status", Value: 1}, {Key: "statusAt", Value: 1}}))
	if err != nil {
		return nil, wrap("load statuses", err)
	}
	var docs []doc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, wrap("load statuses", err)
	}
	out := make([]Status, 0, len(docs))
	for _, d := range docs {
		out = append(out, Status{UserID: d.ID, Status: d.Status, At: d.StatusAt})
	}
	return out, nil
}

// SetStatus stores a chosen status.
func (s *Store) SetStatus(ctx context.Context, userID, status string, at time.Time) error {
	_, err := s.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: userID}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "status", Value: status}, {Key: "statusAt", Value: at}}}},
		options.UpdateOne().SetUpsert(true))
	if err != nil {
		return wrap("set status", err)
	}
	return nil
}

// SaveLastSeen moves a user's lastSeenAt forward to at (never backward).
func (s *Store) SaveLastSeen(ctx context.Context, userID string, at time.Time) error {
	_, err := s.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: userID}},
		bson.D{{Key: "$max", Value: bson.D{{Key: "lastSeenAt", Value: at}}}},
		options.UpdateOne().SetUpsert(true))
	if err != nil {
		return wrap("save lastSeenAt", err)
	}
	return nil
}

// LastSeen returns the stored lastSeenAt of ids (absent: never seen).
func (s *Store) LastSeen(ctx context.Context, ids []string) (map[string]time.Time, error) {
	out := map[string]time.Time{}
	if len(ids) == 0 {
		return out, nil
	}
	cur, err := s.coll.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}},
		options.Find().SetProjection(bson.D{{Key: "lastSeenAt", Value: 1}}))
	if err != nil {
		return nil, wrap("load lastSeenAt", err)
	}
	var docs []doc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, wrap("load lastSeenAt", err)
	}
	for _, d := range docs {
		if !d.LastSeenAt.IsZero() {
			out[d.ID] = d.LastSeenAt
		}
	}
	return out, nil
}

// ErrUnavailable wraps failures to reach the store; the handler layer maps it to
// the protocol's `unavailable` (command.Options.Unavailable in presence.go).
var ErrUnavailable = errors.New("store unavailable")

// wrap adds op to err and marks unreachable-store errors with ErrUnavailable.
func wrap(op string, err error) error {
	if mongox.IsUnavailable(err) {
		return fmt.Errorf("%s: %w: %w", op, ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// Writer saves lastSeenAt in the background so the event loop never waits for the
// store. Writes that do not fit its queue are dropped (counted by the caller): the
// value is only a display hint, and another replica writes the same one.
type Writer struct {
	s   *Store
	log *slog.Logger
	ch  chan lastSeen
}

type lastSeen struct {
	user string
	at   time.Time
}

// ErrQueueFull is returned by Writer.Save when the queue is full.
var ErrQueueFull = errors.New("lastSeenAt write queue full")

// NewWriter returns a writer with a queue of size n.
func NewWriter(s *Store, log *slog.Logger, n int) *Writer {
	return &Writer{s: s, log: log, ch: make(chan lastSeen, n)}
}

// Save queues a write.
func (w *Writer) Save(user string, at time.Time) error {
	select {
	case w.ch <- lastSeen{user, at}:
		return nil
	default:
		return ErrQueueFull
	}
}

// Run writes until ctx ends, then flushes what is queued within flush.
func (w *Writer) Run(ctx context.Context, flush time.Duration) {
	write := func(ctx context.Context, ls lastSeen) {
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if err := w.s.SaveLastSeen(wctx, ls.user, ls.at); err != nil {
			w.log.Warn("save lastSeenAt", "user", ls.user, "err", err)
		}
	}
	for {
		select {
		case ls := <-w.ch:
			write(ctx, ls)
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), flush)
			defer cancel()
			for {
				select {
				case ls := <-w.ch:
					write(fctx, ls)
				default:
					return
				}
			}
		}
	}
}
