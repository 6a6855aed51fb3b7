package edge

import (
	"context"
	"net/http"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/talim/realtime/pkg/tracing"
	edgev1 "github.com/talim/realtime/proto/talim/edge/v1"
)

// Tracing (docs/operations.md, "Tracing"): a forwarded command is the span
// "edge <event>" from the read of its frame to the enqueue of its ack; its context
// travels in Command.trace to the service. A client may send a W3C traceparent in
// the connect request (header or ?traceparent=), and then every command of the
// connection continues the client's trace. With tracing off, Command.trace still
// carries a traceparent (the client's, or a random one) for log correlation.

// clientTrace returns the remote span context of the connect request's
// traceparent, or nil when there is none or it is malformed (ignored, not refused).
func clientTrace(r *http.Request) *trace.SpanContext {
	tp := r.Header.Get("traceparent")
	if tp == "" {
		tp = r.URL.Query().Get("traceparent")
	}
	if tp == "" || len(tp) > 128 {
		return nil
	}
	sc, ok := tracing.ParseTraceparent(tp, "")
	if !ok {
		return nil
	}
	return &sc
}

// commandTrace fills cmd.Trace and starts the command's span (nil with tracing off).
func (c *Conn) commandTrace(event string, cmd *edgev1.Command) trace.Span {
	if !tracing.Enabled() {
		tp := ""
		if c.trace != nil {
			tp = tracing.Traceparent(*c.trace)
		} else {
			tp = newTraceparent()
		}
		cmd.Trace = map[string]string{"traceparent": tp}
		return nil
	}
	ctx := context.Background()
	if c.trace != nil {
		ctx = trace.ContextWithRemoteSpanContext(ctx, *c.trace)
	}
	ctx, span := tracing.Start(ctx, "edge "+event, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("talim.event", event), attribute.String("talim.connection_id", c.id)))
	cmd.Trace = make(map[string]string, 2)
	tracing.Inject(ctx, cmd.Trace)
	return span
}

// endSpan ends a command's span; code is the error code ("" when acked).
func endSpan(span trace.Span, code string) {
	if span == nil {
		return
	}
	if code != "" {
		span.SetStatus(codes.Error, code)
		span.SetAttributes(attribute.String("talim.result", code))
	} else {
		span.AddEvent("ack enqueued")
	}
	span.End()
}

// deliverSpan starts the span "edge deliver <event>" of an outbound message that
// carries a sampled trace context in its NATS headers (a fan-out publish), or
// returns nil. endDeliver records the enqueue of its frames to the user's
// connections on this edge as an event.
func deliverSpan(m *nats.Msg, event string, batch int) trace.Span {
	if len(m.Header) == 0 || !tracing.Enabled() {
		return nil
	}
	ctx := tracing.FromHeader(context.Background(), m.Header)
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return nil
	}
	_, span := tracing.Start(ctx, "edge deliver "+event, trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(attribute.String("messaging.system", "nats"), attribute.String("messaging.destination.name", m.Subject),
			attribute.Int("talim.batch", batch)))
	return span
}

func endDeliver(span trace.Span, conns int) {
	span.AddEvent("frames enqueued", trace.WithAttributes(attribute.Int("talim.connections", conns)))
	span.End()
}
