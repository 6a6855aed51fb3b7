// Package presence is the presence service: it keeps who is online as soft state
// rebuilt from the edges' connection events and heartbeats, persists lastSeenAt, and
// answers presence subscriptions (docs/protocol.md "Presence").
//
// # Packages
//
// This package wires the service (Config, New, Run). internal/core holds the
// domain logic (applying events, publishing changes, subscriptions, set-status,
// query), internal/handler the NATS side (client commands, talim.presence.v1.query,
// the event loop), internal/store the MongoDB collection; internal/state,
// internal/watch and internal/visibility are the soft state, the subscription sets
// and the visibility rule.
//
// # State
//
// Every replica subscribes, without a queue group, to talim.presence.v1.conn.> and
// talim.presence.v1.heartbeat.> and keeps the same soft state (internal/state):
// edge → connection → user, and per user the number of live connections. Both
// subjects (and the replicas' internal events) feed ONE channel subscription, which
// nats.go fills from the connection's reader in arrival order, so an edge's events
// and heartbeats are applied in the order the edge published them; one goroutine
// applies them and fires timers. A heartbeat replaces the edge's connection list,
// except for connections added, or closed, at or after the heartbeat's at_unix_ms:
// those events are newer than the snapshot and win (an edge may take its snapshot
// before a connect it publishes first). An edge heard from neither by heartbeat nor
// by event for two intervals (the heartbeat's interval_ms, else
// TALIM_PRESENCE_HEARTBEAT) expires with its connections; a stopping heartbeat
// removes the edge at once.
//
// A user is online while any connection on any edge is open. When the last one
// closes, the user stays online for TALIM_PRESENCE_GRACE (5 s) and a reconnect
// within it publishes nothing. For the users of an expired edge the grace counts from
// the last time the edge was heard, so with the defaults (grace 5 s < 2 × 10 s) they
// go offline at the moment of expiry: within two intervals of the edge's death, and
// a client that reconnected to another edge meanwhile never flaps.
//
// Restart: a fresh replica knows nothing; the next heartbeat of each edge (≤ one
// interval) rebuilds it. During a warm-up of two intervals after start, the first
// heartbeat of an edge is adopted silently — those users were online before we
// started and the other replicas (or this one, before its restart) announced them —
// so a restart publishes no duplicate "online" events. After the warm-up an unknown
// edge's heartbeat (an edge back from a partition) is news and is announced.
//
// # Versions and replicas
//
// Every replica publishes every change on talim.presence.v1.changed.<user>; edges
// deliver a change only if its version is newer than the last one they delivered for
// that user. Versions must therefore be identical across replicas, so they are
// computed from data every replica sees identically, never from a replica's clock:
//
//	version = max(eventMs × 1000, previousVersion + 1)
//
// where eventMs is the at_unix_ms of the triggering connection event or heartbeat (a
// connect; the disconnect that started the grace period, not the local moment it
// ended; the last at_unix_ms heard from an expired edge; the time stamped by the
// replica that handled set-status). The same value is the change's lastSeenAt. The
// ×1000 leaves room for the +1 steps that keep versions strictly increasing when
// several changes share a millisecond. Replicas that saw the same events publish the
// same (status, lastSeenAt, version) and the edge keeps one; a restarted replica has
// no previous version, but its next change's eventMs×1000 is almost always larger
// than the old one (time moved on), and a rare mismatch only costs one duplicate or
// one dropped duplicate of a state the client already has. Edge clocks matter only
// as far as they are ordered per user; the max(…, previous+1) keeps versions
// monotonic even when two edges' clocks disagree.
//
// # set-status
//
// Commands go to one replica (queue group "presence"). set-status stores the
// status in MongoDB (so it survives restarts: an invisible user stays invisible
// after reconnecting), applies it locally, publishes the change, and broadcasts
// {origin, userId, status, atUnixMs} on talim.presence.v1.internal.status; the other
// replicas apply it with the same atUnixMs and publish the same version. Status
// events older than the status held are ignored, so arrival order does not matter.
// At start each replica loads the non-default statuses (away, busy, invisible).
// Statuses are chosen, not derived: they persist until the user sets another.
//
// Invisible users are published as offline with lastSeenAt = the moment they went
// invisible; while invisible nothing is published and no lastSeenAt is stored, so
// lastSeenAt does not advance for others.
//
// # lastSeenAt
//
// Stored in the "presence" collection ({_id: userId, lastSeenAt, status, statusAt})
// when a user goes visibly offline, by every replica, with $max (idempotent and
// order-independent), from a background writer so the event loop never waits for the
// store. Offline users stay in memory for a minute (their lastSeenAt answers from
// memory while the write may be in flight); older ones are read from the store when
// a subscription asks for them.
//
// # Subscriptions and the 200 limit
//
// subscribe-presence records the requested ids (visible or not) in the
// connection's set (internal/watch), at most TALIM_PRESENCE_MAX_SUBSCRIPTIONS (200)
// per connection, else bad_request (the protocol's too_large is about frame size);
// over 200 ids in one request is rejected before any lookup. Since commands of one
// connection may reach different replicas, the handling replica changes its own set
// at once and broadcasts the delta on talim.presence.v1.internal.watch; the others
// apply it (their copies converge within a NATS round trip). Sets are forgotten
// when the connection's disconnect event, or its edge's stop or expiry, arrives.
// Limits of this choice, accepted for its simplicity and zero store traffic:
// two subscribe commands of the same connection handled by two replicas within the
// broadcast latency may together exceed the limit, and a restarted replica starts
// with empty sets. The edge also caps watches per connection
// (TALIM_EDGE_MAX_PRESENCE_WATCHES), which bounds both cases. Alternatives rejected:
// a MongoDB document per connection (a store round trip per subscribe and a delete
// per disconnect, by every replica) and routing a connection's commands to one
// replica (the queue group cannot).
//
// # Visibility
//
// TALIM_PRESENCE_VISIBILITY=shared-room (default): a user sees the presence of users
// they share a room with, and always their own. Presence asks chat with a NATS
// request on talim.chat.v1.shared-rooms (chatv1.SharedRoomsRequest/Response) for
// the ids not in its per-viewer cache; answers are cached for
// TALIM_PRESENCE_VISIBILITY_TTL (30 s) and the whole cache is dropped on any
// talim.chat.v1.membership.> event. Chosen over an index maintained by presence
// because chat owns memberships and MembershipChanged carries only the room id:
// an index would have to re-read the room's members from chat (or chat's collection)
// on every event, duplicating chat's data and access rules in a second service. The
// check runs only on subscribe-presence (not per status change: the edge delivers
// changes to the connections it was told to watch), so the request cost is per
// subscription, small next to its one-off nature. When chat does not answer within
// TALIM_PRESENCE_SHARED_ROOMS_TIMEOUT (1 s) the check fails closed: everyone else is
// "unknown" and not watched. Users not visible get status "unknown" and lastSeenAt
// null and are not put into watch_users. TALIM_PRESENCE_VISIBILITY=all shows
// everybody. Known limit: visibility is decided at subscribe time; a user removed
// from the last shared room keeps receiving changes on connections that already
// watch until they resubscribe or reconnect (revoking needs an unwatch directive
// the services can send to edges, e.g. Outbound.control.unwatch_users).
//
// # talim.presence.v1.query
//
// Internal request/reply (queue group "presence"), JSON:
//
//	request  {"userIds":["u1","u2"]}                       (at most 10000)
//	response {"online":["u1"],"statuses":{"u1":"online","u2":"offline"}}
//	         {"online":[],"error":"bad request: ..."}      on invalid input
//
// online lists users with a live connection (or in their grace period) whatever
// their chosen status, invisible included — it is meant for delivery decisions
// such as notification's delivered-live count; statuses is what others see.
//
// # Metrics
//
// talim_presence_online_users, _connections, _edges, _subscriptions (gauges),
// _events_published_total{status}, _lastseen_writes_dropped_total,
// _visibility_errors_total, and the command server's
// talim_presence_command_duration_seconds.
package presence
