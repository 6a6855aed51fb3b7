package service

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/talim/realtime/pkg/admin"
	"github.com/talim/realtime/pkg/config"
)

func TestMainArgs_ExitCodes(t *testing.T) {
	var n NATS
	register := func(s *config.Set) { n.Register(s) }
	cases := []struct {
		name string
		args []string
		run  error
		want int
		line string
	}{
		{"bad flag value", []string{"-nats-url", "not-a-url"}, nil, 2, "NATS_URL"},
		{"bad log format", []string{"-log-format", "xml"}, nil, 2, "TALIM_LOG_FORMAT"},
		{"run config error", nil, config.Errorf("TALIM_JWT_SECRET", "required"), 2, "TALIM_JWT_SECRET"},
		{"run failure", nil, errors.New("boom"), 1, ""},
		{"ok", nil, nil, 0, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var stderr bytes.Buffer
			code := MainArgs("svc", c.args, &stderr, register, func(context.Context, *slog.Logger) error { return c.run })
			if code != c.want {
				t.Fatalf("exit %d, want %d (%s)", code, c.want, stderr.String())
			}
			if c.line != "" {
				out := strings.TrimSpace(stderr.String())
				if strings.Count(out, "\n") != 0 || !strings.Contains(out, c.line) {
					t.Fatalf("stderr %q: want one line naming %s", out, c.line)
				}
			}
		})
	}
}

// TestRuntime_UnreadyUntilStarted: connected is not serving. /readyz answers 503
// (naming "started" and every check given in RuntimeOptions.Checks) from the
// admin server's first probe until Started, then 200.
func TestRuntime_UnreadyUntilStarted(t *testing.T) {
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats not ready")
	}
	t.Cleanup(ns.Shutdown)
	var gateOpen atomic.Bool
	rt, err := StartRuntime(context.Background(), RuntimeOptions{
		Name: "svc", NATS: NATS{URL: ns.ClientURL()}, AdminAddr: "127.0.0.1:0",
		Checks: map[string]admin.Check{"gate": func(context.Context) error {
			if !gateOpen.Load() {
				return errors.New("closed")
			}
			return nil
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close(context.Background()) })
	probe := func() (int, string) {
		res, err := http.Get("http://" + rt.Admin.Addr() + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if code, body := probe(); code != http.StatusServiceUnavailable || !strings.Contains(body, `"started"`) || !strings.Contains(body, `"gate"`) {
		t.Fatalf("before Started: %d %s, want 503 naming started and gate", code, body)
	}
	rt.Started()
	if code, body := probe(); code != http.StatusServiceUnavailable || strings.Contains(body, `"started"`) {
		t.Fatalf("started, gate closed: %d %s, want 503 naming only gate", code, body)
	}
	gateOpen.Store(true)
	if code, body := probe(); code != http.StatusOK {
		t.Fatalf("started, gate open: %d %s, want 200", code, body)
	}
}
