package presence

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/talim/realtime/pkg/devstack/testkit"
	"github.com/talim/realtime/pkg/subject"
	chatv1 "github.com/talim/realtime/proto/talim/chat/v1"
	"github.com/talim/realtime/services/presence/internal/core"
)

// tolerance is the allowed lateness of an event on a loaded 2-core CI machine
// under -race; the design target is a few milliseconds (see the latency log lines).
const tolerance = 250 * time.Millisecond

func TestPresence_MultiDevice_OfflineOnlyAfterLastConnectionAndGrace(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.start(nil)
	e1, e2 := h.edge("e1"), h.edge("e2")

	start := time.Now()
	e1.connect("c1", "u1")
	on := h.waitChange("u1", 1, 2*time.Second)
	if on.sc.GetStatus() != "online" {
		t.Fatalf("first change = %v", on.sc)
	}
	t.Logf("latency connect → online published: %s", on.at.Sub(start))
	if on.at.Sub(start) > tolerance {
		t.Errorf("online published after %s", on.at.Sub(start))
	}
	e2.connect("c2", "u1") // second device on another edge: no event
	e1.disconnect("c1")    // one device left: still online
	h.expectNoMore("u1", 1, testGrace+100*time.Millisecond)

	closed := time.Now()
	e2.disconnect("c2")
	off := h.waitChange("u1", 2, 2*time.Second)
	if off.sc.GetStatus() != "offline" || off.sc.GetVersion() <= on.sc.GetVersion() || off.sc.GetLastSeenAt() == "" {
		t.Fatalf("second change = %v", off.sc)
	}
	lat := off.at.Sub(closed)
	t.Logf("latency last disconnect → offline published: %s (grace %s)", lat, testGrace)
	if lat < testGrace || lat > testGrace+tolerance {
		t.Errorf("offline published %s after the last disconnect, want grace %s + < %s", lat, testGrace, tolerance)
	}
	// lastSeenAt is persisted.
	_, db := mongoDB(t, h)
	testkit.Eventually(t, 5*time.Second, func() bool {
		var d struct {
			LastSeenAt time.Time `bson:"lastSeenAt"`
		}
		err := db.Collection("presence").FindOne(context.Background(), bson.D{{Key: "_id", Value: "u1"}}).Decode(&d)
		return err == nil && d.LastSeenAt.UTC().Format(core.LastSeenLayout) == off.sc.GetLastSeenAt()
	}, "lastSeenAt stored")
}

func TestPresence_GracePeriod_ReconnectCausesNoOfflineEvent(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.start(nil)
	e1, e2 := h.edge("e1"), h.edge("e2")
	e1.connect("c1", "u1")
	h.waitChange("u1", 1, 2*time.Second)
	e1.disconnect("c1")
	e2.connect("c2", "u1") // reconnect elsewhere within the grace period
	h.expectNoMore("u1", 1, testGrace+200*time.Millisecond)
	if r := h.query("u1"); len(r.Online) != 1 || r.Statuses["u1"] != "online" {
		t.Fatalf("query = %+v", r)
	}
}

func TestPresence_EdgeDiesWithoutCleanup_UsersOfflineWithinTwoIntervals(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.start(nil)
	e1, e2 := h.edge("e1"), h.edge("e2")
	e1.connect("c1", "u1")
	e2.connect("c2", "u2")
	h.waitChange("u1", 1, 2*time.Second)
	h.waitChange("u2", 1, 2*time.Second)
	// Let a few heartbeats go by, then kill e1 right after one of them.
	testkit.Eventually(t, 2*time.Second, func() bool { return h.query("u1").Statuses["u1"] == "online" })
	e1.kill()
	died := time.Now() // the last heartbeat went out at or before this
	off := h.waitChange("u1", 2, 2*time.Second)
	if off.sc.GetStatus() != "offline" {
		t.Fatalf("change = %v", off.sc)
	}
	lat := off.at.Sub(died)
	t.Logf("edge died → offline published: %s (2 intervals = %s)", lat, 2*testHeartbeat)
	if lat > 2*testHeartbeat+tolerance {
		t.Errorf("offline after %s, want within two intervals (%s)", lat, 2*testHeartbeat)
	}
	// u2 on the live edge is unaffected.
	h.expectNoMore("u2", 1, 3*testHeartbeat)
}

func TestPresence_Restart_RecoversStateFromNextHeartbeat(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	_, stop := h.start(nil)
	e1 := h.edge("e1")
	e1.connect("c1", "u1")
	h.waitChange("u1", 1, 2*time.Second)
	stop()

	h.start(nil) // a fresh replica that missed the connect event
	restarted := time.Now()
	testkit.Eventually(t, 2*time.Second, func() bool { return h.query("u1").Statuses["u1"] == "online" },
		"restarted replica learns u1 from the next heartbeat")
	t.Logf("state recovered %s after restart (heartbeat %s)", time.Since(restarted), testHeartbeat)
	// Recovery announces nothing (u1 was online all along)...
	h.expectNoMore("u1", 1, 2*testHeartbeat)
	// ...and later changes are announced as usual.
	e1.disconnect("c1")
	if off := h.waitChange("u1", 2, 2*time.Second); off.sc.GetStatus() != "offline" {
		t.Fatalf("change = %v", off.sc)
	}
}

func TestPresence_TwoReplicas_PublishIdenticalChanges(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.start(nil)
	h.start(nil)
	e1, e2 := h.edge("e1"), h.edge("e2")
	e1.connect("c1", "u1")
	e2.connect("c2", "u1")
	h.waitChange("u1", 2, 2*time.Second) // online, from each replica
	r := h.command("u1", "e1", "c1", "set-status", `{"status":"busy"}`)
	if r.GetError() != nil || string(r.GetData()) != `{"status":"busy"}` {
		t.Fatalf("set-status = %v %s", r.GetError(), r.GetData())
	}
	h.waitChange("u1", 4, 2*time.Second) // busy ×2
	e1.disconnect("c1")
	e2.disconnect("c2")
	h.waitChange("u1", 6, 2*time.Second) // offline ×2
	h.expectNoMore("u1", 6, 100*time.Millisecond)

	byVersion := map[int64][]string{}
	for _, c := range h.changesFor("u1") {
		byVersion[c.sc.GetVersion()] = append(byVersion[c.sc.GetVersion()], c.sc.GetStatus()+"@"+c.sc.GetLastSeenAt())
	}
	if len(byVersion) != 3 {
		t.Fatalf("want 3 distinct versions, each published by both replicas; got %v", byVersion)
	}
	for v, cs := range byVersion {
		if len(cs) != 2 || cs[0] != cs[1] {
			t.Fatalf("version %d published as %v", v, cs)
		}
	}
}

func TestPresence_Invisible_LooksOfflineAndFreezesLastSeen(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.start(nil)
	e1 := h.edge("e1")
	e1.connect("c1", "u1")
	e1.connect("c2", "u2")
	h.waitChange("u1", 1, 2*time.Second)

	r := h.command("u1", "e1", "c1", "set-status", `{"status":"invisible"}`)
	if r.GetError() != nil || string(r.GetData()) != `{"status":"invisible"}` {
		t.Fatalf("set-status = %v %s", r.GetError(), r.GetData())
	}
	off := h.waitChange("u1", 2, 2*time.Second)
	if off.sc.GetStatus() != "offline" || off.sc.GetLastSeenAt() == "" {
		t.Fatalf("invisible published as %v", off.sc)
	}
	frozen := off.sc.GetLastSeenAt()
	items, _ := h.subscribe("u2", "e1", "c2", "u1")
	if it := items["u1"]; it.Status != "offline" || it.LastSeenAt == nil || *it.LastSeenAt != frozen {
		t.Fatalf("u2 sees %+v, want offline at %s", it, frozen)
	}
	if q := h.query("u1"); q.Statuses["u1"] != "offline" || len(q.Online) != 1 {
		t.Fatalf("query = %+v (internal callers see the live connection)", q)
	}
	// Activity and disconnecting while invisible publish nothing and do not move lastSeenAt.
	e1.connect("c3", "u1")
	e1.disconnect("c1")
	e1.disconnect("c3")
	h.expectNoMore("u1", 2, testGrace+150*time.Millisecond)
	items, _ = h.subscribe("u2", "e1", "c2", "u1")
	if it := items["u1"]; it.Status != "offline" || it.LastSeenAt == nil || *it.LastSeenAt != frozen {
		t.Fatalf("u2 sees %+v after u1 left, want lastSeenAt still %s", it, frozen)
	}
	// The status survives a restart (stored), so u1 stays hidden when reconnecting.
	_, db := mongoDB(t, h)
	var d struct {
		Status     string    `bson:"status"`
		LastSeenAt time.Time `bson:"lastSeenAt"`
	}
	testkit.Eventually(t, 5*time.Second, func() bool {
		err := db.Collection("presence").FindOne(context.Background(), bson.D{{Key: "_id", Value: "u1"}}).Decode(&d)
		return err == nil && d.Status == "invisible" && !d.LastSeenAt.IsZero()
	})
	if got := d.LastSeenAt.UTC().Format(core.LastSeenLayout); got != frozen {
		t.Fatalf("stored lastSeenAt %s, want frozen %s", got, frozen)
	}
	e1.connect("c4", "u1")
	h.expectNoMore("u1", 2, 200*time.Millisecond)
	// Visible again.
	h.command("u1", "e1", "c4", "set-status", `{"status":"online"}`)
	if on := h.waitChange("u1", 3, 2*time.Second); on.sc.GetStatus() != "online" {
		t.Fatalf("change = %v", on.sc)
	}
}

func TestPresence_Visibility_SharedRoom(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.start(func(c *Config) { c.Visibility = VisibilitySharedRoom })
	fc := h.fakeChat(map[string][]string{"room-123": {"u1", "u2"}})
	e1 := h.edge("e1")
	e1.connect("c1", "u1")
	e1.connect("c2", "u2")
	h.waitChange("u2", 1, 2*time.Second)

	items, r := h.subscribe("u1", "e1", "c1", "u2", "u3", "u1")
	if items["u2"].Status != "online" || items["u2"].LastSeenAt == nil {
		t.Fatalf("room mate: %+v", items["u2"])
	}
	if items["u3"].Status != "unknown" || items["u3"].LastSeenAt != nil {
		t.Fatalf("stranger: %+v", items["u3"])
	}
	if items["u1"].Status != "online" {
		t.Fatalf("self: %+v", items["u1"])
	}
	if got := strings.Join(r.GetWatchUsers(), ","); got != "u2,u1" {
		t.Fatalf("watch_users = %s", got)
	}
	// Cached: a second subscribe does not ask chat again.
	fc.mu.Lock()
	asks := fc.asks
	fc.mu.Unlock()
	h.subscribe("u1", "e1", "c1", "u2", "u3")
	fc.mu.Lock()
	if fc.asks != asks {
		t.Errorf("chat asked again (%d → %d) despite the cache", asks, fc.asks)
	}
	fc.mu.Unlock()
	// A membership change invalidates the cache.
	fc.setRoom("room-9", "u1", "u3")
	b, _ := protoMarshal(&chatv1.MembershipChanged{RoomId: "room-9"})
	if err := h.nc.Publish(subject.Membership("room-9"), b); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 2*time.Second, func() bool {
		items, _ := h.subscribe("u1", "e1", "c1", "u3")
		return items["u3"].Status == "offline"
	}, "u3 visible after joining a shared room")
	// Chat down: fail closed.
	if err := fc.sub.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	items, r = h.subscribe("u2", "e1", "c2", "u1")
	if items["u1"].Status != "unknown" || len(r.GetWatchUsers()) != 0 {
		t.Fatalf("chat down: %+v watch %v", items, r.GetWatchUsers())
	}
}

func TestPresence_Visibility_All(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.start(func(c *Config) { c.Visibility = VisibilityAll })
	e1 := h.edge("e1")
	e1.connect("c1", "u1")
	h.waitChange("u1", 1, 2*time.Second)
	items, r := h.subscribe("u9", "e1", "c9", "u1", "never-seen")
	if items["u1"].Status != "online" || items["never-seen"].Status != "offline" || items["never-seen"].LastSeenAt != nil {
		t.Fatalf("items = %+v", items)
	}
	if len(r.GetWatchUsers()) != 2 {
		t.Fatalf("watch_users = %v", r.GetWatchUsers())
	}
}

func TestPresence_SubscriptionLimit_200PerConnection(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	a, _ := h.start(nil)
	b, _ := h.start(nil) // commands are spread over both replicas
	h.connect("e1", "c1", "viewer")
	ids := func(from, n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("user-%d", from+i)
		}
		return out
	}
	h.subscribe("viewer", "e1", "c1", ids(0, 150)...)
	waitWatch := func(n int) {
		t.Helper()
		testkit.Eventually(t, 2*time.Second, func() bool {
			return a.watches.Len("e1", "c1") == n && b.watches.Len("e1", "c1") == n
		}, "both replicas hold %d subscriptions", n)
	}
	waitWatch(150)
	h.subscribe("viewer", "e1", "c1", ids(100, 100)...) // 50 already held: 200 in all
	waitWatch(200)
	r := h.command("viewer", "e1", "c1", "subscribe-presence", `{"userIds":["one-too-many"]}`)
	if r.GetError().GetCode() != "bad_request" || !strings.Contains(r.GetError().GetMessage(), "200") {
		t.Fatalf("201st subscription: %v", r.GetError())
	}
	// Re-subscribing held ids is fine.
	h.subscribe("viewer", "e1", "c1", ids(0, 10)...)
	r = h.command("viewer", "e1", "c1", "unsubscribe-presence", `{"userIds":["user-0","user-1"]}`)
	if r.GetError() != nil || string(r.GetData()) != "{}" || len(r.GetUnwatchUsers()) != 2 {
		t.Fatalf("unsubscribe = %v %s %v", r.GetError(), r.GetData(), r.GetUnwatchUsers())
	}
	waitWatch(198)
	h.subscribe("viewer", "e1", "c1", "x1", "x2")
	waitWatch(200)
	// Another connection has its own budget.
	h.subscribe("viewer", "e1", "c2", ids(0, 200)...)
	// A closed connection's subscriptions are forgotten.
	h.disconnect("e1", "c1", "viewer")
	waitWatch(0)
	h.subscribe("viewer", "e1", "c1", ids(300, 200)...)
}

func TestPresence_BadInput(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.start(nil)
	many := make([]string, 10000)
	for i := range many {
		many[i] = fmt.Sprintf("%q", fmt.Sprint("u", i))
	}
	cases := []struct {
		name, event, data string
	}{
		{"missing userIds", "subscribe-presence", `{}`},
		{"null userIds", "subscribe-presence", `{"userIds":null}`},
		{"non-string id", "subscribe-presence", `{"userIds":[1]}`},
		{"operator object as userIds", "subscribe-presence", `{"userIds":{"$gt":""}}`},
		{"operator object as id", "subscribe-presence", `{"userIds":[{"$gt":""}]}`},
		{"empty id", "subscribe-presence", `{"userIds":[""]}`},
		{"huge id", "subscribe-presence", `{"userIds":["` + strings.Repeat("x", 300) + `"]}`},
		{"10k ids", "subscribe-presence", `{"userIds":[` + strings.Join(many, ",") + `]}`},
		{"data not an object", "subscribe-presence", `["u1"]`},
		{"invalid json", "subscribe-presence", `{"userIds":`},
		{"unsubscribe non-string", "unsubscribe-presence", `{"userIds":[true]}`},
		{"unsubscribe 10k", "unsubscribe-presence", `{"userIds":[` + strings.Join(many, ",") + `]}`},
		{"status missing", "set-status", `{}`},
		{"status offline", "set-status", `{"status":"offline"}`},
		{"status unknown word", "set-status", `{"status":"sleeping"}`},
		{"status operator", "set-status", `{"status":{"$gt":""}}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			r := h.command("u1", "e1", "c1", tc.event, tc.data)
			if r.GetError().GetCode() != "bad_request" {
				t.Fatalf("reply = %v %s, want bad_request", r.GetError(), r.GetData())
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("took %s", d)
			}
		})
	}
	// "$gt" as a plain string is just an (unknown) user id.
	items, _ := h.subscribe("u1", "e1", "c1", "$gt")
	if items["$gt"].Status != "offline" {
		t.Fatalf("items = %+v", items)
	}
	// Query endpoint: bad request is reported, not crashed on.
	m, err := h.nc.Request(subject.PresenceQuery, []byte(`{"userIds":{"$gt":""}}`), 5*time.Second)
	if err != nil || !strings.Contains(string(m.Data), `"error"`) {
		t.Fatalf("query bad input: %v %s", err, m.Data)
	}
}

func TestPresence_Query(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.start(nil)
	e1 := h.edge("e1")
	e1.connect("c1", "u1")
	e1.connect("c2", "u2")
	h.waitChange("u2", 1, 2*time.Second)
	h.command("u2", "e1", "c2", "set-status", `{"status":"away"}`)
	h.waitChange("u2", 2, 2*time.Second)
	r := h.query("u1", "u2", "u3")
	if strings.Join(r.Online, ",") != "u1,u2" || r.Statuses["u1"] != "online" || r.Statuses["u2"] != "away" || r.Statuses["u3"] != "offline" {
		t.Fatalf("query = %+v", r)
	}
}

func mongoDB(t *testing.T, h *harness) (*mongo.Client, *mongo.Database) {
	t.Helper()
	c, err := mongo.Connect(options.Client().ApplyURI(h.mongoURI))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Disconnect(context.Background()) })
	return c, c.Database(h.db)
}

func TestPresence_EdgeStopping_UsersOfflineAfterGrace(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.start(nil)
	h.connect("e1", "c1", "u1")
	h.heartbeat("e1", map[string]string{"c1": "u1"}, false)
	if on := h.waitChange("u1", 1, 2*time.Second); on.sc.GetStatus() != "online" {
		t.Fatalf("change = %v", on.sc)
	}
	stopped := time.Now()
	h.heartbeat("e1", nil, true) // draining edge: its connections are gone
	off := h.waitChange("u1", 2, 2*time.Second)
	if off.sc.GetStatus() != "offline" {
		t.Fatalf("change = %v", off.sc)
	}
	if lat := off.at.Sub(stopped); lat < testGrace || lat > testGrace+tolerance {
		t.Errorf("offline %s after the stopping heartbeat, want the grace period %s", lat, testGrace)
	}
	testkit.Eventually(t, time.Second, func() bool { return h.query("u1").Statuses["u1"] == "offline" })
}
