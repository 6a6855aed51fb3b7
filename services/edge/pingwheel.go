package edge

import (
	"sync"
	"time"

	"github.com/talim/realtime/services/edge/internal/wsio"
)

// pingWheel sends the server pings of native connections and closes idle ones, for
// every connection of the edge from one goroutine, instead of one runtime timer
// (~150 bytes with its callback) per connection.
//
// It is a timing wheel of pingSlots slots turned by one time.Ticker every
// PingInterval/pingSlots: a connection joins the slot processed just before a full
// turn from now and is visited once per turn, so it is pinged every PingInterval
// (first ping after PingInterval − one tick, as with a per-connection timer). A
// visit does what the old timer callback did: close with 1001 when nothing was read
// for 2.5 × PingInterval, else queue a ping. Closed connections leave their slot at
// their next visit.
type pingWheel struct {
	mu    sync.Mutex
	slots [pingSlots][]*Conn
	next  int // slot of the next tick

	tick    time.Duration
	stop    chan struct{}
	done    chan struct{}
	scratch []*Conn // used by the wheel goroutine only
}

const pingSlots = 64

func newPingWheel(interval time.Duration) *pingWheel {
	w := &pingWheel{tick: max(interval/pingSlots, time.Millisecond), stop: make(chan struct{}), done: make(chan struct{})}
	go w.run()
	return w
}

// add schedules c's pings.
func (w *pingWheel) add(c *Conn) {
	w.mu.Lock()
	i := (w.next + pingSlots - 1) % pingSlots
	w.slots[i] = append(w.slots[i], c)
	w.mu.Unlock()
}

func (w *pingWheel) run() {
	defer close(w.done)
	t := time.NewTicker(w.tick)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case now := <-t.C:
			w.turn(now)
		}
	}
}

// turn visits the connections of the next slot.
func (w *pingWheel) turn(now time.Time) {
	w.mu.Lock()
	i := w.next
	w.next = (w.next + 1) % pingSlots
	slot := w.slots[i]
	live := slot[:0]
	for _, c := range slot {
		if !c.closed.Load() {
			live = append(live, c)
		}
	}
	clear(slot[len(live):])
	if cap(live) > 64 && len(live) < cap(live)/4 {
		live = append([]*Conn(nil), live...) // shrink after many closes
	}
	w.slots[i] = live
	batch := append(w.scratch[:0], live...)
	w.mu.Unlock()
	for _, c := range batch {
		c.onPing(now)
	}
	clear(batch)
	w.scratch = batch[:0]
}

// close stops the wheel goroutine.
func (w *pingWheel) close() {
	close(w.stop)
	<-w.done
}

// onPing is one visit of the ping wheel.
func (c *Conn) onPing(now time.Time) {
	if c.closed.Load() {
		return
	}
	if now.Sub(time.Unix(0, c.lastRead.Load())) > c.s.cfg.PingInterval*5/2 {
		c.Close(DisconnectIdle)
		return
	}
	c.enqueue(wsio.PingFrame, nil)
}
