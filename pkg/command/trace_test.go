package command

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/nats-io/nats.go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"

	"github.com/talim/realtime/pkg/logging"
	"github.com/talim/realtime/pkg/subject"
	"github.com/talim/realtime/pkg/tracing"
	edgev1 "github.com/talim/realtime/proto/talim/edge/v1"
)

// Not parallel: it installs the process-wide tracer provider (parallel tests of the
// package wait until the sequential ones are done).
func TestServer_ContinuesTheEdgeTraceAndLogsJoinIt(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tracing.Use(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
	t.Cleanup(func() { tracing.Use(nil) })

	var logs bytes.Buffer
	log, err := logging.New(&logs, "json", "info")
	if err != nil {
		t.Fatal(err)
	}
	s := New(nil, Options{Service: "chat", Logger: log})
	s.Handle("send", func(ctx context.Context, _ *edgev1.Command) (*edgev1.Reply, error) {
		log.InfoContext(ctx, "handling")
		return nil, Errorf(CodeForbidden, "no")
	})
	edge := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{9, 9}, SpanID: trace.SpanID{8, 8}, TraceFlags: trace.FlagsSampled})
	tr := map[string]string{}
	tracing.Inject(trace.ContextWithSpanContext(context.Background(), edge), tr)

	for _, c := range []struct {
		name  string
		trace map[string]string
	}{{"from the edge", tr}, {"malformed traceparent", map[string]string{"traceparent": "00-nonsense"}}} {
		rec.Reset()
		logs.Reset()
		s.serve(msg(t, &edgev1.Command{Event: "send", Identity: &edgev1.Identity{UserId: "u"}, Trace: c.trace}))
		ended := rec.Ended()
		if len(ended) != 1 || ended[0].Name() != "chat send" {
			t.Fatalf("%s: spans %v, want one \"chat send\"", c.name, ended)
		}
		sp := ended[0]
		if c.trace["traceparent"] == tr["traceparent"] && (sp.Parent().SpanID() != edge.SpanID() || sp.SpanContext().TraceID() != edge.TraceID()) {
			t.Fatalf("%s: parent %v in trace %v, want the edge's span", c.name, sp.Parent().SpanID(), sp.SpanContext().TraceID())
		}
		if c.trace["traceparent"] != tr["traceparent"] && sp.Parent().IsValid() {
			t.Fatalf("%s: a malformed traceparent became a parent", c.name)
		}
		if sp.Status().Description != CodeForbidden {
			t.Fatalf("%s: status %v, want the error code", c.name, sp.Status())
		}
		var line map[string]any
		if err := json.Unmarshal(logs.Bytes(), &line); err != nil {
			t.Fatalf("%s: log %q: %v", c.name, logs.String(), err)
		}
		if line["trace_id"] != sp.SpanContext().TraceID().String() || line["span_id"] != sp.SpanContext().SpanID().String() {
			t.Fatalf("%s: handler's log line %v lacks the span's ids", c.name, line)
		}
	}
}

func msg(tb testing.TB, cmd *edgev1.Command) *nats.Msg {
	b, err := proto.Marshal(cmd)
	if err != nil {
		tb.Fatal(err)
	}
	return &nats.Msg{Subject: subject.Command("chat", cmd.GetEvent()), Data: b}
}

// BenchmarkServe measures the command path (decode, dispatch, handler with a log
// call below its level, metrics, reply encode) with tracing off and on; off must
// cost nothing measurable against the baseline.
func BenchmarkServe(b *testing.B) {
	cmd := &edgev1.Command{Event: "send", Identity: &edgev1.Identity{UserId: "u"}, Data: []byte(`{"roomId":"r","content":"hello"}`),
		Trace: map[string]string{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}}
	log := slog.New(logging.WithTrace(slog.NewJSONHandler(&bytes.Buffer{}, &slog.HandlerOptions{Level: slog.LevelWarn})))
	for _, bc := range []struct {
		name string
		tp   trace.TracerProvider
	}{
		{"off", nil},
		{"on-sampled", sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(tracetest.NewSpanRecorder()))},
		{"on-ratio0", sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.TraceIDRatioBased(0)))},
	} {
		b.Run(bc.name, func(b *testing.B) {
			tracing.Use(bc.tp)
			defer tracing.Use(nil)
			s := New(nil, Options{Service: "chat", Logger: log})
			s.Handle("send", func(ctx context.Context, cmd *edgev1.Command) (*edgev1.Reply, error) {
				var v struct{ RoomID, Content string }
				if err := Decode(cmd, &v); err != nil {
					return nil, err
				}
				log.InfoContext(ctx, "below level")
				return OK(map[string]any{"ok": true})
			})
			m := msg(b, cmd)
			b.ReportAllocs()
			for b.Loop() {
				s.serve(m)
			}
		})
	}
}
