package e2e

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/talim/realtime/services/edge/edgetest"
	"github.com/talim/realtime/services/talim"
)

type presenceEvent struct {
	UserID     string  `json:"userId"`
	Status     string  `json:"status"`
	LastSeenAt *string `json:"lastSeenAt"`
}

func subscribePresence(t *testing.T, c *edgetest.Client, ids ...string) map[string]presenceEvent {
	t.Helper()
	data, perr := c.Request("subscribe-presence", map[string]any{"userIds": ids})
	if perr != nil {
		t.Fatalf("subscribe-presence: %v", perr)
	}
	var ack struct {
		Presence []presenceEvent `json:"presence"`
	}
	if err := json.Unmarshal(data, &ack); err != nil {
		t.Fatalf("ack %s: %v", data, err)
	}
	out := map[string]presenceEvent{}
	for _, p := range ack.Presence {
		out[p.UserID] = p
	}
	return out
}

func expectPresence(t *testing.T, c *edgetest.Client, user, status string, timeout time.Duration) presenceEvent {
	t.Helper()
	var ev presenceEvent
	if err := json.Unmarshal(c.Expect(t, "presence", timeout), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.UserID != user || ev.Status != status {
		t.Fatalf("presence event = %+v, want %s %s", ev, user, status)
	}
	return ev
}

// Two users who share room-123 see each other come online and go offline across two
// connections; a stranger gets unknown.
func TestPresenceE2E_RoomMatesSeeEachOther_StrangerGetsUnknown(t *testing.T) {
	const grace = 500 * time.Millisecond
	st := newStack(t, func(c *talim.ServiceConfigs) { c.Presence.Grace = grace })

	watcher := edgetest.Dial(t, st.WSURL, token(t, st, "s1"))
	items := subscribePresence(t, watcher, "s2", "stranger")
	if items["s2"].Status != "offline" {
		t.Fatalf("s2 before connecting: %+v", items["s2"])
	}
	if items["stranger"].Status != "unknown" || items["stranger"].LastSeenAt != nil {
		t.Fatalf("stranger: %+v", items["stranger"])
	}

	start := time.Now()
	phone := edgetest.Dial(t, st.WSURL, token(t, st, "s2"))
	expectPresence(t, watcher, "s2", "online", 2*time.Second)
	t.Logf("connect → presence online at the watcher: %s", time.Since(start))

	laptop := edgetest.Dial(t, st.WSURL, token(t, st, "s2"))
	phone.Close()
	watcher.ExpectNone(t, "presence", grace+300*time.Millisecond) // one device left

	closed := time.Now()
	laptop.Close()
	off := expectPresence(t, watcher, "s2", "offline", grace+2*time.Second)
	lat := time.Since(closed)
	t.Logf("last close → presence offline at the watcher: %s (grace %s)", lat, grace)
	if lat < grace {
		t.Errorf("offline after %s, before the grace period %s ended", lat, grace)
	}
	if off.LastSeenAt == nil {
		t.Fatalf("offline event without lastSeenAt: %+v", off)
	}

	// The stranger shares no room with s1: s1's presence is unknown to them.
	stranger := edgetest.Dial(t, st.WSURL, token(t, st, "stranger"))
	if got := subscribePresence(t, stranger, "s1")["s1"]; got.Status != "unknown" || got.LastSeenAt != nil {
		t.Fatalf("stranger sees s1 as %+v", got)
	}
	// ...and receives nothing when s1's status changes.
	if _, perr := watcher.Request("set-status", map[string]any{"status": "away"}); perr != nil {
		t.Fatalf("set-status: %v", perr)
	}
	stranger.ExpectNone(t, "presence", 500*time.Millisecond)

	// s2 sees s1 as away (room mates).
	s2 := edgetest.Dial(t, st.WSURL, token(t, st, "s2"))
	if got := subscribePresence(t, s2, "s1")["s1"]; got.Status != "away" {
		t.Fatalf("s2 sees s1 as %+v", got)
	}
}
