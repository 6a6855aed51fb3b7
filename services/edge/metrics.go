package edge

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Request results (label values of talim_edge_requests_total).
const (
	resultOK          = "ok"
	resultError       = "error"
	resultUnavailable = "unavailable"
)

// metrics are the edge's Prometheus series. Their names are a contract used by the
// deploy alerts; label values are bounded (events from the routing table or
// "unknown", close codes chosen by the server, refusal reasons from server.go).
type metrics struct {
	connections  prometheus.GaugeFunc
	connects     prometheus.Counter
	refusals     *prometheus.CounterVec
	disconnects  *prometheus.CounterVec
	framesIn     prometheus.Counter
	framesOut    prometheus.Counter
	bytesIn      prometheus.Counter
	bytesOut     prometheus.Counter
	queueDrops   prometheus.Counter
	slowCloses   prometheus.Counter
	requests     *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	userSubs     prometheus.GaugeFunc
	presenceSubs prometheus.GaugeFunc
}

func newMetrics(reg prometheus.Registerer, s *Server) *metrics {
	m := &metrics{
		connections: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "talim_edge_connections", Help: "Open client connections.",
		}, func() float64 {
			s.connsMu.Lock()
			defer s.connsMu.Unlock()
			return float64(len(s.conns))
		}),
		connects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "talim_edge_connects_total", Help: "Accepted (upgraded) connections.",
		}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "talim_edge_refusals_total", Help: "Connection attempts refused before the upgrade, by reason.",
		}, []string{"reason"}),
		disconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "talim_edge_disconnects_total", Help: "Closed connections by close code (1006: lost without a close frame).",
		}, []string{"code"}),
		framesIn: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "talim_edge_frames_in_total", Help: "WebSocket messages received.",
		}),
		framesOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "talim_edge_frames_out_total", Help: "WebSocket frames written.",
		}),
		bytesIn: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "talim_edge_bytes_in_total", Help: "Payload bytes received.",
		}),
		bytesOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "talim_edge_bytes_out_total", Help: "Bytes written to sockets.",
		}),
		queueDrops: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "talim_edge_queue_drops_total", Help: "Frames dropped because an outbound queue was full.",
		}),
		slowCloses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "talim_edge_slow_consumer_closes_total", Help: "Connections closed with 4008 (slow consumer).",
		}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "talim_edge_requests_total", Help: "Client commands by event and result (ok, error, unavailable).",
		}, []string{"event", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "talim_edge_request_duration_seconds", Help: "Latency of commands forwarded over NATS, by event.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"event"}),
		userSubs: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "talim_edge_user_subscriptions", Help: "Per-user NATS subscriptions held by this edge.",
		}, func() float64 { return float64(s.hub.subscriptions()) }),
		presenceSubs: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "talim_edge_presence_subscriptions", Help: "Presence-watch NATS subscriptions held by this edge.",
		}, func() float64 { return float64(s.watch.subscriptions()) }),
	}
	// Open connections by wire protocol (label protocol="native" or "socketio"),
	// counted at scrape time; talim_edge_connections stays the total.
	for i := range maxProtocols {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "talim_edge_protocol_connections", Help: "Open client connections by wire protocol.",
			ConstLabels: prometheus.Labels{"protocol": s.protos[i].Name()},
		}, func() float64 {
			s.connsMu.Lock()
			defer s.connsMu.Unlock()
			n := 0
			for c := range s.conns {
				if int(c.proto) == i {
					n++
				}
			}
			return float64(n)
		}))
	}
	reg.MustRegister(m.connections, m.connects, m.refusals, m.disconnects, m.framesIn, m.framesOut,
		m.bytesIn, m.bytesOut, m.queueDrops, m.slowCloses, m.requests, m.duration, m.userSubs, m.presenceSubs)
	return m
}

func (m *metrics) connected()                { m.connects.Inc() }
func (m *metrics) refused(reason string)     { m.refusals.WithLabelValues(reason).Inc() }
func (m *metrics) disconnected(d Disconnect) { m.disconnects.WithLabelValues(d.label()).Inc() }
func (m *metrics) queueDrop()                { m.queueDrops.Inc() }
func (m *metrics) slowConsumer()             { m.slowCloses.Inc() }

func (m *metrics) frameIn(n int) {
	m.framesIn.Inc()
	m.bytesIn.Add(float64(n))
}

// written is the writer's OnWritten hook.
func (m *metrics) written(frames, bytes int) {
	m.framesOut.Add(float64(frames))
	m.bytesOut.Add(float64(bytes))
}

func (m *metrics) request(event, result string, d time.Duration) {
	m.requests.WithLabelValues(event, result).Inc()
	if d > 0 {
		m.duration.WithLabelValues(event).Observe(d.Seconds())
	}
}
