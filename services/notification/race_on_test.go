//go:build race

package notification_test

// raceEnabled: the embedded FerretDB (pure-Go SQLite) is roughly 10x slower under
// the race detector, so large tests shrink.
const raceEnabled = true
