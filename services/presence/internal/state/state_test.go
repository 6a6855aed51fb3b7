package state

import (
	"testing"
	"time"
)

var t0 = time.UnixMilli(1_700_000_000_000)

const (
	grace = 300 * time.Millisecond
	hbInt = 200 * time.Millisecond
)

func newTracker(now time.Time) *Tracker {
	return New(Config{Grace: grace, Heartbeat: hbInt}, now)
}

func ms(d time.Duration) int64 { return t0.Add(d).UnixMilli() }

func wantChanges(t *testing.T, r Result, want ...Change) {
	t.Helper()
	if len(r.Changes) != len(want) {
		t.Fatalf("changes = %+v, want %+v", r.Changes, want)
	}
	for i := range want {
		got := r.Changes[i]
		w := want[i]
		if got.UserID != w.UserID || got.Status != w.Status || (w.LastSeenMs != 0 && got.LastSeenMs != w.LastSeenMs) ||
			(w.Version != 0 && got.Version != w.Version) {
			t.Fatalf("change %d = %+v, want %+v", i, got, w)
		}
	}
}

func TestTracker_MultiDevice_OfflineAfterLastConnectionAndGrace(t *testing.T) {
	tr := newTracker(t0)
	wantChanges(t, tr.Connected("e1", "c1", "u1", ms(0), t0), Change{UserID: "u1", Status: Online, Version: ms(0) * 1000})
	wantChanges(t, tr.Connected("e2", "c2", "u1", ms(10*time.Millisecond), t0.Add(10*time.Millisecond)))
	wantChanges(t, tr.Disconnected("e1", "c1", ms(50*time.Millisecond), t0.Add(50*time.Millisecond)))
	wantChanges(t, tr.Disconnected("e2", "c2", ms(100*time.Millisecond), t0.Add(100*time.Millisecond)))
	r, next := tr.Advance(t0.Add(399 * time.Millisecond))
	wantChanges(t, r)
	if !next.Equal(t0.Add(400 * time.Millisecond)) {
		t.Fatalf("next = %v, want grace end", next.Sub(t0))
	}
	r, _ = tr.Advance(t0.Add(400 * time.Millisecond))
	wantChanges(t, r, Change{UserID: "u1", Status: Offline, LastSeenMs: ms(100 * time.Millisecond), Version: ms(100*time.Millisecond) * 1000})
	if !r.Changes[0].PersistLastSeen {
		t.Fatal("offline change must persist lastSeenAt")
	}
	if st := tr.Stats(); st.OnlineUsers != 0 || st.Connections != 0 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestTracker_ReconnectWithinGrace_NoFlap(t *testing.T) {
	tr := newTracker(t0)
	tr.Connected("e1", "c1", "u1", ms(0), t0)
	tr.Disconnected("e1", "c1", ms(10*time.Millisecond), t0.Add(10*time.Millisecond))
	wantChanges(t, tr.Connected("e2", "c2", "u1", ms(200*time.Millisecond), t0.Add(200*time.Millisecond)))
	r, _ := tr.Advance(t0.Add(550 * time.Millisecond)) // grace over, e2 not yet expired
	wantChanges(t, r)
	if v := tr.View([]string{"u1"})[0]; v.Status != Online {
		t.Fatalf("view = %+v", v)
	}
}

func TestTracker_EdgeExpires_AfterTwoIntervals(t *testing.T) {
	tr := newTracker(t0)
	tr.Heartbeat("e1", nil, hbInt, ms(0), false, t0)
	tr.Connected("e1", "c1", "u1", ms(5*time.Millisecond), t0.Add(5*time.Millisecond))
	tr.Connected("e2", "c2", "u2", ms(5*time.Millisecond), t0.Add(5*time.Millisecond))
	tr.Heartbeat("e2", []HeartbeatConn{{"c2", "u2"}}, hbInt, ms(390*time.Millisecond), false, t0.Add(390*time.Millisecond))
	r, _ := tr.Advance(t0.Add(404 * time.Millisecond))
	wantChanges(t, r)
	r, _ = tr.Advance(t0.Add(405 * time.Millisecond)) // e1 last heard at 5ms
	wantChanges(t, r, Change{UserID: "u1", Status: Offline, LastSeenMs: ms(5 * time.Millisecond)})
	if len(r.GoneEdges) != 1 || r.GoneEdges[0] != "e1" {
		t.Fatalf("gone edges = %v", r.GoneEdges)
	}
	if st := tr.Stats(); st.Edges != 1 || st.Connections != 1 || st.OnlineUsers != 1 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestTracker_Restart_AdoptsHeartbeatSilently(t *testing.T) {
	tr := newTracker(t0)
	r := tr.Heartbeat("e1", []HeartbeatConn{{"c1", "u1"}, {"c2", "u2"}}, hbInt, ms(100*time.Millisecond), false, t0.Add(100*time.Millisecond))
	wantChanges(t, r) // they were online before this replica started
	if v := tr.View([]string{"u1", "u2"}); v[0].Status != Online || v[1].Status != Online {
		t.Fatalf("views = %+v", v)
	}
	// After the warm-up, an unknown edge's heartbeat is news (e.g. an edge back from
	// a partition) and is announced.
	later := t0.Add(time.Second)
	wantChanges(t, tr.Heartbeat("e2", []HeartbeatConn{{"c3", "u3"}}, hbInt, later.UnixMilli(), false, later),
		Change{UserID: "u3", Status: Online})
	// A later disconnect is announced with the version every replica computes.
	at := later.Add(10 * time.Millisecond)
	wantChanges(t, tr.Disconnected("e1", "c1", at.UnixMilli(), at))
	r, _ = tr.Advance(at.Add(grace))
	wantChanges(t, r, Change{UserID: "u1", Status: Offline, Version: at.UnixMilli() * 1000})
}

func TestTracker_HeartbeatOlderThanEvents_DoesNotUndoThem(t *testing.T) {
	tr := newTracker(t0)
	tr.Heartbeat("e1", []HeartbeatConn{{"c1", "u1"}}, hbInt, ms(0), false, t0)
	// c2 connects and c1 closes after the edge took its next snapshot...
	tr.Connected("e1", "c2", "u2", ms(60*time.Millisecond), t0.Add(60*time.Millisecond))
	tr.Disconnected("e1", "c1", ms(70*time.Millisecond), t0.Add(70*time.Millisecond))
	// ...which arrives later: it must neither drop c2 nor revive c1.
	tr.Heartbeat("e1", []HeartbeatConn{{"c1", "u1"}}, hbInt, ms(50*time.Millisecond), false, t0.Add(80*time.Millisecond))
	v := tr.View([]string{"u1", "u2"})
	if v[1].Status != Online {
		t.Fatalf("u2 = %+v", v[1])
	}
	r, _ := tr.Advance(t0.Add(80*time.Millisecond + grace))
	wantChanges(t, r, Change{UserID: "u1", Status: Offline, LastSeenMs: ms(70 * time.Millisecond)})
	// A heartbeat missing a connection it should list removes it.
	tr.Heartbeat("e1", nil, hbInt, ms(500*time.Millisecond), false, t0.Add(500*time.Millisecond))
	r, _ = tr.Advance(t0.Add(500*time.Millisecond + grace))
	wantChanges(t, r, Change{UserID: "u2", Status: Offline, LastSeenMs: ms(500 * time.Millisecond)})
}

func TestTracker_StoppingHeartbeat(t *testing.T) {
	tr := newTracker(t0)
	tr.Connected("e1", "c1", "u1", ms(0), t0)
	r := tr.Heartbeat("e1", nil, hbInt, ms(10*time.Millisecond), true, t0.Add(10*time.Millisecond))
	if len(r.GoneEdges) != 1 || len(r.GoneConns) != 1 {
		t.Fatalf("result = %+v", r)
	}
	r, _ = tr.Advance(t0.Add(10*time.Millisecond + grace))
	wantChanges(t, r, Change{UserID: "u1", Status: Offline, LastSeenMs: ms(10 * time.Millisecond)})
	if st := tr.Stats(); st.Edges != 0 || st.Connections != 0 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestTracker_Invisible_LooksOffline_LastSeenFrozen(t *testing.T) {
	tr := newTracker(t0)
	tr.Connected("e1", "c1", "u1", ms(0), t0)
	wantChanges(t, tr.SetStatus("u1", Away, ms(10*time.Millisecond), t0), Change{UserID: "u1", Status: Away})
	wantChanges(t, tr.SetStatus("u1", Invisible, ms(20*time.Millisecond), t0),
		Change{UserID: "u1", Status: Offline, LastSeenMs: ms(20 * time.Millisecond)})
	// An older status event arriving late is ignored.
	wantChanges(t, tr.SetStatus("u1", Busy, ms(15*time.Millisecond), t0))
	// Still connected, later disconnects: nothing visible changes, lastSeenAt stays.
	tr.Connected("e1", "c2", "u1", ms(30*time.Millisecond), t0)
	tr.Disconnected("e1", "c1", ms(40*time.Millisecond), t0)
	tr.Disconnected("e1", "c2", ms(50*time.Millisecond), t0)
	r, _ := tr.Advance(t0.Add(time.Second))
	wantChanges(t, r)
	v := tr.View([]string{"u1"})[0]
	if v.Status != Offline || v.LastSeenMs != ms(20*time.Millisecond) {
		t.Fatalf("view = %+v", v)
	}
	// Visible again while connected.
	tr.Connected("e1", "c3", "u1", ms(2*time.Second), t0.Add(2*time.Second))
	wantChanges(t, tr.SetStatus("u1", Online, ms(2100*time.Millisecond), t0), Change{UserID: "u1", Status: Online})
}

func TestTracker_Replicas_SameVersions(t *testing.T) {
	// Two replicas see the same events at different local times.
	a, b := newTracker(t0), newTracker(t0.Add(-time.Hour))
	type step func(tr *Tracker, skew time.Duration) Result
	steps := []step{
		func(tr *Tracker, s time.Duration) Result { return tr.Connected("e1", "c1", "u1", ms(0), t0.Add(s)) },
		func(tr *Tracker, s time.Duration) Result {
			return tr.SetStatus("u1", Busy, ms(0), t0.Add(s)) // same ms as the connect
		},
		func(tr *Tracker, s time.Duration) Result {
			return tr.Disconnected("e1", "c1", ms(5*time.Millisecond), t0.Add(5*time.Millisecond+s))
		},
		func(tr *Tracker, s time.Duration) Result { r, _ := tr.Advance(t0.Add(time.Second + s)); return r },
	}
	var va, vb []Change
	for _, st := range steps {
		va = append(va, st(a, 0).Changes...)
		vb = append(vb, st(b, 7*time.Millisecond).Changes...)
	}
	if len(va) != 3 || len(va) != len(vb) {
		t.Fatalf("a = %+v\nb = %+v", va, vb)
	}
	for i := range va {
		if va[i] != vb[i] {
			t.Fatalf("change %d differs: %+v vs %+v", i, va[i], vb[i])
		}
		if i > 0 && va[i].Version <= va[i-1].Version {
			t.Fatalf("versions not increasing: %+v", va)
		}
	}
}
