// Package store persists notifications in MongoDB (or FerretDB v1): one document per
// recipient in `notifications`, one document per idempotency key in `sends`.
//
// Only operations both MongoDB and FerretDB v1.24 (SQLite and PostgreSQL backends)
// support are used: single-document writes, unordered InsertMany, UpdateMany with
// $set, DeleteMany, find with $and/$or/$in/$lt/$gt and compound sorts, and counts.
// Absent values are stored as explicit nulls (readAt, ackedAt, expiresAt), and the
// caller's data map is stored as an array of {k, v} pairs so that keys with dots or
// a leading '$' cannot collide with the query language.
package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/talim/realtime/pkg/mongox"
)

// Collection names.
const (
	NotificationsCollection = "notifications"
	SendsCollection         = "sends"
)

// Sentinel errors.
var (
	// ErrUnavailable wraps failures to reach the store: nothing was changed by the
	// failing operation, and retrying later is safe.
	ErrUnavailable = errors.New("store unavailable")
	// ErrNotFound means the notification or send does not exist (for this user).
	ErrNotFound = errors.New("not found")
	// ErrAckNotRequired means ack was asked for a notification without requireAck.
	ErrAckNotRequired = errors.New("notification does not require acknowledgement")
)

// Pair is one entry of a notification's data map.
type Pair struct {
	K string `bson:"k"`
	V string `bson:"v"`
}

// Content is what every notification of one send shares.
type Content struct {
	Category   string     `bson:"category"`
	Title      string     `bson:"title"`
	Body       string     `bson:"body"`
	Data       []Pair     `bson:"data"`
	Priority   string     `bson:"priority"` // low, normal, high
	RequireAck bool       `bson:"requireAck"`
	ExpiresAt  *time.Time `bson:"expiresAt"`
	// Urgent notifications skip quiet hours (services/notification/internal/reach).
	Urgent bool `bson:"urgent,omitempty"`
}

// Notification is one recipient's document.
type Notification struct {
	ID         string     `bson:"_id"`
	UserID     string     `bson:"userId"`
	SendID     string     `bson:"sendId"`
	Category   string     `bson:"category"`
	Title      string     `bson:"title"`
	Body       string     `bson:"body"`
	Data       []Pair     `bson:"data"`
	Priority   string     `bson:"priority"`
	RequireAck bool       `bson:"requireAck"`
	CreatedAt  time.Time  `bson:"createdAt"`
	ReadAt     *time.Time `bson:"readAt"`
	AckedAt    *time.Time `bson:"ackedAt"`
	ExpiresAt  *time.Time `bson:"expiresAt"`
	Urgent     bool       `bson:"urgent,omitempty"`
}

// Send is the record of one Send call, keyed by its idempotency key. It holds the
// whole request so that any caller can finish a send whose first writer crashed.
type Send struct {
	Key        string    `bson:"_id"`
	SendID     string    `bson:"sendId"`
	Recipients []string  `bson:"recipients"`
	Content    Content   `bson:"content"`
	CreatedAt  time.Time `bson:"createdAt"`
	// Complete is set once every recipient's notification is stored.
	Complete bool `bson:"complete"`
}

// Store is the notification store. It is safe for concurrent use.
type Store struct {
	notes *mongo.Collection
	sends *mongo.Collection
}

// New returns a store on db.
func New(db *mongo.Database) *Store {
	return &Store{notes: db.Collection(NotificationsCollection), sends: db.Collection(SendsCollection)}
}

// EnsureIndexes creates the inbox indexes (idempotent). It also tries a TTL index on
// expiresAt; when the server refuses it (FerretDB v1 builds it but never expires
// documents, some versions refuse the option) ttlErr reports why, and the caller
// relies on its cleanup loop (DeleteExpired) alone.
func (s *Store) EnsureIndexes(ctx context.Context) (ttlErr, err error) {
	indexes := []struct {
		coll  *mongo.Collection
		model mongo.IndexModel
	}{
		{s.notes, mongo.IndexModel{Keys: bson.D{{Key: "userId", Value: 1}, {Key: "createdAt", Value: -1}, {Key: "_id", Value: -1}},
			Options: options.Index().SetName("user_created")}},
		{s.notes, mongo.IndexModel{Keys: bson.D{{Key: "userId", Value: 1}, {Key: "readAt", Value: 1}},
			Options: options.Index().SetName("user_read")}},
		{s.notes, mongo.IndexModel{Keys: bson.D{{Key: "sendId", Value: 1}}, Options: options.Index().SetName("send")}},
		// sends is keyed by _id (the idempotency key); sendId is looked up by AckStatus.
		{s.sends, mongo.IndexModel{Keys: bson.D{{Key: "sendId", Value: 1}}, Options: options.Index().SetName("send_id")}},
	}
	// One index per createIndexes command: FerretDB v1.24 (SQLite) drops the
	// connection when one command re-creates several indexes that all exist.
	for _, ix := range indexes {
		if err := mongox.EnsureIndexes(ctx, ix.coll, ix.model); err != nil {
			return nil, wrap("ensure indexes", err)
		}
	}
	ttlErr = mongox.EnsureIndexes(ctx, s.notes, mongo.IndexModel{
		Keys:    bson.D{{Key: "expiresAt", Value: 1}},
		Options: options.Index().SetName("expires_ttl").SetExpireAfterSeconds(0),
	})
	return ttlErr, nil
}

// wrap adds context and marks unreachable-store errors with ErrUnavailable.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if mongox.IsUnavailable(err) {
		return fmt.Errorf("%s: %w: %w", op, ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// notExpired matches documents without expiry or expiring after now.
func notExpired(now time.Time) bson.D {
	return bson.D{{Key: "$or", Value: bson.A{
		bson.D{{Key: "expiresAt", Value: nil}},
		bson.D{{Key: "expiresAt", Value: bson.D{{Key: "$gt", Value: now}}}},
	}}}
}
