package e2e

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/talim/realtime/services/edge"
	"github.com/talim/realtime/services/edge/edgetest"
)

// signToken builds a token with exactly the given claims and header.
func signToken(t testing.TB, method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func writeJWKS(t testing.TB, kid string, pub *rsa.PublicKey) string {
	t.Helper()
	b64 := base64.RawURLEncoding.EncodeToString
	set := map[string]any{"keys": []map[string]string{{
		"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
		"n": b64(pub.N.Bytes()), "e": b64(big.NewInt(int64(pub.E)).Bytes()),
	}}}
	raw, _ := json.Marshal(set)
	path := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestSecurity_Handshake: every way of presenting a bad token, or coming from a
// foreign page, is refused before the upgrade with the documented status and code;
// the control rows prove the same edges accept a good one.
func TestSecurity_Handshake(t *testing.T) {
	ns := startNATSAt(t)
	fdb := startFerretAt(t)
	rg := newRig(t, ns.URL(), fdb.URI())
	b := rg.startBasic(nil)

	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	otherKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	jc := rg.edgeConfig(ns.URL())
	jc.JWTSecret, jc.JWKS = "", writeJWKS(t, "k1", &key.PublicKey)
	jwksEdge, _ := rg.startEdge("edge-jwks", jc)
	ac := rg.edgeConfig(ns.URL())
	ac.JWTAudience, ac.JWTIssuer = "talim-web", "https://school.example"
	audEdge, _ := rg.startEdge("edge-aud", ac)
	oc := rg.edgeConfig(ns.URL())
	oc.AllowedOrigins = []string{"https://app.example.org"}
	originEdge, _ := rg.startEdge("edge-origin", oc)

	now := time.Now()
	hs := func(c jwt.MapClaims) string { return signToken(t, jwt.SigningMethodHS256, []byte(rg.Secret), "", c) }
	claims := func(extra map[string]any) jwt.MapClaims {
		c := jwt.MapClaims{"sub": "u1", "exp": now.Add(time.Hour).Unix(), "name": "U One"}
		for k, v := range extra {
			if v == nil {
				delete(c, k)
			} else {
				c[k] = v
			}
		}
		return c
	}
	none := func() string {
		tok := jwt.NewWithClaims(jwt.SigningMethodNone, claims(nil))
		s, err := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}()

	rows := []struct {
		name   string
		edge   *edge.Server
		token  string
		opts   []edgetest.Option
		status int // 0: accepted
		code   string
	}{
		{"Valid_HS256_Accepted", b.Edge, hs(claims(nil)), nil, 0, ""},
		{"Valid_InAuthorizationHeader_Accepted", b.Edge, hs(claims(nil)), []edgetest.Option{edgetest.WithAuthHeader()}, 0, ""},
		{"MissingToken", b.Edge, "", nil, 401, "unauthorized"},
		{"GarbageToken", b.Edge, "not.a.jwt", nil, 401, "unauthorized"},
		{"Expired", b.Edge, hs(claims(map[string]any{"exp": now.Add(-2 * time.Hour).Unix()})), nil, 401, "unauthorized"},
		{"NoExp", b.Edge, hs(claims(map[string]any{"exp": nil})), nil, 401, "unauthorized"},
		{"NotYetValid", b.Edge, hs(claims(map[string]any{"nbf": now.Add(2 * time.Hour).Unix(), "exp": now.Add(3 * time.Hour).Unix()})), nil, 401, "unauthorized"},
		{"NoSub", b.Edge, hs(claims(map[string]any{"sub": nil})), nil, 401, "unauthorized"},
		{"WrongSignature", b.Edge, signToken(t, jwt.SigningMethodHS256, []byte("another-secret"), "", claims(nil)), nil, 401, "unauthorized"},
		{"AlgNone", b.Edge, none, nil, 401, "unauthorized"},
		{"AlgNone_AuthorizationHeader", b.Edge, none, []edgetest.Option{edgetest.WithAuthHeader()}, 401, "unauthorized"},
		{"RS256_AgainstSecretOnlyEdge", b.Edge, signToken(t, jwt.SigningMethodRS256, key, "k1", claims(nil)), nil, 401, "unauthorized"},
		{"JWKS_Valid_Accepted", jwksEdge, signToken(t, jwt.SigningMethodRS256, key, "k1", claims(nil)), nil, 0, ""},
		{"JWKS_UnknownKid", jwksEdge, signToken(t, jwt.SigningMethodRS256, otherKey, "k2", claims(nil)), nil, 401, "unauthorized"},
		{"JWKS_KnownKidWrongKey", jwksEdge, signToken(t, jwt.SigningMethodRS256, otherKey, "k1", claims(nil)), nil, 401, "unauthorized"},
		{"JWKS_NoKid", jwksEdge, signToken(t, jwt.SigningMethodRS256, otherKey, "", claims(nil)), nil, 401, "unauthorized"},
		{"JWKS_HS256Refused", jwksEdge, hs(claims(nil)), nil, 401, "unauthorized"},
		{"Audience_Valid_Accepted", audEdge, hs(claims(map[string]any{"aud": "talim-web", "iss": "https://school.example"})), nil, 0, ""},
		{"Audience_Other", audEdge, hs(claims(map[string]any{"aud": "grades-app", "iss": "https://school.example"})), nil, 401, "unauthorized"},
		{"Audience_Missing", audEdge, hs(claims(map[string]any{"iss": "https://school.example"})), nil, 401, "unauthorized"},
		{"Issuer_Other", audEdge, hs(claims(map[string]any{"aud": "talim-web", "iss": "https://evil.example"})), nil, 401, "unauthorized"},
		{"DevUserIdWithoutDevMode", b.Edge, "", []edgetest.Option{edgetest.WithQuery("userId", "t1")}, 401, "unauthorized"},
		{"Origin_Allowed_Accepted", originEdge, hs(claims(nil)), []edgetest.Option{edgetest.WithOrigin("https://app.example.org")}, 0, ""},
		{"Origin_Foreign", originEdge, hs(claims(nil)), []edgetest.Option{edgetest.WithOrigin("https://evil.example")}, 403, "forbidden"},
		{"Origin_LookAlike", originEdge, hs(claims(nil)), []edgetest.Option{edgetest.WithOrigin("https://app.example.org.evil.example")}, 403, "forbidden"},
		{"Origin_ForeignOnDefaultEdge", b.Edge, hs(claims(nil)), []edgetest.Option{edgetest.WithOrigin("https://evil.example")}, 403, "forbidden"},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			url := wsURL(row.edge)
			if row.status == 0 {
				c := edgetest.Dial(t, url, row.token, row.opts...)
				if c.Connected.UserID != "u1" {
					t.Fatalf("connected as %q", c.Connected.UserID)
				}
				c.Close()
				return
			}
			herr := edgetest.DialRefused(t, url, row.token, row.opts...)
			if herr.Status != row.status || herr.Code != row.code {
				t.Fatalf("refused with %d %q (%s), want %d %q", herr.Status, herr.Code, herr.Body, row.status, row.code)
			}
		})
	}
}
