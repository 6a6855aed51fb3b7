package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/talim/realtime/pkg/mongox"
)

// BucketSize is the number of consecutive seqs that share a bucket: every message
// is stored with bucket = seq / BucketSize, indexed with its room (room_bucket), so
// the messages of a seq range are read with a few plain equality filters
// {roomId, bucket}. FerretDB v1.24 pushes down nothing but plain equality: a range
// on seq or a sort is evaluated in Go over every message of the room, while an
// equality read costs O(BucketSize) (on PostgreSQL with the index devstack adds,
// see pkg/devstack/postgres.go).
const BucketSize = 64

// BucketOf returns the bucket of seq.
func BucketOf(seq int64) int64 { return seq / BucketSize }

// messageDoc is the stored form of a message: the message and its bucket.
// Decoding a messages document into a Message skips the bucket.
type messageDoc struct {
	Message `bson:",inline"`
	Bucket  int64 `bson:"bucket"`
}

// maxSeq is above any seq a room reaches; seq arithmetic stays below it, so it
// never overflows.
const maxSeq = 1 << 61

// maxProbeBuckets bounds how far past the room's lastSeq hint the probe for the
// highest seq reads (the hint lags by the summaries not written yet: a few
// batches); past it the caller falls back to a sorted query.
const maxProbeBuckets = 16

// Seqs of a room are dense: the sequencer allocates seq n+1 only after learning
// that n is the highest stored (or from its own cache of what it stored), and a
// message is never removed (deleting leaves a tombstone). So a bucket read that
// misses a seq between two stored ones, or below the room's lastSeq, means the
// messages predate buckets (BackfillBuckets gives them theirs); History and
// MaxSeq then answer with the range query instead.

// roomLastSeq reads the room's lastSeq (0 when the room does not exist).
func (s *Store) roomLastSeq(ctx context.Context, roomID string) (int64, error) {
	var r struct {
		LastSeq int64 `bson:"lastSeq"`
	}
	err := s.rooms.FindOne(ctx, bson.D{{Key: "_id", Value: roomID}},
		options.FindOne().SetProjection(bson.D{{Key: "lastSeq", Value: 1}})).Decode(&r)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return 0, nil
	}
	if err != nil {
		return 0, wrap("read lastSeq of "+roomID, err)
	}
	return r.LastSeq, nil
}

// probe reads buckets of one room and keeps what it read, so a bucket read to
// find the highest seq is not read again for the page.
type probe struct {
	s    *Store
	room string
	mu   sync.Mutex
	read map[int64][]Message
}

// bucket returns the messages of bucket b (unordered).
func (p *probe) bucket(ctx context.Context, b int64) ([]Message, error) {
	p.mu.Lock()
	msgs, ok := p.read[b]
	p.mu.Unlock()
	if ok {
		return msgs, nil
	}
	cur, err := p.s.messages.Find(ctx, bson.D{{Key: "roomId", Value: p.room}, {Key: "bucket", Value: b}})
	if err != nil {
		return nil, wrap(fmt.Sprintf("read bucket %d of %s", b, p.room), err)
	}
	msgs = make([]Message, 0, BucketSize)
	if err := cur.All(ctx, &msgs); err != nil {
		return nil, wrap(fmt.Sprintf("read bucket %d of %s", b, p.room), err)
	}
	p.mu.Lock()
	if p.read == nil {
		p.read = map[int64][]Message{}
	}
	p.read[b] = msgs
	p.mu.Unlock()
	return msgs, nil
}

// top returns the highest stored seq, starting from hint (the room's lastSeq, a
// lower bound): it reads hint's bucket and the next ones while they are full to
// their last seq. ok is false when the buckets contradict the hint (messages
// without a bucket) or the probe went past maxProbeBuckets.
func (p *probe) top(ctx context.Context, hint int64) (top int64, ok bool, err error) {
	top = hint
	for b := BucketOf(hint); b < BucketOf(hint)+maxProbeBuckets; b++ {
		msgs, err := p.bucket(ctx, b)
		if err != nil {
			return 0, false, err
		}
		high := int64(0)
		for _, m := range msgs {
			high = max(high, m.Seq)
		}
		if b == BucketOf(hint) && hint > 0 && high < hint {
			return 0, false, nil // the hint's message has no bucket
		}
		top = max(top, high)
		if high != (b+1)*BucketSize-1 {
			return top, true, nil
		}
	}
	return 0, false, nil
}

// rangeOf returns the messages with lo <= seq <= hi, oldest first, reading their
// buckets concurrently; ok is false unless every seq of the range is there.
func (p *probe) rangeOf(ctx context.Context, lo, hi int64) ([]Message, bool, error) {
	first, last := BucketOf(lo), BucketOf(hi)
	parts := make([][]Message, last-first+1)
	errs := make([]error, len(parts))
	var wg sync.WaitGroup
	for i := range parts {
		wg.Go(func() { parts[i], errs[i] = p.bucket(ctx, first+int64(i)) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, false, err
	}
	out := make([]Message, 0, hi-lo+1)
	for _, part := range parts {
		for _, m := range part {
			if m.Seq >= lo && m.Seq <= hi {
				out = append(out, m)
			}
		}
	}
	slices.SortFunc(out, func(a, b Message) int { return cmp.Compare(a.Seq, b.Seq) })
	for i, m := range out {
		if m.Seq != lo+int64(i) {
			return nil, false, nil
		}
	}
	return out, int64(len(out)) == hi-lo+1, nil
}

// historyByBucket is History from buckets: it works out the seq range of the page
// (Limit+1 seqs, the extra one telling hasMore) from the room's lastSeq and, when
// the page may reach past it, the highest stored seq; then reads that range. ok is
// false when the buckets do not hold the whole range.
func (s *Store) historyByBucket(ctx context.Context, q HistoryQuery) (msgs []Message, more, ok bool, err error) {
	hint, err := s.roomLastSeq(ctx, q.RoomID)
	if err != nil {
		return nil, false, false, fmt.Errorf("history of %s: %w", q.RoomID, err)
	}
	p := &probe{s: s, room: q.RoomID}
	// clamp lowers hi to the highest stored seq when hi is past the hint.
	clamp := func(hi int64) (int64, bool, error) {
		if hi <= hint {
			return hi, true, nil
		}
		top, ok, err := p.top(ctx, hint)
		return min(hi, top), ok, err
	}
	limit := int64(q.Limit)
	newest := q.Latest || q.Before > 0 // the page is the newest messages of the range
	var lo, hi int64
	switch {
	case q.Latest:
		hi, ok, err = clamp(maxSeq)
		lo = hi - limit
	case q.Before > 0:
		hi, ok, err = clamp(q.Before - 1)
		lo = hi - limit
	case q.After > maxSeq:
		return nil, false, true, nil // no seq is that high
	default:
		lo = q.After + 1
		hi, ok, err = clamp(q.After + limit + 1)
	}
	if err != nil || !ok {
		return nil, false, false, err
	}
	if newest {
		more = lo >= 1
		lo = max(lo, 1)
	} else {
		more = hi-lo+1 > limit
	}
	if hi < lo {
		return nil, false, true, nil
	}
	msgs, ok, err = p.rangeOf(ctx, lo, hi)
	if err != nil || !ok {
		return nil, false, false, err
	}
	if more && newest {
		msgs = msgs[1:]
	} else if more {
		msgs = msgs[:limit]
	}
	return msgs, more, true, nil
}

// backfillMarker is the _id, in the migrations collection, of the document that
// records that every message has its bucket.
const backfillMarker = "message-buckets"

// BackfillBuckets gives messages stored before buckets existed their bucket: room
// by room, it reads each room's messages (one equality query) and sets the missing
// buckets with point updates by _id, one at a time. It stops after
// about limit updates (a bounded step; call again to go on) and returns how many it
// made and whether every message has its bucket; once they all have, it records
// that in the migrations collection, so later calls (every start) cost one point
// read. Messages an older instance writes after that (during a rolling upgrade)
// have no bucket: History and MaxSeq notice the missing seqs and use the range
// query for those rooms, which stays correct (docs/operations.md, upgrading).
func (s *Store) BackfillBuckets(ctx context.Context, limit int) (n int, done bool, err error) {
	defer s.observe("backfill_buckets", time.Now())
	err = s.migrations.FindOne(ctx, bson.D{{Key: "_id", Value: backfillMarker}}).Err()
	switch {
	case err == nil:
		return 0, true, nil
	case !errors.Is(err, mongo.ErrNoDocuments):
		return 0, false, wrap("read backfill marker", err)
	}
	cur, err := s.rooms.Find(ctx, bson.D{}, options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return 0, false, wrap("list rooms for backfill", err)
	}
	var rooms []struct {
		ID string `bson:"_id"`
	}
	if err := cur.All(ctx, &rooms); err != nil {
		return 0, false, wrap("list rooms for backfill", err)
	}
	for _, r := range rooms {
		k, err := s.backfillRoom(ctx, r.ID)
		n += k
		if err != nil {
			return n, false, err
		}
		if n >= limit {
			return n, false, nil
		}
	}
	_, err = s.migrations.InsertOne(ctx, bson.D{{Key: "_id", Value: backfillMarker}, {Key: "at", Value: Now()}})
	if err != nil && !mongox.IsDuplicateKey(err) {
		return n, false, wrap("write backfill marker", err)
	}
	return n, true, nil
}

// backfillRoom sets the missing buckets of roomID's messages.
func (s *Store) backfillRoom(ctx context.Context, roomID string) (int, error) {
	cur, err := s.messages.Find(ctx, bson.D{{Key: "roomId", Value: roomID}},
		options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}, {Key: "seq", Value: 1}, {Key: "bucket", Value: 1}}))
	if err != nil {
		return 0, wrap("read messages of "+roomID+" for backfill", err)
	}
	var docs []struct {
		ID     string `bson:"_id"`
		Seq    int64  `bson:"seq"`
		Bucket *int64 `bson:"bucket"`
	}
	if err := cur.All(ctx, &docs); err != nil {
		return 0, wrap("read messages of "+roomID+" for backfill", err)
	}
	// One statement per update command, one command at a time: the summary writer
	// may be sending its own bulk meanwhile, and FerretDB over PostgreSQL hangs when
	// update statements hold its whole connection pool (MaxBulkUpdates).
	n := 0
	for _, d := range docs {
		if d.Bucket != nil {
			continue
		}
		_, err := s.messages.UpdateOne(ctx, bson.D{{Key: "_id", Value: d.ID}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "bucket", Value: BucketOf(d.Seq)}}}})
		if err != nil {
			return n, wrap("backfill buckets of "+roomID, err)
		}
		n++
	}
	return n, nil
}
