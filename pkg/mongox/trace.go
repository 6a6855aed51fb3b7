package mongox

import (
	"context"
	"sync"

	"go.mongodb.org/mongo-driver/v2/event"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/talim/realtime/pkg/tracing"
)

// traceMonitor makes a client span "<command> <collection>" of every driver command
// issued with a context that carries a span (so store calls join the command's trace
// and background work without a trace is not traced). It follows the attributes of
// the contrib otelmongo instrumentation, whose mongo-driver v2 module the Go proxy
// does not serve.
func traceMonitor() *event.CommandMonitor {
	type key struct {
		conn string
		id   int64
	}
	var spans sync.Map // key -> trace.Span
	end := func(conn string, id int64, err string) {
		v, ok := spans.LoadAndDelete(key{conn, id})
		if !ok {
			return
		}
		sp := v.(trace.Span)
		if err != "" {
			sp.SetStatus(codes.Error, err)
		}
		sp.End()
	}
	return &event.CommandMonitor{
		Started: func(ctx context.Context, e *event.CommandStartedEvent) {
			if !trace.SpanContextFromContext(ctx).IsValid() {
				return
			}
			coll := ""
			if el, err := e.Command.IndexErr(0); err == nil {
				coll, _ = el.Value().StringValueOK()
			}
			name := e.CommandName
			if coll != "" {
				name += " " + coll
			}
			_, sp := tracing.Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
				attribute.String("db.system", "mongodb"), attribute.String("db.name", e.DatabaseName),
				attribute.String("db.operation", e.CommandName), attribute.String("db.mongodb.collection", coll),
			))
			spans.Store(key{e.ConnectionID, e.RequestID}, sp)
		},
		Succeeded: func(_ context.Context, e *event.CommandSucceededEvent) { end(e.ConnectionID, e.RequestID, "") },
		Failed: func(_ context.Context, e *event.CommandFailedEvent) {
			end(e.ConnectionID, e.RequestID, e.Failure.Error())
		},
	}
}
