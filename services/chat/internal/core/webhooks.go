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

// ReportCreated is the data of a report.created webhook event (docs/webhooks.md
// "Events").
type ReportCreated struct {
	ReportID   string    `json:"reportId"`
	RoomID     string    `json:"roomId"`
	MessageID  string    `json:"messageId"`
	ReporterID string    `json:"reporterId"`
	Reason     string    `json:"reason"`
	CreatedAt  time.Time `json:"-"`
	At         string    `json:"createdAt"`
}

// PublishReportCreated is the producer API of the safeguarding reports: call it
// after the report is stored and before the reporter is answered, with the stored
// report (the event id derives from ReportID, so a retry writes the same event).
func (c *Core) PublishReportCreated(ctx context.Context, r ReportCreated) error {
	if c.hooks == nil {
		return nil
	}
	r.At = r.CreatedAt.UTC().Format(webhook.TimeFormat)
	if err := c.hooks.Publish(ctx, webhook.Event{Type: webhook.ReportCreated, Key: r.ReportID, Time: r.CreatedAt,
		Data: r}); err != nil {
		return fmt.Errorf("%w: webhook %s: %w", store.ErrUnavailable, webhook.ReportCreated, err)
	}
	return nil
}
