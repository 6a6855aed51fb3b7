package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const secret = "test-secret-0123456789"

func hs(t *testing.T, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func valid() jwt.MapClaims {
	return jwt.MapClaims{"sub": "u1", "exp": time.Now().Add(time.Hour).Unix(), "name": "Una", "roles": []string{"teacher"}}
}

func with(k string, v any) jwt.MapClaims {
	c := valid()
	if v == nil {
		delete(c, k)
	} else {
		c[k] = v
	}
	return c
}

func TestVerify_HS256Matrix(t *testing.T) {
	t.Parallel()
	v, err := NewVerifier(t.Context(), Config{Secret: secret, Issuer: "talim", Audience: "realtime", Leeway: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	good := with("iss", "talim")
	good["aud"] = "realtime"
	noneTok := b64([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + b64([]byte(`{"sub":"u1","exp":`+jsonNum(time.Now().Add(time.Hour).Unix())+`,"iss":"talim","aud":"realtime"}`)) + "."
	wrongSig := hs(t, good)
	wrongSig = wrongSig[:len(wrongSig)-4] + "AAAA"
	otherSecret, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, good).SignedString([]byte("another-secret"))
	cases := []struct {
		name  string
		token string
		ok    bool
	}{
		{"valid", hs(t, good), true},
		{"missing", "", false},
		{"garbage", "not.a.jwt", false},
		{"expired", hs(t, merge(good, "exp", time.Now().Add(-time.Hour).Unix())), false},
		{"no exp", hs(t, merge(good, "exp", nil)), false},
		{"not yet valid", hs(t, merge(good, "nbf", time.Now().Add(time.Hour).Unix())), false},
		{"no sub", hs(t, merge(good, "sub", nil)), false},
		{"wrong issuer", hs(t, merge(good, "iss", "evil")), false},
		{"wrong audience", hs(t, merge(good, "aud", "other-app")), false},
		{"alg none", noneTok, false},
		{"bad signature", wrongSig, false},
		{"other secret", otherSecret, false},
		{"huge sub", hs(t, merge(good, "sub", strings.Repeat("x", 500))), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			claims, err := v.Verify(c.token)
			if c.ok {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if claims.UserID != "u1" || claims.Name != "Una" || !claims.HasRole("teacher") {
					t.Fatalf("claims = %+v", claims)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted, want refusal")
			}
			if !errors.Is(err, ErrInvalidToken) && !errors.Is(err, ErrMissingToken) {
				t.Fatalf("error %v does not wrap ErrInvalidToken/ErrMissingToken", err)
			}
		})
	}
}

func merge(c jwt.MapClaims, k string, v any) jwt.MapClaims {
	out := jwt.MapClaims{}
	for kk, vv := range c {
		out[kk] = vv
	}
	if v == nil {
		delete(out, k)
	} else {
		out[k] = v
	}
	return out
}

func jsonNum(n int64) string { b, _ := json.Marshal(n); return string(b) }

// TestVerify_JWKS checks RS256, ES256 and EdDSA tokens against a JWKS file, an unknown
// kid, and that HS256 is refused when only a JWKS is configured (key confusion).
func TestVerify_JWKS(t *testing.T) {
	t.Parallel()
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	edPub, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	jwks := map[string]any{"keys": []map[string]any{
		{"kty": "RSA", "kid": "rsa1", "alg": "RS256", "use": "sig", "n": b64(rsaKey.N.Bytes()), "e": b64(big.NewInt(int64(rsaKey.E)).Bytes())},
		{"kty": "EC", "kid": "ec1", "alg": "ES256", "use": "sig", "crv": "P-256", "x": b64(pad32(ecKey.X.Bytes())), "y": b64(pad32(ecKey.Y.Bytes()))},
		{"kty": "OKP", "kid": "ed1", "alg": "EdDSA", "use": "sig", "crv": "Ed25519", "x": b64(edPub)},
	}}
	raw, _ := json.Marshal(jwks)
	path := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier(t.Context(), Config{JWKS: path})
	if err != nil {
		t.Fatal(err)
	}
	sign := func(m jwt.SigningMethod, kid string, key any) string {
		tok := jwt.NewWithClaims(m, valid())
		tok.Header["kid"] = kid
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	for name, tok := range map[string]string{
		"RS256": sign(jwt.SigningMethodRS256, "rsa1", rsaKey),
		"ES256": sign(jwt.SigningMethodES256, "ec1", ecKey),
		"EdDSA": sign(jwt.SigningMethodEdDSA, "ed1", edPriv),
	} {
		if _, err := v.Verify(tok); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	otherKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	refused := map[string]string{
		"unknown kid":       sign(jwt.SigningMethodRS256, "nope", rsaKey),
		"wrong key for kid": sign(jwt.SigningMethodRS256, "rsa1", otherKey),
		"HS256 without secret": func() string {
			tok := jwt.NewWithClaims(jwt.SigningMethodHS256, valid())
			tok.Header["kid"] = "rsa1"
			s, _ := tok.SignedString([]byte("guess"))
			return s
		}(),
	}
	for name, tok := range refused {
		if _, err := v.Verify(tok); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("%s: err = %v, want ErrInvalidToken", name, err)
		}
	}
}

func pad32(b []byte) []byte {
	out := make([]byte, 32)
	copy(out[32-len(b):], b)
	return out
}

func TestNewVerifier_NeedsAKey(t *testing.T) {
	t.Parallel()
	if _, err := NewVerifier(t.Context(), Config{}); err == nil {
		t.Fatal("want an error without secret or JWKS")
	}
	if _, err := NewVerifier(t.Context(), Config{JWKS: filepath.Join(t.TempDir(), "missing.json")}); err == nil {
		t.Fatal("want an error for a missing JWKS file")
	}
}

func TestSignHS256_RoundTrip(t *testing.T) {
	t.Parallel()
	tok, err := SignHS256(secret, Claims{UserID: "s1", Name: "Stu", Roles: []string{"student"}, ExpiresAt: time.Now().Add(time.Minute)}, "", "")
	if err != nil {
		t.Fatal(err)
	}
	v, _ := NewVerifier(t.Context(), Config{Secret: secret})
	c, err := v.Verify(tok)
	if err != nil || c.UserID != "s1" || c.Name != "Stu" || !c.HasRole("student") {
		t.Fatalf("claims %+v err %v", c, err)
	}
}
