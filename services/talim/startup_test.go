package talim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/talim/realtime/pkg/auth"
	"github.com/talim/realtime/services/edge/edgetest"
)

// TestStack_JoinTheMomentThePortOpens is the start-up race of issue 15: a client
// dials the edge's address in a tight loop while the stack starts, and the first
// connection that the port accepts must join a seeded room. Before the edge opened
// last, that join was answered `unavailable` or `not_found`. Each round boots a fresh
// stack with a fresh data directory, so the seed has to happen every time.
func TestStack_JoinTheMomentThePortOpens(t *testing.T) {
	rounds := 4
	if testing.Short() {
		rounds = 1
	}
	const secret = "startup-race-secret-0123456789"
	tok, err := auth.SignHS256(secret, auth.Claims{UserID: "s1", Name: "Bilal", Roles: []string{"student"}, ExpiresAt: time.Now().Add(time.Hour)}, "", "")
	if err != nil {
		t.Fatal(err)
	}
	for round := range rounds {
		addr := reservePort(t)
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		joined := make(chan error, 1)
		go func() { joined <- dialAndJoin(ctx, "ws://"+addr+"/ws", tok) }()
		st, err := StartStack(ctx, StackConfig{DataDir: t.TempDir(), EdgeAddr: addr, JWTSecret: secret, Seed: true})
		if err != nil {
			cancel()
			<-joined
			t.Fatalf("round %d: StartStack: %v", round, err)
		}
		err = <-joined
		cancel()
		if cerr := st.Close(); cerr != nil {
			t.Errorf("round %d: Close: %v", round, cerr)
		}
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
	}
}

// reservePort returns a loopback address with a kernel-chosen port that is free now.
func reservePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// dialAndJoin dials until the port accepts (connection refused is retried at once),
// then joins room-123 on that first connection.
func dialAndJoin(ctx context.Context, wsURL, token string) error {
	for {
		c, err := edgetest.DialContext(ctx, wsURL, token)
		if errors.Is(err, syscall.ECONNREFUSED) {
			select {
			case <-ctx.Done():
				return fmt.Errorf("port never opened: %w", ctx.Err())
			case <-time.After(time.Millisecond): // a retry interval, not a synchronisation
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("first connection refused: %w", err)
		}
		defer c.Close()
		if _, perr := c.Request("join-chat-room", map[string]string{"roomId": "room-123"}); perr != nil {
			return fmt.Errorf("join on the first connection: %v", perr)
		}
		return nil
	}
}
