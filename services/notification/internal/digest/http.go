package digest

import (
	"context"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"time"
)

// UnsubscribePath is where the unsubscribe link points.
const UnsubscribePath = "/digest/unsubscribe"

// Unsubscriber switches a user's digest off.
type Unsubscriber interface {
	SetDigest(ctx context.Context, userID string, on bool) error
}

var confirmPage = template.Must(template.New("confirm").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>Unsubscribe</title></head><body>
<form method="post" action="{{.Action}}"><input type="hidden" name="List-Unsubscribe" value="One-Click">
<p>Stop the email digests from Talim?</p><button type="submit">Unsubscribe</button></form>
</body></html>
`))

// Handler serves the unsubscribe link. GET shows a confirmation form (mail
// scanners that fetch links must not unsubscribe anyone); POST, the RFC 8058
// one-click request a mail client sends with body "List-Unsubscribe=One-Click",
// switches the digest off. The token in `t` names the user and is verified first.
func Handler(secret []byte, u Unsubscriber, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	mux.HandleFunc(UnsubscribePath, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		user, err := VerifyUnsubscribe(secret, r.URL.Query().Get("t"))
		if err != nil {
			http.Error(w, "This unsubscribe link is not valid.", http.StatusForbidden)
			return
		}
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_ = confirmPage.Execute(w, map[string]string{"Action": UnsubscribePath + "?t=" + r.URL.Query().Get("t")})
		case http.MethodPost:
			_, _ = io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, 4096))
			ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
			defer cancel()
			if err := u.SetDigest(ctx, user, false); err != nil {
				log.Warn("unsubscribe failed", "user", user, "err", err)
				http.Error(w, "Please try again later.", http.StatusServiceUnavailable)
				return
			}
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = io.WriteString(w, "You will no longer receive email digests.\n")
		default:
			w.Header().Set("Allow", "GET, HEAD, POST")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		}
	})
	return mux
}
