package store

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/talim/realtime/pkg/devstack/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// newTestStore returns a store on a fresh database of the shared embedded FerretDB.
func newTestStore(t *testing.T) (*Store, context.Context) {
	t.Helper()
	_, db := testkit.MongoClient(t)
	s := New(db, prometheus.NewRegistry())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	if err := s.EnsureIndexes(ctx); err != nil {
		t.Fatal(err)
	}
	return s, ctx
}

// fill stores messages 1..n of room (content: size bytes) as the sequencer does:
// insert, then advance the room's lastSeq to lastSeq (it may lag).
func fill(t *testing.T, ctx context.Context, s *Store, room string, n, size int, lastSeq int64) {
	t.Helper()
	if _, err := s.CreateRoom(ctx, Room{ID: room, Type: TypeGroup}); err != nil {
		t.Fatal(err)
	}
	var batch []Message
	for i := 1; i <= n; i++ {
		batch = append(batch, msg(room, int64(i), size))
		if len(batch) == 256 || i == n {
			if k, err := s.InsertMessages(ctx, batch); err != nil || k != len(batch) {
				t.Fatalf("insert: %d, %v", k, err)
			}
			batch = nil
		}
	}
	if lastSeq > 0 {
		if err := s.AdvanceRoom(ctx, msg(room, lastSeq, 1)); err != nil {
			t.Fatal(err)
		}
	}
}

func msg(room string, seq int64, size int) Message {
	key := fmt.Sprint("k", seq)
	return Message{ID: MessageID(room, "u", key), RoomID: room, Seq: seq, SenderID: "u", SenderName: "U", Type: "text",
		Content: strings.Repeat("x", size), ClientMsgID: key, CreatedAt: Now()}
}

// seqsOf checks that msgs are exactly seqs from..to (inclusive), oldest first.
func checkSeqs(t *testing.T, name string, msgs []Message, more bool, from, to int64, wantMore bool) {
	t.Helper()
	if more != wantMore {
		t.Errorf("%s: hasMore %v, want %v", name, more, wantMore)
	}
	if to < from {
		if len(msgs) != 0 {
			t.Errorf("%s: %d messages, want none", name, len(msgs))
		}
		return
	}
	if int64(len(msgs)) != to-from+1 {
		t.Fatalf("%s: %d messages, want seqs %d..%d", name, len(msgs), from, to)
	}
	for i, m := range msgs {
		if m.Seq != from+int64(i) || m.ClientMsgID != fmt.Sprint("k", m.Seq) || m.RoomID == "" {
			t.Fatalf("%s: position %d is seq %d (%+v), want %d", name, i, m.Seq, m.ClientMsgID, from+int64(i))
		}
	}
}

// historyCase is one query and the page it must return.
type historyCase struct {
	name     string
	q        HistoryQuery
	from, to int64
	more     bool
}

// pagingCases are the pages of a room holding seqs 1..n, in both directions, across
// bucket boundaries (BucketSize 64) and at both ends.
func pagingCases(room string, n int64) []historyCase {
	return []historyCase{
		{"latest 10", HistoryQuery{RoomID: room, Latest: true, Limit: 10}, n - 9, n, true},
		{"latest all", HistoryQuery{RoomID: room, Latest: true, Limit: int(n)}, 1, n, false},
		{"latest more than all", HistoryQuery{RoomID: room, Latest: true, Limit: int(n) + 5}, 1, n, false},
		{"latest n-1", HistoryQuery{RoomID: room, Latest: true, Limit: int(n) - 1}, 2, n, true},
		{"after 0", HistoryQuery{RoomID: room, After: 0, Limit: 50}, 1, 50, true},
		{"after 60 across a bucket edge", HistoryQuery{RoomID: room, After: 60, Limit: 10}, 61, 70, true},
		{"after 63 at a bucket start", HistoryQuery{RoomID: room, After: 63, Limit: 64}, 64, 127, true},
		{"after 0 spanning every bucket", HistoryQuery{RoomID: room, After: 0, Limit: int(n) - 10}, 1, n - 10, true},
		{"after n-5", HistoryQuery{RoomID: room, After: n - 5, Limit: 10}, n - 4, n, false},
		{"after n-10 exactly", HistoryQuery{RoomID: room, After: n - 10, Limit: 10}, n - 9, n, false},
		{"after n-11", HistoryQuery{RoomID: room, After: n - 11, Limit: 10}, n - 10, n - 1, true},
		{"after n", HistoryQuery{RoomID: room, After: n, Limit: 10}, 1, 0, false},
		{"after far beyond", HistoryQuery{RoomID: room, After: 1 << 62, Limit: 10}, 1, 0, false},
		{"before 11", HistoryQuery{RoomID: room, Before: 11, Limit: 10}, 1, 10, false},
		{"before 12", HistoryQuery{RoomID: room, Before: 12, Limit: 10}, 2, 11, true},
		{"before 1", HistoryQuery{RoomID: room, Before: 1, Limit: 10}, 1, 0, false},
		{"before 2", HistoryQuery{RoomID: room, Before: 2, Limit: 10}, 1, 1, false},
		{"before 130 across buckets", HistoryQuery{RoomID: room, Before: 130, Limit: 70}, 60, 129, true},
		{"before 65 at a bucket edge", HistoryQuery{RoomID: room, Before: 65, Limit: 64}, 1, 64, false},
		{"before n+1", HistoryQuery{RoomID: room, Before: n + 1, Limit: 5}, n - 4, n, true},
		{"before far beyond", HistoryQuery{RoomID: room, Before: 1 << 62, Limit: 5}, n - 4, n, true},
	}
}

// probeCases are the pages that reach past the room's lastSeq.
func probeCases(room string, n int64) []historyCase {
	var out []historyCase
	for _, c := range pagingCases(room, n) {
		switch c.name {
		case "latest 10", "latest all", "after n-5", "after n-11", "before far beyond", "before 12":
			out = append(out, c)
		}
	}
	return out
}

func runCases(t *testing.T, ctx context.Context, s *Store, cases []historyCase) {
	t.Helper()
	for _, c := range cases {
		msgs, more, err := s.History(ctx, c.q)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		checkSeqs(t, c.name, msgs, more, c.from, c.to, c.more)
	}
}

// histCount returns how often op was observed.
func histCount(s *Store, op string) uint64 {
	var m dto.Metric
	if err := s.latency.WithLabelValues(op).(prometheus.Histogram).Write(&m); err != nil {
		panic(err)
	}
	return m.GetHistogram().GetSampleCount()
}

// The paging table against the bucket path: every page comes from buckets (no
// range query), with the room's lastSeq current, lagging (the summary writer is
// behind) and missing.
func TestHistory_Buckets(t *testing.T) {
	s, ctx := newTestStore(t)
	const n = 140 // buckets 0..2, the last one partial
	fill(t, ctx, s, "cur", n, 10, n)
	fill(t, ctx, s, "lag", n, 10, n-70) // lastSeq more than a bucket behind
	fill(t, ctx, s, "none", n, 10, 0)   // no summary written yet
	fill(t, ctx, s, "other", 5, 10, 5)  // another room's messages share bucket 0
	runCases(t, ctx, s, pagingCases("cur", n))
	// Where the hint lags, the pages that reach past it probe for the highest seq.
	for _, room := range []string{"lag", "none"} {
		runCases(t, ctx, s, probeCases(room, n))
	}
	if c := histCount(s, "history_scan"); c != 0 {
		t.Errorf("%d history reads fell back to the range query, want 0", c)
	}
	for room, want := range map[string]int64{"cur": n, "lag": n, "none": n, "other": 5, "missing": 0} {
		got, err := s.MaxSeq(ctx, room)
		if err != nil || got != want {
			t.Errorf("MaxSeq(%s) = %d, %v; want %d", room, got, err, want)
		}
	}
	if c := histCount(s, "max_seq_scan"); c != 0 {
		t.Errorf("%d MaxSeq calls fell back to the sorted query, want 0", c)
	}
	msgs, more, err := s.History(ctx, HistoryQuery{RoomID: "missing", Latest: true, Limit: 10})
	checkSeqs(t, "missing room", msgs, more, 1, 0, false)
	if err != nil {
		t.Fatal(err)
	}
}

// A room whose last bucket is exactly full (seqs 1..127): the probe for the highest
// seq reads the next, empty bucket and stops.
func TestHistory_FullLastBucket(t *testing.T) {
	s, ctx := newTestStore(t)
	fill(t, ctx, s, "r", 127, 10, 64)
	runCases(t, ctx, s, []historyCase{
		{"latest", HistoryQuery{RoomID: "r", Latest: true, Limit: 3}, 125, 127, true},
		{"after 120", HistoryQuery{RoomID: "r", After: 120, Limit: 10}, 121, 127, false},
		{"before 200", HistoryQuery{RoomID: "r", Before: 200, Limit: 2}, 126, 127, true},
	})
	if got, err := s.MaxSeq(ctx, "r"); err != nil || got != 127 {
		t.Fatalf("MaxSeq = %d, %v; want 127", got, err)
	}
}

// The store returns Limit messages of any size; the 256 KiB page cap is applied by
// core (newPage, docs/protocol.md "Page size"). Big messages across buckets come
// back whole and in order.
func TestHistory_BigMessages(t *testing.T) {
	s, ctx := newTestStore(t)
	fill(t, ctx, s, "big", 140, 3000, 140) // 140 × 3 KB: more than 256 KiB in one page
	msgs, more, err := s.History(ctx, HistoryQuery{RoomID: "big", Latest: true, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	checkSeqs(t, "latest 100", msgs, more, 41, 140, true)
	total := 0
	for _, m := range msgs {
		total += len(m.Content)
	}
	if total != 100*3000 {
		t.Fatalf("content bytes %d, want %d", total, 100*3000)
	}
}

// Messages stored before buckets existed (no bucket field): History and MaxSeq
// notice the missing seqs and answer with the range query; BackfillBuckets gives
// them their buckets in bounded steps, and then the bucket path serves them.
func TestHistory_OldMessagesAndBackfill(t *testing.T) {
	s, ctx := newTestStore(t)
	const n = 140
	if _, err := s.CreateRoom(ctx, Room{ID: "old", Type: TypeGroup}); err != nil {
		t.Fatal(err)
	}
	var docs []any
	for i := int64(1); i <= n; i++ {
		docs = append(docs, msg("old", i, 10)) // a Message: no bucket field
	}
	if _, err := s.messages.InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}
	if err := s.AdvanceRoom(ctx, msg("old", n, 1)); err != nil {
		t.Fatal(err)
	}
	// A newer room, written with buckets, is left alone by the backfill.
	fill(t, ctx, s, "new", 70, 10, 70)

	runCases(t, ctx, s, probeCases("old", n))
	if histCount(s, "history_scan") == 0 {
		t.Fatal("old messages were served without the range query")
	}
	if got, err := s.MaxSeq(ctx, "old"); err != nil || got != n {
		t.Fatalf("MaxSeq(old) = %d, %v; want %d", got, err, n)
	}

	k, done, err := s.BackfillBuckets(ctx, 10) // bounded: stops after a room once 10 are done
	if err != nil || done || k != n {
		t.Fatalf("first backfill step: %d updated, done %v, %v; want %d, not done", k, done, err, n)
	}
	k, done, err = s.BackfillBuckets(ctx, 1000)
	if err != nil || !done || k != 0 {
		t.Fatalf("second backfill step: %d updated, done %v, %v; want 0, done", k, done, err)
	}
	if k, done, err = s.BackfillBuckets(ctx, 1000); err != nil || !done || k != 0 {
		t.Fatalf("after the marker: %d updated, done %v, %v", k, done, err)
	}
	var d bson.M
	if err := s.messages.FindOne(ctx, bson.D{{Key: "_id", Value: MessageID("old", "u", "k77")}}).Decode(&d); err != nil || d["bucket"] != int64(1) {
		t.Fatalf("backfilled doc: %v, %v", d, err)
	}
	before := histCount(s, "history_scan")
	runCases(t, ctx, s, probeCases("old", n))
	runCases(t, ctx, s, pagingCases("new", 70)[:4])
	if c := histCount(s, "history_scan"); c != before {
		t.Fatalf("%d reads fell back to the range query after the backfill", c-before)
	}
}
