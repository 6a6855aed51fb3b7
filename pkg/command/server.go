// Package command serves client events forwarded by edges over NATS. A service
// registers one Handler per event; the Server subscribes to
// talim.cmd.v1.<service>.> in the queue group <service> so replicas share the load,
// runs handlers concurrently (bounded), and answers each request with an
// edgev1.Reply.
package command

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/talim/realtime/pkg/subject"
	"github.com/talim/realtime/pkg/tracing"
	edgev1 "github.com/talim/realtime/proto/talim/edge/v1"
)

// Handler handles one command. It returns the reply (OK, or with frames and
// directives) or an error; errors are mapped by AsError.
type Handler func(ctx context.Context, cmd *edgev1.Command) (*edgev1.Reply, error)

// Options configures a Server.
type Options struct {
	Service     string
	Logger      *slog.Logger
	Registerer  prometheus.Registerer
	Concurrency int           // handlers running at once (default 256)
	Timeout     time.Duration // per command when the edge set no deadline (default 5s)
	// MaxQueue bounds the commands waiting for a handler (default 2 × Concurrency).
	// Past it a command is answered unavailable with a retry hint at once: under
	// overload clients learn it in microseconds instead of after their timeout,
	// and nothing queues that would still be worked on after it ends.
	MaxQueue int
	// MaxQueueDelay bounds how long a command may wait in the queue (default
	// 2s): a command that waited longer is answered unavailable with a retry
	// hint instead of run, so a backlog never turns into seconds of latency for
	// everyone behind it.
	MaxQueueDelay time.Duration
	// Unavailable are the service's own sentinel errors that mean what ErrUnavailable
	// means (e.g. its store's ErrUnavailable): the handler layer maps them here, so a
	// store never imports this package.
	Unavailable []error
}

// queued is a command waiting for a worker.
type queued struct {
	m  *nats.Msg
	at time.Time
}

// overloadRetry is the retry hint of a command refused because the queue was full.
const overloadRetry = 500 * time.Millisecond

// Server dispatches commands to handlers.
type Server struct {
	nc       *nats.Conn
	o        Options
	handlers map[string]Handler
	sub      *nats.Subscription
	queue    chan queued
	quit     chan struct{}
	stopped  atomic.Bool
	wg       sync.WaitGroup
	duration *prometheus.HistogramVec
	shed     *prometheus.CounterVec
	overload []byte // the marshaled reply to a command refused at the door
}

// New returns a server for o.Service on nc.
func New(nc *nats.Conn, o Options) *Server {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 256
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.MaxQueue <= 0 {
		o.MaxQueue = 2 * o.Concurrency
	}
	if o.MaxQueueDelay <= 0 {
		o.MaxQueueDelay = 2 * time.Second
	}
	s := &Server{nc: nc, o: o, handlers: map[string]Handler{}, queue: make(chan queued, o.MaxQueue), quit: make(chan struct{})}
	s.overload, _ = proto.Marshal(&edgev1.Reply{Error: &edgev1.Error{Code: CodeUnavailable,
		Message: o.Service + " is overloaded; nothing was done, retry later", RetryAfterMs: overloadRetry.Milliseconds()}})
	s.shed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "talim", Subsystem: o.Service, Name: "commands_shed_total",
		Help: "Commands answered unavailable without running: queue full (overload) or deadline passed while queued.",
	}, []string{"reason"})
	s.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "talim", Subsystem: o.Service, Name: "command_duration_seconds",
		Help:    "Time to handle a client command, by event and result.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}, []string{"event", "result"})
	if o.Registerer != nil {
		o.Registerer.MustRegister(s.duration, s.shed)
	}
	return s
}

// Handle registers h for event. Call before Start.
func (s *Server) Handle(event string, h Handler) { s.handlers[event] = h }

// Events lists the registered events.
func (s *Server) Events() []string {
	out := make([]string, 0, len(s.handlers))
	for e := range s.handlers {
		out = append(out, e)
	}
	return out
}

// Start subscribes. Commands are handled by Concurrency workers from a queue of
// at most MaxQueue; when it is full a command is refused at once (unavailable,
// retryAfterMs) and the subscription callback never blocks, so NATS never
// buffers commands that would be stale by the time they run.
func (s *Server) Start() error {
	for range s.o.Concurrency {
		s.wg.Add(1)
		go s.work()
	}
	sub, err := s.nc.QueueSubscribe(subject.CommandWildcard(s.o.Service), s.o.Service, func(m *nats.Msg) {
		if expired(m.Data) {
			// The edge has answered unavailable already: no work, not even a
			// reply, so a backlog left by an overload drains in microseconds.
			s.shed.WithLabelValues("expired").Inc()
			return
		}
		if !s.stopped.Load() {
			select {
			case s.queue <- queued{m: m, at: time.Now()}:
				return
			default:
			}
		}
		s.refuse(m, "overload")
	})
	if err != nil {
		s.stopped.Store(true)
		close(s.quit)
		return fmt.Errorf("subscribe %s commands: %w", s.o.Service, err)
	}
	// The callback never blocks, so a backlog here means the process is starved
	// of CPU; keep it short (a command waiting behind 8,192 others is stale).
	if err := sub.SetPendingLimits(8192, 16<<20); err != nil {
		return fmt.Errorf("set pending limits: %w", err)
	}
	s.sub = sub
	return nil
}

// expired reports whether the encoded edgev1.Command b carries a deadline that
// has passed, reading only that field (deadline_unix_ms, 7).
func expired(b []byte) bool {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		if num == 7 && typ == protowire.VarintType {
			v, n := protowire.ConsumeVarint(b)
			return n > 0 && int64(v) > 0 && time.Now().UnixMilli() > int64(v)
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return false
		}
		b = b[n:]
	}
	return false
}

// work runs queued commands until Stop; then it finishes what is queued.
func (s *Server) work() {
	defer s.wg.Done()
	for {
		select {
		case q := <-s.queue:
			s.take(q)
		case <-s.quit:
			for {
				select {
				case q := <-s.queue:
					s.take(q)
				default:
					return
				}
			}
		}
	}
}

// take runs a queued command, or refuses it when it waited too long.
func (s *Server) take(q queued) {
	if time.Since(q.at) > s.o.MaxQueueDelay {
		s.refuse(q.m, "queued_too_long")
		return
	}
	s.serve(q.m)
}

// refuse answers m unavailable with a retry hint without running it.
func (s *Server) refuse(m *nats.Msg, reason string) {
	s.shed.WithLabelValues(reason).Inc()
	if m.Reply != "" {
		_ = m.Respond(s.overload)
	}
}

// Stop drains the subscription (no new commands; queued ones still run) and waits
// for running handlers until ctx ends.
func (s *Server) Stop(ctx context.Context) {
	if s.sub != nil {
		_ = s.sub.Drain()
		for s.sub.IsValid() && ctx.Err() == nil {
			select {
			case <-ctx.Done():
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	if s.stopped.CompareAndSwap(false, true) {
		close(s.quit)
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// serve handles one command. With tracing on it is the span "<service> <event>",
// a child of the edge's span carried in Command.trace; the handler's context
// carries it, so store calls, fan-out jobs and log lines join the trace.
func (s *Server) serve(m *nats.Msg) {
	start := time.Now()
	event := subject.EventFromCommand(s.o.Service, m.Subject)
	var cmd edgev1.Command
	var reply *edgev1.Reply
	var err error
	ctx := context.Background()
	var span trace.Span
	uerr := proto.Unmarshal(m.Data, &cmd)
	if tracing.Enabled() {
		ctx, span = tracing.Start(tracing.Extract(ctx, cmd.GetTrace()), s.o.Service+" "+event,
			trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(attribute.String("messaging.system", "nats"), attribute.String("talim.event", event),
				attribute.String("talim.connection_id", cmd.GetConnectionId()), attribute.String("talim.edge_id", cmd.GetEdgeId())))
		defer span.End()
	}
	switch h, ok := s.handlers[cmd.GetEvent()]; {
	case uerr != nil:
		err = BadRequest("malformed command envelope")
	case !ok || cmd.GetEvent() != event:
		err = Errorf(CodeUnknownEvent, "unknown event %q", event)
	case cmd.GetIdentity().GetUserId() == "":
		err = Errorf(CodeUnauthorized, "command without identity")
	default:
		timeout := s.o.Timeout
		if dl := cmd.GetDeadlineUnixMs(); dl > 0 {
			timeout = time.Until(time.UnixMilli(dl))
		}
		if timeout <= 0 {
			// The edge has answered unavailable already: do no work for nobody.
			s.shed.WithLabelValues("expired").Inc()
			err = &Error{Code: CodeUnavailable, Message: "the command's deadline passed while it was queued; retry later", RetryAfterMs: overloadRetry.Milliseconds()}
		} else {
			hctx, cancel := context.WithTimeout(ctx, timeout)
			reply, err = s.call(hctx, h, &cmd)
			cancel()
		}
	}
	result := "ok"
	if err != nil {
		for _, u := range s.o.Unavailable {
			if errors.Is(err, u) && !errors.Is(err, ErrUnavailable) {
				err = fmt.Errorf("%w: %w", ErrUnavailable, err)
				break
			}
		}
		pe, known := AsError(err)
		result = pe.Code
		if !known {
			s.o.Logger.ErrorContext(ctx, "command failed", "event", event, "user", cmd.GetIdentity().GetUserId(), "err", err)
		}
		if span != nil {
			span.SetStatus(codes.Error, pe.Code)
			if !known {
				span.RecordError(err)
			}
		}
		reply = &edgev1.Reply{Error: &edgev1.Error{Code: pe.Code, Message: pe.Message, RetryAfterMs: pe.RetryAfterMs}}
	}
	if reply == nil {
		reply = &edgev1.Reply{Data: []byte("{}")}
	}
	s.duration.WithLabelValues(event, result).Observe(time.Since(start).Seconds())
	if span != nil {
		span.SetAttributes(attribute.String("talim.result", result))
	}
	if m.Reply == "" {
		return
	}
	b, merr := proto.Marshal(reply)
	if merr != nil {
		s.o.Logger.ErrorContext(ctx, "marshal reply", "event", event, "err", merr)
		return
	}
	rerr := m.Respond(b)
	if span != nil {
		span.AddEvent("reply sent", trace.WithAttributes(attribute.Int("talim.reply_bytes", len(b))))
	}
	if rerr != nil && !errors.Is(rerr, nats.ErrConnectionClosed) {
		s.o.Logger.WarnContext(ctx, "respond", "event", event, "err", rerr)
	}
}

func (s *Server) call(ctx context.Context, h Handler, cmd *edgev1.Command) (r *edgev1.Reply, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("handler %s panicked: %v", cmd.GetEvent(), p)
		}
	}()
	return h(ctx, cmd)
}

// OK builds a successful reply with v encoded as JSON ack data.
func OK(v any) (*edgev1.Reply, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode ack: %w", err)
	}
	return &edgev1.Reply{Data: b}, nil
}

// Frame builds a frame for Reply.Frames.
func Frame(event string, v any) (*edgev1.Frame, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode %s frame: %w", event, err)
	}
	return &edgev1.Frame{Event: event, Data: b}, nil
}

// Decode parses the command's JSON data into v. Unknown fields are ignored (clients
// may send more than we read) but wrong types are a bad_request, which is also what
// stops operator injection such as {"roomId":{"$gt":""}} at the door. Missing or
// null data decodes as an empty object.
func Decode(cmd *edgev1.Command, v any) error {
	data := bytes.TrimSpace(cmd.GetData())
	if len(data) == 0 || bytes.Equal(data, []byte("null")) {
		data = []byte("{}")
	}
	if data[0] != '{' {
		return BadRequest("data must be a JSON object")
	}
	if err := json.Unmarshal(data, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return BadRequest("field %q has the wrong type: want %s", te.Field, te.Type.String())
		}
		return BadRequest("data is not valid JSON")
	}
	return nil
}
