package store_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/talim/realtime/pkg/devstack/testkit"
	"github.com/talim/realtime/services/notification/internal/store"
)

func newStore(t *testing.T) *store.Store {
	t.Helper()
	_, db := testkit.MongoClient(t)
	s := store.New(db)
	ttlErr, err := s.EnsureIndexes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("ttl index: %v", ttlErr)
	// Idempotent.
	if _, err := s.EnsureIndexes(context.Background()); err != nil {
		t.Fatalf("second EnsureIndexes: %v", err)
	}
	return s
}

func note(id, user string, created time.Time) store.Notification {
	return store.Notification{ID: id, UserID: user, SendID: "s1", Category: "c", Title: "t", Priority: "normal",
		CreatedAt: created, Data: []store.Pair{{K: "a.b", V: "1"}, {K: "$x", V: "2"}}}
}

func TestInsertNotifications_SkipsDuplicates(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	got, err := s.InsertNotifications(ctx, []store.Notification{note("n1", "u1", now), note("n2", "u2", now)})
	if err != nil || len(got) != 2 {
		t.Fatalf("first insert: %v %v", got, err)
	}
	got, err = s.InsertNotifications(ctx, []store.Notification{note("n1", "u1", now), note("n3", "u3", now), note("n2", "u2", now), note("n4", "u4", now)})
	if err != nil {
		t.Fatalf("second insert: %v", err)
	}
	if len(got) != 2 || got[0] != 1 || got[1] != 3 {
		t.Fatalf("inserted indexes = %v, want [1 3]", got)
	}
	list, _, err := s.List(ctx, store.ListQuery{UserID: "u1", Limit: 10, Now: now})
	if err != nil || len(list) != 1 || len(list[0].Data) != 2 || list[0].Data[1].K != "$x" {
		t.Fatalf("list = %+v, %v", list, err)
	}
}

func TestCreateSend_Race(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	var mu sync.Mutex
	created := 0
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, ok, err := s.CreateSend(ctx, &store.Send{Key: "k", SendID: "s", Recipients: []string{"u"}, CreatedAt: time.Now(), Content: store.Content{Title: string(rune('a' + i))}})
			if err != nil {
				t.Error(err)
			}
			if ok {
				mu.Lock()
				created++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if created != 1 {
		t.Fatalf("created %d times", created)
	}
}

func TestList_PagingExpiryAndCounts(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	past, future := now.Add(-time.Minute), now.Add(time.Hour)
	docs := []store.Notification{
		note("a", "u1", now.Add(-3*time.Second)),
		note("b", "u1", now.Add(-2*time.Second)),
		note("c", "u1", now.Add(-2*time.Second)),
		note("d", "u1", now.Add(-1*time.Second)),
		note("e", "u1", now), // expired
		note("f", "u2", now),
	}
	docs[4].ExpiresAt = &past
	docs[3].ExpiresAt = &future
	if _, err := s.InsertNotifications(ctx, docs); err != nil {
		t.Fatal(err)
	}
	var ids []string
	before := ""
	for {
		page, more, err := s.List(ctx, store.ListQuery{UserID: "u1", Before: before, Limit: 2, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range page {
			ids = append(ids, n.ID)
		}
		if !more {
			break
		}
		before = page[len(page)-1].ID
	}
	if got := join(ids); got != "d,c,b,a" {
		t.Fatalf("pages = %s", got)
	}
	if n, err := s.Unread(ctx, "u1", now); err != nil || n != 4 {
		t.Fatalf("unread = %d, %v", n, err)
	}
	owned, err := s.MarkRead(ctx, "u1", []string{"c", "f", "zzz", "e"}, now)
	if err != nil || join(owned) != "c" {
		t.Fatalf("mark read = %v, %v", owned, err)
	}
	if n, _ := s.Unread(ctx, "u1", now); n != 3 {
		t.Fatalf("unread after mark = %d", n)
	}
	page, _, err := s.List(ctx, store.ListQuery{UserID: "u1", UnreadOnly: true, Limit: 10, Now: now})
	if err != nil || len(page) != 3 {
		t.Fatalf("unread only = %d, %v", len(page), err)
	}
	if _, _, err := s.List(ctx, store.ListQuery{UserID: "u1", Before: "f", Limit: 10, Now: now}); err != store.ErrNotFound {
		t.Fatalf("other user's cursor: %v", err)
	}
	n, err := s.DeleteExpired(ctx, now)
	if err != nil || n != 1 {
		t.Fatalf("delete expired = %d, %v", n, err)
	}
	if m, err := s.MarkAllRead(ctx, "u1", now); err != nil || m != 3 {
		t.Fatalf("mark all = %d, %v", m, err)
	}
	if n, _ := s.Unread(ctx, "u2", now); n != 1 {
		t.Fatalf("u2 unread = %d", n)
	}
}

func TestAck(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	a, b, c := note("a", "u1", now), note("b", "u2", now), note("c", "u1", now)
	a.RequireAck, b.RequireAck = true, true
	if _, err := s.InsertNotifications(ctx, []store.Notification{a, b, c}); err != nil {
		t.Fatal(err)
	}
	r, err := s.Ack(ctx, "u1", "a", now)
	if err != nil || !r.AckedAt.Equal(now) || !r.MarkedRead {
		t.Fatalf("ack = %+v, %v", r, err)
	}
	r2, err := s.Ack(ctx, "u1", "a", now.Add(time.Second))
	if err != nil || !r2.AckedAt.Equal(now) || r2.MarkedRead {
		t.Fatalf("second ack = %+v, %v", r2, err)
	}
	if _, err := s.Ack(ctx, "u1", "b", now); err != store.ErrNotFound {
		t.Fatalf("other's ack: %v", err)
	}
	if _, err := s.Ack(ctx, "u1", "c", now); err != store.ErrAckNotRequired {
		t.Fatalf("ack not required: %v", err)
	}
	total, acked, pending, err := s.AckStatus(ctx, "s1", now)
	if err != nil || total != 3 || acked != 1 || join(pending) != "u1,u2" {
		t.Fatalf("status = %d %d %v %v", total, acked, pending, err)
	}
	if _, _, _, err := s.AckStatus(ctx, "nope", now); err != store.ErrNotFound {
		t.Fatalf("unknown send: %v", err)
	}
}

func join(s []string) string {
	out := ""
	for i, v := range s {
		if i > 0 {
			out += ","
		}
		out += v
	}
	return out
}
