package edge

import (
	"fmt"
	"testing"
	"time"
)

func TestSIORecoveryStore_BoundsAndOwner(t *testing.T) {
	now := time.Unix(1000, 0)
	st := newSIORecoveryStore(time.Minute, 3)
	st.now = func() time.Time { return now }
	for i := range 5 {
		st.put(&sioSaved{pid: fmt.Sprint("p", i), userID: "u"})
	}
	if n := st.len(); n != 3 || len(st.order) != 3 {
		t.Fatalf("kept %d (order %d), want 3", n, len(st.order))
	}
	if st.take("p0", "u") != nil || st.take("p1", "u") != nil {
		t.Fatal("the oldest sessions were not evicted past the bound")
	}
	if st.take("p2", "other") != nil {
		t.Fatal("another user took the session")
	}
	if st.take("p2", "u") == nil || st.take("p2", "u") != nil {
		t.Fatal("a session is taken exactly once by its owner")
	}
	if st.take("", "u") != nil {
		t.Fatal("empty pid")
	}
	now = now.Add(time.Minute + time.Nanosecond)
	if st.take("p3", "u") != nil || st.len() != 0 || len(st.order) != 0 {
		t.Fatalf("expired sessions kept: %d", st.len())
	}
}

func TestParseSIOOffset(t *testing.T) {
	for _, tc := range []struct {
		in   string
		seq  int64
		room string
		ok   bool
	}{
		{"12:room-1", 12, "room-1", true},
		{"0:a:b", 0, "a:b", true},
		{sioOffset(7, "r"), 7, "r", true},
		{"", 0, "", false},
		{"x:r", 0, "", false},
		{"-1:r", 0, "", false},
		{"5:", 0, "", false},
		{"5", 0, "", false},
	} {
		seq, room, ok := parseSIOOffset(tc.in)
		if seq != tc.seq || room != tc.room || ok != tc.ok {
			t.Errorf("parseSIOOffset(%q) = %d %q %v", tc.in, seq, room, ok)
		}
	}
}
