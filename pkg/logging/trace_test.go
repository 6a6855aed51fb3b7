package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"go.opentelemetry.io/otel/trace"
)

func TestTraceHandler_AddsIDsFromContext(t *testing.T) {
	var buf bytes.Buffer
	log, err := New(&buf, "json", "info")
	if err != nil {
		t.Fatal(err)
	}
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{0xab, 1}, SpanID: trace.SpanID{0xcd, 2}, TraceFlags: trace.FlagsSampled,
	})
	ctx := trace.ContextWithSpanContext(context.Background(), sc)
	log.With("service", "chat").WithGroup("g").InfoContext(ctx, "with span", "k", "v")
	log.InfoContext(context.Background(), "without span")

	dec := json.NewDecoder(&buf)
	var first, second map[string]any
	if err := dec.Decode(&first); err != nil {
		t.Fatal(err)
	}
	if err := dec.Decode(&second); err != nil {
		t.Fatal(err)
	}
	g, _ := first["g"].(map[string]any)
	if g["trace_id"] != sc.TraceID().String() || g["span_id"] != sc.SpanID().String() || first["service"] != "chat" {
		t.Fatalf("line with span: %v", first)
	}
	if _, ok := second["trace_id"]; ok {
		t.Fatalf("line without span has a trace_id: %v", second)
	}
}
