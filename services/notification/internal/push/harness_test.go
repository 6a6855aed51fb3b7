package push_test

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/talim/realtime/pkg/devstack/testkit"
	"github.com/talim/realtime/pkg/webpush"
	"github.com/talim/realtime/services/notification/internal/push"
)

// received is one push the test endpoint accepted, decrypted.
type received struct {
	Path    string
	TTL     string
	Urgency string
	Topic   string
	Payload push.Payload
}

// endpoint is an in-process push service on loopback: it checks the VAPID token
// (signature, aud, exp, sub) and decrypts each body with the browser's private key.
type endpoint struct {
	t    *testing.T
	srv  *httptest.Server
	vpub string

	mu      sync.Mutex
	keys    map[string]*browser // path -> browser
	got     []received
	script  []func(w http.ResponseWriter) bool // answered in order before accepting
	arrived chan struct{}
	calls   atomic.Int64
}

type browser struct {
	priv *ecdh.PrivateKey
	auth []byte
}

func newEndpoint(t *testing.T, vapidPublic string) *endpoint {
	e := &endpoint{t: t, vpub: vapidPublic, keys: map[string]*browser{}, arrived: make(chan struct{}, 1024)}
	e.srv = httptest.NewServer(http.HandlerFunc(e.serve))
	t.Cleanup(e.srv.Close)
	return e
}

// browser makes a new subscription at path and returns endpoint, p256dh, auth.
func (e *endpoint) browser(path string) (string, string, string) {
	priv, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		e.t.Fatal(err)
	}
	auth := make([]byte, 16)
	rand.Read(auth)
	e.mu.Lock()
	e.keys["/"+path] = &browser{priv: priv, auth: auth}
	e.mu.Unlock()
	enc := base64.RawURLEncoding
	return e.srv.URL + "/" + path, enc.EncodeToString(priv.PublicKey().Bytes()), enc.EncodeToString(auth)
}

// then queues answers for the next requests (status, optional Retry-After).
func (e *endpoint) then(code int, retryAfter string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.script = append(e.script, func(w http.ResponseWriter) bool {
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.WriteHeader(code)
		return true
	})
}

func (e *endpoint) serve(w http.ResponseWriter, r *http.Request) {
	e.calls.Add(1)
	body, _ := io.ReadAll(r.Body)
	if _, err := webpush.VerifyAuthorization(r.Header.Get("Authorization"), e.srv.URL, time.Now()); err != nil {
		e.t.Errorf("VAPID: %v", err)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if r.Header.Get("Content-Encoding") != "aes128gcm" {
		e.t.Errorf("Content-Encoding %q", r.Header.Get("Content-Encoding"))
	}
	e.mu.Lock()
	b := e.keys[r.URL.Path]
	var step func(http.ResponseWriter) bool
	if len(e.script) > 0 {
		step, e.script = e.script[0], e.script[1:]
	}
	e.mu.Unlock()
	if b == nil {
		w.WriteHeader(http.StatusGone)
		return
	}
	if step != nil && step(w) {
		return
	}
	pt, err := webpush.Decrypt(body, b.priv, b.auth)
	if err != nil {
		e.t.Errorf("decrypt: %v", err)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	var pl push.Payload
	if err := json.Unmarshal(pt, &pl); err != nil {
		e.t.Errorf("payload %q: %v", pt, err)
	}
	e.mu.Lock()
	e.got = append(e.got, received{Path: r.URL.Path, TTL: r.Header.Get("TTL"), Urgency: r.Header.Get("Urgency"), Topic: r.Header.Get("Topic"), Payload: pl})
	e.mu.Unlock()
	w.WriteHeader(http.StatusCreated)
	e.arrived <- struct{}{}
}

func (e *endpoint) received() []received {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]received(nil), e.got...)
}

// clock is a settable test clock.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Now().UnixNano())
	return c
}
func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

type fakePresence map[string]bool

func (f fakePresence) Online(_ context.Context, ids []string) (map[string]bool, error) {
	out := map[string]bool{}
	for _, id := range ids {
		if f[id] {
			out[id] = true
		}
	}
	return out, nil
}

type harness struct {
	t     *testing.T
	store *push.Store
	vapid *webpush.VAPID
	ep    *endpoint
	clk   *clock
	p     *push.Pusher
}

func newHarness(t *testing.T, mut func(*push.Config)) *harness {
	t.Helper()
	_, db := testkit.MongoClient(t)
	st := push.NewStore(db)
	if err := st.EnsureIndexes(context.Background()); err != nil {
		t.Fatal(err)
	}
	priv, pub, err := webpush.GenerateVAPIDKeys()
	if err != nil {
		t.Fatal(err)
	}
	v, err := webpush.NewVAPID(priv, "mailto:ops@school.example")
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, store: st, vapid: v, ep: newEndpoint(t, pub), clk: newClock()}
	h.p = h.pusher(mut)
	return h
}

// pusher makes another pusher (another instance, or one after a restart) on the
// same database, endpoint and clock.
func (h *harness) pusher(mut func(*push.Config)) *push.Pusher {
	cfg := push.Config{Store: h.store, VAPID: h.vapid, Policy: push.Policy{AllowLoopbackHTTP: true},
		Now: h.clk.Now, CollapseInterval: 10 * time.Second, BaseBackoff: time.Second, MaxBackoff: time.Minute}
	if mut != nil {
		mut(&cfg)
	}
	p, err := push.New(cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	return p
}

// subscribe registers a new browser for user and returns its endpoint.
func (h *harness) subscribe(user, path string) string {
	h.t.Helper()
	ep, k, a := h.ep.browser(path)
	if _, err := h.p.Register(context.Background(), user, ep, k, a); err != nil {
		h.t.Fatalf("register: %v", err)
	}
	return ep
}

// drain runs the pusher until no job is due now (bounded).
func (h *harness) drain(p *push.Pusher) {
	h.t.Helper()
	for range 20 {
		if p.RunOnce(context.Background()) == 0 {
			return
		}
	}
	h.t.Fatal("jobs still due after 20 rounds")
}
