package core

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/talim/realtime/services/chat/internal/store"
)

func pageOf(n int, content string) []store.Message {
	msgs := make([]store.Message, n)
	for i := range msgs {
		msgs[i] = store.Message{ID: "m", RoomID: "r", Seq: int64(i + 1), SenderID: "u", Type: "text", Content: content}
	}
	return msgs
}

func TestNewPage_CapsEncodedBytes(t *testing.T) {
	escaped := strings.Repeat("<", 4000) // 24 KB per message once JSON-escaped
	tests := []struct {
		name       string
		msgs       []store.Message
		more       bool
		keepNewest bool
		wantN      int // 0: fewer than len(msgs), checked by bytes
		wantFirst  int64
		wantLast   int64
		wantMore   bool
	}{
		{name: "small page unchanged", msgs: pageOf(50, "hi"), wantN: 50, wantFirst: 1, wantLast: 50},
		{name: "small page keeps more", msgs: pageOf(50, "hi"), more: true, wantN: 50, wantFirst: 1, wantLast: 50, wantMore: true},
		{name: "empty page", msgs: nil, wantN: 0},
		{name: "resume keeps the oldest", msgs: pageOf(50, escaped), wantFirst: 1, wantMore: true},
		{name: "newest page keeps the newest", msgs: pageOf(50, escaped), keepNewest: true, wantLast: 50, wantMore: true},
		{name: "one message over the cap is still sent", msgs: pageOf(1, strings.Repeat("<", MaxPageBytes)), wantN: 1, wantFirst: 1, wantLast: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := newPage("r", tc.msgs, tc.more, tc.keepNewest)
			if err != nil {
				t.Fatal(err)
			}
			if p.HasMore != tc.wantMore {
				t.Errorf("hasMore = %v, want %v", p.HasMore, tc.wantMore)
			}
			if p.Messages == nil {
				t.Fatal("messages encode as null, want []")
			}
			if tc.wantN > 0 || len(tc.msgs) == 0 {
				if len(p.Messages) != tc.wantN {
					t.Fatalf("%d messages, want %d", len(p.Messages), tc.wantN)
				}
			} else {
				b, _ := json.Marshal(p)
				if len(p.Messages) == 0 || len(p.Messages) >= len(tc.msgs) || len(b) > MaxPageBytes+1024 {
					t.Fatalf("%d of %d messages, %d bytes; want fewer within %d", len(p.Messages), len(tc.msgs), len(b), MaxPageBytes)
				}
			}
			seq := func(i int) int64 {
				var m struct{ Seq int64 }
				if err := json.Unmarshal(p.Messages[i], &m); err != nil {
					t.Fatal(err)
				}
				return m.Seq
			}
			if tc.wantFirst > 0 && seq(0) != tc.wantFirst {
				t.Errorf("first seq %d, want %d", seq(0), tc.wantFirst)
			}
			if tc.wantLast > 0 && seq(len(p.Messages)-1) != tc.wantLast {
				t.Errorf("last seq %d, want %d", seq(len(p.Messages)-1), tc.wantLast)
			}
		})
	}
}
