// Package chat is the chat service: rooms, memberships and durable, ordered
// messages (docs/protocol.md, "Chat"), served to edges over NATS (talim.cmd.v1.chat.<event>,
// queue group "chat") and to internal services through the ChatAdminService gRPC
// API (RegisterGRPC, or an own listener on Config.GRPCAddr).
//
// # Layout
//
//	internal/store     MongoDB/FerretDB persistence: rooms, memberships, messages, indexes
//	internal/pipeline  Sequencer (group commit, gap-free seq, idempotency) and Fanout
//	                   (per-room ordered, bounded asynchronous publishing)
//	internal/roster    per-instance room/member cache, invalidated over NATS
//	internal/core      domain: access rules, admin operations, events; also the NATS
//	                   handlers of the client events (commands.go, Core.Register) and
//	                   of talim.chat.v1.shared-rooms (Core.ServeSharedRooms)
//	internal/grpcapi   ChatAdminService over core (validation, status mapping)
//
// notification and presence have the same layers under the same names
// (docs/architecture.md "The services' packages side by side").
//
// # Guarantees
//
// Seq: per room, seq starts at 1 and grows by exactly 1 per stored message with no
// gap or duplicate, with any number of instances on one store. The insert is the
// allocation: a message is inserted with seq = known max + 1 under the unique index
// {roomId, seq}; a writer only ever inserts s after seeing s-1 stored, messages are
// never removed (deletes are tombstones), and an ordered InsertMany stores a prefix
// of its batch. So there is nothing to reserve and lose on a crash. A lost race
// (another instance took the seq) is a duplicate-key error; the writer re-reads the
// max and retries the rest of its batch. Details in package pipeline.
//
// Idempotency: the message _id is derived from (roomId, senderId, clientMsgId) and
// {roomId, senderId, clientMsgId} is unique, so a retry — on any instance, or racing
// the original — stores nothing and returns the original message. Acks are sent
// only after the insert returned; fan-out (chat-message to joined connections,
// room-updated to the other connections of every member) runs afterwards on the
// Fanout, never delaying acks or other rooms.
//
// Throughput: sends of all rooms are group-committed together. Rooms are spread
// by hash over a few writer lanes (pipeline.DefaultLanes) so a room is in at most
// one batch in flight per instance; each lane takes every send queued while its
// previous insert was in flight (no timer, up to 256) and stores them with ONE
// ordered InsertMany sorted by room (gap-free rules in package pipeline). Acks
// wait for that insert only. The room summaries (lastSeq, lastMessage,
// lastActivityAt; never moved back) and the senders' read markers ($max) are
// written behind by one summary writer per instance, coalesced per room and per
// (room, sender), in bulk updates of at most 16 statements, read markers before
// summaries. Until written, this instance answers them from memory (join,
// list-rooms, mark-message-read, GetRoom, ListMembers), so its reads never go
// back; other instances may show a room's summary or a sender's marker late by
// the writer's lag, never a sender's own message as unread (markers first). In
// steady state a send costs no store read (member cache refreshed ahead of its
// TTL, next seq cached) and a share of one insert command.
//
// # Decisions
//
//   - Roles: posting needs a membership role other than readonly; in announcement
//     rooms only the owner and teacher roles post. Deleting: the sender, members
//     with the owner or teacher role, and members whose token roles contain
//     "teacher" (a teacher by token must still be a member of the room). Editing:
//     the sender only, not after deletion. Archived rooms accept no sends, edits,
//     deletes or typing (forbidden) but can be joined and read.
//   - Joining an open room makes the user a member (role member) and sends them
//     room-membership "added". History, read markers and typing need membership.
//   - Unread = room lastSeq − lastReadSeq; a sender's own message moves their read
//     marker (no message-read event for that). mark-message-read clamps to the
//     room's lastSeq and only moves forward; message-read is broadcast only when it
//     moved.
//   - Role changes through AddMembers are announced as room-membership "added" with
//     the new role.
//   - list-rooms reads the user's memberships (index {userId, roomId}) and their
//     rooms by _id, and sorts by the room's lastActivityAt in memory. Activity is
//     NOT denormalised into memberships: that would cost one write per member per
//     message (2,000 writes per message in a class room).
//   - Direct rooms have id "dm:" + hex(sha256(sorted ids)[:16]); concurrent
//     open-direct-room calls converge on that _id; both users are members (role
//     member) and get room-membership "added" when first added.
//   - Typing: at most one event per second per (user, room) per instance is
//     forwarded to the other members' joined connections (never to the sender);
//     a suppressed change of state (e.g. stop right after start) is forwarded when
//     the second ends. With N instances the bound is N per second.
//   - Message types: clients may send lower-case words (default "text");
//     "system" is reserved for ChatAdminService.PostMessage, which requires an
//     idempotency key (1..64 characters, used as clientMsgId).
//   - Store unreachable: errors wrap store.ErrUnavailable, mapped by the handler layers (clients get
//     unavailable; gRPC callers codes.Unavailable). A send that times out during its
//     insert may be stored although the client saw unavailable; its retry with the
//     same clientMsgId returns it.
//   - Removal: the removing instance drops its member cache, publishes
//     MembershipChanged, then sends the user an Outbound with control.remove_rooms
//     and room-membership "removed". Other instances stop fanning out to the user
//     when the invalidation arrives (sub-millisecond on one NATS server); in that
//     window the edge has already removed the room from the user's connections, so
//     at most a room-updated badge can still arrive.
//
// # FerretDB v1.24.2 notes
//
// Verified against the embedded FerretDB (SQLite) by the tests: unique compound
// indexes, ordered InsertMany stopping at the first duplicate (with its index),
// findAndModify with $inc/$set and ReturnDocument After, $max, findOneAndDelete,
// $in, sort+limit. Quirks: an update command keeps one pooled PostgreSQL connection
// per statement until it ends and needs one more per statement for its
// transaction, so many concurrent updates (or one with 50 statements) exhaust the
// 50-connection pool and hang FerretDB for good: the service sends few update
// statements per command and one such command at a time; duplicate-key messages do not name the index (we
// classify with a point read); concurrent index/collection creation in fresh
// databases can drop the connection (start-up retries EnsureIndexes); every query
// that is not on _id scans the collection with the SQLite backend (member sets, and
// each bucket read of history), so large data needs FerretDB over PostgreSQL (talim
// dev's default) or MongoDB. Over PostgreSQL, FerretDB pushes plain equality down
// as jsonb containment, which its own btree indexes cannot serve: talim dev's
// PostgreSQL gets a GIN twin of each (pkg/devstack/postgres_gin.go). Ranges and
// sorts are evaluated in Go over everything the equality part matched, so history
// reads {roomId, bucket} groups (internal/store/history.go), never a range.
package chat
