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
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/talim/realtime/pkg/subject"
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
}

// Server dispatches commands to handlers.
type Server struct {
	nc       *nats.Conn
	o        Options
	handlers map[string]Handler
	sub      *nats.Subscription
	sem      chan struct{}
	wg       sync.WaitGroup
	duration *prometheus.HistogramVec
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
	s := &Server{nc: nc, o: o, handlers: map[string]Handler{}, sem: make(chan struct{}, o.Concurrency)}
	s.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "talim", Subsystem: o.Service, Name: "command_duration_seconds",
		Help:    "Time to handle a client command, by event and result.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}, []string{"event", "result"})
	if o.Registerer != nil {
		o.Registerer.MustRegister(s.duration)
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

// Start subscribes. Messages are handled on their own goroutines, at most
// Concurrency at once; when all slots are busy the subscription callback waits,
// which lets NATS buffer (and, past its limits, report slow consumer) rather than
// growing memory without bound.
func (s *Server) Start() error {
	sub, err := s.nc.QueueSubscribe(subject.CommandWildcard(s.o.Service), s.o.Service, func(m *nats.Msg) {
		s.sem <- struct{}{}
		s.wg.Add(1)
		go func() {
			defer func() { <-s.sem; s.wg.Done() }()
			s.serve(m)
		}()
	})
	if err != nil {
		return fmt.Errorf("subscribe %s commands: %w", s.o.Service, err)
	}
	if err := sub.SetPendingLimits(65536, 64<<20); err != nil {
		return fmt.Errorf("set pending limits: %w", err)
	}
	s.sub = sub
	return nil
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
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

func (s *Server) serve(m *nats.Msg) {
	start := time.Now()
	event := subject.EventFromCommand(s.o.Service, m.Subject)
	var cmd edgev1.Command
	var reply *edgev1.Reply
	var err error
	if uerr := proto.Unmarshal(m.Data, &cmd); uerr != nil {
		err = BadRequest("malformed command envelope")
	} else if h, ok := s.handlers[cmd.GetEvent()]; !ok || cmd.GetEvent() != event {
		err = Errorf(CodeUnknownEvent, "unknown event %q", event)
	} else if cmd.GetIdentity().GetUserId() == "" {
		err = Errorf(CodeUnauthorized, "command without identity")
	} else {
		timeout := s.o.Timeout
		if dl := cmd.GetDeadlineUnixMs(); dl > 0 {
			timeout = time.Until(time.UnixMilli(dl))
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		reply, err = s.call(ctx, h, &cmd)
		cancel()
	}
	result := "ok"
	if err != nil {
		pe, known := AsError(err)
		result = pe.Code
		if !known {
			s.o.Logger.Error("command failed", "event", event, "user", cmd.GetIdentity().GetUserId(), "err", err)
		}
		reply = &edgev1.Reply{Error: &edgev1.Error{Code: pe.Code, Message: pe.Message, RetryAfterMs: pe.RetryAfterMs}}
	}
	if reply == nil {
		reply = &edgev1.Reply{Data: []byte("{}")}
	}
	s.duration.WithLabelValues(event, result).Observe(time.Since(start).Seconds())
	if m.Reply == "" {
		return
	}
	b, merr := proto.Marshal(reply)
	if merr != nil {
		s.o.Logger.Error("marshal reply", "event", event, "err", merr)
		return
	}
	if rerr := m.Respond(b); rerr != nil && !errors.Is(rerr, nats.ErrConnectionClosed) {
		s.o.Logger.Warn("respond", "event", event, "err", rerr)
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
