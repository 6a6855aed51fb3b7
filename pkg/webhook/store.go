package webhook

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/talim/realtime/pkg/mongox"
)

// Collections (docs/operations.md "Webhooks").
const (
	CollSubscriptions = "webhook_subscriptions"
	CollOutbox        = "webhook_outbox"
	CollDead          = "webhook_dead"
	CollLeases        = "webhook_leases"
	CollCounters      = "webhook_counters"
)

// ErrNotFound means no subscription or dead letter has the given id.
var ErrNotFound = errors.New("webhook: not found")

// SigningKey is one secret of a subscription; a rotated-out key signs until
// Expires (zero: no expiry).
type SigningKey struct {
	Secret  string    `bson:"secret"`
	Expires time.Time `bson:"expires,omitempty"`
}

// Subscription is a webhook_subscriptions document.
type Subscription struct {
	ID          string       `bson:"_id"`
	URL         string       `bson:"url"`
	Events      []string     `bson:"events"`
	Description string       `bson:"description"`
	Keys        []SigningKey `bson:"keys"` // newest first
	CreatedAt   time.Time    `bson:"createdAt"`
}

// Wants reports whether s subscribes to event type t.
func (s *Subscription) Wants(t string) bool { return slices.Contains(s.Events, t) }

// activeKeys returns the decoded keys not expired at now, newest first.
func (s *Subscription) activeKeys(now time.Time) [][]byte {
	var out [][]byte
	for _, k := range s.Keys {
		if !k.Expires.IsZero() && !now.Before(k.Expires) {
			continue
		}
		if b, err := ParseSecret(k.Secret); err == nil {
			out = append(out, b)
		}
	}
	return out
}

// Entry is a webhook_outbox document: one event due to one subscription.
type Entry struct {
	ID        string    `bson:"_id"` // Sub + "|" + EventID
	Sub       string    `bson:"sub"`
	Seq       int64     `bson:"seq"`
	EventID   string    `bson:"eventId"`
	Type      string    `bson:"type"`
	Body      string    `bson:"body"`
	CreatedAt time.Time `bson:"createdAt"`
	Attempts  int       `bson:"attempts"`
	NextAt    time.Time `bson:"nextAt"`
	LastError string    `bson:"lastError,omitempty"`
}

// DeadLetter is a webhook_dead document: an entry given up on.
type DeadLetter struct {
	Entry  `bson:",inline"`
	DeadAt time.Time `bson:"deadAt"`
	Reason string    `bson:"reason"`
}

func entryID(sub, eventID string) string { return sub + "|" + eventID }

var subIDRe = regexp.MustCompile(`^sub_[a-z2-7]{26}$`)

// ValidSubscriptionID reports whether id has the form NewSubscriptionID makes
// (so a client-supplied id can never be an operator or an unbounded string).
func ValidSubscriptionID(id string) bool { return subIDRe.MatchString(id) }

var evtIDRe = regexp.MustCompile(`^evt_[a-z2-7]{26}$`)

// ValidEventID reports whether id has the form EventID makes.
func ValidEventID(id string) bool { return evtIDRe.MatchString(id) }

// NewSubscriptionID returns a random subscription id.
func NewSubscriptionID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return "sub_" + idEnc.EncodeToString(b)
}

// Store is the webhook state in one MongoDB database, shared by producers (chat,
// notification, presence) and the dispatcher. It uses only _id point operations
// and plain equality filters.
type Store struct {
	subs, outbox, dead, leases, counters *mongo.Collection
}

// NewStore returns the store in db; it does no I/O.
func NewStore(db *mongo.Database) *Store {
	return &Store{subs: db.Collection(CollSubscriptions), outbox: db.Collection(CollOutbox),
		dead: db.Collection(CollDead), leases: db.Collection(CollLeases), counters: db.Collection(CollCounters)}
}

// EnsureIndexes creates the {sub} indexes of the outbox and the dead letters.
func (s *Store) EnsureIndexes(ctx context.Context) error {
	if err := mongox.EnsureIndexes(ctx, s.outbox, mongo.IndexModel{Keys: bson.D{{Key: "sub", Value: 1}}}); err != nil {
		return err
	}
	return mongox.EnsureIndexes(ctx, s.dead, mongo.IndexModel{Keys: bson.D{{Key: "sub", Value: 1}}})
}

// CreateSubscription stores sub.
func (s *Store) CreateSubscription(ctx context.Context, sub Subscription) error {
	if _, err := s.subs.InsertOne(ctx, sub); err != nil {
		return fmt.Errorf("webhook: create subscription: %w", err)
	}
	return nil
}

// Subscriptions returns every subscription (a small collection, read whole).
func (s *Store) Subscriptions(ctx context.Context) ([]Subscription, error) {
	cur, err := s.subs.Find(ctx, bson.D{})
	if err != nil {
		return nil, fmt.Errorf("webhook: list subscriptions: %w", err)
	}
	var out []Subscription
	if err := cur.All(ctx, &out); err != nil {
		return nil, fmt.Errorf("webhook: list subscriptions: %w", err)
	}
	slices.SortFunc(out, func(a, b Subscription) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out, nil
}

// Subscription reads one subscription by id.
func (s *Store) Subscription(ctx context.Context, id string) (*Subscription, error) {
	var sub Subscription
	err := s.subs.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&sub)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("webhook: read subscription %s: %w", id, err)
	}
	return &sub, nil
}

// DeleteSubscription deletes a subscription, its pending entries, dead letters
// and lease.
func (s *Store) DeleteSubscription(ctx context.Context, id string) error {
	res, err := s.subs.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}})
	if err != nil {
		return fmt.Errorf("webhook: delete subscription %s: %w", id, err)
	}
	if res.DeletedCount == 0 {
		return ErrNotFound
	}
	for _, c := range []*mongo.Collection{s.outbox, s.dead} {
		if _, err := c.DeleteMany(ctx, bson.D{{Key: "sub", Value: id}}); err != nil {
			return fmt.Errorf("webhook: delete %s entries of %s: %w", c.Name(), id, err)
		}
	}
	if _, err := s.leases.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}}); err != nil {
		return fmt.Errorf("webhook: delete lease of %s: %w", id, err)
	}
	return nil
}

// SetKeys replaces a subscription's signing keys.
func (s *Store) SetKeys(ctx context.Context, id string, keys []SigningKey) error {
	res, err := s.subs.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, bson.D{{Key: "$set", Value: bson.D{{Key: "keys", Value: keys}}}})
	if err != nil {
		return fmt.Errorf("webhook: set keys of %s: %w", id, err)
	}
	if res.MatchedCount == 0 {
		return ErrNotFound
	}
	return nil
}

// nextSeq allocates an outbox seq: one $inc on one counter document by _id.
func (s *Store) nextSeq(ctx context.Context) (int64, error) {
	var c struct {
		N int64 `bson:"n"`
	}
	err := s.counters.FindOneAndUpdate(ctx, bson.D{{Key: "_id", Value: "outbox"}},
		bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: int64(1)}}}},
		options.FindOneAndUpdate().SetUpsert(true).SetReturnDocument(options.After)).Decode(&c)
	if err != nil {
		return 0, fmt.Errorf("webhook: allocate outbox seq: %w", err)
	}
	return c.N, nil
}

// enqueue writes e unless an entry with its _id exists (idempotent).
func (s *Store) enqueue(ctx context.Context, e Entry) error {
	if _, err := s.outbox.InsertOne(ctx, e); err != nil && !mongox.IsDuplicateKey(err) {
		return fmt.Errorf("webhook: enqueue %s: %w", e.ID, err)
	}
	return nil
}

// Pending returns the subscription's outbox entries in seq order.
func (s *Store) Pending(ctx context.Context, sub string) ([]Entry, error) {
	cur, err := s.outbox.Find(ctx, bson.D{{Key: "sub", Value: sub}})
	if err != nil {
		return nil, fmt.Errorf("webhook: pending of %s: %w", sub, err)
	}
	var out []Entry
	if err := cur.All(ctx, &out); err != nil {
		return nil, fmt.Errorf("webhook: pending of %s: %w", sub, err)
	}
	slices.SortFunc(out, func(a, b Entry) int { return cmpInt(a.Seq, b.Seq) })
	return out, nil
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// delivered deletes a delivered entry.
func (s *Store) delivered(ctx context.Context, id string) error {
	if _, err := s.outbox.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}}); err != nil {
		return fmt.Errorf("webhook: delete delivered %s: %w", id, err)
	}
	return nil
}

// failed records a failed attempt and when to try again.
func (s *Store) failed(ctx context.Context, id string, attempts int, next time.Time, msg string) error {
	_, err := s.outbox.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, bson.D{{Key: "$set", Value: bson.D{
		{Key: "attempts", Value: attempts}, {Key: "nextAt", Value: next}, {Key: "lastError", Value: msg}}}})
	if err != nil {
		return fmt.Errorf("webhook: record failure of %s: %w", id, err)
	}
	return nil
}

// bury moves an entry to the dead letters: insert first (idempotent by _id), then
// delete, so a crash in between leaves a copy in both, never in neither; the
// dispatcher buries the leftover outbox copy again on its next attempt.
func (s *Store) bury(ctx context.Context, e Entry, at time.Time, reason string) error {
	d := DeadLetter{Entry: e, DeadAt: at, Reason: reason}
	if _, err := s.dead.InsertOne(ctx, d); err != nil && !mongox.IsDuplicateKey(err) {
		return fmt.Errorf("webhook: dead-letter %s: %w", e.ID, err)
	}
	return s.delivered(ctx, e.ID)
}

// DeadLetters returns a subscription's dead letters, oldest first, at most limit.
func (s *Store) DeadLetters(ctx context.Context, sub string, limit int) ([]DeadLetter, error) {
	cur, err := s.dead.Find(ctx, bson.D{{Key: "sub", Value: sub}})
	if err != nil {
		return nil, fmt.Errorf("webhook: dead letters of %s: %w", sub, err)
	}
	var out []DeadLetter
	if err := cur.All(ctx, &out); err != nil {
		return nil, fmt.Errorf("webhook: dead letters of %s: %w", sub, err)
	}
	slices.SortFunc(out, func(a, b DeadLetter) int { return cmpInt(a.Seq, b.Seq) })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// Replay moves dead letters of sub back to the outbox with fresh seqs (so they
// are delivered after what is pending now), attempts reset, webhook-id unchanged.
// eventIDs empty replays all of them. It returns how many were queued.
func (s *Store) Replay(ctx context.Context, sub string, eventIDs []string, now time.Time) (int, error) {
	dead, err := s.DeadLetters(ctx, sub, 0)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, d := range dead {
		if len(eventIDs) > 0 && !slices.Contains(eventIDs, d.EventID) {
			continue
		}
		seq, err := s.nextSeq(ctx)
		if err != nil {
			return n, err
		}
		e := d.Entry
		e.Seq, e.Attempts, e.NextAt, e.LastError = seq, 0, now, ""
		if err := s.enqueue(ctx, e); err != nil {
			return n, err
		}
		if _, err := s.dead.DeleteOne(ctx, bson.D{{Key: "_id", Value: d.ID}}); err != nil {
			return n, fmt.Errorf("webhook: replay %s: %w", d.ID, err)
		}
		n++
	}
	return n, nil
}

// lease is a webhook_leases document: who delivers a subscription until when.
type lease struct {
	ID      string    `bson:"_id"`
	Owner   string    `bson:"owner"`
	Until   time.Time `bson:"until"`
	Version int64     `bson:"v"`
}

// claim takes or renews the lease of sub for owner until now+ttl. It succeeds when
// the lease is free, expired or already owner's; the update is a compare-and-swap
// on (_id, v), equality only.
func (s *Store) claim(ctx context.Context, sub, owner string, now time.Time, ttl time.Duration) (bool, error) {
	var l lease
	err := s.leases.FindOne(ctx, bson.D{{Key: "_id", Value: sub}}).Decode(&l)
	if errors.Is(err, mongo.ErrNoDocuments) {
		_, err := s.leases.InsertOne(ctx, lease{ID: sub, Owner: owner, Until: now.Add(ttl), Version: 1})
		if mongox.IsDuplicateKey(err) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("webhook: claim %s: %w", sub, err)
		}
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("webhook: read lease %s: %w", sub, err)
	}
	if l.Owner != owner && now.Before(l.Until) {
		return false, nil
	}
	res, err := s.leases.UpdateOne(ctx, bson.D{{Key: "_id", Value: sub}, {Key: "v", Value: l.Version}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "owner", Value: owner}, {Key: "until", Value: now.Add(ttl)}, {Key: "v", Value: l.Version + 1}}}})
	if err != nil {
		return false, fmt.Errorf("webhook: claim %s: %w", sub, err)
	}
	return res.MatchedCount == 1, nil
}

// release gives the lease of sub up if owner holds it.
func (s *Store) release(ctx context.Context, sub, owner string) {
	_, _ = s.leases.DeleteOne(ctx, bson.D{{Key: "_id", Value: sub}, {Key: "owner", Value: owner}})
}
