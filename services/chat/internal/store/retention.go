package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Records collections (docs/safeguarding.md, "Retention, legal hold, export,
// erasure"):
//
//	retention        _id = room type; days, setBy, setAt
//	retention_state  _id = roomId; through (the seq up to which retention has
//	                 looked: every message at or below it is removed or held)
//	legal_holds      _id = "room:<id>" or "user:<id>"; scope, id, reason, placedBy, placedAt
//
// Costs on FerretDB v1, which pushes down only _id equality: holds, retention
// rules and states are point reads. A retention pass lists the rooms of a type
// (a scan of rooms, paged by _id) and reads each room's messages after its
// state's seq in pages (the same query as a history page). Exports and erasure
// find the rooms a user posted in by senderId alone (a scan on MongoDB and
// FerretDB: no index for it, because an extra index on messages slowed every
// insert measurably on FerretDB — TestChat_TwoInstancesKeepSeqGapFree took 54 s
// instead of 24 s on a loaded machine), then read the user's messages per room
// by {roomId, senderId} (the prefix of the idempotency index on MongoDB). They
// are rare, run in pages and never block live traffic.
const (
	RetentionCollection      = "retention"
	RetentionStateCollection = "retention_state"
	HoldsCollection          = "legal_holds"
)

// Redactions: why a message's content was removed.
const (
	RedactedRetention = "retention"
	RedactedErasure   = "erasure"
)

// Hold scopes.
const (
	HoldRoom = "room"
	HoldUser = "user"
)

// Hold is a legal hold.
type Hold struct {
	ID       string    `bson:"_id"`
	Scope    string    `bson:"scope"`
	Target   string    `bson:"target"`
	Reason   string    `bson:"reason"`
	PlacedBy string    `bson:"placedBy"`
	PlacedAt time.Time `bson:"placedAt"`
}

// HoldID is the _id of the hold on target (a room or user id).
func HoldID(scope, target string) string { return scope + ":" + target }

// Retention is a retention rule of a room type.
type Retention struct {
	RoomType string    `bson:"_id"`
	Days     int       `bson:"days"`
	SetBy    string    `bson:"setBy"`
	SetAt    time.Time `bson:"setAt"`
}

func (s *Store) coll(name string) *mongo.Collection { return s.messages.Database().Collection(name) }

// PlaceHold places h (replacing an existing hold on the same target).
func (s *Store) PlaceHold(ctx context.Context, h Hold) error {
	h.ID = HoldID(h.Scope, h.Target)
	_, err := s.coll(HoldsCollection).ReplaceOne(ctx, bson.D{{Key: "_id", Value: h.ID}}, h, options.Replace().SetUpsert(true))
	return wrap("place hold "+h.ID, err)
}

// ReleaseHold removes the hold; released is false when there was none.
func (s *Store) ReleaseHold(ctx context.Context, scope, target string) (released bool, err error) {
	res, err := s.coll(HoldsCollection).DeleteOne(ctx, bson.D{{Key: "_id", Value: HoldID(scope, target)}})
	if err != nil {
		return false, wrap("release hold", err)
	}
	return res.DeletedCount > 0, nil
}

// Held reports whether target is under a legal hold (a point read).
func (s *Store) Held(ctx context.Context, scope, target string) (*Hold, error) {
	var h Hold
	err := s.coll(HoldsCollection).FindOne(ctx, bson.D{{Key: "_id", Value: HoldID(scope, target)}}).Decode(&h)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, nil
	}
	if err != nil {
		return nil, wrap("read hold", err)
	}
	return &h, nil
}

// Holds lists every hold (few documents).
func (s *Store) Holds(ctx context.Context) ([]Hold, error) {
	cur, err := s.coll(HoldsCollection).Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetLimit(10000))
	if err != nil {
		return nil, wrap("list holds", err)
	}
	var out []Hold
	return out, wrap("list holds", cur.All(ctx, &out))
}

// SetRetention stores r; Days 0 deletes the rule.
func (s *Store) SetRetention(ctx context.Context, r Retention) error {
	c := s.coll(RetentionCollection)
	var err error
	if r.Days == 0 {
		_, err = c.DeleteOne(ctx, bson.D{{Key: "_id", Value: r.RoomType}})
	} else {
		_, err = c.ReplaceOne(ctx, bson.D{{Key: "_id", Value: r.RoomType}}, r, options.Replace().SetUpsert(true))
	}
	return wrap("set retention of "+r.RoomType, err)
}

// RetentionRules lists the rules (one per room type at most).
func (s *Store) RetentionRules(ctx context.Context) ([]Retention, error) {
	cur, err := s.coll(RetentionCollection).Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return nil, wrap("list retention", err)
	}
	var out []Retention
	return out, wrap("list retention", cur.All(ctx, &out))
}

// RoomIDsOfType pages through the ids of rooms of type typ, by _id after after.
func (s *Store) RoomIDsOfType(ctx context.Context, typ, after string, limit int) ([]string, error) {
	filter := bson.D{{Key: "type", Value: typ}}
	if after != "" {
		filter = append(filter, bson.E{Key: "_id", Value: bson.D{{Key: "$gt", Value: after}}})
	}
	cur, err := s.rooms.Find(ctx, filter, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).
		SetLimit(int64(limit)).SetProjection(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return nil, wrap("list rooms of type "+typ, err)
	}
	var docs []struct {
		ID string `bson:"_id"`
	}
	if err := cur.All(ctx, &docs); err != nil {
		return nil, wrap("list rooms of type "+typ, err)
	}
	out := make([]string, len(docs))
	for i, d := range docs {
		out[i] = d.ID
	}
	return out, nil
}

// RetainedThrough returns the seq up to which retention has handled roomID.
func (s *Store) RetainedThrough(ctx context.Context, roomID string) (int64, error) {
	var d struct {
		Through int64 `bson:"through"`
	}
	err := s.coll(RetentionStateCollection).FindOne(ctx, bson.D{{Key: "_id", Value: roomID}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return 0, nil
	}
	return d.Through, wrap("read retention state of "+roomID, err)
}

// SetRetainedThrough moves the room's retention state forward to seq.
func (s *Store) SetRetainedThrough(ctx context.Context, roomID string, seq int64) error {
	_, err := s.coll(RetentionStateCollection).UpdateOne(ctx, bson.D{{Key: "_id", Value: roomID}},
		bson.D{{Key: "$max", Value: bson.D{{Key: "through", Value: seq}}}}, options.UpdateOne().SetUpsert(true))
	return wrap("write retention state of "+roomID, err)
}

// MessagesAfter returns up to limit messages of roomID with seq > after, oldest first.
func (s *Store) MessagesAfter(ctx context.Context, roomID string, after int64, limit int) ([]Kept, error) {
	cur, err := s.messages.Find(ctx,
		bson.D{{Key: "roomId", Value: roomID}, {Key: "seq", Value: bson.D{{Key: "$gt", Value: after}}}},
		options.Find().SetSort(bson.D{{Key: "seq", Value: 1}}).SetLimit(int64(limit)))
	if err != nil {
		return nil, wrap("read messages of "+roomID, err)
	}
	var out []Kept
	return out, wrap("read messages of "+roomID, cur.All(ctx, &out))
}

// SenderMessages returns up to limit messages of senderID in roomID with seq > after (oldest first).
func (s *Store) SenderMessages(ctx context.Context, senderID, roomID string, after int64, limit int) ([]Kept, error) {
	cur, err := s.messages.Find(ctx,
		bson.D{{Key: "senderId", Value: senderID}, {Key: "roomId", Value: roomID}, {Key: "seq", Value: bson.D{{Key: "$gt", Value: after}}}},
		options.Find().SetSort(bson.D{{Key: "seq", Value: 1}}).SetLimit(int64(limit)))
	if err != nil {
		return nil, wrap("read messages of "+senderID, err)
	}
	var out []Kept
	return out, wrap("read messages of "+senderID, cur.All(ctx, &out))
}

// SenderRooms returns the ids of the rooms senderID ever posted in, members or
// not any more: one query per room (the next room id after the last), not
// distinct, which FerretDB v1 refuses with the driver's maxTimeMS.
func (s *Store) SenderRooms(ctx context.Context, senderID string) ([]string, error) {
	var ids []string
	for last := ""; len(ids) < maxSenderRooms; {
		var d struct {
			RoomID string `bson:"roomId"`
		}
		err := s.messages.FindOne(ctx,
			bson.D{{Key: "senderId", Value: senderID}, {Key: "roomId", Value: bson.D{{Key: "$gt", Value: last}}}},
			options.FindOne().SetSort(bson.D{{Key: "roomId", Value: 1}}).SetProjection(bson.D{{Key: "roomId", Value: 1}})).Decode(&d)
		if errors.Is(err, mongo.ErrNoDocuments) {
			return ids, nil
		}
		if err != nil {
			return nil, wrap("rooms of sender "+senderID, err)
		}
		ids = append(ids, d.RoomID)
		last = d.RoomID
	}
	return nil, fmt.Errorf("rooms of sender %s: more than %d", senderID, maxSenderRooms)
}

// maxSenderRooms bounds SenderRooms.
const maxSenderRooms = 100000

// Redact removes a message's content (and, for erasure, the sender's name) and
// its kept versions; the document stays as a tombstone with its seq, so history
// has no gap. Conditional on rev: a message changed meanwhile is left for the
// next pass (redacted false). It returns the tombstone and the revisions removed.
func (s *Store) Redact(ctx context.Context, m Kept, why string) (tomb *Message, revisions int64, err error) {
	set := bson.D{{Key: "content", Value: ""}, {Key: "deleted", Value: true}, {Key: "redacted", Value: why}}
	if why == RedactedErasure {
		set = append(set, bson.E{Key: "senderName", Value: ""})
	}
	revCond := bson.E{Key: "rev", Value: m.Rev}
	if m.Rev == 0 {
		revCond = bson.E{Key: "rev", Value: bson.D{{Key: "$exists", Value: false}}}
	}
	var out Message
	err = s.messages.FindOneAndUpdate(ctx, bson.D{{Key: "_id", Value: m.ID}, revCond},
		bson.D{{Key: "$set", Value: set}}, options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&out)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, wrap("redact message "+m.ID, err)
	}
	n, err := s.deleteRevisions(ctx, m.ID, m.Rev)
	if err != nil {
		return &out, n, err
	}
	if err := s.ReplaceLastMessage(ctx, out); err != nil {
		return &out, n, err
	}
	return &out, n, nil
}

// DeleteMembership removes userID's membership of roomID (for erasure).
func (s *Store) DeleteMembership(ctx context.Context, roomID, userID string) (bool, error) {
	res, err := s.members.DeleteOne(ctx, bson.D{{Key: "_id", Value: MemberID(roomID, userID)}})
	if err != nil {
		return false, wrap("delete membership", err)
	}
	return res.DeletedCount > 0, nil
}

// RoomMembers pages through a room's memberships by user id (for exports).
func (s *Store) RoomMembers(ctx context.Context, roomID, after string, limit int) ([]Member, error) {
	ms, _, err := s.ListMembers(ctx, roomID, after, limit)
	if err != nil {
		return nil, fmt.Errorf("room members: %w", err)
	}
	return ms, nil
}
