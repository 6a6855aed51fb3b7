package edge_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/talim/realtime/pkg/auth"
	"github.com/talim/realtime/services/edge"
	"github.com/talim/realtime/services/edge/edgetest"
)

func tokenFor(t testing.TB, user string, ttl time.Duration) string {
	return edgetest.Token(t, secret, user, ttl)
}

func algNoneToken(user string) string {
	enc := base64.RawURLEncoding.EncodeToString
	header := enc([]byte(`{"alg":"none","typ":"JWT"}`))
	payload := enc([]byte(fmt.Sprintf(`{"sub":%q,"exp":%d}`, user, time.Now().Add(time.Hour).Unix())))
	return header + "." + payload + "."
}

func TestConnect_ConnectedFrame(t *testing.T) {
	t.Parallel()
	h := startEdge(t, func(c *edge.Config) { c.PingInterval = 7 * time.Second })
	for _, tc := range []struct {
		name string
		opts []edgetest.Option
	}{
		{"query token", nil},
		{"authorization header", []edgetest.Option{edgetest.WithAuthHeader()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := edgetest.Dial(t, h.wsURL(), h.token("u1", time.Hour), tc.opts...)
			got := c.Connected
			if got.UserID != "u1" || !strings.HasPrefix(got.ConnectionID, "c_") || got.PingIntervalMs != 7000 {
				t.Fatalf("connected = %+v", got)
			}
			if !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`).MatchString(got.ServerTime) {
				t.Fatalf("serverTime %q is not RFC 3339 with milliseconds in UTC", got.ServerTime)
			}
		})
	}
}

func TestConnect_Refusals(t *testing.T) {
	t.Parallel()
	h := startEdge(t, func(c *edge.Config) {
		c.MaxConnsPerUser = 2
		c.AllowedOrigins = []string{"https://app.example.com"}
	})
	expired, err := auth.SignHS256(secret, auth.Claims{UserID: "u1", ExpiresAt: time.Now().Add(-time.Hour)}, "", "")
	if err != nil {
		t.Fatal(err)
	}
	otherKey, _ := auth.SignHS256("another-secret-entirely", auth.Claims{UserID: "u1", ExpiresAt: time.Now().Add(time.Hour)}, "", "")
	good := h.token("u1", time.Hour)
	origin := edgetest.WithOrigin("https://app.example.com")

	cases := []struct {
		name   string
		token  string
		opts   []edgetest.Option
		status int
		code   string
	}{
		{"no token", "", []edgetest.Option{origin}, 401, "unauthorized"},
		{"garbage token", "not-a-jwt", []edgetest.Option{origin}, 401, "unauthorized"},
		{"bad signature", otherKey, []edgetest.Option{origin}, 401, "unauthorized"},
		{"expired", expired, []edgetest.Option{origin}, 401, "unauthorized"},
		{"alg none", algNoneToken("u1"), []edgetest.Option{origin}, 401, "unauthorized"},
		{"dev userId without dev mode", "", []edgetest.Option{origin, edgetest.WithQuery("userId", "u1")}, 401, "unauthorized"},
		{"wrong origin", good, []edgetest.Option{edgetest.WithOrigin("https://evil.example.com")}, 403, "forbidden"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := edgetest.DialRefused(t, h.wsURL(), tc.token, tc.opts...)
			if e.Status != tc.status || e.Code != tc.code {
				t.Fatalf("refusal = %d %q (%s), want %d %q", e.Status, e.Code, e.Body, tc.status, tc.code)
			}
		})
	}

	t.Run("per-user cap", func(t *testing.T) {
		edgetest.Dial(t, h.wsURL(), good, origin)
		edgetest.Dial(t, h.wsURL(), good, origin)
		e := edgetest.DialRefused(t, h.wsURL(), good, origin)
		if e.Status != http.StatusTooManyRequests {
			t.Fatalf("third connection: %d %s", e.Status, e.Body)
		}
		// Another user is not affected.
		edgetest.Dial(t, h.wsURL(), h.token("u2", time.Hour), origin)
	})
}

func TestConnect_OriginDefaultSameHost(t *testing.T) {
	t.Parallel()
	h := startEdge(t, nil)
	tok := h.token("u1", time.Hour)
	edgetest.Dial(t, h.wsURL(), tok) // no Origin
	edgetest.Dial(t, h.wsURL(), tok, edgetest.WithOrigin("http://"+h.edge.Addr()))
	e := edgetest.DialRefused(t, h.wsURL(), tok, edgetest.WithOrigin("http://elsewhere.example.com"))
	if e.Status != http.StatusForbidden {
		t.Fatalf("foreign origin: %d", e.Status)
	}
}

func TestConnect_ConnectRate(t *testing.T) {
	t.Parallel()
	h := startEdge(t, func(c *edge.Config) { c.ConnectRate = 0.01; c.ConnectBurst = 2 })
	tok := h.token("u1", time.Hour)
	edgetest.Dial(t, h.wsURL(), tok)
	edgetest.Dial(t, h.wsURL(), tok)
	e := edgetest.DialRefused(t, h.wsURL(), tok)
	if e.Status != http.StatusTooManyRequests || e.Code != "rate_limited" {
		t.Fatalf("third attempt: %d %s", e.Status, e.Body)
	}
	// Another source address has its own bucket.
	edgetest.Dial(t, h.wsURL(), tok, edgetest.WithLocalIP("127.0.0.2"))
}

func TestDevMode(t *testing.T) {
	t.Parallel()
	h := startEdge(t, func(c *edge.Config) {
		c.DevMode = true
		c.DevUsers = []edge.DevUser{{UserID: "teacher1", Name: "Teacher", Roles: []string{"teacher"}}}
	})
	c := edgetest.Dial(t, h.wsURL(), "", edgetest.WithQuery("userId", "dev-user"))
	if c.Connected.UserID != "dev-user" {
		t.Fatalf("connected as %q", c.Connected.UserID)
	}
	status, body := httpGet(t, h.httpURL()+"/dev/tokens")
	if status != 200 {
		t.Fatalf("/dev/tokens: %d %s", status, body)
	}
	var out struct {
		Users []struct {
			UserID, Name, Token string
			Roles               []string
		} `json:"users"`
	}
	if err := json.Unmarshal([]byte(body), &out); err != nil || len(out.Users) != 1 || out.Users[0].Token == "" {
		t.Fatalf("/dev/tokens body %s (%v)", body, err)
	}
	c2 := edgetest.Dial(t, h.wsURL(), out.Users[0].Token)
	if c2.Connected.UserID != "teacher1" {
		t.Fatalf("token from /dev/tokens connected as %q", c2.Connected.UserID)
	}
}

func TestHTTP_StaticAndHealth(t *testing.T) {
	t.Parallel()
	h := startEdge(t, nil)
	// The demo page at / is the React demo of @talim/realtime at /kit/.
	for _, path := range []string{"/", "/kit/", "/?user=t1"} {
		if status, body := httpGet(t, h.httpURL()+path); status != 200 || !strings.Contains(body, "@talim/realtime") || !strings.Contains(body, "./demo.js") {
			t.Fatalf("%s: %d, not the React demo: %.200s", path, status, body)
		}
	}
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(h.httpURL() + "/?user=t1&room=class-7a")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || loc != "/kit/?user=t1&room=class-7a" {
		t.Fatalf("/?user=t1&room=class-7a: %d Location %q, want 302 to /kit/ with the query", resp.StatusCode, loc)
	}
	for _, gone := range []string{"/app.js", "/talim-react.js", "/talim-react-core.js"} {
		if status, _ := httpGet(t, h.httpURL()+gone); status != 404 {
			t.Errorf("%s: %d, want 404 (retired)", gone, status)
		}
	}
	if status, _ := httpGet(t, h.httpURL()+"/talim-client.js"); status != 200 {
		t.Errorf("/talim-client.js: %d, want 200 (kept for pages without a bundler)", status)
	}
	if status, body := httpGet(t, h.httpURL()+"/healthz"); status != 200 {
		t.Fatalf("/healthz: %d %s", status, body)
	}
	if status, body := httpGet(t, h.httpURL()+"/readyz"); status != 200 {
		t.Fatalf("/readyz: %d %s", status, body)
	}
	if status, _ := httpGet(t, h.httpURL()+"/dev/tokens"); status == 200 {
		t.Fatalf("/dev/tokens served outside dev mode")
	}
}
