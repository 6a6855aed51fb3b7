package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/talim/realtime/services/talim"
)

// newStack starts the whole system for one test on loopback with random ports and a
// temporary data directory, seeded with the demo rooms, and stops it at cleanup.
// configure may adjust the services' configurations (shorter intervals, limits).
func newStack(t testing.TB, configure func(*talim.ServiceConfigs)) *talim.Stack {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st, err := talim.StartStack(ctx, talim.StackConfig{
		DataDir:   t.TempDir(),
		DevMode:   true,
		Seed:      true,
		Configure: configure,
	})
	if err != nil {
		t.Fatalf("start stack: %v", err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("stop stack: %v", err)
		}
	})
	return st
}

// token signs a 1-hour token for one of the demo users or any other user.
func token(t testing.TB, st *talim.Stack, userID string, roles ...string) string {
	t.Helper()
	tok, err := st.Token(userID, "User "+userID, time.Hour, roles...)
	if err != nil {
		t.Fatalf("token: %v", err)
	}
	return tok
}
