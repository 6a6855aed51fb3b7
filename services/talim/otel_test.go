package talim

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/talim/realtime/pkg/tracing"
)

// TestDevTracing_WritesSpansToTheFile: talim dev --otel FILE writes every span as
// one JSON line; without it (and without OTEL_*) tracing stays off.
func TestDevTracing_WritesSpansToTheFile(t *testing.T) {
	none := func(string) (string, bool) { return "", false }
	stop, err := devTracing(context.Background(), "", none, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if tracing.Enabled() {
		t.Fatal("tracing on without --otel")
	}
	stop()

	path := filepath.Join(t.TempDir(), "spans.json")
	stop, err = devTracing(context.Background(), path, none, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, parent := tracing.Start(context.Background(), "edge send-chat-message")
	_, child := tracing.Start(ctx, "chat send-chat-message")
	child.End()
	parent.End()
	stop()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2 spans: %s", len(lines), b)
	}
	var sp struct {
		Name   string
		Parent struct{ SpanID string }
	}
	if err := json.Unmarshal([]byte(lines[0]), &sp); err != nil || sp.Name != "chat send-chat-message" || sp.Parent.SpanID != parent.SpanContext().SpanID().String() {
		t.Fatalf("first line %+v (%v), want the child span with its parent", sp, err)
	}

	if _, err := devTracing(context.Background(), filepath.Join(t.TempDir(), "no", "such", "dir", "f"), none, &bytes.Buffer{}); err == nil {
		t.Fatal("an unwritable --otel path was accepted")
	}
}
