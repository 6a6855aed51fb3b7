// Package pipeline turns client sends into stored, sequenced messages and delivers
// what was stored: the Sequencer (group commit, seq allocation, idempotency) and
// the Fanout (per-room ordered, bounded asynchronous publishing).
//
// # Seq allocation: the insert is the allocation
//
// Every message document carries (roomId, seq) under a unique index. A writer picks
// seq = (highest seq it knows for the room) + 1 and inserts; the unique index
// decides. There is no separate counter to reserve from, so nothing can be reserved
// and then lost: a crash before, during or after an insert leaves either no document
// or a stored one, never a hole. The guarantee, with any number of instances on
// one store:
//
//   - seqs of a room are unique (unique index {roomId, seq});
//   - they are contiguous from 1: a writer only inserts seq s after it observed
//     seq s-1 stored (it read the room's max seq, or it stored s-1 itself, and
//     messages are never deleted — deletes are tombstones), and an ordered
//     InsertMany stores a prefix of its batch, so a batch never skips a failed seq;
//   - every acknowledged message is stored exactly once: the ack is sent only after
//     the insert succeeded, and the deterministic _id (derived from roomId, senderId,
//     clientMsgId) plus the unique index {roomId, senderId, clientMsgId} make a retry
//     or a racing duplicate resolve to the original document.
//
// One writer goroutine per room per instance collects every send queued for the
// room while its previous insert was in flight (group commit without a timer: an
// idle room writes at once, a busy room writes up to MaxBatch messages per round
// trip). The next seq is cached per room; when another instance took a seq the
// insert fails with a duplicate key, the writer tells the two duplicate kinds apart
// with a point read of the message _id (FerretDB does not name the violated index),
// re-reads the room's max seq and retries the rest of the batch.
//
// A send whose command deadline expires while queued is dropped before its insert
// (nothing stored, client gets unavailable). A send whose deadline expires during
// its insert may still be stored although the client saw unavailable; its retry
// with the same clientMsgId returns that message — never a second copy.
//
// Ordering: messages of a room are handed to the Fanout in seq order per instance;
// with several instances writing one room live delivery may interleave out of seq
// order (live delivery is at-most-once; clients fill gaps by seq from history).
package pipeline
