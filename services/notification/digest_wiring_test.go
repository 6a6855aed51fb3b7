package notification_test

import (
	"io"
	"net"
	"net/http"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	notificationv1 "github.com/talim/realtime/proto/talim/notification/v1"
	"github.com/talim/realtime/services/notification"
)

// relay is a loopback SMTP relay without TLS or AUTH (TALIM_SMTP_TLS=none); TLS and
// AUTH are covered by internal/digest's tests.
type relay struct {
	mu   sync.Mutex
	msgs [][]byte
	got  chan struct{}
}

type relaySession struct{ r *relay }

func (s relaySession) Mail(string, *smtp.MailOptions) error { return nil }
func (s relaySession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s relaySession) Reset()                               {}
func (s relaySession) Logout() error                        { return nil }
func (s relaySession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.r.mu.Lock()
	s.r.msgs = append(s.r.msgs, b)
	s.r.mu.Unlock()
	select {
	case s.r.got <- struct{}{}:
	default:
	}
	return nil
}

func startRelay(t *testing.T) (*relay, int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{got: make(chan struct{}, 4)}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return relaySession{r}, nil }))
	srv.Domain, srv.ReadTimeout, srv.WriteTimeout = "localhost", 10*time.Second, 10*time.Second
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return r, ln.Addr().(*net.TCPAddr).Port
}

// TestDigest_Wiring: with SMTP configured, the school's SetContact enrols a user,
// the service mails the digest (chat is not running: the digest goes out without
// direct messages), and the one-click POST on the service's endpoint stops it.
func TestDigest_Wiring(t *testing.T) {
	t.Parallel()
	r, port := startRelay(t)
	e := start(t, func(c *notification.Config) {
		c.Digest = notification.DigestConfig{SMTPHost: "127.0.0.1", SMTPPort: port, SMTPTLS: "none", From: "Talim <noreply@school.example>",
			PublicURL: "https://talim.example", AppURL: "https://app.example", Secret: strings.Repeat("k", 32), HTTPAddr: "127.0.0.1:0",
			EveryHours: 24, Tick: 50 * time.Millisecond}
	})
	e.send(t, &notificationv1.SendRequest{Recipients: []string{"g1"}, Category: "announcement", Title: "Sports day <Friday>", IdempotencyKey: "k1"})
	rc := notificationv1.NewReachServiceClient(e.conn)
	if _, err := rc.SetContact(ctxT(t), &notificationv1.SetContactRequest{Contact: &notificationv1.Contact{UserId: "g1", Email: "g1@example.org"}}); err != nil {
		t.Fatal(err)
	}
	// Not a guardian: no digest until the user opts in.
	ok(t, e.cmd(t, "g1", "c1", "set-preferences", `{"digest":true}`), &struct{}{})
	select {
	case <-r.got:
	case <-time.After(20 * time.Second):
		t.Fatal("no digest arrived")
	}
	r.mu.Lock()
	raw := r.msgs[0]
	r.mu.Unlock()
	m, err := mail.ReadMessage(strings.NewReader(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	link := strings.Trim(m.Header.Get("List-Unsubscribe"), "<>")
	if !strings.HasPrefix(link, "https://talim.example/digest/unsubscribe?t=") || m.Header.Get("List-Unsubscribe-Post") != "List-Unsubscribe=One-Click" {
		t.Fatalf("headers: %v", m.Header)
	}
	// The public URL is the operator's proxy; talk to the listener directly.
	local := "http://" + e.svc.DigestAddr() + strings.TrimPrefix(link, "https://talim.example")
	resp, err := http.Post(local, "application/x-www-form-urlencoded", strings.NewReader("List-Unsubscribe=One-Click"))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("unsubscribe: %v %v", resp, err)
	}
	resp.Body.Close()
	got, err := rc.GetUserPreferences(ctxT(t), &notificationv1.GetUserPreferencesRequest{UserId: "g1"})
	if err != nil || got.GetDigestEffective() || got.GetPreferences().Digest == nil {
		t.Fatalf("after unsubscribe: %v %v", got, err)
	}
}

func TestDigestConfig_Validate(t *testing.T) {
	t.Parallel()
	good := notification.DigestConfig{SMTPHost: "smtp.example", SMTPPort: 587, SMTPTLS: "starttls", From: "noreply@school.example",
		PublicURL: "https://talim.example", Secret: strings.Repeat("k", 32), HTTPAddr: ":8088"}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]func(*notification.DigestConfig){
		"http url":     func(c *notification.DigestConfig) { c.PublicURL = "http://talim.example" },
		"short secret": func(c *notification.DigestConfig) { c.Secret = "short" },
		"tls mode":     func(c *notification.DigestConfig) { c.SMTPTLS = "maybe" },
		"auth in clear": func(c *notification.DigestConfig) {
			c.SMTPTLS, c.SMTPUsername = "none", "u"
		},
		"from": func(c *notification.DigestConfig) { c.From = "not an address" },
		"port": func(c *notification.DigestConfig) { c.SMTPPort = 70000 },
	} {
		c := good
		f(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if err := (notification.DigestConfig{}).Validate(); err != nil {
		t.Fatalf("disabled config: %v", err)
	}
}
