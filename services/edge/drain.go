package edge

import (
	"time"
)

// drainTick is the granularity of the spread-out closes.
const drainTick = 10 * time.Millisecond

// drain shuts the gateway down (docs/protocol.md "Server shutdown"): readiness flips unready first, new
// connections are refused with 503, then every connection is closed with 1012, spread
// evenly over DrainWindow (connection i of n at (i+½)·window/n, so a load balancer
// sees the edge unready before anybody is asked to reconnect and clients do not all
// reconnect at once). drain returns once every socket is closed (or after the window
// plus WriteTimeout) and every command forward has returned (at most RequestTimeout
// more).
func (s *Server) drain() {
	s.draining.Store(true)
	s.rt.Admin.SetDraining()
	start := time.Now()
	window := s.cfg.DrainWindow

	s.connsMu.Lock()
	conns := make([]*Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.connsMu.Unlock()
	s.log.Info("draining", "connections", len(conns), "window", window)

	n := len(conns)
	for i, c := range conns {
		at := start.Add(time.Duration((float64(i) + 0.5) / float64(n) * float64(window)))
		if d := time.Until(at); d >= drainTick {
			time.Sleep(d)
		}
		c.Close(DisconnectRestart)
	}
	// Connections that slipped in while the snapshot was taken.
	s.connsMu.Lock()
	for c := range s.conns {
		go c.Close(DisconnectRestart)
	}
	s.connsMu.Unlock()

	done := make(chan struct{})
	go func() { s.connsWG.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Until(start.Add(window + s.cfg.WriteTimeout))):
		s.log.Warn("drain: some sockets did not close in time")
	}
	// Commands still in flight end by their deadline (RequestTimeout); their replies
	// go nowhere now, but they use the NATS connection Run closes next.
	if !s.forwards.Wait(s.cfg.RequestTimeout + time.Second) {
		s.log.Warn("drain: commands still in flight", "count", s.forwards.Running())
	}
	s.log.Info("drained", "took", time.Since(start).Round(time.Millisecond))
}
