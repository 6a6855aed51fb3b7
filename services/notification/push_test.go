package notification_test

import (
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/talim/realtime/pkg/subject"
	"github.com/talim/realtime/pkg/webpush"
	notificationv1 "github.com/talim/realtime/proto/talim/notification/v1"
	"github.com/talim/realtime/services/notification"
)

// pushSink is a push service on loopback: it checks VAPID and decrypts each body
// with the browser's key.
type pushSink struct {
	t    testing.TB
	srv  *httptest.Server
	mu   sync.Mutex
	keys map[string]*ecdh.PrivateKey
	auth []byte
	got  map[string][]arrival // path -> pushes
	n    chan struct{}
}

type arrival struct {
	at    time.Time
	title string
	count int
	url   string
}

func newPushSink(t testing.TB) *pushSink {
	s := &pushSink{t: t, keys: map[string]*ecdh.PrivateKey{}, got: map[string][]arrival{}, n: make(chan struct{}, 1<<16), auth: make([]byte, 16)}
	rand.Read(s.auth)
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if _, err := webpush.VerifyAuthorization(r.Header.Get("Authorization"), s.srv.URL, time.Now()); err != nil {
			t.Errorf("VAPID: %v", err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		s.mu.Lock()
		k := s.keys[r.URL.Path]
		s.mu.Unlock()
		if k == nil {
			w.WriteHeader(http.StatusGone)
			return
		}
		pt, err := webpush.Decrypt(body, k, s.auth)
		if err != nil {
			t.Errorf("decrypt: %v", err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		var p struct {
			Title string `json:"title"`
			Count int    `json:"count"`
			URL   string `json:"url"`
		}
		_ = json.Unmarshal(pt, &p)
		s.mu.Lock()
		s.got[r.URL.Path] = append(s.got[r.URL.Path], arrival{at: time.Now(), title: p.Title, count: p.Count, url: p.URL})
		s.mu.Unlock()
		w.WriteHeader(http.StatusCreated)
		s.n <- struct{}{}
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// browser returns endpoint and p256dh of a new subscription at /user.
func (s *pushSink) browser(user string) (string, string) {
	k, _ := ecdh.P256().GenerateKey(rand.Reader)
	s.mu.Lock()
	s.keys["/"+user] = k
	s.mu.Unlock()
	return s.srv.URL + "/" + user, base64.RawURLEncoding.EncodeToString(k.PublicKey().Bytes())
}

func (s *pushSink) wait(t testing.TB, n int, d time.Duration) {
	t.Helper()
	deadline := time.After(d)
	for range n {
		select {
		case <-s.n:
		case <-deadline:
			t.Fatalf("fewer than %d pushes within %v", n, d)
		}
	}
}

func startWithPush(t testing.TB) (*env, *pushSink, notificationv1.PushServiceClient) {
	priv, _, err := notification.GenerateVAPIDKeys()
	if err != nil {
		t.Fatal(err)
	}
	e := start(t, func(c *notification.Config) {
		c.Push = notification.PushConfig{VAPIDPrivateKey: priv, VAPIDSubject: "mailto:ops@school.example", AllowLoopback: true,
			CollapseInterval: time.Minute, Concurrency: 16}
	})
	return e, newPushSink(t), notificationv1.NewPushServiceClient(e.conn)
}

func (s *pushSink) register(t testing.TB, pc notificationv1.PushServiceClient, user string) {
	t.Helper()
	ep, key := s.browser(user)
	_, err := pc.RegisterPushSubscription(ctxT(t), &notificationv1.RegisterPushSubscriptionRequest{UserId: user, Endpoint: ep,
		Keys: &notificationv1.PushSubscriptionKeys{P256Dh: key, Auth: base64.RawURLEncoding.EncodeToString(s.auth)}})
	if err != nil {
		t.Fatalf("register %s: %v", user, err)
	}
}

// Send and chat's request reach offline users' browsers through the service: gRPC
// registration, the queue, VAPID and encryption. (No presence service runs here:
// the query fails and everyone counts as offline; the only-offline rule is tested
// in internal/push.)
func TestWebPush_SendAndChatReachTheBrowser(t *testing.T) {
	t.Parallel()
	e, sink, pc := startWithPush(t)
	sink.register(t, pc, "u1")
	sink.register(t, pc, "u2")
	cfg, err := pc.GetPushConfig(ctxT(t), &notificationv1.GetPushConfigRequest{})
	if err != nil || len(cfg.GetVapidPublicKey()) != 87 {
		t.Fatalf("GetPushConfig %v %v", cfg, err)
	}
	if _, err := e.client.Send(ctxT(t), &notificationv1.SendRequest{Recipients: []string{"u1"}, Category: "homework",
		Title: "Homework", Body: "Read chapter 3", IdempotencyKey: "k1"}); err != nil {
		t.Fatal(err)
	}
	req, _ := proto.Marshal(&notificationv1.ChatPushRequest{RoomId: "dm-1", MessageId: "m1", SenderId: "u1",
		RecipientIds: []string{"u1", "u2"}, Text: "hi", Reason: notificationv1.ChatPushReason_CHAT_PUSH_REASON_DIRECT})
	if err := e.nc.Publish(subject.NotificationChatPush, req); err != nil {
		t.Fatal(err)
	}
	sink.wait(t, 2, 20*time.Second)
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if a := sink.got["/u1"]; len(a) != 1 || a[0].title != "Homework" || !strings.HasPrefix(a[0].url, "/?inbox=n_") {
		t.Errorf("u1 got %+v", a)
	}
	if a := sink.got["/u2"]; len(a) != 1 || a[0].title != "New message from u1" || a[0].url != "/?room=dm-1" {
		t.Errorf("u2 got %+v", a)
	}
}

func TestWebPush_GRPCRejectsBadSubscriptions(t *testing.T) {
	t.Parallel()
	_, sink, pc := startWithPush(t)
	ep, key := sink.browser("x")
	auth := base64.RawURLEncoding.EncodeToString(sink.auth)
	for _, c := range []struct {
		name string
		req  *notificationv1.RegisterPushSubscriptionRequest
	}{
		{"no user", &notificationv1.RegisterPushSubscriptionRequest{Endpoint: ep, Keys: &notificationv1.PushSubscriptionKeys{P256Dh: key, Auth: auth}}},
		{"no keys", &notificationv1.RegisterPushSubscriptionRequest{UserId: "u", Endpoint: ep}},
		{"public http", &notificationv1.RegisterPushSubscriptionRequest{UserId: "u", Endpoint: "http://push.example/x", Keys: &notificationv1.PushSubscriptionKeys{P256Dh: key, Auth: auth}}},
		{"operator text", &notificationv1.RegisterPushSubscriptionRequest{UserId: "u", Endpoint: `{"$gt":""}`, Keys: &notificationv1.PushSubscriptionKeys{P256Dh: key, Auth: auth}}},
	} {
		_, err := pc.RegisterPushSubscription(ctxT(t), c.req)
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

// TestWebPush_Load is the bench figure of docs/performance.md "Web Push": sends
// through gRPC, each to many offline users with a subscription, and the time from
// the Send call to each push's arrival at a loopback push service. Run with
// TALIM_PUSH_BENCH=1 (sizes: TALIM_PUSH_BENCH_SENDS, TALIM_PUSH_BENCH_RECIPIENTS).
func TestWebPush_Load(t *testing.T) {
	if os.Getenv("TALIM_PUSH_BENCH") == "" {
		t.Skip("set TALIM_PUSH_BENCH=1")
	}
	sends, recipients := envInt("TALIM_PUSH_BENCH_SENDS", 20), envInt("TALIM_PUSH_BENCH_RECIPIENTS", 100)
	e, sink, pc := startWithPush(t)
	users := make([]string, recipients)
	for i := range users {
		users[i] = fmt.Sprintf("user-%04d", i)
		sink.register(t, pc, users[i])
	}
	started := make([]time.Time, sends)
	t0 := time.Now()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for i := range sends {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			started[i] = time.Now()
			// A category per send: collapsing would otherwise merge them.
			if _, err := e.client.Send(ctxT(t), &notificationv1.SendRequest{Recipients: users, Category: "c" + strconv.Itoa(i),
				Title: strconv.Itoa(i), IdempotencyKey: fmt.Sprintf("bench-%d", i)}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	sink.wait(t, sends*recipients, 5*time.Minute)
	elapsed := time.Since(t0)
	sink.mu.Lock()
	var lat []time.Duration
	for _, as := range sink.got {
		for _, a := range as {
			i, _ := strconv.Atoi(a.title)
			lat = append(lat, a.at.Sub(started[i]))
		}
	}
	sink.mu.Unlock()
	slices.Sort(lat)
	q := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	t.Logf("web push: %d sends x %d recipients = %d pushes in %v: %.0f pushes/s; Send→push p50 %v p99 %v max %v",
		sends, recipients, len(lat), elapsed.Round(time.Millisecond), float64(len(lat))/elapsed.Seconds(),
		q(0.5).Round(time.Millisecond), q(0.99).Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond))
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}
