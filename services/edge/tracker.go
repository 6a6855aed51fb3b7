package edge

import (
	"sync"
	"time"
)

// tracker owns goroutines that may start at any time (a command's forward starts
// whenever a client sends one) and lets shutdown wait for them. Unlike a
// sync.WaitGroup, Go may be called while Wait is waiting.
type tracker struct {
	mu   sync.Mutex
	n    int
	zero chan struct{} // closed when n drops to 0; nil when nobody waits
}

// Go runs f in a goroutine counted until f returns.
func (t *tracker) Go(f func()) {
	t.mu.Lock()
	t.n++
	t.mu.Unlock()
	go func() {
		defer t.done()
		f()
	}()
}

func (t *tracker) done() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.n--
	if t.n == 0 && t.zero != nil {
		close(t.zero)
		t.zero = nil
	}
}

// Running is the number of goroutines not yet returned.
func (t *tracker) Running() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.n
}

// Wait waits until no goroutine runs, or timeout passes; it reports whether all
// returned.
func (t *tracker) Wait(timeout time.Duration) bool {
	t.mu.Lock()
	if t.n == 0 {
		t.mu.Unlock()
		return true
	}
	if t.zero == nil {
		t.zero = make(chan struct{})
	}
	zero := t.zero
	t.mu.Unlock()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-zero:
		return true
	case <-timer.C:
		return false
	}
}
