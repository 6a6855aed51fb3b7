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
// Batching across rooms. Rooms are spread by hash over Lanes writers, so one
// instance never has two batches of a room in flight. A lane collects every send
// queued while its previous insert was in flight (group commit without a timer: an
// idle lane writes at once, a busy one up to MaxBatch messages of any rooms per
// round trip) and stores them with ONE ordered InsertMany, the batch sorted by
// room. The invariant:
//
//   - each room's unstored messages form one contiguous run in the batch, numbered
//     next(room), next(room)+1, …, where next(room) is one above a seq known to be
//     stored (this instance's own insert, rooms.lastSeq, or the max seq read after
//     a conflict; all are at most the true max + 1);
//   - an ordered InsertMany stores a prefix of the batch, hence a prefix of every
//     room's run: a stored seq s always has s-1 stored;
//   - a failure at position k settles only what came before k. A duplicate key is
//     classified with a point read of the message _id: the original exists
//     (idempotent retry: answered with it, dropped from the batch), or another
//     instance took the seq (the room's max seq is read, and the cached next seq
//     of the rooms not reached yet is refreshed from their summaries with one
//     read, as another instance evidently writes them too). The rest of the batch
//     is renumbered per room from next(room) and retried in one insert;
//   - any other error fails every send from k on (their outcome may be unknown:
//     the clients get unavailable and their retries resolve to what was stored)
//     and forgets those rooms' next seqs, so their next batch starts from the
//     store. An unordered insert would not do: seq s failing on a duplicate _id
//     while s+1 succeeds would leave a hole.
//
// Cold rooms (next seq not cached) cost one read of their rooms documents per
// batch (_id $in). Acks wait for the insert only; room summaries and senders'
// read markers go to the summary writer (see summaries in sequencer.go).
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
