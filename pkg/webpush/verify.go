package webpush

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// ErrUnauthorized means an Authorization header is not a valid VAPID token.
var ErrUnauthorized = errors.New("invalid VAPID authorization")

// Claims are the verified claims of a VAPID token.
type Claims struct {
	Audience  string
	Subject   string
	ExpiresAt time.Time
	// PublicKey is the k parameter (base64url), the key the token was checked with.
	PublicKey string
}

// VerifyAuthorization checks a "vapid t=..., k=..." header as a push service does
// (RFC 8292 sections 2 and 3): ES256 signature by k, aud equal to audience, exp in
// the future and at most 24 hours away, sub present. Test push endpoints use it.
func VerifyAuthorization(header, audience string, now time.Time) (*Claims, error) {
	rest, ok := strings.CutPrefix(header, "vapid ")
	if !ok {
		return nil, fmt.Errorf("%w: scheme is not vapid", ErrUnauthorized)
	}
	var t, k string
	for part := range strings.SplitSeq(rest, ",") {
		name, val, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch name {
		case "t":
			t = val
		case "k":
			k = val
		}
	}
	raw, err := DecodeKey(k)
	if err != nil || t == "" {
		return nil, fmt.Errorf("%w: missing t or k", ErrUnauthorized)
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), raw)
	if err != nil {
		return nil, fmt.Errorf("%w: k: %w", ErrUnauthorized, err)
	}
	var mc jwt.MapClaims
	_, err = jwt.ParseWithClaims(t, &mc, func(*jwt.Token) (any, error) { return pub, nil },
		jwt.WithValidMethods([]string{"ES256"}), jwt.WithAudience(audience), jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(func() time.Time { return now }))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnauthorized, err)
	}
	exp, _ := mc.GetExpirationTime()
	if exp.Sub(now) > MaxTokenLifetime {
		return nil, fmt.Errorf("%w: exp more than 24 hours ahead", ErrUnauthorized)
	}
	sub, _ := mc.GetSubject()
	if sub == "" {
		return nil, fmt.Errorf("%w: no sub", ErrUnauthorized)
	}
	return &Claims{Audience: audience, Subject: sub, ExpiresAt: exp.Time, PublicKey: k}, nil
}
