package push

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/talim/realtime/pkg/mongox"
)

// Collection names.
const (
	SubscriptionsCollection = "push_subscriptions"
	EndpointsCollection     = "push_endpoints"
	JobsCollection          = "push_jobs"
	ClaimsCollection        = "push_claims"
)

// MaxSubscriptionsPerUser bounds a user's browsers; registering one more drops the
// oldest.
const MaxSubscriptionsPerUser = 10

// ErrConflict means a concurrent writer changed the document; the caller retries.
var ErrConflict = errors.New("concurrent update")

// Sub is one stored browser subscription (keys base64url as the browser gave them).
type Sub struct {
	ID        string    `bson:"id"`
	Endpoint  string    `bson:"endpoint"`
	P256dh    string    `bson:"p256dh"`
	Auth      string    `bson:"auth"`
	CreatedAt time.Time `bson:"createdAt"`
}

type userSubs struct {
	UserID  string `bson:"_id"`
	Version int64  `bson:"version"`
	Subs    []Sub  `bson:"subs"`
}

type endpointOwner struct {
	ID     string `bson:"_id"`
	UserID string `bson:"userId"`
}

// Store persists subscriptions and jobs. It is safe for concurrent use.
type Store struct {
	subs, endpoints, jobs, claims *mongo.Collection
}

// NewStore returns a store on db.
func NewStore(db *mongo.Database) *Store {
	return &Store{subs: db.Collection(SubscriptionsCollection), endpoints: db.Collection(EndpointsCollection), jobs: db.Collection(JobsCollection),
		claims: db.Collection(ClaimsCollection)}
}

// EnsureIndexes creates the index the worker's {pending: true} query uses.
func (s *Store) EnsureIndexes(ctx context.Context) error {
	err := mongox.EnsureIndexes(ctx, s.jobs, mongo.IndexModel{Keys: bson.D{{Key: "pending", Value: 1}}})
	if err != nil {
		return fmt.Errorf("push indexes: %w", err)
	}
	return nil
}

// SubID is the id of a subscription: a hash of its endpoint.
func SubID(endpoint string) string { return hashID("ps_", endpoint) }

func hashID(prefix string, parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return prefix + hex.EncodeToString(h.Sum(nil)[:16])
}

func idFilter(id string) bson.D { return bson.D{{Key: "_id", Value: id}} }

// Subscriptions returns userID's subscriptions (an _id point read).
func (s *Store) Subscriptions(ctx context.Context, userID string) ([]Sub, error) {
	u, err := s.loadUser(ctx, userID)
	if err != nil {
		return nil, err
	}
	return u.Subs, nil
}

func (s *Store) loadUser(ctx context.Context, userID string) (*userSubs, error) {
	var u userSubs
	err := s.subs.FindOne(ctx, idFilter(userID)).Decode(&u)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return &userSubs{UserID: userID}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load push subscriptions: %w", err)
	}
	return &u, nil
}

// saveUser writes u if nobody changed it since it was read at u.Version.
func (s *Store) saveUser(ctx context.Context, u *userSubs) error {
	if u.Version == 0 {
		u.Version = 1
		if _, err := s.subs.InsertOne(ctx, u); err != nil {
			if mongox.IsDuplicateKey(err) {
				return ErrConflict
			}
			return fmt.Errorf("insert push subscriptions: %w", err)
		}
		return nil
	}
	res, err := s.subs.UpdateOne(ctx, bson.D{{Key: "_id", Value: u.UserID}, {Key: "version", Value: u.Version}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "subs", Value: u.Subs}, {Key: "version", Value: u.Version + 1}}}})
	if err != nil {
		return fmt.Errorf("update push subscriptions: %w", err)
	}
	if res.MatchedCount == 0 {
		return ErrConflict
	}
	u.Version++
	return nil
}

// updateUser applies f to userID's list, retrying on conflicts a bounded number
// of times.
func (s *Store) updateUser(ctx context.Context, userID string, f func(*userSubs) bool) error {
	for range 8 {
		u, err := s.loadUser(ctx, userID)
		if err != nil {
			return err
		}
		if !f(u) {
			return nil
		}
		if err := s.saveUser(ctx, u); !errors.Is(err, ErrConflict) {
			return err
		}
	}
	return fmt.Errorf("update push subscriptions of %s: %w", userID, ErrConflict)
}

// AddSubscription stores sub for userID (replacing the same endpoint's keys) and
// takes the endpoint away from any other user who registered it before.
func (s *Store) AddSubscription(ctx context.Context, userID string, sub Sub) error {
	sub.ID = SubID(sub.Endpoint)
	var prev endpointOwner
	err := s.endpoints.FindOne(ctx, idFilter(sub.ID)).Decode(&prev)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
	case err != nil:
		return fmt.Errorf("load endpoint owner: %w", err)
	case prev.UserID != userID:
		if err := s.RemoveSubscription(ctx, prev.UserID, sub.ID); err != nil {
			return err
		}
	}
	if _, err := s.endpoints.ReplaceOne(ctx, idFilter(sub.ID), endpointOwner{ID: sub.ID, UserID: userID},
		mongoUpsert()); err != nil {
		return fmt.Errorf("store endpoint owner: %w", err)
	}
	return s.updateUser(ctx, userID, func(u *userSubs) bool {
		kept := u.Subs[:0]
		for _, x := range u.Subs {
			if x.ID != sub.ID {
				kept = append(kept, x)
			}
		}
		kept = append(kept, sub)
		if len(kept) > MaxSubscriptionsPerUser { // oldest first: drop from the front
			kept = kept[len(kept)-MaxSubscriptionsPerUser:]
		}
		u.Subs = kept
		return true
	})
}

// RemoveSubscription deletes userID's subscription subID; it reports nothing when
// there is none.
func (s *Store) RemoveSubscription(ctx context.Context, userID, subID string) error {
	err := s.updateUser(ctx, userID, func(u *userSubs) bool {
		for i, x := range u.Subs {
			if x.ID == subID {
				u.Subs = append(u.Subs[:i], u.Subs[i+1:]...)
				return true
			}
		}
		return false
	})
	if err != nil {
		return err
	}
	if _, err := s.endpoints.DeleteOne(ctx, bson.D{{Key: "_id", Value: subID}, {Key: "userId", Value: userID}}); err != nil {
		return fmt.Errorf("delete endpoint owner: %w", err)
	}
	return nil
}
