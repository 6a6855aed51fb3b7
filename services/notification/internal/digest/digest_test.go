package digest_test

import (
	"bytes"
	"context"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/talim/realtime/pkg/devstack/testkit"
	"github.com/talim/realtime/services/notification/internal/digest"
	"github.com/talim/realtime/services/notification/internal/reach"
	"github.com/talim/realtime/services/notification/internal/store"
)

func TestMain(m *testing.M) { testkit.Main(m) }

var secret = []byte("0123456789abcdef0123456789abcdef")

type clock struct{ ns atomic.Int64 }

func (c *clock) Now() time.Time   { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) Set(s string)     { c.ns.Store(mustTime(s).UnixNano()) }
func mustTime(s string) time.Time { t, err := time.Parse(time.RFC3339, s); must(err); return t }
func must(err error) {
	if err != nil {
		panic(err)
	}
}

type directs struct{ rooms []digest.DirectRoom }

func (d directs) UnreadDirect(context.Context, string) ([]digest.DirectRoom, error) {
	return d.rooms, nil
}

type env struct {
	reach *reach.Store
	svc   *reach.Service
	notes *store.Store
	sched *digest.Schedule
	smtp  *smtpServer
	web   *httptest.Server
	clock *clock
	opts  digest.Options
}

func setup(t *testing.T) *env {
	t.Helper()
	_, db := testkit.MongoClient(t)
	e := &env{reach: reach.NewStore(db), notes: store.New(db), sched: digest.NewSchedule(db), clock: &clock{}}
	e.svc = reach.NewService(e.reach)
	if err := e.sched.EnsureIndexes(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.web = httptest.NewTLSServer(digest.Handler(secret, e.reach, nil))
	t.Cleanup(e.web.Close)
	var tlsCfg = (*struct{})(nil)
	_ = tlsCfg
	srv, clientTLS := startSMTP(t, e.web)
	e.smtp = srv
	host, port, _ := net.SplitHostPort(srv.Addr)
	p, _ := strconv.Atoi(port)
	e.opts = digest.Options{
		Schedule: e.sched, Inbox: digest.StoreInbox{Store: e.notes}, Gate: reach.NewGate(e.reach), Users: e.svc,
		Directs: directs{rooms: []digest.DirectRoom{{RoomID: "dm:1", Name: "Mr <b>Smith</b>", Unread: 2}, {RoomID: "dm:2", Unread: 0}}},
		Sender: digest.NewSMTPSender(digest.SMTPConfig{Host: host, Port: p, TLS: "starttls", Username: "digest", Password: "s3cret",
			TLSConfig: clientTLS, Timeout: 10 * time.Second}),
		From: "Talim <noreply@school.example>", PublicURL: e.web.URL, AppURL: "https://app.school.example/",
		Secret: secret, Owner: "i1", Now: e.clock.Now,
	}
	ctx := context.Background()
	must(e.reach.SetSchool(ctx, &reach.School{ID: "s1", TimeZone: "Europe/London", DefaultQuietHours: &reach.QuietHours{Start: "21:00", End: "07:00"},
		DigestEveryHours: 24, DigestGuardiansByDefault: true}))
	return e
}

func (e *env) runner(owner string) *digest.Runner {
	o := e.opts
	o.Owner = owner
	return digest.New(o)
}

func (e *env) note(t *testing.T, user, id, category, title, body string) {
	t.Helper()
	now := e.clock.Now().Truncate(time.Millisecond)
	_, err := e.notes.InsertNotifications(context.Background(), []store.Notification{{ID: id, UserID: user, SendID: "s", Category: category,
		Title: title, Body: body, Priority: "normal", CreatedAt: now}})
	if err != nil {
		t.Fatal(err)
	}
}

func (e *env) guardian(t *testing.T, user, email string) {
	t.Helper()
	must(e.reach.SetContact(context.Background(), user, reach.Contact{SchoolID: "s1", Email: email, Guardian: true}))
}

// parsed is a received digest, decoded.
type parsed struct {
	Header     mail.Header
	Text, HTML string
}

func parse(t *testing.T, raw []byte) parsed {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		t.Fatalf("content type %q: %v", m.Header.Get("Content-Type"), err)
	}
	out := parsed{Header: m.Header}
	mr := multipart.NewReader(m.Body, params["boundary"])
	for range 10 {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(p) // quoted-printable is decoded by NextPart
		if err != nil {
			t.Fatal(err)
		}
		ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		switch ct {
		case "text/plain":
			out.Text = string(b)
		case "text/html":
			out.HTML = string(b)
		default:
			t.Fatalf("unexpected part %q", ct)
		}
	}
	if out.Text == "" || out.HTML == "" {
		t.Fatalf("want a text and an HTML part: %+v", out)
	}
	return out
}

func TestDigest_SendParseUnsubscribe(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	e.clock.Set("2026-06-10T12:00:00Z") // 13:00 BST
	e.guardian(t, "g1", "parent@example.org")
	// Grades are off by email for this guardian.
	must(e.reach.SetPrefs(ctx, "g1", reach.Prefs{Settings: []reach.Setting{{Channel: reach.ChannelEmail, Category: reach.CategoryGrade, Enabled: false}}}))
	e.note(t, "g1", "n1", "announcement", `<script>alert("x")</script> Trip`, `"><img src=x onerror=alert(1)> & more`)
	e.note(t, "g1", "n2", "grade", "Grade posted", "B+")
	e.note(t, "other", "n3", "announcement", "Not yours", "")
	r := e.runner("i1")
	if err := r.Enrol(ctx, "g1"); err != nil {
		t.Fatal(err)
	}
	if n, err := r.RunOnce(ctx); err != nil || n != 1 {
		t.Fatalf("first run: sent %d, %v", n, err)
	}
	msgs := e.smtp.Messages()
	if len(msgs) != 1 || !msgs[0].TLS || msgs[0].User != "digest" || msgs[0].To[0] != "parent@example.org" {
		t.Fatalf("smtp: %+v", msgs)
	}
	d := parse(t, msgs[0].Data)
	h := d.Header
	if !strings.HasPrefix(h.Get("Subject"), "Talim: 1 unread notifications and 2 unread messages") {
		t.Errorf("subject %q", h.Get("Subject"))
	}
	if h.Get("List-Unsubscribe-Post") != "List-Unsubscribe=One-Click" {
		t.Errorf("List-Unsubscribe-Post %q", h.Get("List-Unsubscribe-Post"))
	}
	lu := h.Get("List-Unsubscribe")
	if !strings.HasPrefix(lu, "<"+e.web.URL+digest.UnsubscribePath+"?t=") || !strings.HasSuffix(lu, ">") {
		t.Fatalf("List-Unsubscribe %q", lu)
	}
	if id := h.Get("Message-Id"); !strings.HasPrefix(id, "<d_") {
		t.Errorf("Message-ID %q", id)
	}
	// Escaping: the hostile title and body are text in the HTML part.
	for _, bad := range []string{"<script>", "<img", "<b>Smith"} {
		if strings.Contains(d.HTML, bad) {
			t.Errorf("HTML part contains %q:\n%s", bad, d.HTML)
		}
	}
	if !strings.Contains(d.HTML, "&lt;script&gt;") || !strings.Contains(d.HTML, "&lt;b&gt;Smith") {
		t.Errorf("HTML part lacks the escaped title:\n%s", d.HTML)
	}
	if !strings.Contains(d.Text, `<script>alert("x")</script> Trip`) || strings.Contains(d.Text, "Grade posted") || strings.Contains(d.Text, "Not yours") ||
		!strings.Contains(d.Text, "2 unread in Mr <b>Smith</b>") {
		t.Errorf("text part:\n%s", d.Text)
	}

	// Not again before 24 hours, neither by this instance nor by a restarted one.
	if n, _ := r.RunOnce(ctx); n != 0 {
		t.Fatalf("second run sent %d", n)
	}
	if n, _ := e.runner("i2").RunOnce(ctx); n != 0 {
		t.Fatalf("restarted instance sent %d", n)
	}

	// The next day at 22:30 BST is quiet: the digest waits until 07:00 BST.
	e.clock.Set("2026-06-11T21:30:00Z")
	e.note(t, "g1", "n4", "assignment", "Homework", "Read chapter 4")
	if n, _ := r.RunOnce(ctx); n != 0 {
		t.Fatalf("quiet hours: sent %d", n)
	}
	en, err := e.sched.Get(ctx, "g1")
	if err != nil || !en.Due.Equal(mustTime("2026-06-12T06:00:00Z")) {
		t.Fatalf("due after quiet hours: %+v %v", en, err)
	}
	e.clock.Set("2026-06-12T06:00:00Z")
	if n, err := r.RunOnce(ctx); n != 1 || err != nil {
		t.Fatalf("after quiet hours: sent %d %v", n, err)
	}
	d2 := parse(t, e.smtp.Messages()[1].Data)
	if !strings.Contains(d2.Text, "Homework") || strings.Contains(d2.Text, "Trip") {
		t.Errorf("second digest repeats or misses items:\n%s", d2.Text)
	}

	// GET shows a form and changes nothing; a forged token is refused; POST unsubscribes.
	link := strings.Trim(lu, "<>")
	client := e.web.Client()
	resp, err := client.Get(link)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET: %v %v", resp, err)
	}
	resp.Body.Close()
	if u, _ := e.reach.User(ctx, "g1"); u.Prefs.Digest != nil {
		t.Fatal("GET unsubscribed")
	}
	u, _ := url.Parse(link)
	tok := u.Query().Get("t")
	for _, forged := range []string{digest.SignUnsubscribe([]byte("wrong-secret-wrong-secret-000000"), "g1"), tok[:len(tok)-2] + "AA", "", `{"$gt":""}`,
		"v1." + strings.Split(tok, ".")[1] + "." + strings.Split(digest.SignUnsubscribe(secret, "g2"), ".")[2]} {
		resp, err := client.Post(e.web.URL+digest.UnsubscribePath+"?t="+url.QueryEscape(forged), "application/x-www-form-urlencoded",
			strings.NewReader("List-Unsubscribe=One-Click"))
		if err != nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("forged %q: %v %v", forged, resp, err)
		}
		resp.Body.Close()
	}
	resp, err = client.Post(link, "application/x-www-form-urlencoded", strings.NewReader("List-Unsubscribe=One-Click"))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("one-click POST: %v %v", resp, err)
	}
	resp.Body.Close()
	if u, _ := e.reach.User(ctx, "g1"); u.Prefs.Digest == nil || *u.Prefs.Digest {
		t.Fatalf("not unsubscribed: %+v", u.Prefs)
	}
	e.clock.Set("2026-06-13T12:00:00Z")
	e.note(t, "g1", "n5", "announcement", "After unsubscribe", "")
	if n, _ := r.RunOnce(ctx); n != 0 || len(e.smtp.Messages()) != 2 {
		t.Fatalf("sent after unsubscribe: %d", n)
	}
}

// TestDigest_CrashAfterPendingNeverResends: an instance that recorded a digest as
// pending and died (the SMTP transaction may have happened) leaves it to the next
// instance, which must not send it again.
func TestDigest_CrashAfterPendingNeverResends(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	e.clock.Set("2026-06-10T12:00:00Z")
	e.guardian(t, "g1", "parent@example.org")
	e.note(t, "g1", "n1", "announcement", "Trip", "")
	r := e.runner("i1")
	must(r.Enrol(ctx, "g1"))
	// Simulate the crash: claim and mark pending as the dead instance would.
	en, err := e.sched.Get(ctx, "g1")
	must(err)
	ver, err := e.sched.Claim(ctx, en, "dead", e.clock.Now(), time.Minute)
	must(err)
	if _, err := e.sched.MarkPending(ctx, "g1", ver, "d_dead", e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	// While the lease lasts, nobody touches it.
	if n, _ := e.runner("i2").RunOnce(ctx); n != 0 {
		t.Fatal("sent during a live lease")
	}
	e.clock.Set("2026-06-10T12:05:00Z")
	if n, _ := e.runner("i2").RunOnce(ctx); n != 0 || len(e.smtp.Messages()) != 0 {
		t.Fatalf("resent a pending digest: %d", n)
	}
	en, _ = e.sched.Get(ctx, "g1")
	if en.Pending != "" || en.LeaseOwner != "" || !en.Since.Equal(mustTime("2026-06-10T12:00:00Z")) || !en.Due.After(e.clock.Now()) {
		t.Fatalf("entry after recovery: %+v", en)
	}
}

// TestDigest_InstancesSendEachDigestOnce: several instances polling the same
// schedule at once send every user's digest exactly once.
func TestDigest_InstancesSendEachDigestOnce(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	e.clock.Set("2026-06-10T12:00:00Z")
	const users = 6
	for i := range users {
		u := "g" + strconv.Itoa(i)
		e.guardian(t, u, u+"@example.org")
		e.note(t, u, "n"+u, "announcement", "Hello "+u, "")
		must(e.runner("x").Enrol(ctx, u))
	}
	var wg sync.WaitGroup
	var total atomic.Int64
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := e.runner("i" + strconv.Itoa(i)).RunOnce(ctx)
			if err != nil {
				t.Error(err)
			}
			total.Add(int64(n))
		}()
	}
	wg.Wait()
	msgs := e.smtp.Messages()
	seen := map[string]int{}
	for _, m := range msgs {
		seen[m.To[0]]++
	}
	if total.Load() != users || len(msgs) != users || len(seen) != users {
		t.Fatalf("sent %d, messages %d, recipients %v", total.Load(), len(msgs), seen)
	}
}
