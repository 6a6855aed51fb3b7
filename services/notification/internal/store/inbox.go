package store

import (
	"context"
	"errors"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// ListQuery selects a page of one user's inbox.
type ListQuery struct {
	UserID     string
	UnreadOnly bool
	// Before is a notification id: only older notifications (by createdAt, then id)
	// are returned. It must be one of the user's notifications.
	Before string
	Limit  int
	Now    time.Time
}

// List returns up to q.Limit of the user's unexpired notifications, newest first
// (createdAt desc, _id desc), and whether more exist.
func (s *Store) List(ctx context.Context, q ListQuery) ([]Notification, bool, error) {
	and := bson.A{bson.D{{Key: "userId", Value: q.UserID}}, notExpired(q.Now)}
	if q.UnreadOnly {
		and = append(and, bson.D{{Key: "readAt", Value: nil}})
	}
	if q.Before != "" {
		var ref Notification
		err := s.notes.FindOne(ctx, bson.D{{Key: "_id", Value: q.Before}, {Key: "userId", Value: q.UserID}},
			options.FindOne().SetProjection(bson.D{{Key: "createdAt", Value: 1}})).Decode(&ref)
		if errors.Is(err, mongo.ErrNoDocuments) {
			return nil, false, ErrNotFound
		}
		if err != nil {
			return nil, false, wrap("load page cursor", err)
		}
		and = append(and, bson.D{{Key: "$or", Value: bson.A{
			bson.D{{Key: "createdAt", Value: bson.D{{Key: "$lt", Value: ref.CreatedAt}}}},
			bson.D{{Key: "createdAt", Value: ref.CreatedAt}, {Key: "_id", Value: bson.D{{Key: "$lt", Value: q.Before}}}},
		}}})
	}
	opts := options.Find().
		SetSort(bson.D{{Key: "createdAt", Value: -1}, {Key: "_id", Value: -1}}).
		SetLimit(int64(q.Limit + 1))
	cur, err := s.notes.Find(ctx, bson.D{{Key: "$and", Value: and}}, opts)
	if err != nil {
		return nil, false, wrap("list notifications", err)
	}
	var out []Notification
	if err := cur.All(ctx, &out); err != nil {
		return nil, false, wrap("read notifications", err)
	}
	more := len(out) > q.Limit
	if more {
		out = out[:q.Limit]
	}
	return out, more, nil
}

// Unread counts the user's unread, unexpired notifications.
func (s *Store) Unread(ctx context.Context, userID string, now time.Time) (int64, error) {
	n, err := s.notes.CountDocuments(ctx, bson.D{{Key: "$and", Value: bson.A{
		bson.D{{Key: "userId", Value: userID}, {Key: "readAt", Value: nil}}, notExpired(now),
	}}})
	return n, wrap("count unread", err)
}

// MarkRead marks the user's notifications among ids read and returns the ids that
// belong to the user and are not expired (read before or now). Unknown ids and ids
// of other users are ignored; the caller decides whether none found is an error.
func (s *Store) MarkRead(ctx context.Context, userID string, ids []string, now time.Time) ([]string, error) {
	filter := bson.D{{Key: "$and", Value: bson.A{
		bson.D{{Key: "userId", Value: userID}, {Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}}, notExpired(now),
	}}}
	cur, err := s.notes.Find(ctx, filter, options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return nil, wrap("find notifications to mark", err)
	}
	var found []struct {
		ID string `bson:"_id"`
	}
	if err := cur.All(ctx, &found); err != nil {
		return nil, wrap("read notifications to mark", err)
	}
	if len(found) == 0 {
		return nil, nil
	}
	// Keep the caller's order.
	mine := make(map[string]bool, len(found))
	for _, f := range found {
		mine[f.ID] = true
	}
	owned := make([]string, 0, len(found))
	for _, id := range ids {
		if mine[id] {
			owned = append(owned, id)
			delete(mine, id)
		}
	}
	_, err = s.notes.UpdateMany(ctx,
		bson.D{{Key: "userId", Value: userID}, {Key: "_id", Value: bson.D{{Key: "$in", Value: owned}}}, {Key: "readAt", Value: nil}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "readAt", Value: now}}}})
	if err != nil {
		return nil, wrap("mark notifications read", err)
	}
	return owned, nil
}

// MarkAllRead marks every unread notification of the user read and returns how
// many changed.
func (s *Store) MarkAllRead(ctx context.Context, userID string, now time.Time) (int64, error) {
	res, err := s.notes.UpdateMany(ctx,
		bson.D{{Key: "userId", Value: userID}, {Key: "readAt", Value: nil}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "readAt", Value: now}}}})
	if err != nil {
		return 0, wrap("mark all read", err)
	}
	return res.ModifiedCount, nil
}

// AckResult is the outcome of Ack.
type AckResult struct {
	AckedAt time.Time
	// MarkedRead is true when the acknowledgement also marked the notification read.
	MarkedRead bool
}

// Ack acknowledges one of the user's requireAck notifications at now and also marks
// it read. Acknowledging again is a no-op that returns the first acknowledgement
// time. ErrNotFound when the notification is not the user's (or expired),
// ErrAckNotRequired when it does not require acknowledgement.
func (s *Store) Ack(ctx context.Context, userID, id string, now time.Time) (AckResult, error) {
	var n Notification
	err := s.notes.FindOne(ctx, bson.D{{Key: "$and", Value: bson.A{
		bson.D{{Key: "_id", Value: id}, {Key: "userId", Value: userID}}, notExpired(now),
	}}}).Decode(&n)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return AckResult{}, ErrNotFound
	}
	if err != nil {
		return AckResult{}, wrap("load notification", err)
	}
	if !n.RequireAck {
		return AckResult{}, ErrAckNotRequired
	}
	var res AckResult
	if n.AckedAt == nil {
		// The ackedAt: null condition makes concurrent acks race-free: one wins,
		// the others read the winner's time below.
		if _, err := s.notes.UpdateOne(ctx,
			bson.D{{Key: "_id", Value: id}, {Key: "userId", Value: userID}, {Key: "ackedAt", Value: nil}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "ackedAt", Value: now}}}}); err != nil {
			return AckResult{}, wrap("acknowledge", err)
		}
		if n.ReadAt == nil {
			ur, err := s.notes.UpdateOne(ctx,
				bson.D{{Key: "_id", Value: id}, {Key: "userId", Value: userID}, {Key: "readAt", Value: nil}},
				bson.D{{Key: "$set", Value: bson.D{{Key: "readAt", Value: now}}}})
			if err != nil {
				return AckResult{}, wrap("mark acknowledged read", err)
			}
			res.MarkedRead = ur.ModifiedCount == 1
		}
		err = s.notes.FindOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "userId", Value: userID}},
			options.FindOne().SetProjection(bson.D{{Key: "ackedAt", Value: 1}})).Decode(&n)
		if err != nil {
			return AckResult{}, wrap("reload acknowledgement", err)
		}
	}
	if n.AckedAt == nil {
		return AckResult{}, ErrNotFound // deleted meanwhile
	}
	res.AckedAt = *n.AckedAt
	return res, nil
}

// AckStatus reports, for one send, how many unexpired notifications exist, how many
// were acknowledged, and the users who have not acknowledged. ErrNotFound when the
// send does not exist.
func (s *Store) AckStatus(ctx context.Context, sendID string, now time.Time) (total, acked int64, pending []string, err error) {
	cur, err := s.notes.Find(ctx, bson.D{{Key: "$and", Value: bson.A{bson.D{{Key: "sendId", Value: sendID}}, notExpired(now)}}},
		options.Find().SetProjection(bson.D{{Key: "userId", Value: 1}, {Key: "ackedAt", Value: 1}}).
			SetSort(bson.D{{Key: "userId", Value: 1}}))
	if err != nil {
		return 0, 0, nil, wrap("ack status", err)
	}
	defer cur.Close(ctx)
	for cur.Next(ctx) {
		var d struct {
			UserID  string     `bson:"userId"`
			AckedAt *time.Time `bson:"ackedAt"`
		}
		if err := cur.Decode(&d); err != nil {
			return 0, 0, nil, wrap("decode ack status", err)
		}
		total++
		if d.AckedAt != nil {
			acked++
		} else {
			pending = append(pending, d.UserID)
		}
	}
	if err := cur.Err(); err != nil {
		return 0, 0, nil, wrap("read ack status", err)
	}
	if total == 0 {
		ok, err := s.SendExists(ctx, sendID)
		if err != nil {
			return 0, 0, nil, err
		}
		if !ok {
			return 0, 0, nil, ErrNotFound
		}
	}
	return total, acked, pending, nil
}

// DeleteExpired removes notifications whose expiresAt is at or before now.
func (s *Store) DeleteExpired(ctx context.Context, now time.Time) (int64, error) {
	res, err := s.notes.DeleteMany(ctx, bson.D{{Key: "expiresAt", Value: bson.D{{Key: "$lte", Value: now}}}})
	if err != nil {
		return 0, wrap("delete expired", err)
	}
	return res.DeletedCount, nil
}
