package bench

import "time"

// Schedule is an open-loop send schedule: event i (0-based) is due at
// Start + i·Interval, whatever happened to the events before it. A sender that falls
// behind sends the late events at once and reports how late (lag) rather than
// silently lowering the rate — the coordinated-omission trap of closed-loop senders.
type Schedule struct {
	Start    time.Time
	Interval time.Duration
	// N bounds the number of events.
	N int
}

// NewSchedule spreads rate events/s over d starting at start.
func NewSchedule(start time.Time, rate float64, d time.Duration) Schedule {
	if rate <= 0 || d <= 0 {
		return Schedule{Start: start}
	}
	iv := time.Duration(float64(time.Second) / rate)
	if iv <= 0 {
		iv = 1
	}
	return Schedule{Start: start, Interval: iv, N: int(rate * d.Seconds())}
}

// Due returns the due time of event i.
func (s Schedule) Due(i int) time.Time { return s.Start.Add(time.Duration(i) * s.Interval) }

// Pacer walks a Schedule.
type Pacer struct {
	S    Schedule
	next int
}

// Ready returns the events [from, to) due by now and advances past them; lag is how
// late the earliest of them is (0 when on time). When none is due, wait is how long
// until the next one. done reports that every event has been handed out.
func (p *Pacer) Ready(now time.Time) (from, to int, lag, wait time.Duration, done bool) {
	if p.next >= p.S.N {
		return p.next, p.next, 0, 0, true
	}
	from = p.next
	due := p.S.Due(from)
	if now.Before(due) {
		return from, from, 0, due.Sub(now), false
	}
	to = p.S.N
	if p.S.Interval > 0 {
		to = min(int(now.Sub(p.S.Start)/p.S.Interval)+1, p.S.N)
	}
	p.next = to
	return from, to, now.Sub(due), 0, false
}

// Sent is the number of events handed out.
func (p *Pacer) Sent() int { return p.next }
