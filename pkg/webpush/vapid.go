package webpush

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// MaxTokenLifetime is the longest exp - now RFC 8292 section 2 allows (24 hours).
const MaxTokenLifetime = 24 * time.Hour

// ErrBadVAPID means a VAPID key or subject is not usable.
var ErrBadVAPID = errors.New("bad VAPID configuration")

var b64 = base64.RawURLEncoding

// DecodeKey decodes base64url with or without padding (browsers and libraries
// differ), the encoding of p256dh, auth and VAPID keys.
func DecodeKey(s string) ([]byte, error) {
	return b64.DecodeString(strings.TrimRight(s, "="))
}

// VAPID signs the Authorization header of push requests (RFC 8292).
type VAPID struct {
	priv    *ecdsa.PrivateKey
	pub     string // base64url of the uncompressed public key
	subject string
}

// GenerateVAPIDKeys returns a new P-256 key pair, base64url without padding: the
// 32-byte private scalar and the 65-byte uncompressed public key (the form browsers
// take as applicationServerKey).
func GenerateVAPIDKeys() (private, public string, err error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", fmt.Errorf("generate VAPID key: %w", err)
	}
	pb, err := k.Bytes()
	if err != nil {
		return "", "", fmt.Errorf("encode VAPID key: %w", err)
	}
	ub, err := k.PublicKey.Bytes()
	if err != nil {
		return "", "", fmt.Errorf("encode VAPID key: %w", err)
	}
	return b64.EncodeToString(pb), b64.EncodeToString(ub), nil
}

// NewVAPID parses a base64url private key (GenerateVAPIDKeys) and checks that
// subject is a mailto: or https: URI, the contact RFC 8292 section 2.1 asks for.
func NewVAPID(private, subject string) (*VAPID, error) {
	raw, err := DecodeKey(private)
	if err != nil {
		return nil, fmt.Errorf("%w: private key is not base64url: %w", ErrBadVAPID, err)
	}
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), raw)
	if err != nil {
		return nil, fmt.Errorf("%w: private key: %w", ErrBadVAPID, err)
	}
	u, err := url.Parse(subject)
	if err != nil || (u.Scheme != "mailto" && u.Scheme != "https") || (u.Opaque == "" && u.Host == "") {
		return nil, fmt.Errorf("%w: subject %q is not a mailto: or https: URI", ErrBadVAPID, subject)
	}
	ub, err := k.PublicKey.Bytes()
	if err != nil {
		return nil, fmt.Errorf("%w: public key: %w", ErrBadVAPID, err)
	}
	return &VAPID{priv: k, pub: b64.EncodeToString(ub), subject: subject}, nil
}

// PublicKey is the base64url public key clients pass to pushManager.subscribe.
func (v *VAPID) PublicKey() string { return v.pub }

// Audience is the origin of a push endpoint, the JWT's aud claim.
func Audience(endpoint string) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("endpoint %q has no origin", endpoint)
	}
	return u.Scheme + "://" + u.Host, nil
}

// Authorization returns the value of the Authorization header for a request to
// endpoint: "vapid t=<JWT>, k=<public key>", the token expiring at exp.
func (v *VAPID) Authorization(endpoint string, exp time.Time) (string, error) {
	aud, err := Audience(endpoint)
	if err != nil {
		return "", err
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"aud": aud, "exp": exp.Unix(), "sub": v.subject})
	s, err := tok.SignedString(v.priv)
	if err != nil {
		return "", fmt.Errorf("sign VAPID token: %w", err)
	}
	return "vapid t=" + s + ", k=" + v.pub, nil
}
