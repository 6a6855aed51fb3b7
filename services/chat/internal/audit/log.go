package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/talim/realtime/pkg/mongox"
)

// Collection names.
const (
	// Collection holds the entries: _id = ID(seq).
	Collection = "audit"
	// HeadCollection holds one document, _id "head", whose seq only grows ($max):
	// the highest sequence number ever appended, so verify notices a cut-off tail
	// unless that document was changed too.
	HeadCollection = "audit_head"
)

// ErrUnavailable wraps failures to reach the store.
var ErrUnavailable = errors.New("audit log unavailable")

// ErrContended means an append lost the race for the next sequence number too
// many times in a row (many instances appending at once); nothing was written.
var ErrContended = errors.New("audit log contended")

// ID is the _id of entry seq: the number in 20 decimal digits, so the ids sort
// like the numbers. A string, not an integer: FerretDB v1 (SQLite) pushes an _id
// equality down to its backend only for strings and ObjectIDs; an integer _id
// would make every point read a scan of the collection.
func ID(seq int64) string { return fmt.Sprintf("%020d", seq) }

// Record is a stored entry.
type Record struct {
	ID       string    `bson:"_id"`
	Seq      int64     `bson:"seq"`
	At       time.Time `bson:"at"`
	Kind     string    `bson:"kind"`
	Actor    string    `bson:"actor"`
	Reason   string    `bson:"reason"`
	Target   string    `bson:"target"`
	Detail   []Pair    `bson:"detail"`
	PrevHash string    `bson:"prevHash"`
	Hash     string    `bson:"hash"`
}

// Pair is one Detail entry; the stored detail is sorted by key.
type Pair struct {
	K string `bson:"k" json:"k"`
	V string `bson:"v" json:"v"`
}

// canonical is what the hash covers, encoded with encoding/json: fixed field
// order, detail sorted by key, time as Unix milliseconds (what MongoDB keeps).
type canonical struct {
	V        int    `json:"v"`
	Seq      int64  `json:"seq"`
	AtMs     int64  `json:"atMs"`
	Kind     string `json:"kind"`
	Actor    string `json:"actor"`
	Reason   string `json:"reason"`
	Target   string `json:"target"`
	Detail   []Pair `json:"detail"`
	PrevHash string `json:"prevHash"`
}

// ComputeHash returns the hex SHA-256 of r's canonical encoding (every field but
// ID and Hash).
func ComputeHash(r Record) string {
	d := r.Detail
	if d == nil {
		d = []Pair{}
	}
	b, err := json.Marshal(canonical{V: 1, Seq: r.Seq, AtMs: r.At.UnixMilli(), Kind: r.Kind, Actor: r.Actor,
		Reason: r.Reason, Target: r.Target, Detail: d, PrevHash: r.PrevHash})
	if err != nil {
		panic(fmt.Sprintf("audit: encode canonical entry: %v", err)) // plain strings and ints only
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// Log is the append-only audit log in MongoDB. Appends from any number of chat
// instances are serialised by the unique _id: an append inserts the entry with
// _id = last+1 and, when another instance took that number first (duplicate key),
// reads that entry, chains onto it and tries the next number. Safe for
// concurrent use.
type Log struct {
	coll, head *mongo.Collection
	now        func() time.Time

	mu      sync.Mutex // serialises this instance's appends
	last    int64      // highest entry this instance knows (0: none; -1: not probed)
	lastSum string     // its hash
}

var _ Appender = (*Log)(nil)

// New returns the log on db.
func New(db *mongo.Database) *Log {
	return &Log{coll: db.Collection(Collection), head: db.Collection(HeadCollection), last: -1,
		now: func() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }}
}

// maxAppendAttempts bounds an append's retries after losing the race for a
// sequence number to another instance.
const maxAppendAttempts = 64

// Append writes e as the next entry and returns its sequence number.
func (l *Log) Append(ctx context.Context, e Entry) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last < 0 {
		if err := l.probe(ctx); err != nil {
			return 0, err
		}
	}
	detail := make([]Pair, 0, len(e.Detail))
	for k, v := range e.Detail {
		detail = append(detail, Pair{K: k, V: v})
	}
	slices.SortFunc(detail, func(a, b Pair) int {
		switch {
		case a.K < b.K:
			return -1
		case a.K > b.K:
			return 1
		}
		return 0
	})
	for range maxAppendAttempts {
		r := Record{Seq: l.last + 1, At: l.now(), Kind: e.Kind, Actor: e.Actor, Reason: e.Reason, Target: e.Target,
			Detail: detail, PrevHash: l.lastSum}
		r.ID = ID(r.Seq)
		r.Hash = ComputeHash(r)
		_, err := l.coll.InsertOne(ctx, r)
		if err == nil {
			l.last, l.lastSum = r.Seq, r.Hash
			l.bumpHead(ctx, r.Seq)
			return r.Seq, nil
		}
		if !mongox.IsDuplicateKey(err) {
			return 0, wrap("append audit entry", err)
		}
		// Another instance appended r.Seq: chain onto it.
		got, err := l.read(ctx, r.Seq)
		if err != nil {
			return 0, err
		}
		if got == nil {
			return 0, fmt.Errorf("append audit entry %d: duplicate key but no entry", r.Seq)
		}
		l.last, l.lastSum = got.Seq, got.Hash
	}
	return 0, fmt.Errorf("append audit entry: %w after %d attempts", ErrContended, maxAppendAttempts)
}

// bumpHead moves the head document's seq up to seq (best effort: verify also
// finds entries beyond it).
func (l *Log) bumpHead(ctx context.Context, seq int64) {
	_, _ = l.head.UpdateOne(ctx, bson.D{{Key: "_id", Value: "head"}},
		bson.D{{Key: "$max", Value: bson.D{{Key: "seq", Value: seq}}}}, options.UpdateOne().SetUpsert(true))
}

// headHint returns the head document's seq (0 when absent).
func (l *Log) headHint(ctx context.Context) (int64, error) {
	var d struct {
		Seq int64 `bson:"seq"`
	}
	err := l.head.FindOne(ctx, bson.D{{Key: "_id", Value: "head"}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return 0, nil
	}
	if err != nil {
		return 0, wrap("read audit head", err)
	}
	return d.Seq, nil
}

// read returns entry seq, nil when it does not exist (a point read by _id).
func (l *Log) read(ctx context.Context, seq int64) (*Record, error) {
	var r Record
	err := l.coll.FindOne(ctx, bson.D{{Key: "_id", Value: ID(seq)}}).Decode(&r)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, nil
	}
	if err != nil {
		return nil, wrap("read audit entry "+strconv.FormatInt(seq, 10), err)
	}
	return &r, nil
}

// probe finds the last entry with point reads only: start at the head hint, then
// step forward while the next entry exists (other instances may have appended
// beyond the hint).
func (l *Log) probe(ctx context.Context) error {
	seq, err := l.headHint(ctx)
	if err != nil {
		return err
	}
	var cur *Record
	if seq > 0 {
		if cur, err = l.read(ctx, seq); err != nil {
			return err
		}
		if cur == nil {
			return fmt.Errorf("audit log: head entry %d is missing (run talim audit verify)", seq)
		}
	}
	for {
		next, err := l.read(ctx, seq+1)
		if err != nil {
			return err
		}
		if next == nil {
			break
		}
		cur, seq = next, next.Seq
	}
	l.last = seq
	if cur != nil {
		l.lastSum = cur.Hash
	}
	return nil
}

// Verdict is the result of Verify.
type Verdict struct {
	OK bool
	// Entries is how many entries were checked.
	Entries int64
	// FirstBad is the first broken entry (0 when OK) and Problem says why.
	FirstBad int64
	Problem  string
	// HeadHash is the hash of the last good entry.
	HeadHash string
}

// Verify walks the chain from entry 1 with point reads by _id: each entry must
// exist, carry its own number, hash to its stored hash and carry the previous
// entry's hash; past the last entry, the head document must not claim more.
// It reports the first entry that breaks any of these.
func (l *Log) Verify(ctx context.Context) (Verdict, error) {
	hint, err := l.headHint(ctx)
	if err != nil {
		return Verdict{}, err
	}
	var v Verdict
	prev := ""
	for seq := int64(1); ; seq++ {
		if err := ctx.Err(); err != nil {
			return Verdict{}, fmt.Errorf("verify audit log: %w", err)
		}
		r, err := l.read(ctx, seq)
		if err != nil {
			return Verdict{}, err
		}
		if r == nil {
			if seq <= hint {
				return fail(v, seq, fmt.Sprintf("entry %d is missing (the log reached entry %d)", seq, hint)), nil
			}
			// A later entry behind a hole (the head document edited as well)?
			if after, err := l.read(ctx, seq+1); err != nil {
				return Verdict{}, err
			} else if after != nil {
				return fail(v, seq, fmt.Sprintf("entry %d is missing", seq)), nil
			}
			v.OK = true
			return v, nil
		}
		switch {
		case r.Seq != seq:
			return fail(v, seq, fmt.Sprintf("entry %d carries number %d (moved)", seq, r.Seq)), nil
		case r.PrevHash != prev:
			return fail(v, seq, fmt.Sprintf("entry %d does not follow entry %d (previous hash differs: removed, changed or reordered)", seq, seq-1)), nil
		case ComputeHash(*r) != r.Hash:
			return fail(v, seq, fmt.Sprintf("entry %d was changed (its hash does not match its content)", seq)), nil
		}
		prev = r.Hash
		v.Entries, v.HeadHash = seq, r.Hash
	}
}

func fail(v Verdict, seq int64, why string) Verdict {
	v.FirstBad, v.Problem = seq, why
	return v
}

// Entries returns entries from..to (inclusive) by point reads, stopping at the
// first missing one; for tests and exports of small ranges.
func (l *Log) Entries(ctx context.Context, from, to int64) ([]Record, error) {
	var out []Record
	for seq := from; seq <= to; seq++ {
		r, err := l.read(ctx, seq)
		if err != nil {
			return out, err
		}
		if r == nil {
			break
		}
		out = append(out, *r)
	}
	return out, nil
}

func wrap(op string, err error) error {
	if mongox.IsUnavailable(err) {
		return fmt.Errorf("%s: %w: %w", op, ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}
