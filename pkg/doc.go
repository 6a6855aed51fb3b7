// Package pkg is the root of Talim Realtime's shared libraries. Each sub-package is
// small and dependency-injected: config, logging, NATS and MongoDB helpers, the admin
// HTTP server, JWT verification, subject naming, the NATS command server every
// service uses, gRPC server helpers and process lifecycle.
package pkg
