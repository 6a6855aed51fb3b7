package edge_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/talim/realtime/services/edge"
	"github.com/talim/realtime/services/edge/edgetest"
)

// preflight GETs /ws without an upgrade, as the JavaScript client does after a socket
// closed before it opened (a browser cannot read the refused upgrade's status).
func preflight(t *testing.T, h *harness, token, origin string) (status int, code, message, allowOrigin string) {
	t.Helper()
	u := h.httpURL() + "/ws"
	if token != "" {
		u += "?token=" + url.QueryEscape(token)
	}
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var e struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("GET /ws: %d, body is not JSON: %q", resp.StatusCode, body)
	}
	return resp.StatusCode, e.Error.Code, e.Error.Message, resp.Header.Get("Access-Control-Allow-Origin")
}

func TestPreflight_ExplainsRefusals(t *testing.T) {
	t.Parallel()
	h := startEdge(t, func(c *edge.Config) {
		c.MaxConnsPerUser = 1
		c.AllowedOrigins = []string{"https://app.example.com"}
	})
	const app = "https://app.example.com"
	good := h.token("u1", time.Hour)

	for _, tc := range []struct {
		name, token, origin string
		status              int
		code, message, cors string
	}{
		{"bad token", "not-a-jwt", app, 401, "unauthorized", "invalid token", app},
		{"missing token", "", app, 401, "unauthorized", "missing token", app},
		{"foreign origin", good, "https://evil.example.com", 403, "forbidden", "origin not allowed", ""},
		{"good token", good, app, 426, "bad_request", "token accepted; connect with a WebSocket upgrade", app},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, code, message, cors := preflight(t, h, tc.token, tc.origin)
			if status != tc.status || code != tc.code || message != tc.message || cors != tc.cors {
				t.Fatalf("GET /ws = %d %q %q (CORS %q), want %d %q %q (CORS %q)", status, code, message, cors, tc.status, tc.code, tc.message, tc.cors)
			}
		})
	}

	// A pre-flight takes no connection slot: with a cap of one, the user still connects
	// after several, and a pre-flight while connected says the token is fine.
	for range 3 {
		if status, _, _, _ := preflight(t, h, good, app); status != http.StatusUpgradeRequired {
			t.Fatalf("pre-flight with a good token: %d", status)
		}
	}
	edgetest.Dial(t, h.wsURL(), good, edgetest.WithOrigin(app))
	if status, _, _, _ := preflight(t, h, good, app); status != http.StatusUpgradeRequired {
		t.Fatalf("pre-flight while connected: %d", status)
	}
	// The upgrade itself is still refused as before.
	if e := edgetest.DialRefused(t, h.wsURL(), "not-a-jwt", edgetest.WithOrigin(app)); e.Status != http.StatusUnauthorized {
		t.Fatalf("upgrade with a bad token: %d %s", e.Status, e.Body)
	}
}

// The edge serves the React demo built from web/kit (web/static/kit, embedded) and the
// package's compiled client (web/kit/dist/client, embedded as it is), which
// static/talim-client.js re-exports by a path that also resolves in Node.
func TestHTTP_KitDemo(t *testing.T) {
	t.Parallel()
	h := startEdge(t, nil)
	for path, want := range map[string]string{
		"/kit/":                     "./demo.js",
		"/kit/demo.js":              "talim-status",
		"/kit/client/index.js":      "TalimClient",
		"/kit/dist/client/index.js": "TalimClient",
		"/talim-client.js":          "../kit/dist/client/index.js",
	} {
		status, body := httpGet(t, h.httpURL()+path)
		if status != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("GET %s: %d, body without %q (%d bytes)", path, status, want, len(body))
		}
	}
}
