// Package core is the notification domain: validating and executing sends
// (idempotently, in bounded bulk writes), live delivery on the per-user NATS
// subjects, the inbox operations (list, mark read, acknowledge, unread count, ack
// status) and the expiry cleanup loop. Its API takes and returns plain Go types:
// package handler serves it as the client events of docs/protocol.md
// "Notifications", package grpcapi as NotificationService
// (proto/talim/notification/v1).
//
// Idempotency. A Send first inserts a `sends` document whose _id is the idempotency
// key and which holds the whole request; the unique _id decides which of two racing
// calls creates the send. Notification ids are deterministic, "n_" + hash(key,
// recipient), and the send id is "s_" + hash(key). A caller that finds the key
// already used returns the original send id with duplicate=true, but first, when
// the stored send is not marked complete (its first writer crashed or is still
// writing), it writes the stored request's notifications again: ids that exist are
// duplicate-key no-ops, so exactly one document per recipient ever exists. Each
// notification is delivered live by the one caller whose insert created it.
package core
