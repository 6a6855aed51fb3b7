package webhook

import (
	"crypto/sha256"
	"encoding/base32"
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// Event types (docs/webhooks.md "Events").
const (
	MessageCreated           = "message.created"
	MessageDeleted           = "message.deleted"
	NotificationAcknowledged = "notification.acknowledged"
	ReportCreated            = "report.created"
	PresenceChanged          = "presence.changed"
)

// EventTypes lists every event type a subscription may name.
var EventTypes = []string{MessageCreated, MessageDeleted, NotificationAcknowledged, ReportCreated, PresenceChanged}

// KnownType reports whether t is one of EventTypes.
func KnownType(t string) bool { return slices.Contains(EventTypes, t) }

// TimeFormat is the envelope's timestamp format (RFC 3339, UTC, milliseconds), as
// the chat protocol's timestamps.
const TimeFormat = "2006-01-02T15:04:05.000Z"

// Event is one thing that happened, as a producer hands it to Publish.
type Event struct {
	// Type is one of EventTypes.
	Type string
	// Key identifies the occurrence within its type, so that producing the same
	// occurrence again (a retry) yields the same event id: a message id for
	// message.created, a message id for message.deleted, notification id + user
	// for notification.acknowledged, a report id, a user id + presence version.
	Key string
	// Time is when it happened (the envelope's timestamp).
	Time time.Time
	// Data is the event's payload, marshalled as JSON under "data".
	Data any
}

var idEnc = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// EventID derives the webhook-id of (type, key): "evt_" and 26 base32 characters
// of SHA-256, so it never contains '.' (Standard Webhooks "Signature scheme").
func EventID(typ, key string) string {
	h := sha256.Sum256([]byte(typ + "\x00" + key))
	return "evt_" + idEnc.EncodeToString(h[:16])
}

// envelope is the JSON body of a delivery (Standard Webhooks "Payload structure").
type envelope struct {
	Type      string `json:"type"`
	Timestamp string `json:"timestamp"`
	Data      any    `json:"data"`
}

// Body returns the event's id and JSON body.
func (e Event) Body() (string, []byte, error) {
	if !KnownType(e.Type) {
		return "", nil, fmt.Errorf("webhook: unknown event type %q", e.Type)
	}
	if e.Key == "" {
		return "", nil, fmt.Errorf("webhook: %s event without key", e.Type)
	}
	b, err := json.Marshal(envelope{Type: e.Type, Timestamp: e.Time.UTC().Format(TimeFormat), Data: e.Data})
	if err != nil {
		return "", nil, fmt.Errorf("webhook: marshal %s: %w", e.Type, err)
	}
	return EventID(e.Type, e.Key), b, nil
}
