package records

import (
	"context"

	"github.com/talim/realtime/services/chat/internal/audit"
	"github.com/talim/realtime/services/chat/internal/store"
)

func checkScope(scope string) error {
	if scope != store.HoldRoom && scope != store.HoldUser {
		return invalid("scope", "must be room or user")
	}
	return nil
}

// PlaceHold places a legal hold on a room or a user (scope store.HoldRoom or
// store.HoldUser): while it stands, retention and erasure remove nothing it
// covers. Audited.
func (r *Records) PlaceHold(ctx context.Context, a Actor, scope, target, reason string) (store.Hold, error) {
	if err := checkActor(a); err != nil {
		return store.Hold{}, err
	}
	if err := checkScope(scope); err != nil {
		return store.Hold{}, err
	}
	if err := checkID("id", target); err != nil {
		return store.Hold{}, err
	}
	reason, err := checkReason(reason)
	if err != nil {
		return store.Hold{}, err
	}
	if _, err := r.audit(ctx, audit.Entry{Kind: "hold.placed", Actor: a.UserID, Reason: reason, Target: scope + ":" + target}); err != nil {
		return store.Hold{}, err
	}
	h := store.Hold{Scope: scope, Target: target, Reason: reason, PlacedBy: a.UserID, PlacedAt: store.Now()}
	if err := r.o.Store.PlaceHold(ctx, h); err != nil {
		return store.Hold{}, err
	}
	h.ID = store.HoldID(scope, target)
	return h, nil
}

// ReleaseHold releases a legal hold. Audited.
func (r *Records) ReleaseHold(ctx context.Context, a Actor, scope, target, reason string) (bool, error) {
	if err := checkActor(a); err != nil {
		return false, err
	}
	if err := checkScope(scope); err != nil {
		return false, err
	}
	if err := checkID("id", target); err != nil {
		return false, err
	}
	reason, err := checkReason(reason)
	if err != nil {
		return false, err
	}
	if _, err := r.audit(ctx, audit.Entry{Kind: "hold.released", Actor: a.UserID, Reason: reason, Target: scope + ":" + target}); err != nil {
		return false, err
	}
	return r.o.Store.ReleaseHold(ctx, scope, target)
}

// Holds lists the holds in place.
func (r *Records) Holds(ctx context.Context) ([]store.Hold, error) { return r.o.Store.Holds(ctx) }

// VerifyAudit walks the audit log's chain.
func (r *Records) VerifyAudit(ctx context.Context) (audit.Verdict, error) {
	return r.o.Audit.Verify(ctx)
}
