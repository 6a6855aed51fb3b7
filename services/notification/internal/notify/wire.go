package notify

import (
	"encoding/json"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	notificationv1 "github.com/talim/realtime/proto/talim/notification/v1"
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

func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

func formatOptTime(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := formatTime(*t)
	return &s
}

func dataMap(pairs []store.Pair) map[string]string {
	m := make(map[string]string, len(pairs))
	for _, p := range pairs {
		m[p.K] = p.V
	}
	return m
}

// ToWire converts a stored notification to the client object.
func ToWire(n *store.Notification) Wire {
	return Wire{
		ID: n.ID, Category: n.Category, Title: n.Title, Body: n.Body, Data: dataMap(n.Data),
		Priority: n.Priority, RequireAck: n.RequireAck, CreatedAt: formatTime(n.CreatedAt),
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

var priorityNames = map[notificationv1.Priority]string{
	notificationv1.Priority_PRIORITY_UNSPECIFIED: "normal",
	notificationv1.Priority_PRIORITY_LOW:         "low",
	notificationv1.Priority_PRIORITY_NORMAL:      "normal",
	notificationv1.Priority_PRIORITY_HIGH:        "high",
}

func priorityProto(name string) notificationv1.Priority {
	switch name {
	case "low":
		return notificationv1.Priority_PRIORITY_LOW
	case "high":
		return notificationv1.Priority_PRIORITY_HIGH
	default:
		return notificationv1.Priority_PRIORITY_NORMAL
	}
}

func optTimestamp(t *time.Time) *timestamppb.Timestamp {
	if t == nil {
		return nil
	}
	return timestamppb.New(*t)
}

// ToProto converts a stored notification to the gRPC message.
func ToProto(n *store.Notification) *notificationv1.Notification {
	return &notificationv1.Notification{
		Id: n.ID, UserId: n.UserID, Category: n.Category, Title: n.Title, Body: n.Body, Data: dataMap(n.Data),
		Priority: priorityProto(n.Priority), RequireAck: n.RequireAck, CreatedAt: timestamppb.New(n.CreatedAt),
		ReadAt: optTimestamp(n.ReadAt), AckedAt: optTimestamp(n.AckedAt), ExpiresAt: optTimestamp(n.ExpiresAt),
		SendId: n.SendID,
	}
}
