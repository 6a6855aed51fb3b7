package service

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

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
