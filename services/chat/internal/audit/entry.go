// Package audit is the safeguarding audit log: an append-only record of every
// oversight read, policy change, release of a held message and export
// (docs/safeguarding.md). Entries are hash-chained: each carries the hash of the
// previous one, so a removed, changed or reordered entry is detected by
// `talim audit verify`.
package audit

import "context"

// Entry is one audited action, as its author describes it. The log adds the
// sequence number, the time and the chain hashes.
type Entry struct {
	// Kind names the action, e.g. "policy.changed", "message.released",
	// "oversight.read", "export.user", "erase.user".
	Kind string
	// Actor is who did it: a user id, or "service:<name>" for a backend caller.
	Actor string
	// Reason is the reason the actor gave (required for oversight reads).
	Reason string
	// Target is what it was done to: a room id, user id or message id.
	Target string
	// Detail holds further facts worth keeping (small; no message content).
	Detail map[string]string
}

// Appender writes entries. Consumers depend on this interface; the log in this
// package implements it. Append returns the entry's sequence number.
type Appender interface {
	Append(ctx context.Context, e Entry) (int64, error)
}
