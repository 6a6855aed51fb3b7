package webhook

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Standard Webhooks headers (docs/webhooks.md "Headers").
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// SecretPrefix marks a symmetric signing secret in its serialized form.
const SecretPrefix = "whsec_"

// Secret bounds: Standard Webhooks asks for 24 to 64 random bytes.
const (
	MinSecretBytes     = 24
	MaxSecretBytes     = 64
	DefaultSecretBytes = 32
)

// DefaultTolerance is how far a webhook-timestamp may be from the verifier's clock.
const DefaultTolerance = 5 * time.Minute

// Verification errors.
var (
	// ErrMissingHeaders means webhook-id, webhook-timestamp or webhook-signature is absent.
	ErrMissingHeaders = errors.New("webhook: missing webhook-id, webhook-timestamp or webhook-signature header")
	// ErrTimestamp means webhook-timestamp is malformed or outside the tolerance.
	ErrTimestamp = errors.New("webhook: timestamp malformed or outside the tolerance")
	// ErrSignature means no v1 signature in webhook-signature matches.
	ErrSignature = errors.New("webhook: no matching signature")
	// ErrBadSecret means a secret is not whsec_ followed by base64 of 24..64 bytes.
	ErrBadSecret = errors.New("webhook: secret must be whsec_ followed by standard base64 of 24 to 64 bytes")
)

// ParseSecret decodes a "whsec_<base64>" secret into its key bytes.
func ParseSecret(s string) ([]byte, error) {
	raw, ok := strings.CutPrefix(s, SecretPrefix)
	if !ok {
		return nil, ErrBadSecret
	}
	key, err := base64.StdEncoding.DecodeString(raw)
	if err != nil || len(key) < MinSecretBytes || len(key) > MaxSecretBytes {
		return nil, ErrBadSecret
	}
	return key, nil
}

// NewSecret returns a fresh random secret in its "whsec_" form.
func NewSecret() (string, error) {
	b := make([]byte, DefaultSecretBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("webhook: generate secret: %w", err)
	}
	return SecretPrefix + base64.StdEncoding.EncodeToString(b), nil
}

// Signature returns "v1,<base64 HMAC-SHA256(key, id.timestamp.body)>".
func Signature(key []byte, id string, ts time.Time, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(strconv.FormatInt(ts.Unix(), 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Sign sets the three Standard Webhooks headers on h: one signature per key,
// space-separated (several keys while a rotated secret is still valid).
func Sign(h http.Header, keys [][]byte, id string, ts time.Time, body []byte) {
	sigs := make([]string, len(keys))
	for i, k := range keys {
		sigs[i] = Signature(k, id, ts, body)
	}
	h.Set(HeaderID, id)
	h.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(HeaderSignature, strings.Join(sigs, " "))
}

// Verify checks a received webhook: the headers are present, the timestamp is
// within tolerance of now, and one v1 signature in webhook-signature is the
// HMAC of "id.timestamp.body" under secret ("whsec_..."). body must be the raw
// request body, exactly as received. Receivers may copy this function; it uses
// the standard library only (docs/webhooks.md "Verifying in Go").
func Verify(secret string, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	key, err := ParseSecret(secret)
	if err != nil {
		return err
	}
	id, tsRaw, sigs := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	if id == "" || tsRaw == "" || sigs == "" {
		return ErrMissingHeaders
	}
	ts, err := strconv.ParseInt(tsRaw, 10, 64)
	if err != nil {
		return ErrTimestamp
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return ErrTimestamp
	}
	want := []byte(Signature(key, id, time.Unix(ts, 0), body))
	for _, s := range strings.Fields(sigs) {
		if hmac.Equal([]byte(s), want) {
			return nil
		}
	}
	return ErrSignature
}
