package core

import (
	"context"
	"log/slog"
	"time"

	"github.com/talim/realtime/pkg/webhook"
)

// HookQueueSize bounds the presence.changed events waiting for the outbox.
const HookQueueSize = 4096

// HookQueue writes presence.changed webhook events off the event loop, which
// must never wait for the store. Unlike chat and notification events these are
// best effort (docs/webhooks.md "presence.changed"): a full queue or a failed
// write drops the event; the next change of the user supersedes it.
type HookQueue struct {
	p   *webhook.Producer
	ch  chan webhook.Event
	log *slog.Logger
}

// NewHookQueue returns a queue writing through p.
func NewHookQueue(p *webhook.Producer, log *slog.Logger) *HookQueue {
	return &HookQueue{p: p, ch: make(chan webhook.Event, HookQueueSize), log: log}
}

// add queues ev without blocking; it reports false when the queue is full.
func (q *HookQueue) add(ev webhook.Event) bool {
	if q == nil {
		return true
	}
	select {
	case q.ch <- ev:
		return true
	default:
		return false
	}
}

// Run writes queued events until ctx ends.
func (q *HookQueue) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-q.ch:
			wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			if err := q.p.Publish(wctx, ev); err != nil && ctx.Err() == nil {
				q.log.Warn("presence webhook dropped", "key", ev.Key, "err", err)
			}
			cancel()
		}
	}
}
