package core

import (
	"context"
	"fmt"
	"time"

	"github.com/talim/realtime/pkg/webhook"
	"github.com/talim/realtime/services/chat/internal/store"
)

// publishHook writes a message.created or message.deleted webhook event for m
// before the command is answered (docs/webhooks.md "When an event is written").
// The event id derives from the message id, so a retried command writes the same
// event. A failure reports the store unavailable: the client retries.
func (c *Core) publishHook(ctx context.Context, typ string, m store.Message, at time.Time) error {
	if c.hooks == nil {
		return nil
	}
	if err := c.hooks.Publish(ctx, webhook.Event{Type: typ, Key: m.ID, Time: at,
		Data: map[string]any{"message": m}}); err != nil {
		return fmt.Errorf("%w: webhook %s: %w", store.ErrUnavailable, typ, err)
	}
	return nil
}
