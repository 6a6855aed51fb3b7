package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/talim/realtime/pkg/mongox"
)

// ErrNotFound means the document does not exist.
var ErrNotFound = errors.New("not found")

// ErrUnavailable wraps failures to reach the store: nothing was changed and the
// operation may be retried. The handler layers map it to the protocol's
// `unavailable` (command.Options.Unavailable, grpcapi).
var ErrUnavailable = errors.New("store unavailable")

// ErrDuplicate means an insert violated a unique index.
var ErrDuplicate = errors.New("duplicate key")

// Store is the chat persistence layer. Safe for concurrent use.
type Store struct {
	rooms, members, messages *mongo.Collection
	migrations               *mongo.Collection
	latency                  *prometheus.HistogramVec
}

// New returns a store on db; metrics are registered on reg when not nil.
func New(db *mongo.Database, reg prometheus.Registerer) *Store {
	s := &Store{
		rooms: db.Collection("rooms"), members: db.Collection("memberships"), messages: db.Collection("messages"),
		migrations: db.Collection("migrations"),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "talim", Subsystem: "chat", Name: "store_seconds",
			Help:    "Latency of chat store operations, by operation.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"op"}),
	}
	if reg != nil {
		reg.MustRegister(s.latency)
	}
	return s
}

// EnsureIndexes creates the indexes (idempotent).
func (s *Store) EnsureIndexes(ctx context.Context) error {
	if err := mongox.EnsureIndexes(ctx, s.messages,
		mongo.IndexModel{Keys: bson.D{{Key: "roomId", Value: 1}, {Key: "seq", Value: 1}}, Options: options.Index().SetUnique(true).SetName("room_seq")},
		mongo.IndexModel{Keys: bson.D{{Key: "roomId", Value: 1}, {Key: "senderId", Value: 1}, {Key: "clientMsgId", Value: 1}}, Options: options.Index().SetUnique(true).SetName("room_sender_clientmsg")},
		mongo.IndexModel{Keys: bson.D{{Key: "roomId", Value: 1}, {Key: "bucket", Value: 1}}, Options: options.Index().SetName("room_bucket")},
	); err != nil {
		return wrap("ensure indexes", err)
	}
	if err := mongox.EnsureIndexes(ctx, s.members,
		mongo.IndexModel{Keys: bson.D{{Key: "roomId", Value: 1}, {Key: "userId", Value: 1}}, Options: options.Index().SetUnique(true).SetName("room_user")},
		mongo.IndexModel{Keys: bson.D{{Key: "userId", Value: 1}, {Key: "roomId", Value: 1}}, Options: options.Index().SetName("user_room")},
	); err != nil {
		return wrap("ensure indexes", err)
	}
	return nil
}

// wrap adds op to err and marks unreachable-store errors with ErrUnavailable.
func wrap(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, mongo.ErrNoDocuments):
		return fmt.Errorf("%s: %w", op, ErrNotFound)
	case mongox.IsDuplicateKey(err):
		return fmt.Errorf("%s: %w: %w", op, ErrDuplicate, err)
	case mongox.IsUnavailable(err):
		return fmt.Errorf("%s: %w: %w", op, ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

func (s *Store) observe(op string, start time.Time) {
	s.latency.WithLabelValues(op).Observe(time.Since(start).Seconds())
}

// ---- rooms ----

// CreateRoom inserts r; created is false (and r untouched) when the id exists.
func (s *Store) CreateRoom(ctx context.Context, r Room) (created bool, err error) {
	defer s.observe("create_room", time.Now())
	if _, err := s.rooms.InsertOne(ctx, r); err != nil {
		if mongox.IsDuplicateKey(err) {
			return false, nil
		}
		return false, wrap("create room "+r.ID, err)
	}
	return true, nil
}

// Room returns the room id.
func (s *Store) Room(ctx context.Context, id string) (*Room, error) {
	defer s.observe("get_room", time.Now())
	var r Room
	if err := s.rooms.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&r); err != nil {
		return nil, wrap("get room "+id, err)
	}
	return &r, nil
}

// Rooms returns the rooms with the given ids (missing ones are skipped), in the
// order of ids. It reads them by _id, at most roomsReadParallel at once, not
// with one `_id $in` query: FerretDB v1 evaluates $in by scanning and decoding
// the whole collection (about 200 ms a call with a few thousand rooms), while a
// point read by _id is pushed down to its backend; MongoDB serves both well.
func (s *Store) Rooms(ctx context.Context, ids []string) ([]Room, error) {
	defer s.observe("get_rooms", time.Now())
	if len(ids) == 0 {
		return nil, nil
	}
	rooms := make([]*Room, len(ids))
	errs := make([]error, len(ids))
	sem := make(chan struct{}, roomsReadParallel)
	var wg sync.WaitGroup
	for i, id := range ids {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			var r Room
			err := s.rooms.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&r)
			switch {
			case err == nil:
				rooms[i] = &r
			case !errors.Is(err, mongo.ErrNoDocuments):
				errs[i] = wrap("get room "+id, err)
			}
		})
	}
	wg.Wait()
	out := make([]Room, 0, len(ids))
	for i, r := range rooms {
		if errs[i] != nil {
			return nil, fmt.Errorf("get rooms: %w", errs[i])
		}
		if r != nil {
			out = append(out, *r)
		}
	}
	return out, nil
}

// roomsReadParallel bounds the concurrent point reads of one Rooms call.
const roomsReadParallel = 16

// ArchiveRoom marks the room archived and returns it.
func (s *Store) ArchiveRoom(ctx context.Context, id string) (*Room, error) {
	defer s.observe("archive_room", time.Now())
	var r Room
	err := s.rooms.FindOneAndUpdate(ctx, bson.D{{Key: "_id", Value: id}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "archived", Value: true}}}},
		options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&r)
	if err != nil {
		return nil, wrap("archive room "+id, err)
	}
	return &r, nil
}

// AdvanceRoom records last (the highest stored message of a batch) as the room's
// last message, unless the room already records a higher seq: the update is
// conditional on lastSeq < last.Seq, so concurrent writers never move it back.
func (s *Store) AdvanceRoom(ctx context.Context, last Message) error {
	defer s.observe("advance_room", time.Now())
	_, err := s.rooms.UpdateOne(ctx,
		bson.D{{Key: "_id", Value: last.RoomID}, {Key: "lastSeq", Value: bson.D{{Key: "$lt", Value: last.Seq}}}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "lastSeq", Value: last.Seq}, {Key: "lastMessage", Value: last}, {Key: "lastActivityAt", Value: last.CreatedAt}}}})
	return wrap("advance room "+last.RoomID, err)
}

// AdvanceRooms is AdvanceRoom for many rooms in one round trip (one unordered
// bulk of conditional updates): lasts holds the highest stored message of each
// room (one per room).
func (s *Store) AdvanceRooms(ctx context.Context, lasts []Message) error {
	if len(lasts) == 0 {
		return nil
	}
	models := make([]mongo.WriteModel, len(lasts))
	for i, last := range lasts {
		models[i] = mongo.NewUpdateOneModel().
			SetFilter(bson.D{{Key: "_id", Value: last.RoomID}, {Key: "lastSeq", Value: bson.D{{Key: "$lt", Value: last.Seq}}}}).
			SetUpdate(bson.D{{Key: "$set", Value: bson.D{{Key: "lastSeq", Value: last.Seq}, {Key: "lastMessage", Value: last}, {Key: "lastActivityAt", Value: last.CreatedAt}}}})
	}
	return wrap("advance rooms", s.bulkUpdate(ctx, "advance_rooms", s.rooms, models))
}

// MaxBulkUpdates bounds the update statements of one update command.
// FerretDB v1.24 (PostgreSQL) keeps one pooled connection per statement of an
// update command until the command ends and needs one more per statement for
// its transaction; its pool has 50 connections, and when every connection is
// held by statements waiting for another one, FerretDB hangs for good. So the
// chat service sends few statements per command and one such command at a time
// per instance (the summary writer).
const MaxBulkUpdates = 16

// bulkUpdate sends models in commands of at most MaxBulkUpdates statements, one
// after the other; each command is observed as one op.
func (s *Store) bulkUpdate(ctx context.Context, op string, coll *mongo.Collection, models []mongo.WriteModel) error {
	for len(models) > 0 {
		n := min(len(models), MaxBulkUpdates)
		t0 := time.Now()
		_, err := coll.BulkWrite(ctx, models[:n], options.BulkWrite().SetOrdered(false))
		s.observe(op, t0)
		if err != nil {
			return err
		}
		models = models[n:]
	}
	return nil
}

// ReplaceLastMessage updates the room's copy of m when m is its last message
// (after an edit or delete).
func (s *Store) ReplaceLastMessage(ctx context.Context, m Message) error {
	defer s.observe("replace_last_message", time.Now())
	_, err := s.rooms.UpdateOne(ctx,
		bson.D{{Key: "_id", Value: m.RoomID}, {Key: "lastMessage._id", Value: m.ID}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "lastMessage", Value: m}}}})
	return wrap("replace last message of "+m.RoomID, err)
}

// ---- messages ----

// InsertMessages inserts msgs in order and stops at the first failure. It returns
// how many were stored (a prefix of msgs) and, on failure, the error of the
// message at index n: ErrDuplicate for a unique-index violation (either the seq
// or the idempotency key is taken; FerretDB does not name the index), otherwise
// the wrapped store error — then the outcome of msgs[n:] is unknown only if the
// error is a network error.
func (s *Store) InsertMessages(ctx context.Context, msgs []Message) (n int, err error) {
	defer s.observe("insert_messages", time.Now())
	docs := make([]any, len(msgs))
	for i := range msgs {
		docs[i] = messageDoc{Message: msgs[i], Bucket: BucketOf(msgs[i].Seq)}
	}
	res, err := s.messages.InsertMany(ctx, docs, options.InsertMany().SetOrdered(true))
	if err == nil {
		return len(msgs), nil
	}
	var bwe mongo.BulkWriteException
	if errors.As(err, &bwe) && len(bwe.WriteErrors) > 0 && bwe.WriteConcernError == nil {
		n = bwe.WriteErrors[0].Index
		if mongox.IsDuplicateKey(err) {
			return n, fmt.Errorf("insert message seq %d: %w", msgs[n].Seq, ErrDuplicate)
		}
		return n, wrap("insert messages", err)
	}
	if res != nil {
		n = len(res.InsertedIDs)
	}
	return n, wrap("insert messages", err)
}

// Message returns the message id.
func (s *Store) Message(ctx context.Context, id string) (*Message, error) {
	defer s.observe("get_message", time.Now())
	var m Message
	if err := s.messages.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&m); err != nil {
		return nil, wrap("get message "+id, err)
	}
	return &m, nil
}

// MaxSeq returns the highest stored seq of roomID (0 when empty). It reads the
// room's lastSeq (a hint that may lag the messages) and then the message buckets
// from there up (see history.go); only when the buckets cannot tell (messages
// stored before buckets existed and not backfilled yet) does it fall back to a
// sorted query, which FerretDB answers by scanning the room.
func (s *Store) MaxSeq(ctx context.Context, roomID string) (int64, error) {
	defer s.observe("max_seq", time.Now())
	hint, err := s.roomLastSeq(ctx, roomID)
	if err != nil {
		return 0, fmt.Errorf("max seq of %s: %w", roomID, err)
	}
	p := probe{s: s, room: roomID}
	top, ok, err := p.top(ctx, hint)
	if err != nil {
		return 0, fmt.Errorf("max seq of %s: %w", roomID, err)
	}
	if ok {
		return top, nil
	}
	defer s.observe("max_seq_scan", time.Now())
	return s.maxSeqScan(ctx, roomID)
}

// maxSeqScan is MaxSeq by a sort on seq: indexed on MongoDB, a scan of the room on
// FerretDB.
func (s *Store) maxSeqScan(ctx context.Context, roomID string) (int64, error) {
	var m struct {
		Seq int64 `bson:"seq"`
	}
	err := s.messages.FindOne(ctx, bson.D{{Key: "roomId", Value: roomID}},
		options.FindOne().SetSort(bson.D{{Key: "seq", Value: -1}}).SetProjection(bson.D{{Key: "seq", Value: 1}})).Decode(&m)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return 0, nil
	}
	if err != nil {
		return 0, wrap("max seq of "+roomID, err)
	}
	return m.Seq, nil
}

// HistoryQuery selects a page of a room's messages.
type HistoryQuery struct {
	RoomID string
	// After returns messages with seq > After, oldest first (when Before == 0).
	After int64
	// Before, when > 0, returns the newest messages with seq < Before.
	Before int64
	// Latest returns the newest messages (ignores After/Before).
	Latest bool
	Limit  int
}

// History returns a page, always ordered oldest first, and whether more messages
// exist in the paging direction. It reads the page's buckets by equality (see
// history.go), so a page costs O(page) on FerretDB too; when the buckets do not
// hold every seq they should (messages stored before buckets existed and not
// backfilled yet), it answers with the range query instead.
func (s *Store) History(ctx context.Context, q HistoryQuery) ([]Message, bool, error) {
	defer s.observe("history", time.Now())
	msgs, more, ok, err := s.historyByBucket(ctx, q)
	if err != nil {
		return nil, false, err
	}
	if ok {
		return msgs, more, nil
	}
	defer s.observe("history_scan", time.Now())
	return s.historyScan(ctx, q)
}

// historyScan is History by a range query sorted on seq: indexed on MongoDB, a scan
// of the room in FerretDB (which pushes down only plain equality).
func (s *Store) historyScan(ctx context.Context, q HistoryQuery) ([]Message, bool, error) {
	filter := bson.D{{Key: "roomId", Value: q.RoomID}}
	dir := 1
	switch {
	case q.Latest:
		dir = -1
	case q.Before > 0:
		filter = append(filter, bson.E{Key: "seq", Value: bson.D{{Key: "$lt", Value: q.Before}}})
		dir = -1
	default:
		filter = append(filter, bson.E{Key: "seq", Value: bson.D{{Key: "$gt", Value: q.After}}})
	}
	cur, err := s.messages.Find(ctx, filter, options.Find().SetSort(bson.D{{Key: "seq", Value: dir}}).SetLimit(int64(q.Limit+1)))
	if err != nil {
		return nil, false, wrap("history of "+q.RoomID, err)
	}
	msgs := make([]Message, 0, q.Limit+1)
	if err := cur.All(ctx, &msgs); err != nil {
		return nil, false, wrap("read history of "+q.RoomID, err)
	}
	more := len(msgs) > q.Limit
	if more {
		msgs = msgs[:q.Limit]
	}
	if dir < 0 {
		for i, j := 0, len(msgs)-1; i < j; i, j = i+1, j-1 {
			msgs[i], msgs[j] = msgs[j], msgs[i]
		}
	}
	return msgs, more, nil
}

// EditMessage sets the content of a live (not deleted) message of senderID.
// ErrNotFound when no such message matches.
func (s *Store) EditMessage(ctx context.Context, roomID, id, senderID, content string, at time.Time) (*Message, error) {
	defer s.observe("edit_message", time.Now())
	var m Message
	err := s.messages.FindOneAndUpdate(ctx,
		bson.D{{Key: "_id", Value: id}, {Key: "roomId", Value: roomID}, {Key: "senderId", Value: senderID}, {Key: "deleted", Value: false}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "content", Value: content}, {Key: "editedAt", Value: at}}}},
		options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&m)
	if err != nil {
		return nil, wrap("edit message "+id, err)
	}
	return &m, nil
}

// DeleteMessage turns the message into a tombstone (deleted, empty content).
func (s *Store) DeleteMessage(ctx context.Context, roomID, id string) (*Message, error) {
	defer s.observe("delete_message", time.Now())
	var m Message
	err := s.messages.FindOneAndUpdate(ctx,
		bson.D{{Key: "_id", Value: id}, {Key: "roomId", Value: roomID}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "content", Value: ""}, {Key: "deleted", Value: true}}}},
		options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&m)
	if err != nil {
		return nil, wrap("delete message "+id, err)
	}
	return &m, nil
}
