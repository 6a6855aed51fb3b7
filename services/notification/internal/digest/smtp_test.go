package digest_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// received is one message the test SMTP server accepted.
type received struct {
	From string
	To   []string
	Data []byte
	TLS  bool
	User string
}

// smtpServer is an in-process SMTP server on loopback that requires STARTTLS before
// AUTH PLAIN (user "digest", password "s3cret") and records every message.
type smtpServer struct {
	Addr string
	mu   sync.Mutex
	msgs []received
	got  chan struct{}
}

func (s *smtpServer) Messages() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.msgs...)
}

type session struct {
	srv  *smtpServer
	conn *smtp.Conn
	cur  received
}

func (x *session) AuthMechanisms() []string { return []string{sasl.Plain} }
func (x *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != "digest" || pass != "s3cret" {
			return errors.New("bad credentials")
		}
		x.cur.User = user
		return nil
	}), nil
}
func (x *session) Mail(from string, _ *smtp.MailOptions) error {
	if x.cur.User == "" {
		return &smtp.SMTPError{Code: 530, Message: "authentication required"}
	}
	x.cur.From = from
	return nil
}
func (x *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	x.cur.To = append(x.cur.To, to)
	return nil
}
func (x *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, isTLS := x.conn.TLSConnectionState()
	m := x.cur
	m.Data, m.TLS = b, isTLS
	x.srv.mu.Lock()
	x.srv.msgs = append(x.srv.msgs, m)
	x.srv.mu.Unlock()
	select {
	case x.srv.got <- struct{}{}:
	default:
	}
	return nil
}
func (x *session) Reset()        { x.cur = received{User: x.cur.User} }
func (x *session) Logout() error { return nil }

// startSMTP starts the server with the certificate of tlsSrv (an httptest TLS
// server, valid for 127.0.0.1) and returns a client TLS config trusting it.
func startSMTP(t *testing.T, tlsSrv *httptest.Server) (*smtpServer, *tls.Config) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &smtpServer{Addr: ln.Addr().String(), got: make(chan struct{}, 16)}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) { return &session{srv: s, conn: c}, nil }))
	srv.Domain = "localhost"
	srv.TLSConfig = &tls.Config{Certificates: tlsSrv.TLS.Certificates, MinVersion: tls.VersionTLS12}
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	pool := x509.NewCertPool()
	pool.AddCert(tlsSrv.Certificate())
	return s, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
}
