// Package auth verifies the JWTs clients present (docs/protocol.md "Connecting") and signs tokens for
// development and tests.
//
// Accepted algorithms: HS256 with a shared secret; RS256, ES256 and EdDSA with keys
// from a JWKS file or URL (fetched and cached, refreshed on an unknown kid at most once
// a minute). "none", unknown kids, bad signatures, expired and not-yet-valid tokens are
// refused. `sub` and `exp` are required; `iss` and `aud` are checked when configured.
package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
)

// Errors returned by Verify; each is wrapped with the detail.
var (
	// ErrMissingToken: no token was presented.
	ErrMissingToken = errors.New("missing token")
	// ErrInvalidToken: the token is malformed, badly signed, expired or otherwise refused.
	ErrInvalidToken = errors.New("invalid token")
)

// Claims are the verified facts a token carries.
type Claims struct {
	UserID    string
	Name      string
	Roles     []string
	ExpiresAt time.Time
}

// HasRole reports whether the claims carry role.
func (c Claims) HasRole(role string) bool {
	for _, r := range c.Roles {
		if r == role {
			return true
		}
	}
	return false
}

type tokenClaims struct {
	Name  string   `json:"name,omitempty"`
	Roles []string `json:"roles,omitempty"`
	jwt.RegisteredClaims
}

// Config configures a Verifier. At least one of Secret or JWKS is required.
type Config struct {
	Secret   string // HS256 shared secret
	JWKS     string // path to a JWKS file, or an http(s) URL
	Issuer   string // checked when set
	Audience string // checked when set
	// Leeway tolerates clock skew for exp/nbf (default 30s).
	Leeway time.Duration
}

// Verifier checks tokens. It is safe for concurrent use.
type Verifier struct {
	cfg    Config
	parser *jwt.Parser
	jwks   keyfunc.Keyfunc
	cancel context.CancelFunc
}

// NewVerifier builds a verifier; a JWKS URL is fetched in the background and cached.
func NewVerifier(ctx context.Context, cfg Config) (*Verifier, error) {
	if cfg.Secret == "" && cfg.JWKS == "" {
		return nil, errors.New("auth: a JWT secret or a JWKS source is required")
	}
	if cfg.Leeway == 0 {
		cfg.Leeway = 30 * time.Second
	}
	v := &Verifier{cfg: cfg}
	methods := []string{}
	if cfg.Secret != "" {
		methods = append(methods, "HS256")
	}
	if cfg.JWKS != "" {
		methods = append(methods, "RS256", "ES256", "EdDSA")
		switch {
		case strings.HasPrefix(cfg.JWKS, "http://") || strings.HasPrefix(cfg.JWKS, "https://"):
			kctx, cancel := context.WithCancel(ctx)
			kf, err := keyfunc.NewDefaultCtx(kctx, []string{cfg.JWKS})
			if err != nil {
				cancel()
				return nil, fmt.Errorf("auth: load jwks %s: %w", cfg.JWKS, err)
			}
			v.jwks, v.cancel = kf, cancel
		default:
			raw, err := os.ReadFile(cfg.JWKS)
			if err != nil {
				return nil, fmt.Errorf("auth: read jwks file: %w", err)
			}
			kf, err := keyfunc.NewJWKSetJSON(json.RawMessage(raw))
			if err != nil {
				return nil, fmt.Errorf("auth: parse jwks file %s: %w", cfg.JWKS, err)
			}
			v.jwks = kf
		}
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(methods),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(cfg.Leeway),
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	v.parser = jwt.NewParser(opts...)
	return v, nil
}

// Close stops background JWKS refreshes.
func (v *Verifier) Close() {
	if v.cancel != nil {
		v.cancel()
	}
}

func (v *Verifier) key(t *jwt.Token) (any, error) {
	if t.Method.Alg() == "HS256" {
		if v.cfg.Secret == "" {
			return nil, errors.New("HS256 not accepted")
		}
		return []byte(v.cfg.Secret), nil
	}
	if v.jwks == nil {
		return nil, fmt.Errorf("algorithm %s not accepted", t.Method.Alg())
	}
	return v.jwks.Keyfunc(t)
}

// Verify parses and verifies a token.
func (v *Verifier) Verify(token string) (Claims, error) {
	if token == "" {
		return Claims{}, ErrMissingToken
	}
	var tc tokenClaims
	if _, err := v.parser.ParseWithClaims(token, &tc, v.key); err != nil {
		return Claims{}, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	if tc.Subject == "" {
		return Claims{}, fmt.Errorf("%w: sub claim is required", ErrInvalidToken)
	}
	if len(tc.Subject) > 128 || len(tc.Name) > 256 || len(tc.Roles) > 32 {
		return Claims{}, fmt.Errorf("%w: claims too large", ErrInvalidToken)
	}
	return Claims{UserID: tc.Subject, Name: tc.Name, Roles: tc.Roles, ExpiresAt: tc.ExpiresAt.Time}, nil
}

// SignHS256 issues a token for development and tests.
func SignHS256(secret string, c Claims, issuer, audience string) (string, error) {
	rc := jwt.RegisteredClaims{
		Subject:   c.UserID,
		ExpiresAt: jwt.NewNumericDate(c.ExpiresAt),
		IssuedAt:  jwt.NewNumericDate(time.Now()),
		Issuer:    issuer,
	}
	if audience != "" {
		rc.Audience = jwt.ClaimStrings{audience}
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, tokenClaims{Name: c.Name, Roles: c.Roles, RegisteredClaims: rc})
	s, err := tok.SignedString([]byte(secret))
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return s, nil
}
