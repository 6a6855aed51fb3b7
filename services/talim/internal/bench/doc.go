// Package bench is the load generator behind `talim bench`: a coordinator that starts
// (or targets) a Talim Realtime system on loopback, spawns worker processes holding
// lean raw WebSocket connections from their own source addresses (127.0.0.2, …), drives
// a scenario (idle, fanout, rooms, notify, reconnect-storm) on an open-loop schedule,
// and reports one JSON line plus an optional HTML latency chart.
//
// Why several processes: one process here may hold at most 20,000 open files, so each
// worker holds at most MaxConnsPerWorker connections, and the edge under test runs in
// its own process so its RSS and CPU are measured apart from the load.
//
// Accounting: every chat message the bench sends carries the sender's wall-clock time
// (all processes share one machine clock) in its content; receivers track the room
// seqs they saw in a bitset, so loss and duplication are verified by seq: a room's
// stored messages are base+1 … maxSeq (seq has no gaps), every joined connection must
// see each of them exactly once.
//
// Files: coordinator.go runs one scenario (Options, Run), workers.go starts the
// worker processes and talks to them, scenarios.go holds the scenarios' phases,
// progress.go the progress line; worker.go is the worker's side.
//
// Everything is loopback only (CheckLoopback) and bounded in count and time.
package bench
