package core

import (
	"sync"
	"time"
)

// throttle limits typing events to one forwarded event per interval per (user,
// room). A suppressed event that changes the state last forwarded (typically
// "stopped typing" right after "typing") is not lost: it is forwarded when the
// interval ends, so receivers never keep showing a stale indicator. The state is
// per instance: with N instances behind the queue group a user can get at most N
// events per interval through (documented, acceptable for an ephemeral hint).
type throttle struct {
	interval time.Duration
	mu       sync.Mutex
	m        map[throttleKey]*throttleState
}

type throttleKey struct{ user, room string }

type throttleState struct {
	last       time.Time // when the last event was forwarded
	sent       bool      // the value forwarded last
	timer      *time.Timer
	pending    bool
	pendingFn  func(bool)
	hasPending bool
}

func newThrottle(interval time.Duration) *throttle {
	return &throttle{interval: interval, m: map[throttleKey]*throttleState{}}
}

// offer forwards v through send now, later (trailing) or never.
func (t *throttle) offer(user, room string, v bool, send func(bool)) (forwarded bool) {
	k := throttleKey{user, room}
	now := time.Now()
	t.mu.Lock()
	s := t.m[k]
	if s == nil {
		s = &throttleState{}
		t.m[k] = s
	}
	if s.timer == nil && (s.last.IsZero() || now.Sub(s.last) >= t.interval) {
		s.last, s.sent = now, v
		t.mu.Unlock()
		send(v)
		return true
	}
	if s.timer == nil && s.sent == v {
		t.mu.Unlock()
		return false // nothing new to say within the interval
	}
	s.pending, s.pendingFn, s.hasPending = v, send, true
	if s.timer == nil {
		s.timer = time.AfterFunc(s.last.Add(t.interval).Sub(now), func() { t.flush(k) })
	}
	t.mu.Unlock()
	return false
}

func (t *throttle) flush(k throttleKey) {
	t.mu.Lock()
	s := t.m[k]
	if s == nil {
		t.mu.Unlock()
		return
	}
	s.timer = nil
	if !s.hasPending || s.pending == s.sent {
		s.hasPending, s.pendingFn = false, nil
		t.mu.Unlock()
		return
	}
	v, send := s.pending, s.pendingFn
	s.last, s.sent, s.hasPending, s.pendingFn = time.Now(), v, false, nil
	t.mu.Unlock()
	send(v)
}

// sweep forgets idle keys.
func (t *throttle) sweep(now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, s := range t.m {
		if s.timer == nil && now.Sub(s.last) > 10*t.interval {
			delete(t.m, k)
		}
	}
}

func (t *throttle) stopAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, s := range t.m {
		if s.timer != nil {
			s.timer.Stop()
		}
	}
	clear(t.m)
}
