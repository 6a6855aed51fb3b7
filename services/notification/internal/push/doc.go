// Package push delivers Web Push messages to users who are not connected
// (docs/protocol.md "Web Push"). It owns three MongoDB collections:
//
//   - push_subscriptions: one document per user (_id = user id) holding at most
//     MaxSubscriptionsPerUser browser subscriptions; every read is an _id point read.
//   - push_endpoints: _id = hash of an endpoint, the user who owns it, so an endpoint
//     registered by a second user (a shared computer) leaves the first user's list.
//   - push_jobs: the durable queue. A "fanout" job (one insert on the Send path)
//     names recipients and content; the worker asks presence who is offline and turns
//     it into one "deliver" job per (subscription, topic). A deliver job collapses
//     bursts: further pushes for the same topic add to its count and replace its
//     content, and after a push the next waits CollapseInterval.
//
// Claiming: workers find pending jobs with the equality filter {pending: true}
// (FerretDB pushes only _id and equality filters down) and claim one by inserting
// the unique _id "<job>@<version>" into push_claims (of two inserts exactly one
// succeeds; FerretDB v1 does not make conditional updates atomic), then set a lease. A worker that dies leaves a lease that expires, and the job is sent
// again (at least once; the Topic header lets the push service replace a duplicate).
//
// Before a push is sent the Gate decides whether and when (quiet hours, preferences);
// 404 and 410 answers delete the subscription, 429 and 5xx are retried with
// exponential backoff or the Retry-After the push service gave.
package push
