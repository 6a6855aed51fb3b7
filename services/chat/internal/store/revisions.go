package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Revisions keep the earlier versions of edited and deleted messages for
// oversight (docs/safeguarding.md, "Oversight"): before an edit or a delete
// overwrites a message, its current version is copied to the collection
// "revisions" with _id = RevisionID(messageId, rev), where rev counts the
// message's earlier versions (the message's "rev" field, 0 for a message never
// changed). The copy is written first and the change is conditional on rev
// still being the one copied, so every version that was ever visible is kept,
// whatever the races; a failed change leaves a copy of the live version, which
// the next attempt overwrites. Revisions are read only by point reads
// (RevisionID(id, 0..rev-1)) and only through oversight and exports.

// RevisionsCollection is the collection of earlier message versions.
const RevisionsCollection = "revisions"

// Revision is one earlier version of a message.
type Revision struct {
	ID         string     `bson:"_id" json:"-"`
	MessageID  string     `bson:"messageId" json:"messageId"`
	RoomID     string     `bson:"roomId" json:"roomId"`
	Seq        int64      `bson:"seq" json:"seq"`
	Rev        int64      `bson:"rev" json:"version"`
	SenderID   string     `bson:"senderId" json:"senderId"`
	SenderName string     `bson:"senderName" json:"senderName"`
	Content    string     `bson:"content" json:"content"`
	CreatedAt  time.Time  `bson:"createdAt" json:"createdAt"`
	EditedAt   *time.Time `bson:"editedAt" json:"editedAt"`
	// Change is what replaced this version: "edit" or "delete".
	Change     string    `bson:"change" json:"change"`
	ReplacedAt time.Time `bson:"replacedAt" json:"replacedAt"`
	// ReplacedBy is who edited or deleted it.
	ReplacedBy string `bson:"replacedBy" json:"replacedBy"`
}

// RevisionID is the _id of version rev of message id. Message ids never contain '#'.
func RevisionID(messageID string, rev int64) string {
	return messageID + "#" + strconv.FormatInt(rev, 10)
}

// Kept is a message with the fields only oversight and records read.
type Kept struct {
	Message `bson:",inline"`
	// Rev is how many earlier versions the message has.
	Rev int64 `bson:"rev"`
	// Redacted says why the content was removed: "retention" or "erasure".
	Redacted string `bson:"redacted,omitempty"`
}

// maxChangeAttempts bounds the retries of an edit or delete racing another change.
const maxChangeAttempts = 8

// EditKeeping is EditMessage that first keeps the current version as a revision.
// ErrNotFound when no live message of senderID matches.
func (s *Store) EditKeeping(ctx context.Context, roomID, id, senderID, content string, at time.Time) (*Message, error) {
	defer s.observe("edit_message", time.Now())
	return s.changeKeeping(ctx, roomID, id, senderID, "edit", at,
		bson.D{{Key: "senderId", Value: senderID}, {Key: "deleted", Value: false}},
		bson.D{{Key: "content", Value: content}, {Key: "editedAt", Value: at}})
}

// DeleteKeeping is DeleteMessage that first keeps the current version as a
// revision; by is who deletes it.
func (s *Store) DeleteKeeping(ctx context.Context, roomID, id, by string, at time.Time) (*Message, error) {
	defer s.observe("delete_message", time.Now())
	return s.changeKeeping(ctx, roomID, id, by, "delete", at, nil,
		bson.D{{Key: "content", Value: ""}, {Key: "deleted", Value: true}})
}

func (s *Store) changeKeeping(ctx context.Context, roomID, id, by, change string, at time.Time, cond, set bson.D) (*Message, error) {
	revisions := s.messages.Database().Collection(RevisionsCollection)
	for range maxChangeAttempts {
		var cur Kept
		filter := append(bson.D{{Key: "_id", Value: id}, {Key: "roomId", Value: roomID}}, cond...)
		if err := s.messages.FindOne(ctx, filter).Decode(&cur); err != nil {
			return nil, wrap(change+" message "+id, err)
		}
		rev := Revision{ID: RevisionID(id, cur.Rev), MessageID: id, RoomID: roomID, Seq: cur.Seq, Rev: cur.Rev,
			SenderID: cur.SenderID, SenderName: cur.SenderName, Content: cur.Content, CreatedAt: cur.CreatedAt,
			EditedAt: cur.EditedAt, Change: change, ReplacedAt: at, ReplacedBy: by}
		if _, err := revisions.ReplaceOne(ctx, bson.D{{Key: "_id", Value: rev.ID}}, rev, options.Replace().SetUpsert(true)); err != nil {
			return nil, wrap("keep revision of "+id, err)
		}
		// Conditional on the version just kept still being the live one.
		revCond := bson.E{Key: "rev", Value: cur.Rev}
		if cur.Rev == 0 {
			revCond = bson.E{Key: "rev", Value: bson.D{{Key: "$exists", Value: false}}}
		}
		var m Message
		err := s.messages.FindOneAndUpdate(ctx, append(filter, revCond),
			bson.D{{Key: "$set", Value: append(set, bson.E{Key: "rev", Value: cur.Rev + 1})}},
			options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&m)
		if err == nil {
			return &m, nil
		}
		if !errors.Is(err, mongo.ErrNoDocuments) {
			return nil, wrap(change+" message "+id, err)
		}
		// Changed meanwhile: keep the new version and try again.
	}
	return nil, fmt.Errorf("%s message %s: %w: changed concurrently %d times", change, id, ErrUnavailable, maxChangeAttempts)
}

// Revisions returns the kept earlier versions of m (oldest first), by point reads.
func (s *Store) Revisions(ctx context.Context, messageID string, rev int64) ([]Revision, error) {
	revisions := s.messages.Database().Collection(RevisionsCollection)
	out := make([]Revision, 0, rev)
	for r := range rev {
		var v Revision
		err := revisions.FindOne(ctx, bson.D{{Key: "_id", Value: RevisionID(messageID, r)}}).Decode(&v)
		if errors.Is(err, mongo.ErrNoDocuments) {
			continue // removed by retention or erasure
		}
		if err != nil {
			return nil, wrap("read revisions of "+messageID, err)
		}
		out = append(out, v)
	}
	return out, nil
}

// deleteRevisions removes the earlier versions of a message (point deletes).
func (s *Store) deleteRevisions(ctx context.Context, messageID string, rev int64) (int64, error) {
	revisions := s.messages.Database().Collection(RevisionsCollection)
	var n int64
	for r := range rev {
		res, err := revisions.DeleteOne(ctx, bson.D{{Key: "_id", Value: RevisionID(messageID, r)}})
		if err != nil {
			return n, wrap("delete revisions of "+messageID, err)
		}
		n += res.DeletedCount
	}
	return n, nil
}

// KeptHistory is History for oversight: the same page, with each message's
// revision count and redaction.
func (s *Store) KeptHistory(ctx context.Context, roomID string, before int64, limit int) ([]Kept, bool, error) {
	defer s.observe("kept_history", time.Now())
	filter := bson.D{{Key: "roomId", Value: roomID}}
	if before > 0 {
		filter = append(filter, bson.E{Key: "seq", Value: bson.D{{Key: "$lt", Value: before}}})
	}
	cur, err := s.messages.Find(ctx, filter, options.Find().SetSort(bson.D{{Key: "seq", Value: -1}}).SetLimit(int64(limit+1)))
	if err != nil {
		return nil, false, wrap("kept history of "+roomID, err)
	}
	msgs := make([]Kept, 0, limit+1)
	if err := cur.All(ctx, &msgs); err != nil {
		return nil, false, wrap("read kept history of "+roomID, err)
	}
	more := len(msgs) > limit
	if more {
		msgs = msgs[:limit]
	}
	for i, j := 0, len(msgs)-1; i < j; i, j = i+1, j-1 {
		msgs[i], msgs[j] = msgs[j], msgs[i]
	}
	return msgs, more, nil
}
