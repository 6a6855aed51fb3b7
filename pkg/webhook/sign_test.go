package webhook_test

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/talim/realtime/pkg/webhook"
)

// The published test vector of the Standard Webhooks Go library
// (libraries/go/webhook_test.go TestWebhookSign in standard-webhooks/standard-webhooks).
const (
	vecSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vecID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vecTS     = 1614265330
	vecBody   = `{"test": 2432232314}`
	vecSig    = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func vecHeader(sig string, ts int64) http.Header {
	h := http.Header{}
	h.Set(webhook.HeaderID, vecID)
	h.Set(webhook.HeaderTimestamp, strconv.FormatInt(ts, 10))
	h.Set(webhook.HeaderSignature, sig)
	return h
}

func TestSignature_StandardWebhooksVector(t *testing.T) {
	t.Parallel()
	key, err := webhook.ParseSecret(vecSecret)
	if err != nil {
		t.Fatal(err)
	}
	if got := webhook.Signature(key, vecID, time.Unix(vecTS, 0), []byte(vecBody)); got != vecSig {
		t.Fatalf("signature = %s, want %s", got, vecSig)
	}
	if err := webhook.Verify(vecSecret, vecHeader(vecSig, vecTS), []byte(vecBody), time.Unix(vecTS+10, 0), webhook.DefaultTolerance); err != nil {
		t.Fatalf("verify vector: %v", err)
	}
}

func TestVerify_Cases(t *testing.T) {
	t.Parallel()
	now := time.Unix(vecTS, 0)
	other, _ := webhook.NewSecret()
	otherKey, _ := webhook.ParseSecret(other)
	wrong := webhook.Signature(otherKey, vecID, now, []byte(vecBody))
	cases := []struct {
		name string
		h    func() http.Header
		body string
		now  time.Time
		want error
	}{
		{"valid", func() http.Header { return vecHeader(vecSig, vecTS) }, vecBody, now, nil},
		{"missing id", func() http.Header { h := vecHeader(vecSig, vecTS); h.Del(webhook.HeaderID); return h }, vecBody, now, webhook.ErrMissingHeaders},
		{"missing timestamp", func() http.Header { h := vecHeader(vecSig, vecTS); h.Del(webhook.HeaderTimestamp); return h }, vecBody, now, webhook.ErrMissingHeaders},
		{"missing signature", func() http.Header { h := vecHeader(vecSig, vecTS); h.Del(webhook.HeaderSignature); return h }, vecBody, now, webhook.ErrMissingHeaders},
		{"wrong signature", func() http.Header { return vecHeader(wrong, vecTS) }, vecBody, now, webhook.ErrSignature},
		{"body changed", func() http.Header { return vecHeader(vecSig, vecTS) }, `{"test":2432232314}`, now, webhook.ErrSignature},
		{"too old", func() http.Header { return vecHeader(vecSig, vecTS) }, vecBody, now.Add(webhook.DefaultTolerance + time.Second), webhook.ErrTimestamp},
		{"too new", func() http.Header { return vecHeader(vecSig, vecTS) }, vecBody, now.Add(-webhook.DefaultTolerance - time.Second), webhook.ErrTimestamp},
		{"timestamp not a number", func() http.Header { h := vecHeader(vecSig, vecTS); h.Set(webhook.HeaderTimestamp, "1e9"); return h }, vecBody, now, webhook.ErrTimestamp},
		{"multi signature, one valid", func() http.Header {
			return vecHeader(strings.Join([]string{wrong, "v1a,abc", "v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=", vecSig}, " "), vecTS)
		}, vecBody, now, nil},
		{"v1a only", func() http.Header { return vecHeader("v1a,"+strings.TrimPrefix(vecSig, "v1,"), vecTS) }, vecBody, now, webhook.ErrSignature},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := webhook.Verify(vecSecret, c.h(), []byte(c.body), c.now, webhook.DefaultTolerance)
			if !errors.Is(err, c.want) {
				t.Fatalf("Verify = %v, want %v", err, c.want)
			}
		})
	}
}

func TestSign_RotationSignsWithEveryKey(t *testing.T) {
	t.Parallel()
	oldS, _ := webhook.NewSecret()
	newS, _ := webhook.NewSecret()
	ko, _ := webhook.ParseSecret(oldS)
	kn, _ := webhook.ParseSecret(newS)
	h := http.Header{}
	now := time.Now()
	webhook.Sign(h, [][]byte{kn, ko}, "evt_x", now, []byte("{}"))
	if n := len(strings.Fields(h.Get(webhook.HeaderSignature))); n != 2 {
		t.Fatalf("%d signatures, want 2", n)
	}
	for _, s := range []string{oldS, newS} {
		if err := webhook.Verify(s, h, []byte("{}"), now, time.Minute); err != nil {
			t.Fatalf("receiver with one of the secrets: %v", err)
		}
	}
}

func TestParseSecret_Rejects(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_", "whsec_!!!!",
		"whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 23)),
		"whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 65)),
		"whsec_" + base64.RawURLEncoding.EncodeToString(make([]byte, 32)) + "-_"} {
		if _, err := webhook.ParseSecret(s); !errors.Is(err, webhook.ErrBadSecret) {
			t.Errorf("ParseSecret(%q) = %v, want ErrBadSecret", s, err)
		}
	}
	s, err := webhook.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	if k, err := webhook.ParseSecret(s); err != nil || len(k) != webhook.DefaultSecretBytes {
		t.Fatalf("NewSecret round trip: %d bytes, %v", len(k), err)
	}
}

func TestEventID_StableAndDotFree(t *testing.T) {
	t.Parallel()
	a, b := webhook.EventID(webhook.MessageCreated, "m_1"), webhook.EventID(webhook.MessageCreated, "m_1")
	if a != b || !webhook.ValidEventID(a) || strings.Contains(a, ".") {
		t.Fatalf("EventID %q %q", a, b)
	}
	if a == webhook.EventID(webhook.MessageDeleted, "m_1") {
		t.Fatal("types must not share ids")
	}
	if _, _, err := (webhook.Event{Type: "message.exploded", Key: "k"}).Body(); err == nil {
		t.Fatal("unknown type accepted")
	}
}

func TestValidateURL(t *testing.T) {
	t.Parallel()
	cases := []struct {
		url          string
		allowPrivate bool
		ok           bool
	}{
		{"https://school.example/hooks", false, true},
		{"http://203.0.113.9:8080/x", false, true},
		{"http://127.0.0.1:9000/hook", true, true},
		{"http://127.0.0.1:9000/hook", false, false},
		{"http://localhost/hook", false, false},
		{"http://10.1.2.3/hook", false, false},
		{"http://[::1]/hook", false, false},
		{"http://169.254.169.254/latest/meta-data", false, false},
		{"http://[::ffff:192.168.0.1]/", false, false},
		{"ftp://school.example/", true, false},
		{"javascript:alert(1)", true, false},
		{"https://user:pw@school.example/", true, false},
		{"https://school.example/#frag", true, false},
		{"/relative", true, false},
		{"", true, false},
		{"https://" + strings.Repeat("a", webhook.MaxURLLen) + ".example/", true, false},
	}
	for _, c := range cases {
		err := webhook.ValidateURL(c.url, c.allowPrivate)
		if (err == nil) != c.ok {
			t.Errorf("ValidateURL(%q, %v) = %v, want ok=%v", c.url, c.allowPrivate, err, c.ok)
		}
	}
}

func TestBackoff_ExponentialWithJitterCapped(t *testing.T) {
	t.Parallel()
	lo := webhook.Backoff{Base: time.Second, Max: time.Minute, Rand: func() float64 { return 0 }}
	hi := webhook.Backoff{Base: time.Second, Max: time.Minute, Rand: func() float64 { return 0.999999 }}
	for n, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 7: time.Minute, 40: time.Minute} {
		if got := lo.Delay(n); got != want/2 {
			t.Errorf("low Delay(%d) = %v, want %v", n, got, want/2)
		}
		if got := hi.Delay(n); got > want || got < want-want/1000 {
			t.Errorf("high Delay(%d) = %v, want about %v", n, got, want)
		}
	}
}
