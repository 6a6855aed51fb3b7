// Package mongox connects to MongoDB (or FerretDB) and creates indexes idempotently
// at start. Only operations that both MongoDB and FerretDB v1 support belong here.
package mongox

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"

	"github.com/talim/realtime/pkg/tracing"
)

// Connect opens a client for uri, named appName in server logs, and pings the primary
// within timeout. The driver reconnects by itself afterwards. With tracing on
// (tracing.Enabled at connect time) every command made within a trace is a span.
func Connect(ctx context.Context, uri, appName string, timeout time.Duration) (*mongo.Client, error) {
	opts := options.Client().ApplyURI(uri).SetAppName(appName).
		SetServerSelectionTimeout(timeout).
		SetConnectTimeout(timeout)
	if tracing.Enabled() {
		opts.SetMonitor(traceMonitor())
	}
	client, err := mongo.Connect(opts)
	if err != nil {
		return nil, fmt.Errorf("connect to mongodb: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := client.Ping(pctx, readpref.Primary()); err != nil {
		_ = client.Disconnect(context.Background())
		return nil, fmt.Errorf("ping mongodb: %w", err)
	}
	return client, nil
}

// Ping reports whether the store answers within timeout (for /readyz).
func Ping(ctx context.Context, client *mongo.Client, timeout time.Duration) error {
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := client.Ping(pctx, readpref.Primary()); err != nil {
		return fmt.Errorf("ping mongodb: %w", err)
	}
	return nil
}

// EnsureIndexes creates indexes on coll, one createIndexes command per index.
// Creating an index that already exists with the same definition is a no-op in both
// MongoDB and FerretDB, so this runs at every start. One command per index because
// FerretDB v1.24.2 drops the connection when a single createIndexes re-creates
// several existing indexes (seen at every restart).
func EnsureIndexes(ctx context.Context, coll *mongo.Collection, models ...mongo.IndexModel) error {
	for _, m := range models {
		if _, err := coll.Indexes().CreateOne(ctx, m); err != nil {
			return fmt.Errorf("create index %v on %s: %w", m.Keys, coll.Name(), err)
		}
	}
	return nil
}

// IsDuplicateKey reports whether err is a unique-index violation.
func IsDuplicateKey(err error) bool { return mongo.IsDuplicateKeyError(err) }

// IsUnavailable reports whether err means the store could not be reached (as opposed
// to a rejected operation): network errors, timeouts and server selection failures.
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) || mongo.IsTimeout(err) || mongo.IsNetworkError(err) {
		return true
	}
	var sse mongo.ServerError
	if errors.As(err, &sse) {
		return false
	}
	// The driver's server selection error type lives in an internal package; its
	// message is stable ("server selection error").
	return errors.Is(err, mongo.ErrClientDisconnected) || strings.Contains(err.Error(), "server selection")
}
