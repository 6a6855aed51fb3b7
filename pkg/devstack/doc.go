// Package devstack runs the infrastructure that Talim Realtime needs on a
// developer machine or inside tests: an in-process NATS server, an embedded
// FerretDB (MongoDB wire protocol over SQLite or PostgreSQL) and, optionally,
// a private PostgreSQL cluster for FerretDB's PostgreSQL handler.
//
// This package is for the developer binary (`talim dev`) and for tests only.
// It pulls in nats-server, FerretDB and their dependencies and must never be
// imported by production service binaries; it lives in its own Go module
// (github.com/talim/realtime/pkg/devstack) so that the service modules do not
// even see those dependencies in their module graph.
//
// Every Start function takes an options struct whose zero value is usable
// (except for data directories) and an optional *slog.Logger (nil discards
// logs). Nothing in this package keeps global state, so several stacks may
// run in one process, as tests do.
//
// Test helpers built on top of this package live in the testkit subpackage.
package devstack
