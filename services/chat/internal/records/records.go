// Package records is the school's side of safeguarding records (docs/safeguarding.md):
// oversight reads by safeguarding leads, retention per room type, legal holds,
// exports and erasure. Every oversight read, export, erasure and change of
// retention or holds is written to the audit log (package audit) before the
// data is released or removed. It serves RecordsService (records.proto) and the
// client event oversight-room-history (docs/protocol.md, "Safeguarding").
package records

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"golang.org/x/time/rate"

	"github.com/talim/realtime/services/chat/internal/audit"
	"github.com/talim/realtime/services/chat/internal/core"
	"github.com/talim/realtime/services/chat/internal/store"
)

// RoleSafeguarding is the token role of a designated safeguarding lead.
const RoleSafeguarding = "safeguarding"

// MaxReasonRunes bounds a reason.
const MaxReasonRunes = 500

// ErrForbidden means the actor may not do this.
var ErrForbidden = errors.New("forbidden")

// ErrInvalid means a request field is invalid; the error names it.
var ErrInvalid = errors.New("invalid request")

// ErrHeld means a legal hold stops the operation.
var ErrHeld = errors.New("under legal hold")

// Actor is who a call is made for.
type Actor struct {
	UserID string
	Roles  []string
}

// Lead reports whether the actor is a safeguarding lead.
func (a Actor) Lead() bool { return slices.Contains(a.Roles, RoleSafeguarding) }

// MemberRemover removes memberships and tells every chat instance and the
// removed users' connections (core.Core).
type MemberRemover interface {
	RemoveMembers(ctx context.Context, roomID string, userIDs []string) (int64, error)
}

// Options configures Records.
type Options struct {
	Store   *store.Store
	Audit   *audit.Log
	NC      *nats.Conn
	Members MemberRemover
	Logger  *slog.Logger
	// RetentionInterval is how often retention runs (default 1h; < 0: never by itself).
	RetentionInterval time.Duration
	// RetentionRate bounds removals per second (default 200), so a first pass
	// over years of history never competes with live traffic for the store.
	RetentionRate float64
	// Batch bounds the messages read per store query (default 100).
	Batch int
	// Now is the clock (tests).
	Now func() time.Time
}

// Records serves the records operations. Create with New; Close when done.
type Records struct {
	o       Options
	log     *slog.Logger
	limiter *rate.Limiter
	runMu   sync.Mutex // one retention pass at a time per instance
	stop    context.CancelFunc
	done    chan struct{}
}

// New returns Records and starts its retention goroutine (stopped by Close).
func New(o Options) *Records {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.RetentionInterval == 0 {
		o.RetentionInterval = time.Hour
	}
	if o.RetentionRate <= 0 {
		o.RetentionRate = 200
	}
	if o.Batch <= 0 {
		o.Batch = 100
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Records{o: o, log: o.Logger, limiter: rate.NewLimiter(rate.Limit(o.RetentionRate), o.Batch),
		stop: cancel, done: make(chan struct{})}
	go r.loop(ctx)
	return r
}

// Close stops the retention goroutine and waits for it (a running pass stops
// at its next store call).
func (r *Records) Close() {
	r.stop()
	<-r.done
}

func (r *Records) loop(ctx context.Context) {
	defer close(r.done)
	if r.o.RetentionInterval < 0 {
		<-ctx.Done()
		return
	}
	t := time.NewTicker(r.o.RetentionInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			removed, held, err := r.RunRetention(ctx)
			if err != nil && ctx.Err() == nil {
				r.log.Warn("retention pass", "removed", removed, "held", held, "err", err)
			} else if removed > 0 || held > 0 {
				r.log.Info("retention pass", "removed", removed, "held", held)
			}
		}
	}
}

func invalid(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s %s", ErrInvalid, field, fmt.Sprintf(format, args...))
}

// checkReason trims a reason and requires it.
func checkReason(reason string) (string, error) {
	r := strings.TrimSpace(reason)
	switch {
	case r == "":
		return "", invalid("reason", "is required")
	case utf8.RuneCountInString(r) > MaxReasonRunes:
		return "", invalid("reason", "must be at most %d characters", MaxReasonRunes)
	case !utf8.ValidString(r):
		return "", invalid("reason", "must be UTF-8")
	}
	return r, nil
}

func checkID(field, id string) error {
	if !core.ValidID(id) {
		return invalid(field, "must be 1..%d characters of [A-Za-z0-9_-:@.]", core.MaxIDLen)
	}
	return nil
}

func checkActor(a Actor) error {
	if !core.ValidID(a.UserID) {
		return invalid("actor.user_id", "must be a user id")
	}
	return nil
}

// audit appends an entry; the operation does not go ahead without it.
func (r *Records) audit(ctx context.Context, e audit.Entry) (int64, error) {
	seq, err := r.o.Audit.Append(ctx, e)
	if err != nil {
		return 0, fmt.Errorf("audit %s: %w", e.Kind, err)
	}
	return seq, nil
}
