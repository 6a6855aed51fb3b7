package visibility

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/talim/realtime/pkg/devstack/testkit"
	"github.com/talim/realtime/pkg/subject"
	chatv1 "github.com/talim/realtime/proto/talim/chat/v1"
)

func TestSharedRooms_CachesAndFailsClosed(t *testing.T) {
	n := testkit.NATS(t)
	nc := testkit.NATSConn(t, n.ClientURL())
	var asks atomic.Int32
	sub, err := nc.Subscribe(subject.ChatSharedRooms, func(m *nats.Msg) {
		asks.Add(1)
		var req chatv1.SharedRoomsRequest
		_ = proto.Unmarshal(m.Data, &req)
		var vis []string
		for _, id := range req.GetOtherUserIds() {
			if id == "mate" {
				vis = append(vis, id)
			}
		}
		vis = append(vis, "not-asked") // must be ignored
		b, _ := proto.Marshal(&chatv1.SharedRoomsResponse{VisibleUserIds: vis})
		_ = m.Respond(b)
	})
	if err != nil {
		t.Fatal(err)
	}
	sr := NewSharedRooms(nc, 200*time.Millisecond, time.Minute)
	ctx := context.Background()
	got, err := sr.Visible(ctx, "me", []string{"mate", "stranger"})
	if err != nil || !got["mate"] || got["stranger"] || got["not-asked"] {
		t.Fatalf("visible = %v, %v", got, err)
	}
	if _, err := sr.Visible(ctx, "me", []string{"stranger", "mate"}); err != nil || asks.Load() != 1 {
		t.Fatalf("cached lookup asked chat: asks=%d err=%v", asks.Load(), err)
	}
	if _, err := sr.Visible(ctx, "me", []string{"mate", "new"}); err != nil || asks.Load() != 2 {
		t.Fatalf("partial miss: asks=%d err=%v", asks.Load(), err)
	}
	sr.Invalidate()
	if _, err := sr.Visible(ctx, "me", []string{"mate"}); err != nil || asks.Load() != 3 {
		t.Fatalf("after invalidate: asks=%d err=%v", asks.Load(), err)
	}
	_ = sub.Unsubscribe()
	if _, err := sr.Visible(ctx, "me", []string{"other"}); !errors.Is(err, ErrChat) {
		t.Fatalf("chat gone: err = %v", err)
	}
	all, _ := All{}.Visible(ctx, "me", []string{"a", "b"})
	if keys := slices.Sorted(func(yield func(string) bool) {
		for k := range all {
			if !yield(k) {
				return
			}
		}
	}); !slices.Equal(keys, []string{"a", "b"}) {
		t.Fatalf("all = %v", all)
	}
}
