// Package e2e holds end-to-end tests: the whole system started by talim.StartStack
// (embedded NATS and FerretDB, every service) and driven through real WebSocket
// connections to the edge and real gRPC connections to the internal APIs.
package e2e
