package tracing

import (
	"bytes"
	"context"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestSetup_OffByDefault(t *testing.T) {
	t.Cleanup(func() { Use(nil) })
	for _, env := range []map[string]string{
		nil,
		{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"},
		{"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "console"},
	} {
		shutdown, err := Setup(context.Background(), Options{Service: "x", Env: envOf(env)})
		if err != nil {
			t.Fatalf("%v: %v", env, err)
		}
		if Enabled() {
			t.Fatalf("%v: tracing on, want off", env)
		}
		_, span := Start(context.Background(), "noop")
		if span.SpanContext().IsValid() || span.IsRecording() {
			t.Fatalf("%v: off tracer made a real span", env)
		}
		if err := shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSetup_BadValuesNameTheVariable(t *testing.T) {
	t.Cleanup(func() { Use(nil) })
	cases := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER"},
		{map[string]string{"OTEL_TRACES_EXPORTER": "console", "OTEL_TRACES_SAMPLER": "sometimes"}, "OTEL_TRACES_SAMPLER"},
		{map[string]string{"OTEL_TRACES_EXPORTER": "console", "OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"}, "OTEL_TRACES_SAMPLER_ARG"},
		{map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, "OTEL_EXPORTER_OTLP_PROTOCOL"},
	}
	for _, c := range cases {
		_, err := Setup(context.Background(), Options{Env: envOf(c.env)})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("%v: err %v, want one naming %s", c.env, err, c.want)
		}
		if Enabled() {
			t.Fatalf("%v: a bad configuration switched tracing on", c.env)
		}
	}
}

func TestSetup_ConsoleWritesSpans(t *testing.T) {
	t.Cleanup(func() { Use(nil) })
	var buf bytes.Buffer
	shutdown, err := Setup(context.Background(), Options{Service: "talim-test", Env: envOf(map[string]string{
		"OTEL_TRACES_EXPORTER": "console", "OTEL_TRACES_SAMPLER": "always_on",
	}), Console: &buf})
	if err != nil {
		t.Fatal(err)
	}
	if !Enabled() {
		t.Fatal("console exporter did not switch tracing on")
	}
	_, span := Start(context.Background(), "hello span")
	span.End()
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if out := buf.String(); !strings.Contains(out, `"hello span"`) || !strings.Contains(out, "talim-test") {
		t.Fatalf("console output lacks the span or the service name: %q", out)
	}
	if Enabled() {
		t.Fatal("tracing still on after shutdown")
	}
}

func TestSampler(t *testing.T) {
	cases := map[string]string{
		"":                         "ParentBased{root:AlwaysOnSampler",
		"always_off":               "AlwaysOffSampler",
		"traceidratio":             "TraceIDRatioBased{1}",
		"parentbased_traceidratio": "ParentBased{root:TraceIDRatioBased{1}",
		"parentbased_always_off":   "ParentBased{root:AlwaysOffSampler",
	}
	for name, want := range cases {
		s, err := Sampler(name, "")
		if err != nil || !strings.HasPrefix(s.Description(), want) {
			t.Errorf("Sampler(%q) = %v, %v; want %s", name, s.Description(), err, want)
		}
	}
}

func TestPropagation(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	Use(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
	t.Cleanup(func() { Use(nil) })

	ctx, span := Start(context.Background(), "parent")
	defer span.End()
	m := map[string]string{}
	Inject(ctx, m)
	got := trace.SpanContextFromContext(Extract(context.Background(), m))
	if got.TraceID() != span.SpanContext().TraceID() || got.SpanID() != span.SpanContext().SpanID() || !got.IsRemote() {
		t.Fatalf("map round trip: %v, want %v", got, span.SpanContext())
	}
	h := Header(ctx)
	got = trace.SpanContextFromContext(FromHeader(context.Background(), h))
	if got.SpanID() != span.SpanContext().SpanID() {
		t.Fatalf("header round trip: %v (headers %v)", got, h)
	}
	if Header(context.Background()) != nil {
		t.Fatal("headers for a context without a span")
	}
	if sc, ok := ParseTraceparent(Traceparent(span.SpanContext()), ""); !ok || sc.TraceID() != span.SpanContext().TraceID() {
		t.Fatalf("traceparent round trip: %v %v", sc, ok)
	}
	for _, bad := range []string{"", "00-zz", "00-00000000000000000000000000000000-0000000000000000-01", strings.Repeat("a", 55)} {
		if _, ok := ParseTraceparent(bad, ""); ok {
			t.Errorf("ParseTraceparent(%q) accepted", bad)
		}
	}
	// A detached context keeps the span but not the cancellation.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	d := Detach(cctx)
	if d.Err() != nil || trace.SpanContextFromContext(d).SpanID() != span.SpanContext().SpanID() {
		t.Fatal("Detach lost the span or kept the cancellation")
	}
	// StartChild makes no root spans.
	if _, sp := StartChild(context.Background(), "orphan"); sp.SpanContext().IsValid() {
		t.Fatal("StartChild made a root span")
	}
}

func TestStartBatch_ParentAndLinks(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	Use(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec), sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample()))))
	t.Cleanup(func() { Use(nil) })
	unsampled := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1},
	}))
	a, sa := Start(context.Background(), "a")
	b, sb := Start(context.Background(), "b")
	parents := []context.Context{context.Background(), unsampled, a, b}
	_, span := StartBatch("batch", len(parents), func(i int) context.Context { return parents[i] })
	span.End()
	sa.End()
	sb.End()
	var batch sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.Name() == "batch" {
			batch = s
		}
	}
	if batch == nil {
		t.Fatal("no batch span")
	}
	if batch.Parent().SpanID() != sa.SpanContext().SpanID() {
		t.Fatalf("batch parent %v, want the first sampled parent %v", batch.Parent().SpanID(), sa.SpanContext().SpanID())
	}
	if n := len(batch.Links()); n != 2 {
		t.Fatalf("batch has %d links, want 2 (the unsampled and the second sampled parent)", n)
	}
}
