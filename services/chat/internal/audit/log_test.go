package audit_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/talim/realtime/pkg/devstack/testkit"
	"github.com/talim/realtime/services/chat/internal/audit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// fill appends n entries and returns the log's database.
func fill(t *testing.T, n int) (*audit.Log, *mongo.Database) {
	t.Helper()
	_, db := testkit.MongoClient(t)
	l := audit.New(db)
	for i := 1; i <= n; i++ {
		seq, err := l.Append(ctx(t), audit.Entry{Kind: "oversight.read", Actor: "lead1", Reason: "concern",
			Target: fmt.Sprintf("room-%d", i), Detail: map[string]string{"b": "2", "a": "1"}})
		if err != nil || seq != int64(i) {
			t.Fatalf("append %d: seq %d, %v", i, seq, err)
		}
	}
	return l, db
}

func TestLog_VerifyIntactChain(t *testing.T) {
	l, _ := fill(t, 5)
	v, err := l.Verify(ctx(t))
	if err != nil || !v.OK || v.Entries != 5 || v.FirstBad != 0 || len(v.HeadHash) != 64 {
		t.Fatalf("verify = %+v, %v", v, err)
	}
}

func TestLog_TwoInstancesShareOneChain(t *testing.T) {
	_, db := testkit.MongoClient(t)
	a, b := audit.New(db), audit.New(db)
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 20 {
		for _, l := range []*audit.Log{a, b} {
			wg.Go(func() {
				if _, err := l.Append(ctx(t), audit.Entry{Kind: "k", Actor: "x", Target: fmt.Sprint(i)}); err != nil {
					errs <- err
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("append: %v", err)
	}
	v, err := audit.New(db).Verify(ctx(t))
	if err != nil || !v.OK || v.Entries != 40 {
		t.Fatalf("verify = %+v, %v", v, err)
	}
	// A fresh instance finds the head with point reads and appends entry 41.
	if seq, err := audit.New(db).Append(ctx(t), audit.Entry{Kind: "k"}); err != nil || seq != 41 {
		t.Fatalf("append after restart: %d, %v", seq, err)
	}
}

func TestLog_VerifyDetectsTampering(t *testing.T) {
	cases := []struct {
		name    string
		tamper  func(t *testing.T, c *mongo.Collection)
		bad     int64
		problem string
	}{
		{"deleted", func(t *testing.T, c *mongo.Collection) {
			must(t)(c.DeleteOne(ctx(t), bson.D{{Key: "_id", Value: audit.ID(3)}}))
		}, 3, "missing"},
		{"deleted last", func(t *testing.T, c *mongo.Collection) {
			must(t)(c.DeleteOne(ctx(t), bson.D{{Key: "_id", Value: audit.ID(5)}}))
		}, 5, "missing"},
		{"edited", func(t *testing.T, c *mongo.Collection) {
			must(t)(c.UpdateOne(ctx(t), bson.D{{Key: "_id", Value: audit.ID(2)}},
				bson.D{{Key: "$set", Value: bson.D{{Key: "reason", Value: "nothing to see"}}}}))
		}, 2, "changed"},
		{"edited with its hash recomputed", func(t *testing.T, c *mongo.Collection) {
			var r audit.Record
			if err := c.FindOne(ctx(t), bson.D{{Key: "_id", Value: audit.ID(2)}}).Decode(&r); err != nil {
				t.Fatal(err)
			}
			r.Actor = "someone-else"
			r.Hash = audit.ComputeHash(r)
			must(t)(c.ReplaceOne(ctx(t), bson.D{{Key: "_id", Value: r.ID}}, r))
		}, 3, "does not follow"},
		{"reordered", func(t *testing.T, c *mongo.Collection) {
			var r2, r3 audit.Record
			if err := c.FindOne(ctx(t), bson.D{{Key: "_id", Value: audit.ID(2)}}).Decode(&r2); err != nil {
				t.Fatal(err)
			}
			if err := c.FindOne(ctx(t), bson.D{{Key: "_id", Value: audit.ID(3)}}).Decode(&r3); err != nil {
				t.Fatal(err)
			}
			r2.ID, r3.ID = r3.ID, r2.ID
			must(t)(c.ReplaceOne(ctx(t), bson.D{{Key: "_id", Value: r2.ID}}, r2))
			must(t)(c.ReplaceOne(ctx(t), bson.D{{Key: "_id", Value: r3.ID}}, r3))
		}, 2, "moved"},
		{"reordered with numbers swapped", func(t *testing.T, c *mongo.Collection) {
			var r2, r3 audit.Record
			if err := c.FindOne(ctx(t), bson.D{{Key: "_id", Value: audit.ID(2)}}).Decode(&r2); err != nil {
				t.Fatal(err)
			}
			if err := c.FindOne(ctx(t), bson.D{{Key: "_id", Value: audit.ID(3)}}).Decode(&r3); err != nil {
				t.Fatal(err)
			}
			r2.ID, r3.ID, r2.Seq, r3.Seq = r3.ID, r2.ID, r3.Seq, r2.Seq
			must(t)(c.ReplaceOne(ctx(t), bson.D{{Key: "_id", Value: r2.ID}}, r2))
			must(t)(c.ReplaceOne(ctx(t), bson.D{{Key: "_id", Value: r3.ID}}, r3))
		}, 2, "does not follow"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l, db := fill(t, 5)
			tc.tamper(t, db.Collection(audit.Collection))
			v, err := l.Verify(ctx(t))
			if err != nil {
				t.Fatalf("verify: %v", err)
			}
			if v.OK || v.FirstBad != tc.bad || !strings.Contains(v.Problem, tc.problem) {
				t.Fatalf("verify = %+v; want first bad %d (%s)", v, tc.bad, tc.problem)
			}
			if v.Entries != tc.bad-1 {
				t.Fatalf("checked %d good entries before %d", v.Entries, tc.bad)
			}
		})
	}
}

func must(t *testing.T) func(any, error) {
	return func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("tamper: %v", err)
		}
	}
}
