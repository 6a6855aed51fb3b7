package grpcx

import (
	"flag"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/talim/realtime/pkg/config"
)

func TestListen_RegisterAndValidate(t *testing.T) {
	t.Parallel()
	env := map[string]string{"TALIM_GRPC_ADDR": "127.0.0.1:0", "TALIM_SERVICE_TOKEN": "tok"}
	s := config.NewSet(flag.NewFlagSet("t", flag.ContinueOnError), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	var addr, token string
	var tls TLS
	RegisterListen(s, &addr, &token, &tls)
	if err := s.Load(); err != nil {
		t.Fatal(err)
	}
	if addr != "127.0.0.1:0" || token != "tok" {
		t.Fatalf("addr %q token %q", addr, token)
	}
	if err := ValidateListen(addr, token, tls); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		addr, token string
		tls         TLS
		env         string
	}{
		{"", "", TLS{}, "TALIM_SERVICE_TOKEN"},
		{"no-port", "tok", TLS{}, "TALIM_GRPC_ADDR"},
		{"", "tok", TLS{CertFile: "c"}, "TALIM_GRPC_TLS_CERT"},
	} {
		err := ValidateListen(c.addr, c.token, c.tls)
		if err == nil || !strings.Contains(err.Error(), c.env) {
			t.Errorf("ValidateListen(%q, %q, %+v) = %v, want an error naming %s", c.addr, c.token, c.tls, err, c.env)
		}
	}
	if err := ValidateListen("", "tok", TLS{}); err != nil {
		t.Fatalf("empty addr: %v", err)
	}
}

func TestBackend_UnavailableUntilSet(t *testing.T) {
	t.Parallel()
	var b Backend[int]
	if _, err := b.Get("x"); status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "x service is not connected yet") {
		t.Fatalf("err = %v", err)
	}
	v := 7
	b.Set(&v)
	if got, err := b.Get("x"); err != nil || *got != 7 {
		t.Fatalf("got %v, %v", got, err)
	}
	b.Set(nil)
	if _, err := b.Get("x"); status.Code(err) != codes.Unavailable {
		t.Fatalf("after Set(nil): %v", err)
	}
}
