// Package edge is the stateless WebSocket gateway: it authenticates clients, speaks
// the native JSON protocol (PROTOCOL.md §1, §2, §6, §7; Socket.IO v4 §8 is a second
// Protocol adapter to come), forwards client events over NATS to the owning services
// and delivers the per-user outbound events back to the user's connections.
//
// Files by concept:
//
//   - edge.go: Config (env TALIM_EDGE_*), New, Run, Ready, Addr, AdminAddr.
//   - server.go: HTTP mux (/ws, /, /healthz, /readyz, /dev/tokens), refusals before
//     the upgrade (401/403/429/503 with a JSON body), authentication.
//   - protocol.go: the Protocol interface (decode inbound, encode outbound) and the
//     native implementation on top of internal/envelope.
//   - conn.go: a session: reader goroutine, writer (internal/writer), ping and token
//     timers, typed disconnects (disconnect.go), room and watch sets, abuse counters.
//   - commands.go, routes.go: the event → service table and command forwarding
//     (edgev1.Command over NATS request/reply), auth-refresh and ping.
//   - hub.go, dispatch.go: one NATS subscription per connected user (refcounted by
//     connection slots), delivered on a few shard goroutines with the delivery rule of
//     edge.proto; frames are encoded once per protocol and shared.
//   - presence.go: connection events, heartbeats, presence watches.
//   - limits.go: per-address connect rate, Origin allow-list, trusted proxies.
//   - drain.go: shutdown (readiness first, 503, 1012 spread over the window).
//   - metrics.go: Prometheus series (names are a contract of the deploy alerts).
//
// Lock order: Server.connsMu, hub.mu and watcher.mu are never held together;
// Conn.mu is a leaf. Deliveries copy connection lists before calling into a Conn, so
// a Conn may call back into the hub (e.g. Close → detach) from any goroutine.
package edge
