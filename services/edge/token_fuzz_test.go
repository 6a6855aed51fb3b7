package edge

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/talim/realtime/pkg/auth"
)

const fuzzSecret = "fuzz-secret-0123456789abcdef"

// FuzzAuthenticate feeds arbitrary raw query strings and Authorization headers to
// the upgrade's authentication. It must never panic, extract a token only from
// ?token= or a Bearer header, and accept a connection only for the one token signed
// with the secret (or, in DevMode without a token, a ?userId= of 1-128 bytes).
func FuzzAuthenticate(f *testing.F) {
	good, err := auth.SignHS256(fuzzSecret, auth.Claims{UserID: "u1", Name: "U", ExpiresAt: time.Now().Add(24 * time.Hour)}, "", "")
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []struct {
		query, header string
		dev           bool
	}{
		{"token=" + good, "", false},
		{"", "Bearer " + good, false},
		{"", "bEaReR   " + good + "  ", false},
		{"token=" + good + "&token=x", "Bearer junk", false},
		{"token=&userId=dev", "", true},
		{"userId=" + strings.Repeat("u", 129), "", true},
		{"token=%zz", "Bearer", false},
		{"", "Basic dXNlcjpwYXNz", false},
		{"token=" + good[:len(good)-2], "", false},
		{"token=a.b.c", "Bearer a.b.c", false},
		{";token=x;&&==", "Bearer \x00\xff", false},
	} {
		f.Add(seed.query, seed.header, seed.dev)
	}
	v, err := auth.NewVerifier(context.Background(), auth.Config{Secret: fuzzSecret})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(v.Close)
	f.Fuzz(func(t *testing.T, rawQuery, header string, dev bool) {
		r := &http.Request{URL: &url.URL{Path: "/ws", RawQuery: rawQuery}, Header: http.Header{}}
		if header != "" {
			r.Header["Authorization"] = []string{header}
		}
		q := r.URL.Query()
		tok := tokenFrom(q, r.Header)
		switch {
		case q.Get("token") != "":
			if tok != q.Get("token") {
				t.Fatalf("token %q, want the query's %q", tok, q.Get("token"))
			}
		case tok != "":
			if !strings.EqualFold(header[:7], "bearer ") || tok != strings.TrimSpace(header[7:]) {
				t.Fatalf("token %q from header %q", tok, header)
			}
		}
		s := &Server{cfg: Config{DevMode: dev}, verifier: v}
		claims, err := s.authenticate(r)
		if err != nil {
			if claims.UserID != "" {
				t.Fatalf("error %v with user %q", err, claims.UserID)
			}
			return
		}
		switch {
		case tok == good:
			if claims.UserID != "u1" {
				t.Fatalf("good token gave user %q", claims.UserID)
			}
		case tok == "" && dev:
			if uid := q.Get("userId"); claims.UserID != uid || uid == "" || len(uid) > 128 {
				t.Fatalf("dev user %q from userId %q", claims.UserID, uid)
			}
		default:
			t.Fatalf("accepted token %q (query %q, header %q) as %q", tok, rawQuery, header, claims.UserID)
		}
	})
}
