package webpush

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

func mustKey(t *testing.T, s string) []byte {
	t.Helper()
	b, err := DecodeKey(s)
	if err != nil {
		t.Fatalf("decode %q: %v", s, err)
	}
	return b
}

// TestRFC8291Vector encrypts the example of RFC 8291 appendix A with its fixed
// sender key and salt and compares the whole message body.
func TestRFC8291Vector(t *testing.T) {
	t.Parallel()
	asPriv, err := ecdh.P256().NewPrivateKey(mustKey(t, "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw"))
	if err != nil {
		t.Fatal(err)
	}
	uaPub := mustKey(t, "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4")
	auth := mustKey(t, "BTBZMqHH6r4Tts7J_aSIgg")
	salt := mustKey(t, "DGv6ra1nlYgDCS1FRnbzlw")
	plain := []byte("When I grow up, I want to be a watermelon")
	want := "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN"

	// The vector uses rs = 4096 like Encrypt.
	got, err := encryptWith(asPriv, salt, plain, uaPub, auth)
	if err != nil {
		t.Fatal(err)
	}
	if b64.EncodeToString(got) != want {
		t.Fatalf("body\n got %s\nwant %s", b64.EncodeToString(got), want)
	}
	uaPriv, err := ecdh.P256().NewPrivateKey(mustKey(t, "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94"))
	if err != nil {
		t.Fatal(err)
	}
	back, err := Decrypt(got, uaPriv, auth)
	if err != nil || !bytes.Equal(back, plain) {
		t.Fatalf("Decrypt = %q, %v", back, err)
	}
}

func TestEncryptRoundTripAndLimits(t *testing.T) {
	t.Parallel()
	ua, _ := ecdh.P256().GenerateKey(rand.Reader)
	auth := make([]byte, AuthLen)
	rand.Read(auth)
	for _, n := range []int{0, 1, 100, MaxPayload} {
		p := bytes.Repeat([]byte{'x'}, n)
		body, err := Encrypt(p, ua.PublicKey().Bytes(), auth)
		if err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		if len(body) > RecordSize {
			t.Fatalf("%d bytes: body %d > %d", n, len(body), RecordSize)
		}
		got, err := Decrypt(body, ua, auth)
		if err != nil || !bytes.Equal(got, p) {
			t.Fatalf("%d bytes: round trip %v", n, err)
		}
	}
	cases := []struct {
		name      string
		p, k, a   []byte
		wantError error
	}{
		{"too large", make([]byte, MaxPayload+1), ua.PublicKey().Bytes(), auth, ErrTooLarge},
		{"short auth", nil, ua.PublicKey().Bytes(), auth[:15], ErrBadKey},
		{"short key", nil, ua.PublicKey().Bytes()[:64], auth, ErrBadKey},
		{"not on curve", nil, append([]byte{4}, make([]byte, 64)...), auth, ErrBadKey},
	}
	for _, c := range cases {
		if _, err := Encrypt(c.p, c.k, c.a); !errors.Is(err, c.wantError) {
			t.Errorf("%s: err %v, want %v", c.name, err, c.wantError)
		}
	}
	other, _ := ecdh.P256().GenerateKey(rand.Reader)
	body, _ := Encrypt([]byte("hi"), ua.PublicKey().Bytes(), auth)
	if _, err := Decrypt(body, other, auth); !errors.Is(err, ErrDecrypt) {
		t.Errorf("wrong key: %v", err)
	}
}

func TestVAPIDRequest(t *testing.T) {
	t.Parallel()
	priv, pub, err := GenerateVAPIDKeys()
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewVAPID(priv, "mailto:ops@school.example")
	if err != nil {
		t.Fatal(err)
	}
	if v.PublicKey() != pub {
		t.Fatalf("public key %s, want %s", v.PublicKey(), pub)
	}
	ua, _ := ecdh.P256().GenerateKey(rand.Reader)
	auth := make([]byte, AuthLen)
	rand.Read(auth)
	now := time.Now()
	req, err := v.NewRequest(context.Background(), Subscription{Endpoint: "https://push.example:8443/p/abc?x=1", P256dh: ua.PublicKey().Bytes(), Auth: auth},
		Message{Payload: []byte("{}"), TTL: 90 * time.Second, Urgency: UrgencyHigh, Topic: "room-1"}, now)
	if err != nil {
		t.Fatal(err)
	}
	h := req.Header
	if h.Get("TTL") != "90" || h.Get("Urgency") != "high" || h.Get("Topic") != "room-1" || h.Get("Content-Encoding") != "aes128gcm" {
		t.Fatalf("headers %v", h)
	}
	claims, err := VerifyAuthorization(h.Get("Authorization"), "https://push.example:8443", now)
	if err != nil {
		t.Fatal(err)
	}
	if claims.Subject != "mailto:ops@school.example" {
		t.Fatalf("claims %+v", claims)
	}
	if _, err := VerifyAuthorization(h.Get("Authorization"), "https://other.example", now); err == nil {
		t.Fatal("wrong audience accepted")
	}
	if _, err := VerifyAuthorization(h.Get("Authorization"), "https://push.example:8443", now.Add(13*time.Hour)); err == nil {
		t.Fatal("expired token accepted")
	}
	// A token signed by another key but claiming our public key fails.
	other, _, _ := GenerateVAPIDKeys()
	ov, _ := NewVAPID(other, "mailto:x@y.example")
	forged, _ := ov.Authorization("https://push.example:8443", now.Add(time.Hour))
	forged = strings.Replace(forged, "k="+ov.PublicKey(), "k="+pub, 1)
	if _, err := VerifyAuthorization(forged, "https://push.example:8443", now); err == nil {
		t.Fatal("forged signature accepted")
	}
}

func TestNewVAPIDRejects(t *testing.T) {
	t.Parallel()
	priv, _, _ := GenerateVAPIDKeys()
	for _, c := range []struct{ name, key, sub string }{
		{"not base64", "!!", "mailto:a@b.example"},
		{"short key", "AAAA", "mailto:a@b.example"},
		{"http subject", priv, "http://school.example"},
		{"no subject", priv, ""},
	} {
		if _, err := NewVAPID(c.key, c.sub); !errors.Is(err, ErrBadVAPID) {
			t.Errorf("%s: err %v", c.name, err)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, c := range []struct {
		v    string
		want time.Duration
		ok   bool
	}{
		{"", 0, false}, {"7", 7 * time.Second, true}, {"-1", 0, false}, {"soon", 0, false},
		{now.Add(30 * time.Second).Format(http.TimeFormat), 30 * time.Second, true},
	} {
		h := http.Header{}
		if c.v != "" {
			h.Set("Retry-After", c.v)
		}
		if got, ok := RetryAfter(h, now); got != c.want || ok != c.ok {
			t.Errorf("%q: %v %v, want %v %v", c.v, got, ok, c.want, c.ok)
		}
	}
}
