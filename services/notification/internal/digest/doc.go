// Package digest sends email digests: per user, at most every N hours, the unread
// notifications of the inbox and the direct rooms with unread messages (asked of
// chat over NATS), through SMTP with a plain-text and an HTML part and a one-click
// unsubscribe link (RFC 8058) served by Handler (docs/notifications-admin.md,
// docs/operations.md "Email digests").
//
// Scheduling is durable and safe with several instances: one document per user in
// `digest_schedule` (_id = user id) carries the due time, an hour bucket `slot`
// (due time in whole hours since the epoch) that instances poll with equality
// reads, a version number, and a lease. An instance claims a due user by bumping
// the version it read (compare-and-set on {_id, ver}); only the holder of the
// current version may write. Before the SMTP transaction the digest id and cut-off
// are recorded as pending; after it the cut-off becomes the user's `since`. A
// digest left pending by a crashed instance is treated as sent, never sent again:
// delivery is at most once.
package digest
