// Package traces proves one connected trace per client command and per gRPC
// notification send through the whole system (docs/operations.md, "Tracing"). It
// is its own test binary because it installs a process-wide tracer provider.
package traces

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/metadata"

	"github.com/talim/realtime/pkg/tracing"
	notificationv1 "github.com/talim/realtime/proto/talim/notification/v1"
	"github.com/talim/realtime/services/edge/edgetest"
	"github.com/talim/realtime/services/talim"
)

const wait = 10 * time.Second

// exporter collects every span of the test binary; tests filter by trace id.
var exporter = tracetest.NewInMemoryExporter()

func TestMain(m *testing.M) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exporter), sdktrace.WithSampler(sdktrace.AlwaysSample()))
	tracing.Use(tp)
	code := m.Run()
	_ = tp.Shutdown(context.Background())
	tracing.Use(nil)
	os.Exit(code)
}

func newStack(t *testing.T) *talim.Stack {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st, err := talim.StartStack(ctx, talim.StackConfig{DataDir: t.TempDir(), DevMode: true, Seed: true})
	if err != nil {
		t.Fatalf("start stack: %v", err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("stop stack: %v", err)
		}
	})
	return st
}

func token(t *testing.T, st *talim.Stack, userID string) string {
	t.Helper()
	tok, err := st.Token(userID, "User "+userID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// spans waits until the trace holds spans named every one of names (an entry
// "prefix*" matches by prefix) and returns the trace's spans.
func spans(t *testing.T, id trace.TraceID, names ...string) tracetest.SpanStubs {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		var got tracetest.SpanStubs
		for _, s := range exporter.GetSpans() {
			if s.SpanContext.TraceID() == id {
				got = append(got, s)
			}
		}
		missing := ""
		for _, n := range names {
			if find(got, n) == nil {
				missing = n
				break
			}
		}
		if missing == "" {
			return got
		}
		if time.Now().After(deadline) {
			var have []string
			for _, s := range got {
				have = append(have, s.Name)
			}
			t.Fatalf("trace %s has no span %q within %v; it has %q", id, missing, wait, have)
		}
		time.Sleep(10 * time.Millisecond) // polling the exporter; the condition is the deadline above
	}
}

func find(ss tracetest.SpanStubs, name string) *tracetest.SpanStub {
	for i := range ss {
		if ss[i].Name == name || (strings.HasSuffix(name, "*") && strings.HasPrefix(ss[i].Name, strings.TrimSuffix(name, "*"))) {
			return &ss[i]
		}
	}
	return nil
}

// childOf fails unless child's parent is parent.
func childOf(t *testing.T, child, parent *tracetest.SpanStub) {
	t.Helper()
	if child.Parent.SpanID() != parent.SpanContext.SpanID() {
		t.Errorf("span %q has parent %s, want %q (%s)", child.Name, child.Parent.SpanID(), parent.Name, parent.SpanContext.SpanID())
	}
}

func hasEvent(s *tracetest.SpanStub, name string) bool {
	for _, e := range s.Events {
		if e.Name == name {
			return true
		}
	}
	return false
}

// clientSpan is a sampled span context the test plays the client with.
func clientSpan(b byte) trace.SpanContext {
	return trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{0x7a, b, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14},
		SpanID:  trace.SpanID{0x5e, b, 1, 2, 3, 4, 5, 6}, TraceFlags: trace.FlagsSampled, Remote: true,
	})
}

// TestTrace_ChatSend: a client that connected with a traceparent sends a chat
// message; the trace continues the client's and connects edge → chat handler →
// store batch → insert, chat handler → fan-out publish → the edge's delivery to
// the other member's socket.
func TestTrace_ChatSend(t *testing.T) {
	st := newStack(t)
	client := clientSpan(1)
	teacher := edgetest.Dial(t, st.WSURL, token(t, st, "t1"), edgetest.WithQuery("traceparent", tracing.Traceparent(client)))
	student := edgetest.Dial(t, st.WSURL, token(t, st, "s1"))
	for _, c := range []*edgetest.Client{teacher, student} {
		if _, perr := c.Request("join-chat-room", map[string]any{"roomId": "room-123"}); perr != nil {
			t.Fatalf("join: %v", perr)
		}
	}
	exporter.Reset()
	if _, perr := teacher.Request("send-chat-message", map[string]any{"roomId": "room-123", "content": "traced", "clientMsgId": "tr-1"}); perr != nil {
		t.Fatalf("send: %v", perr)
	}
	var ev struct {
		Message struct{ Content string } `json:"message"`
	}
	if err := json.Unmarshal(student.Expect(t, "chat-message", wait), &ev); err != nil || ev.Message.Content != "traced" {
		t.Fatalf("student got %+v, %v", ev, err)
	}

	ss := spans(t, client.TraceID(), "edge send-chat-message", "chat send-chat-message", "chat store batch",
		"insert messages", "chat fanout", "edge deliver chat-message")
	edge := find(ss, "edge send-chat-message")
	handler := find(ss, "chat send-chat-message")
	batch := find(ss, "chat store batch")
	insert := find(ss, "insert messages")
	fanout := find(ss, "chat fanout")
	deliver := find(ss, "edge deliver chat-message")

	if edge.Parent.SpanID() != client.SpanID() || !edge.Parent.IsRemote() {
		t.Errorf("edge span's parent %v, want the client's traceparent %v", edge.Parent.SpanID(), client.SpanID())
	}
	if edge.SpanKind != trace.SpanKindServer || !hasEvent(edge, "ack enqueued") {
		t.Errorf("edge span: kind %v, events %v", edge.SpanKind, edge.Events)
	}
	childOf(t, handler, edge)
	if !handler.Parent.IsRemote() || !hasEvent(handler, "reply sent") {
		t.Errorf("handler span: parent remote %v (crossed NATS), events %v", handler.Parent.IsRemote(), handler.Events)
	}
	childOf(t, batch, handler)
	childOf(t, insert, batch)
	if insert.SpanKind != trace.SpanKindClient {
		t.Errorf("insert span kind %v, want client", insert.SpanKind)
	}
	childOf(t, fanout, handler)
	childOf(t, deliver, fanout)
	if !deliver.Parent.IsRemote() || !hasEvent(deliver, "frames enqueued") {
		t.Errorf("deliver span: parent remote %v (crossed NATS), events %v", deliver.Parent.IsRemote(), deliver.Events)
	}
	// The membership read of the handler joins the trace too (a store call).
	var reads int
	for _, s := range ss {
		if s.Parent.SpanID() == handler.SpanContext.SpanID() && s.SpanKind == trace.SpanKindClient {
			reads++
		}
	}
	t.Logf("trace %s: %d spans, %d store reads under the handler", client.TraceID(), len(ss), reads)
}

// TestTrace_NotificationSend: a gRPC Send that carries a traceparent is a server
// span of that trace; the store insert, the delivery publish and the edge's
// delivery to the recipient's socket are in it.
func TestTrace_NotificationSend(t *testing.T) {
	st := newStack(t)
	student := edgetest.Dial(t, st.WSURL, token(t, st, "s1"))
	conn, err := st.Dial()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	caller := clientSpan(2)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "traceparent", tracing.Traceparent(caller))
	if _, err := notificationv1.NewNotificationServiceClient(conn).Send(ctx, &notificationv1.SendRequest{
		Recipients: []string{"s1"}, Category: "assignment", Title: "Traced", IdempotencyKey: "trace-1",
	}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	student.Expect(t, "notification", wait)

	const method = "talim.notification.v1.NotificationService/Send"
	ss := spans(t, caller.TraceID(), method, "insert*", "notification deliver", "edge deliver notification")
	server := find(ss, method)
	insert := find(ss, "insert*")
	deliver := find(ss, "notification deliver")
	edge := find(ss, "edge deliver notification")
	if server.Parent.SpanID() != caller.SpanID() || server.SpanKind != trace.SpanKindServer {
		t.Errorf("gRPC span: parent %v kind %v, want the caller's %v, server", server.Parent.SpanID(), server.SpanKind, caller.SpanID())
	}
	childOf(t, insert, server)
	childOf(t, deliver, server)
	childOf(t, edge, deliver)
	if !hasEvent(edge, "frames enqueued") {
		t.Errorf("edge delivery has no frame event: %v", edge.Events)
	}
}
