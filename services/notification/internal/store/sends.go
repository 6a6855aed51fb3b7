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

// CreateSend inserts the send record. When a record with the same key exists it is
// returned with created == false (and nothing is written): the unique _id makes the
// check-and-insert atomic, so of two racing calls exactly one creates.
func (s *Store) CreateSend(ctx context.Context, send *Send) (existing *Send, created bool, err error) {
	_, err = s.sends.InsertOne(ctx, send)
	if err == nil {
		return send, true, nil
	}
	if !mongox.IsDuplicateKey(err) {
		return nil, false, wrap("insert send", err)
	}
	var got Send
	if err := s.sends.FindOne(ctx, bson.D{{Key: "_id", Value: send.Key}}).Decode(&got); err != nil {
		return nil, false, wrap("load existing send", err)
	}
	return &got, false, nil
}

// CompleteSend marks the send complete (idempotent).
func (s *Store) CompleteSend(ctx context.Context, key string, at time.Time) error {
	_, err := s.sends.UpdateOne(ctx, bson.D{{Key: "_id", Value: key}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "complete", Value: true}, {Key: "completedAt", Value: at}}}})
	return wrap("complete send", err)
}

// SendExists reports whether a send with this id exists.
func (s *Store) SendExists(ctx context.Context, sendID string) (bool, error) {
	err := s.sends.FindOne(ctx, bson.D{{Key: "sendId", Value: sendID}},
		options.FindOne().SetProjection(bson.D{{Key: "_id", Value: 1}})).Err()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return false, nil
	}
	if err != nil {
		return false, wrap("find send", err)
	}
	return true, nil
}

// InsertNotifications writes docs with one unordered InsertMany. Documents whose
// _id already exists (an earlier, interrupted attempt of the same send wrote them)
// are skipped. It returns, in order, the indexes of docs that this call inserted.
func (s *Store) InsertNotifications(ctx context.Context, docs []Notification) ([]int, error) {
	if len(docs) == 0 {
		return nil, nil
	}
	batch := make([]any, len(docs))
	for i := range docs {
		batch[i] = &docs[i]
	}
	_, err := s.notes.InsertMany(ctx, batch, options.InsertMany().SetOrdered(false))
	if err == nil {
		return allIndexes(len(docs)), nil
	}
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || bwe.WriteConcernError != nil || len(bwe.WriteErrors) == 0 {
		return nil, wrap("insert notifications", err)
	}
	skipped := make(map[int]bool, len(bwe.WriteErrors))
	for _, we := range bwe.WriteErrors {
		if !mongox.IsDuplicateKey(mongo.WriteException{WriteErrors: mongo.WriteErrors{we.WriteError}}) {
			return nil, wrap("insert notifications", fmt.Errorf("document %d: %w", we.Index, err))
		}
		skipped[we.Index] = true
	}
	inserted := make([]int, 0, len(docs)-len(skipped))
	for i := range docs {
		if !skipped[i] {
			inserted = append(inserted, i)
		}
	}
	return inserted, nil
}

func allIndexes(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}
