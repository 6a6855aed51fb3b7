// Package webhook delivers Talim events to the school's backend as Standard
// Webhooks (docs/webhooks.md): signing and verification (sign.go), event envelopes
// with stable ids (event.go), subscriptions, a durable outbox and dead-letter list
// in MongoDB (store.go), the producer API services call before they acknowledge
// (producer.go), the multi-instance dispatcher with exponential backoff and jitter
// (dispatcher.go) and the WebhookService gRPC API (grpc.go).
//
// # Order guarantee
//
// For one subscription, entries are attempted strictly in outbox order (their seq,
// allocated from one counter when the producer writes them) and one at a time: an
// entry is attempted only when no entry with a lower seq of the same subscription
// is pending. A failing entry blocks its subscription until it succeeds or is
// dead-lettered; other subscriptions are not affected. If event B is produced after
// Publish of event A returned (A happens-before B), B's seq is higher and B's entry
// is written after A's is visible, so B is never delivered before A's first
// successful delivery or its dead-lettering. Events produced concurrently have no
// defined order between them. Delivery is at least once: a receiver de-duplicates
// by the webhook-id header, which is stable across retries.
//
// # Multi-instance
//
// Every dispatcher instance polls the subscriptions; one instance at a time holds
// a subscription's lease (a webhook_leases document updated by _id and version,
// compare-and-swap with equality filters only) and delivers its entries. Pending
// entries are read with the equality filter {sub: id}; delivered entries are
// deleted, so the outbox holds only what is still due (FerretDB scans non-_id
// filters in Go, so the collection must stay small).
package webhook
