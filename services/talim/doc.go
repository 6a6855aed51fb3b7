// Package talim is the developer binary's library: StartStack runs the whole system
// in one process — an embedded NATS server, an embedded FerretDB (SQLite, or
// PostgreSQL for volume) and the edge, chat, notification and presence services —
// wired exactly as in production: over NATS and the MongoDB driver, nothing mocked.
// `talim dev` and the end-to-end tests both use it.
package talim
