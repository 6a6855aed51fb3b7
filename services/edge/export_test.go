package edge

import (
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// Test hooks for the edge_test package.

// UserSubscriptions reports the per-user NATS subscriptions held by s.
func UserSubscriptions(s *Server) int { return s.hub.subscriptions() }

// PresenceSubscriptions reports the presence-watch subscriptions held by s.
func PresenceSubscriptions(s *Server) int { return s.watch.subscriptions() }

// SlowConsumerCloses reads talim_edge_slow_consumer_closes_total.
func SlowConsumerCloses(s *Server) float64 { return testutil.ToFloat64(s.metrics.slowCloses) }

// ForwardsInFlight reports the command forwards that have not returned.
func ForwardsInFlight(s *Server) int { return s.forwards.Running() }

// SIORecoverySessions reports the disconnected Socket.IO sessions kept for recovery.
func SIORecoverySessions(s *Server) int { return s.sioRecovery.len() }

// AdvanceSIORecoveryClock moves the recovery store's clock forward by d.
func AdvanceSIORecoveryClock(s *Server, d time.Duration) {
	st := s.sioRecovery
	st.mu.Lock()
	prev := st.now
	st.now = func() time.Time { return prev().Add(d) }
	st.mu.Unlock()
}
