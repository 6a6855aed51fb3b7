package edge

import "github.com/prometheus/client_golang/prometheus/testutil"

// Test hooks for the edge_test package.

// UserSubscriptions reports the per-user NATS subscriptions held by s.
func UserSubscriptions(s *Server) int { return s.hub.subscriptions() }

// PresenceSubscriptions reports the presence-watch subscriptions held by s.
func PresenceSubscriptions(s *Server) int { return s.watch.subscriptions() }

// SlowConsumerCloses reads talim_edge_slow_consumer_closes_total.
func SlowConsumerCloses(s *Server) float64 { return testutil.ToFloat64(s.metrics.slowCloses) }

// ForwardsInFlight reports the command forwards that have not returned.
func ForwardsInFlight(s *Server) int { return s.forwards.Running() }
