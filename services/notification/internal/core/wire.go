package core

import (
	"encoding/json"
	"time"

	"github.com/talim/realtime/services/notification/internal/store"
)

// timeLayout is the timestamp format of docs/protocol.md: RFC 3339, milliseconds, UTC.
const timeLayout = "2006-01-02T15:04:05.000Z"

// Wire is the notification object of docs/protocol.md "Notifications".
type Wire struct {
	ID         string            `json:"id"`
	Category   string            `json:"category"`
	Title      string            `json:"title"`
	Body       string            `json:"body"`
	Data       map[string]string `json:"data"`
	Priority   string            `json:"priority"`
	RequireAck bool              `json:"requireAck"`
	CreatedAt  string            `json:"createdAt"`
	ReadAt     *string           `json:"readAt"`
	AckedAt    *string           `json:"ackedAt"`
	ExpiresAt  *string           `json:"expiresAt"`
}

// FormatTime formats t as docs/protocol.md timestamps are.
func FormatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

func formatOptTime(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := FormatTime(*t)
	return &s
}

// DataMap returns the data pairs of a notification as a map.
func DataMap(pairs []store.Pair) map[string]string {
	m := make(map[string]string, len(pairs))
	for _, p := range pairs {
		m[p.K] = p.V
	}
	return m
}

// ToWire converts a stored notification to the client object.
func ToWire(n *store.Notification) Wire {
	return Wire{
		ID: n.ID, Category: n.Category, Title: n.Title, Body: n.Body, Data: DataMap(n.Data),
		Priority: n.Priority, RequireAck: n.RequireAck, CreatedAt: FormatTime(n.CreatedAt),
		ReadAt: formatOptTime(n.ReadAt), AckedAt: formatOptTime(n.AckedAt), ExpiresAt: formatOptTime(n.ExpiresAt),
	}
}

// notificationEvent is the data of the `notification` event.
type notificationEvent struct {
	Notification Wire `json:"notification"`
}

// encodeNotificationEvent returns the JSON data of a `notification` event.
func encodeNotificationEvent(n *store.Notification) ([]byte, error) {
	return json.Marshal(notificationEvent{Notification: ToWire(n)})
}
