package reach

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/talim/realtime/pkg/mongox"
)

// Collection names.
const (
	UsersCollection   = "reach_users"
	SchoolsCollection = "reach_schools"
)

// ErrUnavailable wraps failures to reach the store; nothing was changed and a retry
// later is safe.
var ErrUnavailable = errors.New("reach store unavailable")

// User is one user's document: what they chose and what the school set.
type User struct {
	ID      string  `bson:"_id"`
	Prefs   Prefs   `bson:"prefs"`
	Contact Contact `bson:"contact"`
}

// Store persists users and schools. It is safe for concurrent use.
type Store struct {
	users   *mongo.Collection
	schools *mongo.Collection
}

// NewStore returns a store on db.
func NewStore(db *mongo.Database) *Store {
	return &Store{users: db.Collection(UsersCollection), schools: db.Collection(SchoolsCollection)}
}

func wrap(op string, err error) error {
	if mongox.IsUnavailable(err) {
		return fmt.Errorf("%s: %w: %w", op, ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// User returns id's document; a user nobody configured gets an empty one. id must be
// valid (ValidID): it is only ever used as an equality value.
func (s *Store) User(ctx context.Context, id string) (*User, error) {
	u := &User{ID: id}
	err := s.users.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(u)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return &User{ID: id}, nil
	}
	if err != nil {
		return nil, wrap("read user "+id, err)
	}
	return u, nil
}

// SetPrefs replaces the user's preferences (not the contact).
func (s *Store) SetPrefs(ctx context.Context, id string, p Prefs) error {
	if p.Settings == nil {
		p.Settings = []Setting{}
	}
	_, err := s.users.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "prefs", Value: p}}}}, options.UpdateOne().SetUpsert(true))
	if err != nil {
		return wrap("set preferences of "+id, err)
	}
	return nil
}

// SetContact replaces the user's contact entry (not the preferences).
func (s *Store) SetContact(ctx context.Context, id string, c Contact) error {
	_, err := s.users.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "contact", Value: c}}}}, options.UpdateOne().SetUpsert(true))
	if err != nil {
		return wrap("set contact of "+id, err)
	}
	return nil
}

// School returns the school's settings; a school never set gets defaults (UTC).
func (s *Store) School(ctx context.Context, id string) (*School, error) {
	if id == "" {
		id = DefaultSchoolID
	}
	sc := &School{}
	err := s.schools.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(sc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return &School{ID: id, TimeZone: "UTC"}, nil
	}
	if err != nil {
		return nil, wrap("read school "+id, err)
	}
	return sc, nil
}

// SetSchool replaces a school's settings.
func (s *Store) SetSchool(ctx context.Context, sc *School) error {
	for _, f := range []*[]Setting{&sc.Defaults} {
		if *f == nil {
			*f = []Setting{}
		}
	}
	if sc.Terms == nil {
		sc.Terms = []Term{}
	}
	if sc.Holidays == nil {
		sc.Holidays = []Holiday{}
	}
	_, err := s.schools.ReplaceOne(ctx, bson.D{{Key: "_id", Value: sc.ID}}, sc, options.Replace().SetUpsert(true))
	if err != nil {
		return wrap("set school "+sc.ID, err)
	}
	return nil
}

// SetDigest switches the user's email digest on or off (the one-click unsubscribe
// link of docs/notifications-admin.md) without touching other preferences.
func (s *Store) SetDigest(ctx context.Context, id string, on bool) error {
	_, err := s.users.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "prefs.digest", Value: on}}}}, options.UpdateOne().SetUpsert(true))
	if err != nil {
		return wrap("set digest of "+id, err)
	}
	return nil
}
