package records

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/talim/realtime/services/chat/internal/audit"
	"github.com/talim/realtime/services/chat/internal/store"
)

// RoomTypes are the room types retention can be set for.
var RoomTypes = []string{store.TypeDirect, store.TypeGroup, store.TypeClass, store.TypeAnnouncement, store.TypeOpen}

// MaxRetentionDays bounds a retention rule (100 years).
const MaxRetentionDays = 36500

// SetRetention sets the retention of a room type (days 0: keep for ever). Audited.
func (r *Records) SetRetention(ctx context.Context, a Actor, roomType string, days int, reason string) error {
	if err := checkActor(a); err != nil {
		return err
	}
	valid := false
	for _, t := range RoomTypes {
		valid = valid || t == roomType
	}
	if !valid {
		return invalid("room_type", "must be a room type")
	}
	if days < 0 || days > MaxRetentionDays {
		return invalid("days", "must be 0..%d", MaxRetentionDays)
	}
	reason, err := checkReason(reason)
	if err != nil {
		return err
	}
	if _, err := r.audit(ctx, audit.Entry{Kind: "retention.changed", Actor: a.UserID, Reason: reason, Target: roomType,
		Detail: map[string]string{"days": strconv.Itoa(days)}}); err != nil {
		return err
	}
	return r.o.Store.SetRetention(ctx, store.Retention{RoomType: roomType, Days: days, SetBy: a.UserID, SetAt: store.Now()})
}

// Retention lists the rules.
func (r *Records) Retention(ctx context.Context) ([]store.Retention, error) {
	return r.o.Store.RetentionRules(ctx)
}

// roomsPage bounds the room ids listed per store query.
const roomsPage = 100

// RunRetention runs one pass: for every rule, every room of its type, the
// content of messages older than the rule is removed (the tombstone keeps its
// seq), with their kept versions, unless a legal hold covers the room or the
// sender. Removals are rate-limited (Options.RetentionRate) and every store
// query reads at most Options.Batch messages, so a pass never holds the store
// for long; it stops at ctx's end. Only one pass runs at a time per instance;
// passes of several instances are harmless (each removal is conditional).
//
// Per room, retention_state.through records the seq up to which every message
// is handled, so a pass reads only messages it has not seen. It stops at the
// first message held for its sender: later messages are still removed, but the
// next pass reads again from the held one, so it is removed as soon as the hold
// is released (cost: held messages are re-read each pass while held).
func (r *Records) RunRetention(ctx context.Context) (removed, held int64, err error) {
	r.runMu.Lock()
	defer r.runMu.Unlock()
	rules, err := r.o.Store.RetentionRules(ctx)
	if err != nil {
		return 0, 0, err
	}
	now := r.o.Now()
	userHolds := map[string]bool{} // per pass: holds are few and rarely change
	for _, rule := range rules {
		if rule.Days <= 0 {
			continue
		}
		cutoff := now.Add(-time.Duration(rule.Days) * 24 * time.Hour)
		after := ""
		for {
			ids, err := r.o.Store.RoomIDsOfType(ctx, rule.RoomType, after, roomsPage)
			if err != nil {
				return removed, held, err
			}
			for _, id := range ids {
				n, h, err := r.retainRoom(ctx, id, cutoff, userHolds)
				removed, held = removed+n, held+h
				if err != nil {
					return removed, held, err
				}
			}
			if len(ids) < roomsPage {
				break
			}
			after = ids[len(ids)-1]
		}
	}
	return removed, held, nil
}

func (r *Records) retainRoom(ctx context.Context, roomID string, cutoff time.Time, userHolds map[string]bool) (removed, held int64, err error) {
	roomHold, err := r.o.Store.Held(ctx, store.HoldRoom, roomID)
	if err != nil {
		return 0, 0, err
	}
	through, err := r.o.Store.RetainedThrough(ctx, roomID)
	if err != nil {
		return 0, 0, err
	}
	if roomHold != nil {
		// Count what the hold keeps (one page), remove nothing.
		msgs, err := r.o.Store.MessagesAfter(ctx, roomID, through, r.o.Batch)
		if err != nil {
			return 0, 0, err
		}
		for _, m := range msgs {
			if m.CreatedAt.Before(cutoff) && m.Redacted == "" {
				held++
			}
		}
		return 0, held, nil
	}
	after, blocked := through, false
	for {
		msgs, err := r.o.Store.MessagesAfter(ctx, roomID, after, r.o.Batch)
		if err != nil {
			return removed, held, err
		}
		done := len(msgs) < r.o.Batch
		for _, m := range msgs {
			if !m.CreatedAt.Before(cutoff) {
				done = true
				break
			}
			after = m.Seq
			if m.Redacted != "" {
				if !blocked {
					through = m.Seq
				}
				continue
			}
			h, ok := userHolds[m.SenderID]
			if !ok {
				hold, err := r.o.Store.Held(ctx, store.HoldUser, m.SenderID)
				if err != nil {
					return removed, held, err
				}
				h = hold != nil
				userHolds[m.SenderID] = h
			}
			if h {
				held++
				blocked = true
				continue
			}
			if err := r.limiter.Wait(ctx); err != nil {
				return removed, held, fmt.Errorf("retention of %s: %w", roomID, err)
			}
			tomb, _, err := r.o.Store.Redact(ctx, m, store.RedactedRetention)
			if err != nil {
				return removed, held, err
			}
			if tomb != nil {
				removed++
			} else {
				blocked = true // changed meanwhile: look again next pass
				continue
			}
			if !blocked {
				through = m.Seq
			}
		}
		if err := r.o.Store.SetRetainedThrough(ctx, roomID, through); err != nil {
			return removed, held, err
		}
		if done || len(msgs) == 0 {
			return removed, held, nil
		}
		if err := ctx.Err(); err != nil {
			return removed, held, errors.Join(fmt.Errorf("retention of %s", roomID), err)
		}
	}
}
