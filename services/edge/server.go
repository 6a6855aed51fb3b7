package edge

import (
	"bufio"
	"embed"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gobwas/ws"

	"github.com/talim/realtime/pkg/auth"
)

//go:embed web/static
var webFS embed.FS

// kitClientFS is the compiled @talim/realtime client (web/kit/dist/client), served
// as plain ES modules for pages without a bundler. It is the package's own build
// output, embedded where it is, not a copy.
//
//go:embed web/kit/dist/client/*.js
var kitClientFS embed.FS

// routes builds the main HTTP mux: the WebSocket endpoint, the demo assets, health
// endpoints and (DevMode only) /dev/tokens.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ws", s.handleWS)
	// Socket.IO compatibility: WebSocket (socketio.go) and long-polling (polling.go).
	mux.HandleFunc("GET /socket.io/", s.handleSocketIO)
	mux.HandleFunc("POST /socket.io/", s.handleSocketIO)
	mux.HandleFunc("OPTIONS /socket.io/", s.handleSocketIOPreflight)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if failed := s.rt.Admin.Ready(r.Context()); len(failed) > 0 {
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unready", "failed": failed})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"status": "ready"})
	})
	if s.cfg.DevMode {
		mux.HandleFunc("GET /dev/tokens", s.handleDevTokens)
	}
	static, err := fs.Sub(webFS, "web/static")
	if err == nil {
		mux.Handle("GET /", http.FileServerFS(static))
		if client, err := fs.Sub(kitClientFS, "web/kit/dist/client"); err == nil {
			// /kit/client/ for pages, /kit/dist/client/ for talim-client.js's
			// relative import (the same path works from its source tree in Node).
			files := http.FileServerFS(client)
			mux.Handle("GET /kit/client/", http.StripPrefix("/kit/client/", files))
			mux.Handle("GET /kit/dist/client/", http.StripPrefix("/kit/dist/client/", files))
		}
		// The demo page is the React demo of @talim/realtime (web/kit/demo, built into
		// static/kit with relative asset paths): / sends the browser there, query kept
		// (/?user=t1 → /kit/?user=t1).
		mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
			target := "/kit/"
			if r.URL.RawQuery != "" {
				target += "?" + r.URL.RawQuery
			}
			http.Redirect(w, r, target, http.StatusFound)
		})
	}
	return mux
}

// refuse writes a refusal before any upgrade (docs/protocol.md "Connecting").
func (s *Server) refuse(w http.ResponseWriter, status int, code, reason, message string) {
	s.metrics.refused(reason)
	w.Header().Set("Connection", "close")
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": message}})
}

func (s *Server) handleWS(w http.ResponseWriter, r *http.Request) {
	if !isUpgrade(r) {
		s.handleWSPreflight(w, r)
		return
	}
	if !s.admit(w, r) {
		return
	}
	claims, ok := s.authenticateAndReserve(w, r)
	if !ok {
		return
	}
	conn, rw, _, err := ws.UpgradeHTTP(r, w)
	if err != nil {
		s.hub.release(claims.UserID)
		s.metrics.refused("handshake")
		if conn != nil {
			_ = conn.Close()
		}
		return
	}
	s.serve(conn, leftovers(conn, rw), protoNative, claims, clientTrace(r))
}

// isUpgrade reports whether r asks for a WebSocket upgrade.
func isUpgrade(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

// handleWSPreflight answers a plain GET of the upgrade URL: what the upgrade would get
// if it were refused (the same 503/403/429/401 JSON), else 426. A browser cannot read
// the status of a refused upgrade, so the JavaScript client (web/kit) asks this way
// after a socket closed before it opened, to show "invalid token" instead of retrying
// forever. It takes no connection slot. CORS lets a page on an allowed origin read it.
func (s *Server) handleWSPreflight(w http.ResponseWriter, r *http.Request) {
	if origin := r.Header.Get("Origin"); origin != "" && s.originAllowed(r) {
		w.Header().Set("Access-Control-Allow-Origin", origin)
		w.Header().Add("Vary", "Origin")
	}
	if !s.admit(w, r) {
		return
	}
	if _, err := s.authenticate(r); err != nil {
		msg := "invalid token"
		if errors.Is(err, auth.ErrMissingToken) {
			msg = "missing token"
		}
		// Not counted in the refusal metrics: the upgrade it explains already was.
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": map[string]string{"code": "unauthorized", "message": msg}})
		return
	}
	writeJSON(w, http.StatusUpgradeRequired, map[string]any{"error": map[string]string{"code": "bad_request", "message": "token accepted; connect with a WebSocket upgrade"}})
}

// admit applies the refusals that come before authentication, for every protocol:
// 503 while draining, 403 for an Origin outside the allow-list, 429 when the client
// address connects too fast. It reports whether the request may go on.
func (s *Server) admit(w http.ResponseWriter, r *http.Request) bool {
	if s.draining.Load() {
		w.Header().Set("Retry-After", "1")
		s.refuse(w, http.StatusServiceUnavailable, "unavailable", "draining", "server is restarting, connect again")
		return false
	}
	if !s.originAllowed(r) {
		s.refuse(w, http.StatusForbidden, "forbidden", "origin", "origin not allowed")
		return false
	}
	if !s.connects.allow(s.clientAddr(r), time.Now()) {
		w.Header().Set("Retry-After", "1")
		s.refuse(w, http.StatusTooManyRequests, "rate_limited", "connect_rate", "too many connection attempts, slow down")
		return false
	}
	return true
}

// authenticateAndReserve authenticates the upgrade request and takes one of the
// user's connection slots, or writes the refusal (401, 429 user cap, 503) and
// reports false. The caller gives the slot back with hub.release if the upgrade
// then fails.
func (s *Server) authenticateAndReserve(w http.ResponseWriter, r *http.Request) (auth.Claims, bool) {
	claims, err := s.authenticate(r)
	if err != nil {
		msg := "invalid token"
		if errors.Is(err, auth.ErrMissingToken) {
			msg = "missing token"
		}
		s.refuse(w, http.StatusUnauthorized, "unauthorized", "unauthorized", msg)
		return claims, false
	}
	if err := s.hub.reserve(claims.UserID, s.cfg.MaxConnsPerUser); err != nil {
		if errors.Is(err, errUserCap) {
			s.refuse(w, http.StatusTooManyRequests, "rate_limited", "user_cap", "too many connections for this user")
			return claims, false
		}
		s.log.Error("reserve connection", "err", err)
		s.refuse(w, http.StatusServiceUnavailable, "unavailable", "internal", "temporarily unavailable")
		return claims, false
	}
	return claims, true
}

// leftovers returns conn, or a reader that first yields bytes the HTTP server
// buffered after the handshake (a client that pipelined its first frame). Dropping
// the bufio.ReadWriter keeps idle connections small.
func leftovers(conn net.Conn, rw *bufio.ReadWriter) io.Reader {
	if rw == nil || rw.Reader.Buffered() == 0 {
		return conn
	}
	n := rw.Reader.Buffered()
	b, _ := rw.Reader.Peek(n)
	return io.MultiReader(strings.NewReader(string(b)), conn)
}

// authenticate verifies the token from ?token= or Authorization: Bearer; in DevMode a
// bare ?userId= is accepted too.
func (s *Server) authenticate(r *http.Request) (auth.Claims, error) {
	q := r.URL.Query()
	token := tokenFrom(q, r.Header)
	if token == "" && s.cfg.DevMode {
		if uid := q.Get("userId"); uid != "" && len(uid) <= 128 {
			return auth.Claims{UserID: uid, Name: uid}, nil
		}
	}
	return s.verifier.Verify(token)
}

// tokenFrom extracts the client token: the query parameter token wins, else an
// "Authorization: Bearer <token>" header (scheme case-insensitive, surrounding
// spaces trimmed); "" when neither carries one (docs/protocol.md "Connecting").
func tokenFrom(q url.Values, h http.Header) string {
	if token := q.Get("token"); token != "" {
		return token
	}
	if v := h.Get("Authorization"); len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
		return strings.TrimSpace(v[7:])
	}
	return ""
}

func (s *Server) handleDevTokens(w http.ResponseWriter, _ *http.Request) {
	type tok struct {
		UserID string   `json:"userId"`
		Name   string   `json:"name"`
		Roles  []string `json:"roles"`
		Token  string   `json:"token"`
	}
	out := struct {
		Users []tok `json:"users"`
	}{Users: []tok{}}
	for _, u := range s.cfg.DevUsers {
		t, err := auth.SignHS256(s.cfg.JWTSecret, auth.Claims{
			UserID: u.UserID, Name: u.Name, Roles: u.Roles, ExpiresAt: time.Now().Add(24 * time.Hour),
		}, s.cfg.JWTIssuer, s.cfg.JWTAudience)
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]any{"error": map[string]string{"code": "internal", "message": err.Error()}})
			return
		}
		roles := u.Roles
		if roles == nil {
			roles = []string{}
		}
		out.Users = append(out.Users, tok{UserID: u.UserID, Name: u.Name, Roles: roles, Token: t})
	}
	writeJSON(w, http.StatusOK, out)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
