package webhook

import (
	"context"
	"sync"
	"time"
)

// DefaultRefresh is how long a producer uses its copy of the subscriptions.
const DefaultRefresh = 5 * time.Second

// Producer writes events into the outbox, one entry per subscription that wants
// the event's type. Services call Publish before they acknowledge what the event
// describes (docs/webhooks.md "When an event is written"); Publish is idempotent
// per (type, key), so a retried operation publishes again safely.
//
// A nil *Producer publishes nothing (webhooks off).
type Producer struct {
	store   *Store
	refresh time.Duration
	now     func() time.Time

	mu      sync.Mutex
	subs    []Subscription
	fetched time.Time
}

// NewProducer returns a producer over st. refresh bounds how stale its copy of
// the subscriptions may be (DefaultRefresh when 0): a new subscription receives
// the events produced from at most refresh after it was created.
func NewProducer(st *Store, refresh time.Duration) *Producer {
	if refresh <= 0 {
		refresh = DefaultRefresh
	}
	return &Producer{store: st, refresh: refresh, now: time.Now}
}

// SetClock replaces the clock of entry creation times (tests; call before use).
func (p *Producer) SetClock(now func() time.Time) { p.now = now }

// Invalidate makes the next Publish re-read the subscriptions.
func (p *Producer) Invalidate() {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.fetched = time.Time{}
	p.mu.Unlock()
}

func (p *Producer) subscriptions(ctx context.Context) ([]Subscription, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	if !p.fetched.IsZero() && now.Sub(p.fetched) < p.refresh {
		return p.subs, nil
	}
	subs, err := p.store.Subscriptions(ctx)
	if err != nil {
		return nil, err
	}
	p.subs, p.fetched = subs, now
	return subs, nil
}

// Publish writes ev to the outbox of every subscription that wants ev.Type. It
// returns once the entries are stored (or there is no such subscription); on an
// error some entries may be stored and a retry writes the rest.
func (p *Producer) Publish(ctx context.Context, ev Event) error {
	if p == nil {
		return nil
	}
	id, body, err := ev.Body()
	if err != nil {
		return err
	}
	subs, err := p.subscriptions(ctx)
	if err != nil {
		return err
	}
	for i := range subs {
		if !subs[i].Wants(ev.Type) {
			continue
		}
		seq, err := p.store.nextSeq(ctx)
		if err != nil {
			return err
		}
		now := p.now()
		e := Entry{ID: entryID(subs[i].ID, id), Sub: subs[i].ID, Seq: seq, EventID: id, Type: ev.Type,
			Body: string(body), CreatedAt: now, NextAt: now}
		if err := p.store.enqueue(ctx, e); err != nil {
			return err
		}
	}
	return nil
}
