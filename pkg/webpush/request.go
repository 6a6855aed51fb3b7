package webpush

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Urgency values (RFC 8030 section 5.3).
const (
	UrgencyVeryLow = "very-low"
	UrgencyLow     = "low"
	UrgencyNormal  = "normal"
	UrgencyHigh    = "high"
)

// Subscription is where and for whom a message is encrypted: the PushSubscription
// a browser returns (endpoint, keys.p256dh, keys.auth), keys decoded.
type Subscription struct {
	Endpoint string
	P256dh   []byte
	Auth     []byte
}

// Message is one push.
type Message struct {
	Payload []byte
	// TTL is how long the push service keeps the message for an unreachable user
	// agent; 0 means deliver now or drop.
	TTL time.Duration
	// Urgency is one of the Urgency constants; empty sends none (normal).
	Urgency string
	// Topic replaces a pending message with the same topic (RFC 8030 section 5.4):
	// at most 32 characters of the base64url alphabet.
	Topic string
}

// NewRequest builds the encrypted, VAPID-signed POST to sub.Endpoint. The token
// expires at now + 12 hours.
func (v *VAPID) NewRequest(ctx context.Context, sub Subscription, m Message, now time.Time) (*http.Request, error) {
	body, err := Encrypt(m.Payload, sub.P256dh, sub.Auth)
	if err != nil {
		return nil, err
	}
	auth, err := v.Authorization(sub.Endpoint, now.Add(12*time.Hour))
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, sub.Endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("push request: %w", err)
	}
	h := req.Header
	h.Set("Authorization", auth)
	h.Set("Content-Encoding", "aes128gcm")
	h.Set("Content-Type", "application/octet-stream")
	h.Set("TTL", strconv.FormatInt(int64(m.TTL/time.Second), 10))
	if m.Urgency != "" {
		h.Set("Urgency", m.Urgency)
	}
	if m.Topic != "" {
		h.Set("Topic", m.Topic)
	}
	return req, nil
}

// RetryAfter parses a Retry-After header (seconds or an HTTP date) relative to now;
// ok is false when absent or unparseable.
func RetryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	v := h.Get("Retry-After")
	if v == "" {
		return 0, false
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil && s >= 0 {
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}
