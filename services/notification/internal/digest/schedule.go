package digest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/talim/realtime/pkg/mongox"
)

// Collections: one Entry per enrolled user, and one claim per (user, version).
const (
	ScheduleCollection = "digest_schedule"
	ClaimsCollection   = "digest_claims"
)

// ErrLostLease means another instance took the entry over; the caller stops.
var ErrLostLease = errors.New("digest lease lost")

// Entry is a user's schedule document.
type Entry struct {
	UserID     string    `bson:"_id"`
	Slot       int64     `bson:"slot"`
	Due        time.Time `bson:"due"`
	Ver        int64     `bson:"ver"`
	LeaseOwner string    `bson:"leaseOwner"`
	LeaseUntil time.Time `bson:"leaseUntil"`
	// Since is the cut-off of the last digest: later items are new.
	Since time.Time `bson:"since"`
	// Pending is the id of a digest whose SMTP transaction may have started.
	Pending    string     `bson:"pending"`
	PendingCut time.Time  `bson:"pendingCut"`
	LastSentAt *time.Time `bson:"lastSentAt"`
}

// slotOf is the hour bucket of t.
func slotOf(t time.Time) int64 { return t.Unix() / 3600 }

// Schedule is the schedule store.
type Schedule struct {
	c      *mongo.Collection
	claims *mongo.Collection
}

// NewSchedule returns the schedule on db.
func NewSchedule(db *mongo.Database) *Schedule {
	return &Schedule{c: db.Collection(ScheduleCollection), claims: db.Collection(ClaimsCollection)}
}

// claim is the proof that one owner took one version of an entry.
type claim struct {
	ID    string    `bson:"_id"` // user id + "#" + version
	Owner string    `bson:"owner"`
	At    time.Time `bson:"at"`
}

// EnsureIndexes creates the slot index (idempotent).
func (s *Schedule) EnsureIndexes(ctx context.Context) error {
	err := mongox.EnsureIndexes(ctx, s.c, mongo.IndexModel{Keys: bson.D{{Key: "slot", Value: 1}}, Options: options.Index().SetName("slot")})
	if err != nil {
		return fmt.Errorf("digest schedule indexes: %w", err)
	}
	return nil
}

// Enrol adds userID with the given first due time unless already enrolled.
func (s *Schedule) Enrol(ctx context.Context, userID string, due, since time.Time) error {
	_, err := s.c.InsertOne(ctx, Entry{UserID: userID, Slot: slotOf(due), Due: due, Since: since})
	if err != nil && !mongox.IsDuplicateKey(err) {
		return fmt.Errorf("enrol %s: %w", userID, err)
	}
	return nil
}

// Get returns userID's entry (tests and tools).
func (s *Schedule) Get(ctx context.Context, userID string) (*Entry, error) {
	var e Entry
	if err := s.c.FindOne(ctx, bson.D{{Key: "_id", Value: userID}}).Decode(&e); err != nil {
		return nil, fmt.Errorf("get %s: %w", userID, err)
	}
	return &e, nil
}

// InSlot returns the entries of one hour bucket (an equality read).
func (s *Schedule) InSlot(ctx context.Context, slot int64, limit int) ([]Entry, error) {
	cur, err := s.c.Find(ctx, bson.D{{Key: "slot", Value: slot}}, options.Find().SetLimit(int64(limit)))
	if err != nil {
		return nil, fmt.Errorf("slot %d: %w", slot, err)
	}
	var out []Entry
	if err := cur.All(ctx, &out); err != nil {
		return nil, fmt.Errorf("slot %d: %w", slot, err)
	}
	return out, nil
}

// cas applies set to the entry if its version is still ver and bumps the version;
// it returns the new version, or ErrLostLease.
func (s *Schedule) cas(ctx context.Context, userID string, ver int64, set bson.D) (int64, error) {
	set = append(set, bson.E{Key: "ver", Value: ver + 1})
	res, err := s.c.UpdateOne(ctx, bson.D{{Key: "_id", Value: userID}, {Key: "ver", Value: ver}}, bson.D{{Key: "$set", Value: set}})
	if err != nil {
		return 0, fmt.Errorf("update schedule of %s: %w", userID, err)
	}
	if res.MatchedCount != 1 {
		return 0, ErrLostLease
	}
	return ver + 1, nil
}

// Claim takes e for owner until now+lease when it is due and not leased by
// another live owner. It returns the new version, or ErrLostLease when another
// instance was faster.
//
// The race between instances is decided by inserting a claim document whose _id
// is the user and the version read: the unique _id lets exactly one insert win on
// MongoDB and on FerretDB alike. (A conditional update on {_id, ver} alone is not
// enough: FerretDB v1 evaluates the filter and writes in separate steps, and two
// concurrent updates both matched in TestDigest_InstancesSendEachDigestOnce.)
// Only the winner then writes the entry, so its later compare-and-set updates
// have no concurrent writer.
func (s *Schedule) Claim(ctx context.Context, e *Entry, owner string, now time.Time, lease time.Duration) (int64, error) {
	if e.Due.After(now) || (e.LeaseOwner != "" && e.LeaseUntil.After(now)) {
		return 0, ErrLostLease
	}
	_, err := s.claims.InsertOne(ctx, claim{ID: e.UserID + "#" + strconv.FormatInt(e.Ver, 10), Owner: owner, At: now})
	if mongox.IsDuplicateKey(err) {
		return 0, ErrLostLease
	}
	if err != nil {
		return 0, fmt.Errorf("claim %s: %w", e.UserID, err)
	}
	return s.cas(ctx, e.UserID, e.Ver, bson.D{{Key: "leaseOwner", Value: owner}, {Key: "leaseUntil", Value: now.Add(lease)}})
}

// MarkPending records that digest id (cut-off cut) is about to be sent.
func (s *Schedule) MarkPending(ctx context.Context, userID string, ver int64, id string, cut time.Time) (int64, error) {
	return s.cas(ctx, userID, ver, bson.D{{Key: "pending", Value: id}, {Key: "pendingCut", Value: cut}})
}

// Done releases the lease and sets the next due time; sent records a digest with
// cut-off since. With sent false since is left unchanged (since.IsZero()).
func (s *Schedule) Done(ctx context.Context, userID string, ver int64, next time.Time, since time.Time, sentAt *time.Time) error {
	set := bson.D{{Key: "due", Value: next}, {Key: "slot", Value: slotOf(next)}, {Key: "leaseOwner", Value: ""},
		{Key: "leaseUntil", Value: time.Time{}}, {Key: "pending", Value: ""}}
	if !since.IsZero() {
		set = append(set, bson.E{Key: "since", Value: since})
	}
	if sentAt != nil {
		set = append(set, bson.E{Key: "lastSentAt", Value: *sentAt})
	}
	_, err := s.cas(ctx, userID, ver, set)
	return err
}
