// Package tracing is Talim's OpenTelemetry tracing: setup from the standard OTEL_*
// variables, the tracer every package uses, and W3C trace context carried in the
// places Talim has (the Command envelope's trace map, NATS headers).
//
// Tracing is off unless configured (see Setup). Off, Tracer returns a no-op tracer
// and Enabled reports false, so hot paths skip span work entirely: the cost is one
// atomic load per command (measured in pkg/command BenchmarkServe).
//
// One provider serves the process (talim dev runs every service in one process), so
// spans name their service: "edge send-message", "chat send-message".
package tracing

import (
	"context"
	"sync/atomic"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// ScopeName is the instrumentation scope of Talim's own spans.
const ScopeName = "github.com/talim/realtime"

type state struct {
	provider trace.TracerProvider
	tracer   trace.Tracer
	enabled  bool
}

var (
	current    atomic.Pointer[state]
	off        = &state{provider: noop.NewTracerProvider(), tracer: noop.NewTracerProvider().Tracer(ScopeName)}
	propagator = propagation.TraceContext{}
)

// Use makes tp the provider of Talim's spans (and the OpenTelemetry global, which
// the contrib instrumentation reads). nil switches tracing off. Tests call it
// with an in-memory provider before starting servers.
func Use(tp trace.TracerProvider) {
	if tp == nil {
		current.Store(off)
		return
	}
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagator)
	current.Store(&state{provider: tp, tracer: tp.Tracer(ScopeName), enabled: true})
}

func get() *state {
	if s := current.Load(); s != nil {
		return s
	}
	return off
}

// Enabled reports whether a provider is installed. Hot paths check it first.
func Enabled() bool { return get().enabled }

// Provider is the installed provider (a no-op one when off).
func Provider() trace.TracerProvider { return get().provider }

// Tracer is the tracer of Talim's spans.
func Tracer() trace.Tracer { return get().tracer }

// Start starts a span with Talim's tracer.
func Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	return get().tracer.Start(ctx, name, opts...)
}

// Detach returns a context without ctx's deadline, cancellation and values but
// with its span, for work that outlives the request but belongs to its trace
// (a group commit, a fan-out job).
func Detach(ctx context.Context) context.Context {
	return WithSpanOf(context.Background(), ctx)
}

// WithSpanOf returns dst carrying src's current span (dst's cancellation stays).
func WithSpanOf(dst, src context.Context) context.Context {
	sp := trace.SpanFromContext(src)
	if !sp.SpanContext().IsValid() {
		return dst
	}
	return trace.ContextWithSpan(dst, sp)
}

// Inject writes ctx's span context into m (keys "traceparent", "tracestate").
func Inject(ctx context.Context, m map[string]string) {
	propagator.Inject(ctx, propagation.MapCarrier(m))
}

// Extract returns ctx with the remote span context found in m, if any.
func Extract(ctx context.Context, m map[string]string) context.Context {
	if len(m) == 0 {
		return ctx
	}
	return propagator.Extract(ctx, propagation.MapCarrier(m))
}

// ParseTraceparent returns the remote span context of a W3C traceparent value (and
// tracestate, may be empty); ok is false when it is malformed.
func ParseTraceparent(traceparent, tracestate string) (trace.SpanContext, bool) {
	m := map[string]string{"traceparent": traceparent}
	if tracestate != "" {
		m["tracestate"] = tracestate
	}
	sc := trace.SpanContextFromContext(propagator.Extract(context.Background(), propagation.MapCarrier(m)))
	return sc, sc.IsValid()
}

// Traceparent formats sc as a W3C traceparent value.
func Traceparent(sc trace.SpanContext) string {
	m := map[string]string{}
	propagator.Inject(trace.ContextWithSpanContext(context.Background(), sc), propagation.MapCarrier(m))
	return m["traceparent"]
}

// Header returns NATS/HTTP-style headers carrying ctx's span context when its span
// is sampled, else nil (publish without headers: nothing to carry).
func Header(ctx context.Context) map[string][]string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsSampled() {
		return nil
	}
	h := propagation.HeaderCarrier{}
	propagator.Inject(ctx, h)
	return h
}

// FromHeader returns ctx with the remote span context of headers h, if any.
func FromHeader(ctx context.Context, h map[string][]string) context.Context {
	if len(h) == 0 {
		return ctx
	}
	return propagator.Extract(ctx, propagation.HeaderCarrier(h))
}

// StartBatch starts a span for work done once for many requests (a group commit):
// its parent is the first sampled parent's span (else the first valid one), and it
// links every other parent, so each request's trace reaches the shared work. With
// no traced parent at all it starts nothing (no root spans for untraced work).
func StartBatch(name string, n int, parent func(i int) context.Context, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if !Enabled() || n == 0 {
		return context.Background(), trace.SpanFromContext(context.Background())
	}
	first := -1
	for i := range n {
		sc := trace.SpanContextFromContext(parent(i))
		if sc.IsSampled() {
			first = i
			break
		}
		if first < 0 && sc.IsValid() {
			first = i
		}
	}
	var links []trace.Link
	for i := range n {
		if i == first {
			continue
		}
		if sc := trace.SpanContextFromContext(parent(i)); sc.IsValid() {
			links = append(links, trace.Link{SpanContext: sc})
		}
	}
	if first < 0 {
		return context.Background(), trace.SpanFromContext(context.Background())
	}
	return Start(Detach(parent(first)), name, append(opts, trace.WithLinks(links...))...)
}

// StartChild starts a span only when ctx already carries one (the work belongs to
// a traced request); otherwise it returns ctx and a no-op span, so untraced
// background work (typing fan-out, janitors) makes no root spans.
func StartChild(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if !Enabled() || !trace.SpanContextFromContext(ctx).IsValid() {
		return ctx, trace.SpanFromContext(context.Background())
	}
	return Start(ctx, name, opts...)
}
