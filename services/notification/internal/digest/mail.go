package digest

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	htmltemplate "html/template"
	"strings"
	texttemplate "text/template"
	"time"

	"github.com/wneessen/go-mail"
)

// Item is one unread notification in a digest.
type Item struct {
	Category  string
	Title     string
	Body      string
	CreatedAt time.Time
}

// DirectRoom is a direct room with unread messages.
type DirectRoom struct {
	RoomID string `json:"roomId"`
	Name   string `json:"name"`
	Unread int64  `json:"unread"`
}

// Content is what one digest says.
type Content struct {
	UserID         string
	Items          []Item
	MoreItems      int
	Directs        []DirectRoom
	AppURL         string
	UnsubscribeURL string
}

// Empty reports whether there is nothing to send.
func (c *Content) Empty() bool { return len(c.Items) == 0 && len(c.Directs) == 0 }

// Subject is the digest's subject line.
func (c *Content) Subject() string {
	var msgs int64
	for _, d := range c.Directs {
		msgs += d.Unread
	}
	n := len(c.Items) + c.MoreItems
	switch {
	case n > 0 && msgs > 0:
		return fmt.Sprintf("Talim: %d unread notifications and %d unread messages", n, msgs)
	case n > 0:
		return fmt.Sprintf("Talim: %d unread notifications", n)
	default:
		return fmt.Sprintf("Talim: %d unread messages", msgs)
	}
}

var funcs = map[string]any{"date": func(t time.Time) string { return t.UTC().Format("2 Jan 15:04 UTC") }}

var textTmpl = texttemplate.Must(texttemplate.New("text").Funcs(funcs).Parse(`Here is what you have not read yet.
{{if .Items}}
Notifications:
{{range .Items}}
- {{.Title}} ({{date .CreatedAt}}){{if .Body}}
  {{.Body}}{{end}}
{{end}}{{if .MoreItems}}
... and {{.MoreItems}} more.
{{end}}{{end}}{{if .Directs}}
Direct messages:
{{range .Directs}}
- {{.Unread}} unread in {{if .Name}}{{.Name}}{{else}}a direct conversation{{end}}
{{end}}{{end}}
Open Talim: {{.AppURL}}

You receive this digest because email digests are on for your account.
Unsubscribe: {{.UnsubscribeURL}}
`))

// htmlTmpl escapes every value (html/template): titles and bodies are written by
// others and may contain markup.
var htmlTmpl = htmltemplate.Must(htmltemplate.New("html").Funcs(funcs).Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>Talim digest</title></head>
<body style="font-family:sans-serif">
<p>Here is what you have not read yet.</p>
{{if .Items}}<h2>Notifications</h2><ul>
{{range .Items}}<li><strong>{{.Title}}</strong> <small>{{date .CreatedAt}}</small>{{if .Body}}<br>{{.Body}}{{end}}</li>
{{end}}</ul>{{if .MoreItems}}<p>... and {{.MoreItems}} more.</p>{{end}}{{end}}
{{if .Directs}}<h2>Direct messages</h2><ul>
{{range .Directs}}<li>{{.Unread}} unread in {{if .Name}}{{.Name}}{{else}}a direct conversation{{end}}</li>
{{end}}</ul>{{end}}
<p><a href="{{.AppURL}}">Open Talim</a></p>
<p style="font-size:small">You receive this digest because email digests are on for your account.
<a href="{{.UnsubscribeURL}}">Unsubscribe</a></p>
</body></html>
`))

// oneLine removes line breaks so a title cannot end early in the text part.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// Render returns the plain-text and HTML parts.
func Render(c *Content) (text, html string, err error) {
	cc := *c
	cc.Items = make([]Item, len(c.Items))
	for i, it := range c.Items {
		it.Title = oneLine(it.Title)
		cc.Items[i] = it
	}
	var tb, hb bytes.Buffer
	if err := textTmpl.Execute(&tb, &cc); err != nil {
		return "", "", fmt.Errorf("render text: %w", err)
	}
	if err := htmlTmpl.Execute(&hb, &cc); err != nil {
		return "", "", fmt.Errorf("render html: %w", err)
	}
	return tb.String(), hb.String(), nil
}

// Envelope is one digest email.
type Envelope struct {
	ID      string // Message-ID without brackets
	From    string
	To      string
	Content *Content
	Date    time.Time
}

// Build returns the go-mail message of env: multipart/alternative with text and
// HTML parts and the RFC 8058 one-click unsubscribe headers.
func Build(env *Envelope) (*mail.Msg, error) {
	text, html, err := Render(env.Content)
	if err != nil {
		return nil, err
	}
	m := mail.NewMsg()
	if err := m.From(env.From); err != nil {
		return nil, fmt.Errorf("from: %w", err)
	}
	if err := m.To(env.To); err != nil {
		return nil, fmt.Errorf("to: %w", err)
	}
	m.Subject(env.Content.Subject())
	m.SetMessageIDWithValue(env.ID)
	m.SetDateWithValue(env.Date)
	m.SetBulk()
	if err := m.SetListUnsubscribeOneClick(env.Content.UnsubscribeURL); err != nil {
		return nil, fmt.Errorf("unsubscribe header: %w", err)
	}
	m.SetBodyString(mail.TypeTextPlain, text)
	m.AddAlternativeString(mail.TypeTextHTML, html)
	return m, nil
}

// Sender sends one message.
type Sender interface {
	Send(ctx context.Context, m *mail.Msg) error
}

// SMTPConfig configures SMTPSender.
type SMTPConfig struct {
	Host string
	Port int
	// TLS is "starttls" (required STARTTLS), "tls" (implicit TLS, port 465) or
	// "none" (plaintext; loopback relays only).
	TLS      string
	Username string
	Password string
	// TLSConfig overrides the TLS client settings (tests: a private CA).
	TLSConfig *tls.Config
	Timeout   time.Duration
}

// SMTPSender sends through an SMTP server with go-mail.
type SMTPSender struct {
	cfg SMTPConfig
}

// NewSMTPSender returns a sender; it connects per digest batch, not now.
func NewSMTPSender(cfg SMTPConfig) *SMTPSender { return &SMTPSender{cfg: cfg} }

func (s *SMTPSender) client() (*mail.Client, error) {
	opts := []mail.Option{mail.WithPort(s.cfg.Port), mail.WithTimeout(s.cfg.Timeout)}
	if s.cfg.Timeout <= 0 {
		opts[1] = mail.WithTimeout(30 * time.Second)
	}
	switch s.cfg.TLS {
	case "tls":
		opts = append(opts, mail.WithSSL())
	case "none":
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS))
	default:
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory))
	}
	if s.cfg.TLSConfig != nil {
		opts = append(opts, mail.WithTLSConfig(s.cfg.TLSConfig))
	} else {
		opts = append(opts, mail.WithTLSConfig(&tls.Config{ServerName: s.cfg.Host, MinVersion: tls.VersionTLS12}))
	}
	if s.cfg.Username != "" {
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthAutoDiscover), mail.WithUsername(s.cfg.Username), mail.WithPassword(s.cfg.Password))
	}
	c, err := mail.NewClient(s.cfg.Host, opts...)
	if err != nil {
		return nil, fmt.Errorf("smtp client: %w", err)
	}
	return c, nil
}

// Send implements Sender.
func (s *SMTPSender) Send(ctx context.Context, m *mail.Msg) error {
	c, err := s.client()
	if err != nil {
		return err
	}
	if err := c.DialAndSendWithContext(ctx, m); err != nil {
		return fmt.Errorf("smtp %s:%d: %w", s.cfg.Host, s.cfg.Port, err)
	}
	return nil
}
