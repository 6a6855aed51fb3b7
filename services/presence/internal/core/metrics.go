package core

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/talim/realtime/services/presence/internal/state"
	"github.com/talim/realtime/services/presence/internal/watch"
)

type metrics struct {
	published      *prometheus.CounterVec
	writesDropped  prometheus.Counter
	visibilityErrs prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, t *state.Tracker, w *watch.Sets) *metrics {
	m := &metrics{
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "talim", Subsystem: "presence", Name: "events_published_total",
			Help: "StatusChange events published, by status.",
		}, []string{"status"}),
		writesDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "talim", Subsystem: "presence", Name: "lastseen_writes_dropped_total",
			Help: "lastSeenAt writes dropped because the write queue was full.",
		}),
		visibilityErrs: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "talim", Subsystem: "presence", Name: "visibility_errors_total",
			Help: "Shared-rooms requests to chat that failed (answered as unknown).",
		}),
	}
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "talim", Subsystem: "presence", Name: name, Help: help}, f)
	}
	reg.MustRegister(m.published, m.writesDropped, m.visibilityErrs,
		gauge("online_users", "Users with at least one live connection (or in their grace period).",
			func() float64 { return float64(t.Stats().OnlineUsers) }),
		gauge("connections", "Connections tracked across all edges.",
			func() float64 { return float64(t.Stats().Connections) }),
		gauge("edges", "Edges tracked (heard from within two heartbeat intervals).",
			func() float64 { return float64(t.Stats().Edges) }),
		gauge("subscriptions", "Presence subscriptions (connection, user) held.",
			func() float64 { return float64(w.Total()) }),
	)
	return m
}
