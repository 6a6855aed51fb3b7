// Package edge is the stateless WebSocket gateway: it authenticates clients, speaks
// the native JSON protocol (docs/protocol.md "Connecting", "Frames", "Limits",
// "Server shutdown") and Socket.IO v4 (docs/protocol.md "Socket.IO clients",
// docs/socketio.md), forwards client events over NATS to the owning services and
// delivers the per-user outbound events back to the user's connections.
//
// Files by concept:
//
//   - edge.go: Config (env TALIM_EDGE_*), New, Run, Ready, Addr, AdminAddr.
//   - upstreams.go: the start-up gate: the port opens once NATS is connected and the
//     services answer their health requests ready.
//   - listen.go: the listener (SO_REUSEPORT when configured).
//   - server.go: HTTP mux (/ws, /socket.io/, /, /healthz, /readyz, /dev/tokens),
//     refusals before the upgrade (401/403/429/503 with a JSON body), authentication.
//   - protocol.go: the Protocol interface (decode inbound, encode outbound) and the
//     native implementation on top of internal/envelope.
//   - socketio.go, socketio_conn.go: the Socket.IO implementation and its handshake
//     on top of internal/sio.
//   - conn.go: a session: writer (internal/writer), token timer, typed disconnects
//     (disconnect.go, codes from pkg/protocol), room and watch sets, abuse counters.
//   - read.go: the read path: idle connections wait in internal/netpoll without a
//     goroutine, frames are decoded by internal/wsio.
//   - pingwheel.go: server pings and idle closes of native connections from one
//     goroutine.
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
