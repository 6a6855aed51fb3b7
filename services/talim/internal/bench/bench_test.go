package bench

import (
	"errors"
	"fmt"
	"math"
	"testing"
	"time"
)

func TestCheckLoopback(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"127.0.0.1", true}, {"127.0.0.2", true}, {"[::1]", true}, {"::1", true}, {"localhost", true},
		{"10.0.0.1", false}, {"example.org", false}, {"0.0.0.0", false}, {"192.168.1.1", false}, {"", false},
		{"::ffff:10.0.0.1", false}, {"127.0.0.1.example.org", false},
	} {
		err := CheckLoopbackHost(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("CheckLoopbackHost(%q) = %v, want ok=%v", tc.in, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrNotLoopback) {
			t.Errorf("CheckLoopbackHost(%q): error %v is not ErrNotLoopback", tc.in, err)
		}
	}
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"http://127.0.0.1:8080", true}, {"ws://127.0.0.2:1/ws", true}, {"http://[::1]:8080/", true},
		{"http://10.0.0.1:8080", false}, {"https://example.org/ws", false}, {"not a url", false},
	} {
		if err := CheckLoopbackURL(tc.url); (err == nil) != tc.ok {
			t.Errorf("CheckLoopbackURL(%q) = %v, want ok=%v", tc.url, err, tc.ok)
		}
	}
	if err := CheckLoopbackAddr("10.0.0.1:9090"); err == nil {
		t.Error("CheckLoopbackAddr accepted 10.0.0.1:9090")
	}
	if err := CheckLoopbackAddr("127.0.0.1:9090"); err != nil {
		t.Errorf("CheckLoopbackAddr(127.0.0.1:9090) = %v", err)
	}
	if ip, _ := SourceIP(0); ip != "127.0.0.2" {
		t.Errorf("SourceIP(0) = %s", ip)
	}
	if _, err := SourceIP(251); err == nil {
		t.Error("SourceIP(251) did not fail")
	}
}

func TestHist_Buckets(t *testing.T) {
	t.Parallel()
	for _, v := range []int64{0, 1, 63, 64, 65, 127, 128, 1000, 12345, 1 << 20, 123456789, 1 << 40} {
		i := bucketOf(v)
		if lo, hi := bucketLow(i), bucketHigh(i); v < lo || v > hi {
			t.Errorf("value %d in bucket %d [%d, %d]", v, i, lo, hi)
		}
		if hi := bucketHigh(i); v >= subCount && float64(hi-v)/float64(v) > 1.0/subCount {
			t.Errorf("value %d: bucket high %d off by more than 1/%d", v, hi, subCount)
		}
	}
	for i := 1; i < histSize-1; i++ {
		if bucketLow(i) != bucketHigh(i-1)+1 {
			t.Fatalf("bucket %d starts at %d, previous ends at %d", i, bucketLow(i), bucketHigh(i-1))
		}
	}
}

func TestHist_Quantiles(t *testing.T) {
	t.Parallel()
	var h Hist
	for v := int64(1); v <= 10000; v++ {
		h.Record(v)
	}
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		want := q * 10000
		got := float64(h.Quantile(q))
		if math.Abs(got-want)/want > 0.02 {
			t.Errorf("q%.3f = %v, want %v ±2%%", q, got, want)
		}
	}
	if h.Quantile(1) != 10000 || h.Min != 1 || h.Max != 10000 || h.N != 10000 {
		t.Errorf("max/min/n = %d/%d/%d", h.Quantile(1), h.Min, h.N)
	}
	if m := h.Mean(); m != 5000.5 {
		t.Errorf("mean %v", m)
	}
	var e Hist
	if e.Quantile(0.99) != 0 || e.Summary().N != 0 {
		t.Error("empty histogram")
	}
}

func TestHist_MergeAndWire(t *testing.T) {
	t.Parallel()
	var a, b Hist
	for v := int64(0); v < 1000; v++ {
		a.Record(v)
		b.Record(v * 1000)
	}
	b.Record(-5) // negatives count as 0
	w := b.Sparse().Hist()
	if w.N != b.N || w.Max != b.Max || w.Quantile(0.5) != b.Quantile(0.5) {
		t.Fatalf("wire round trip: %+v vs %+v", w.Summary(), b.Summary())
	}
	a.Merge(w)
	a.Merge(nil)
	if a.N != 2001 || a.Min != 0 || a.Max != 999000 {
		t.Errorf("merged n/min/max = %d/%d/%d", a.N, a.Min, a.Max)
	}
	if got := a.Quantile(0.25); got > 500 || got < 490 {
		t.Errorf("merged q25 = %d", got)
	}
}

func TestPacer_OpenLoop(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1000, 0)
	s := NewSchedule(t0, 100, 2*time.Second) // every 10 ms, 200 events
	if s.N != 200 || s.Interval != 10*time.Millisecond {
		t.Fatalf("schedule %+v", s)
	}
	p := Pacer{S: s}
	from, to, lag, wait, done := p.Ready(t0.Add(-5 * time.Millisecond))
	if from != to || wait != 5*time.Millisecond || done || lag != 0 {
		t.Fatalf("before start: %d %d %v %v %v", from, to, lag, wait, done)
	}
	// On time at t0: event 0 only.
	if from, to, lag, _, _ = p.Ready(t0); from != 0 || to != 1 || lag != 0 {
		t.Fatalf("at t0: [%d,%d) lag %v", from, to, lag)
	}
	// A stall of 95 ms: events 1..9 are due (10, 20, … 90 ms); the earliest is 85 ms late.
	if from, to, lag, _, _ = p.Ready(t0.Add(95 * time.Millisecond)); from != 1 || to != 10 || lag != 85*time.Millisecond {
		t.Fatalf("after stall: [%d,%d) lag %v", from, to, lag)
	}
	// Nothing new until 100 ms.
	if from, to, _, wait, _ = p.Ready(t0.Add(96 * time.Millisecond)); from != to || wait != 4*time.Millisecond {
		t.Fatalf("between: [%d,%d) wait %v", from, to, wait)
	}
	// Far past the end: the rest at once, then done; never more than N.
	if from, to, _, _, _ = p.Ready(t0.Add(time.Hour)); from != 10 || to != 200 {
		t.Fatalf("catch up: [%d,%d)", from, to)
	}
	if _, _, _, _, done = p.Ready(t0.Add(time.Hour)); !done || p.Sent() != 200 {
		t.Fatalf("done %v sent %d", done, p.Sent())
	}
	if z := NewSchedule(t0, 0, time.Second); z.N != 0 {
		t.Errorf("zero rate schedule has %d events", z.N)
	}
}

func TestSeqTrack(t *testing.T) {
	t.Parallel()
	tr := SeqTrack{Base: 10}
	for _, s := range []int64{11, 12, 12, 14, 9, 10, 200} {
		tr.Observe(s)
	}
	if tr.Unique != 4 || tr.Dup != 1 || tr.Below != 2 || tr.MaxSeen != 200 {
		t.Fatalf("%+v", tr)
	}
	if !tr.Has(14) || tr.Has(13) || tr.Has(5) || tr.Has(1e9) {
		t.Error("Has")
	}
}

func TestTally_LostAndDuplicated(t *testing.T) {
	t.Parallel()
	// Room a: base 5, messages 6..15 stored (10), three members: one saw all, one missed
	// 2 and got 1 twice, one joined later (base 8) and saw 9..15.
	full, holes, late := SeqTrack{Base: 5}, SeqTrack{Base: 5}, SeqTrack{Base: 8}
	for s := int64(6); s <= 15; s++ {
		full.Observe(s)
		if s != 7 && s != 15 {
			holes.Observe(s)
		}
		if s > 8 {
			late.Observe(s)
		}
	}
	holes.Observe(6)
	a := NewRoomStats()
	a.AddTrack(&full)
	a.AddTrack(&holes)
	w2 := NewRoomStats()
	w2.AddTrack(&late)
	w2.Acked, w2.AckedMax = 10, 15
	a.Merge(w2)
	// Room b: acked up to 4 but the only member saw nothing: 4 lost; the tail counts.
	b := NewRoomStats()
	b.AddTrack(&SeqTrack{})
	b.Acked, b.AckedMax = 4, 4
	// Room c: nobody joined: acks count, no verdict.
	c := NewRoomStats()
	c.Acked, c.AckedMax = 3, 3
	got := Tally(map[string]*RoomStats{"a": a, "b": b, "c": c})
	want := Totals{Rooms: 3, Stored: 10 + 4, Acked: 10 + 4 + 3, Expected: 10 + 10 + 7 + 4, Delivered: 10 + 8 + 7,
		Lost: 2 + 4, Duplicated: 1}
	if got != want {
		t.Fatalf("Tally = %+v\nwant    %+v", got, want)
	}
}

func TestFrames(t *testing.T) {
	t.Parallel()
	msg := []byte(`{"event":"chat-message","data":{"message":{"id":"m_1","roomId":"r1","seq":42,"senderId":"u","content":"b1700000000123456789 xx","clientMsgId":"w0c1n2"}}}`)
	if ev := jsonStr(msg, "event"); string(ev) != "chat-message" {
		t.Errorf("event %q", ev)
	}
	if seq, ok := jsonInt(msg, "seq"); !ok || seq != 42 {
		t.Errorf("seq %d %v", seq, ok)
	}
	if ts, ok := stampOf(jsonStr(msg, "content")); !ok || ts != 1700000000123456789 {
		t.Errorf("stamp %d %v", ts, ok)
	}
	ack := []byte(`{"event":"ack", "id": "s123","data":{"roomId":"r","lastSeq":7}}`)
	if id := jsonStr(ack, "id"); string(id) != "s123" {
		t.Errorf("id %q", id)
	}
	if v, ok := jsonInt(ack, "lastSeq"); !ok || v != 7 {
		t.Errorf("lastSeq %d", v)
	}
	if _, ok := jsonInt(ack, "missing"); ok {
		t.Error("missing key found")
	}
	if k, ok := notifyIndex([]byte("b123:17")); !ok || k != 17 {
		t.Errorf("notify index %d", k)
	}
	if _, ok := stampOf([]byte("hello")); ok {
		t.Error("stamp of a foreign message")
	}
}

func TestOptions_RefuseNonLoopbackTarget(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"ws://10.0.0.1:8080/ws", "ws://example.org/ws"} {
		o := Options{Scenario: Idle, Target: &Target{WSURL: u}}
		if err := o.defaults(); !errors.Is(err, ErrNotLoopback) {
			t.Errorf("target %s: %v", u, err)
		}
	}
	o := Options{Scenario: Fanout, Target: &Target{WSURL: "ws://127.0.0.1:1/ws", GRPCAddr: "10.0.0.1:9090"}}
	if err := o.defaults(); !errors.Is(err, ErrNotLoopback) {
		t.Errorf("grpc target: %v", err)
	}
	if err := (&Options{Scenario: "nope"}).defaults(); err == nil {
		t.Error("unknown scenario accepted")
	}
	w := &worker{cfg: WorkerConfig{WSURL: "ws://127.0.0.1:1/ws", SourceIP: "10.0.0.2", Secret: "x"}}
	if err := w.validate(); !errors.Is(err, ErrNotLoopback) {
		t.Errorf("worker source 10.0.0.2: %v", err)
	}
}

func TestOptions_RefuseBadProbeAndJoin(t *testing.T) {
	t.Parallel()
	for _, o := range []Options{
		{Scenario: Idle, ProbeAfter: time.Second},
		{Scenario: JoinStorm, ProbeAfter: time.Second},
		{Scenario: Rooms, ProbeAfter: -time.Second},
		{Scenario: Rooms, ProbeAfter: time.Second, ProbeRoom: "elsewhere"},
		{Scenario: Rooms, ProbeConns: -1},
		{Scenario: JoinStorm, JoinInflight: -5},
		{Scenario: JoinStorm, JoinInflight: 20_000},
		{Scenario: JoinStorm, Conns: 300_000},
	} {
		if err := o.defaults(); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
	o := Options{Scenario: Rooms, Target: &Target{WSURL: "ws://127.0.0.1:1/ws", EdgeAdmin: "10.0.0.1:9100"}}
	if err := o.defaults(); !errors.Is(err, ErrNotLoopback) {
		t.Errorf("non-loopback admin address: %v", err)
	}
	o = Options{Scenario: JoinStorm}
	if err := o.defaults(); err != nil || o.Conns != 10_000 || o.JoinInflight != 256 || o.Workers != 1 {
		t.Errorf("join-storm defaults %+v: %v", o, err)
	}
	o = Options{Scenario: Rooms, ProbeAfter: 5 * time.Second}
	if err := o.defaults(); err != nil || o.ProbeConns != 20 || o.ProbeRoom != ProbeFresh {
		t.Errorf("probe defaults %+v: %v", o, err)
	}
}

// TestConn_Refusals: error frames are counted by the command they answer and their
// code, with retryAfterMs and the send → refusal latency; a refused join or probe
// is answered (the waiter is released) and not counted as joined.
func TestConn_Refusals(t *testing.T) {
	t.Parallel()
	w := &worker{roomAcks: map[string]*RoomStats{}}
	c := &conn{w: w, room: "r", connected: make(chan struct{}), joined: make(chan struct{})}
	sent := time.Now().Add(-40 * time.Millisecond).UnixNano()
	c.handle(fmt.Appendf(nil, `{"event":"error","id":"s%d","data":{"code":"rate_limited","message":"slow down","retryAfterMs":250}}`, sent))
	c.handle(fmt.Appendf(nil, `{"event":"error","id":"s%d","data":{"code":"unavailable","message":"busy"}}`, sent))
	c.handle(fmt.Appendf(nil, `{"event":"error","id":"j%d","data":{"code":"unavailable","message":"busy"}}`, sent))
	ch := make(chan bool, 1)
	c.probeWait.Store(&ch)
	c.handle(fmt.Appendf(nil, `{"event":"error","id":"p%d","data":{"code":"unavailable","message":"busy"}}`, sent))
	c.handle([]byte(`{"event":"error","data":{"code":"bad_request","message":"?"}}`))
	if !isClosed(c.joined) || c.hasBaseLocked() {
		t.Error("a refused join must release the waiter without a base")
	}
	select {
	case ok := <-ch:
		if ok {
			t.Error("refused probe reported as acknowledged")
		}
	default:
		t.Error("refused probe not handed to its waiter")
	}
	s := w.stats()
	want := map[string]map[string]int64{"send": {"rate_limited": 1, "unavailable": 1}, "join": {"unavailable": 1},
		"probe": {"unavailable": 1}, "other": {"bad_request": 1}}
	if fmt.Sprint(s.Codes) != fmt.Sprint(want) {
		t.Errorf("codes %v, want %v", s.Codes, want)
	}
	if s.SendFailed != 2 {
		t.Errorf("send failed %d, want 2", s.SendFailed)
	}
	if h := s.RetryAfter.Hist(); h.N != 1 || h.Max != 250_000 {
		t.Errorf("retryAfter n %d max %dµs", h.N, h.Max)
	}
	if h := s.Refusal.Hist(); h.N != 2 || h.Min < 40_000 {
		t.Errorf("refusal latency n %d min %dµs", h.N, h.Min)
	}
	// A join ack records the join latency and the base.
	c2 := &conn{w: w, room: "r", connected: make(chan struct{}), joined: make(chan struct{})}
	c2.handle(fmt.Appendf(nil, `{"event":"ack","id":"j%d","data":{"roomId":"r","lastSeq":7}}`, sent))
	if !c2.hasBaseLocked() || c2.track.Base != 7 || w.stats().Join.N != 1 {
		t.Errorf("join ack: base %d, joins %d", c2.track.Base, w.stats().Join.N)
	}
}

func TestParseCounters(t *testing.T) {
	t.Parallel()
	in := `# HELP talim_chat_fanout_publishes_total Outbound messages.
# TYPE talim_chat_fanout_publishes_total counter
talim_chat_fanout_publishes_total 1234
talim_chat_store_seconds_bucket{op="insert",le="0.001"} 3
talim_chat_store_seconds_count{op="insert"} 10
talim_chat_store_seconds_count{op="get room"} 2.5e+01
talim_edge_connections 5
process_cpu_seconds_total 1.5
go_goroutines 40
broken_line
talim_x_total{a="b"} notanumber
`
	got := ParseCounters([]byte(in))
	want := map[string]float64{"talim_chat_fanout_publishes_total": 1234, `talim_chat_store_seconds_count{op="insert"}`: 10,
		`talim_chat_store_seconds_count{op="get room"}`: 25}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("ParseCounters = %v\nwant %v", got, want)
	}
	if v, ok := sumPrefix(got, "talim_chat_store_seconds_count"); !ok || v != 35 {
		t.Errorf("sumPrefix %v %v", v, ok)
	}
}
