// Package store persists rooms, memberships and messages in MongoDB (or FerretDB
// v1). It uses only operations both support: single-document writes, ordered
// InsertMany, findAndModify (update/delete), $max/$set/$inc updates, unique
// (compound) indexes, Find with sort/limit/projection and CountDocuments. No
// transactions and no aggregation pipelines.
//
// Collections:
//
//	rooms        _id = roomId; type, name, archived, lastSeq, lastMessage, lastActivityAt, createdAt
//	memberships  _id = roomId+"|"+userId; roomId, userId, role, lastReadSeq, lastReadAt, joinedAt
//	messages     _id = MessageID(roomId, senderId, clientMsgId) ("m_" + 26 base32 chars);
//	             roomId, seq, senderId, senderName, type, content, clientMsgId, createdAt,
//	             editedAt, deleted, bucket (= seq / BucketSize, see history.go)
//	migrations   _id = name of a finished data migration ("message-buckets")
//
// Indexes (created at every start, idempotently): messages {roomId,seq} unique — the
// seq guard; messages {roomId,senderId,clientMsgId} unique — the idempotency guard
// (the deterministic _id enforces the same thing and makes the duplicate lookup a
// point read); messages {roomId,bucket} — history pages and the highest seq are read
// by equality on it (FerretDB evaluates ranges and sorts in Go over the whole room);
// memberships {roomId,userId} unique (ListMembers, member sets) and
// {userId,roomId} (list-rooms, shared-rooms).
//
// rooms.lastSeq is a denormalised, monotonic hint (set with a conditional update
// after messages are stored); the messages collection is the truth for sequencing.
// See package pipeline for the seq allocation protocol.
//
// Errors: a store that cannot be reached yields errors wrapping
// ErrUnavailable; a missing document yields ErrNotFound; a unique index
// violation on insert yields ErrDuplicate.
package store
