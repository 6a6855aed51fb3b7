package core

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the notification service's Prometheus metrics.
type Metrics struct {
	Sends          *prometheus.CounterVec // by result: created, duplicate
	Recipients     prometheus.Counter
	BulkWrite      prometheus.Histogram
	LiveDeliveries prometheus.Counter
	Expired        prometheus.Counter
}

// NewMetrics creates the metrics and registers them on reg (when not nil).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Sends: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "talim", Subsystem: "notification", Name: "sends_total",
			Help: "Send calls by result: created (a new send) or duplicate (idempotency key seen before).",
		}, []string{"result"}),
		Recipients: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "talim", Subsystem: "notification", Name: "recipients_total",
			Help: "Notifications stored (one per recipient of a new send).",
		}),
		BulkWrite: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "talim", Subsystem: "notification", Name: "bulk_write_seconds",
			Help:    "Time of one InsertMany batch of notifications.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		LiveDeliveries: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "talim", Subsystem: "notification", Name: "live_deliveries_total",
			Help: "notification events published to recipients' user subjects.",
		}),
		Expired: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "talim", Subsystem: "notification", Name: "expired_deleted_total",
			Help: "Expired notifications deleted by the cleanup loop.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.Sends, m.Recipients, m.BulkWrite, m.LiveDeliveries, m.Expired)
	}
	return m
}
