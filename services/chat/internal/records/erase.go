package records

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	pkgrecords "github.com/talim/realtime/pkg/records"
	"github.com/talim/realtime/services/chat/internal/audit"
	"github.com/talim/realtime/services/chat/internal/store"
)

// Kept is data erasure did not remove, and why.
type Kept struct {
	What  string
	Where string
	Count int64
	Why   string
}

// Erasure is what EraseUser did.
type Erasure struct {
	Removed  map[string]int64
	Kept     []Kept
	AuditSeq int64
}

// EraseUser removes userID's personal data (docs/safeguarding.md, "Erasure"):
// the content and display name of every message they sent (the tombstone and
// seq stay, so others' history has no gap), the kept versions of those
// messages, their memberships and read markers, and, through the services that
// own them, their notifications and presence. A legal hold on the user keeps
// everything; a hold on a room keeps their messages and membership there. The
// audit log is kept (it is append-only and holds ids and reasons, never
// message content). Audited before anything is removed.
func (r *Records) EraseUser(ctx context.Context, a Actor, userID, reason string) (Erasure, error) {
	if err := checkActor(a); err != nil {
		return Erasure{}, err
	}
	if err := checkID("user_id", userID); err != nil {
		return Erasure{}, err
	}
	reason, err := checkReason(reason)
	if err != nil {
		return Erasure{}, err
	}
	out := Erasure{Removed: map[string]int64{}}
	hold, err := r.o.Store.Held(ctx, store.HoldUser, userID)
	if err != nil {
		return out, err
	}
	detail := map[string]string{}
	if hold != nil {
		detail["heldBy"] = "user"
	}
	if out.AuditSeq, err = r.audit(ctx, audit.Entry{Kind: "erase.user", Actor: a.UserID, Reason: reason, Target: userID, Detail: detail}); err != nil {
		return out, err
	}
	auditKept := Kept{What: "audit", Why: "the audit log is append-only; its entries name users by id and hold no message content"}
	if hold != nil {
		out.Kept = []Kept{{What: "everything", Why: "legal hold on user " + userID + ": " + hold.Reason}, auditKept}
		return out, nil
	}
	mems, err := r.o.Store.UserMemberships(ctx, userID)
	if err != nil {
		return out, fmt.Errorf("erase user: %w", err)
	}
	rooms := make([]string, 0, len(mems))
	member := map[string]bool{}
	for _, m := range mems {
		rooms = append(rooms, m.RoomID)
		member[m.RoomID] = true
	}
	sent, err := r.o.Store.SenderRooms(ctx, userID)
	if err != nil {
		return out, fmt.Errorf("erase user: %w", err)
	}
	rooms = append(rooms, sent...)
	slices.Sort(rooms)
	rooms = slices.Compact(rooms)
	for _, room := range rooms {
		roomHold, err := r.o.Store.Held(ctx, store.HoldRoom, room)
		if err != nil {
			return out, err
		}
		if roomHold != nil {
			n, err := r.countSent(ctx, userID, room)
			if err != nil {
				return out, err
			}
			why := "legal hold on room " + room + ": " + roomHold.Reason
			if n > 0 {
				out.Kept = append(out.Kept, Kept{What: "messages", Where: room, Count: n, Why: why})
			}
			if member[room] {
				out.Kept = append(out.Kept, Kept{What: "memberships", Where: room, Count: 1, Why: why})
			}
			continue
		}
		if err := r.eraseSent(ctx, userID, room, out.Removed); err != nil {
			return out, err
		}
		if member[room] {
			n, err := r.o.Members.RemoveMembers(ctx, room, []string{userID})
			if err != nil {
				return out, fmt.Errorf("erase user: %w", err)
			}
			out.Removed["memberships"] += n
		}
	}
	for _, svc := range otherOwners {
		removed, err := pkgrecords.Erase(ctx, r.o.NC, svc, userID)
		for k, v := range removed {
			out.Removed[k] += v
		}
		if err != nil {
			return out, fmt.Errorf("erase user: %w", err)
		}
	}
	out.Kept = append(out.Kept, auditKept)
	// The outcome, for the record.
	res := map[string]string{}
	for k, v := range out.Removed {
		res["removed."+k] = strconv.FormatInt(v, 10)
	}
	for i, k := range out.Kept {
		res["kept."+strconv.Itoa(i)] = k.What + " " + k.Where + ": " + k.Why
	}
	if _, err := r.audit(ctx, audit.Entry{Kind: "erase.user.done", Actor: a.UserID, Target: userID, Detail: res}); err != nil {
		return out, err
	}
	return out, nil
}

func (r *Records) eraseSent(ctx context.Context, userID, room string, removed map[string]int64) error {
	var after int64
	for {
		msgs, err := r.o.Store.SenderMessages(ctx, userID, room, after, r.o.Batch)
		if err != nil {
			return fmt.Errorf("erase user: %w", err)
		}
		for _, m := range msgs {
			after = m.Seq
			if m.Redacted == store.RedactedErasure {
				continue
			}
			if err := r.limiter.Wait(ctx); err != nil {
				return fmt.Errorf("erase user: %w", err)
			}
			tomb, revs, err := r.o.Store.Redact(ctx, m, store.RedactedErasure)
			if err != nil {
				return fmt.Errorf("erase user: %w", err)
			}
			if tomb == nil {
				return fmt.Errorf("erase user: message %s changed during erasure; run it again", m.ID)
			}
			removed["messages"]++
			removed["revisions"] += revs
		}
		if len(msgs) < r.o.Batch {
			return nil
		}
	}
}

func (r *Records) countSent(ctx context.Context, userID, room string) (int64, error) {
	var after, n int64
	for {
		msgs, err := r.o.Store.SenderMessages(ctx, userID, room, after, r.o.Batch)
		if err != nil {
			return n, fmt.Errorf("erase user: %w", err)
		}
		for _, m := range msgs {
			after = m.Seq
			if m.Redacted != store.RedactedErasure {
				n++
			}
		}
		if len(msgs) < r.o.Batch {
			return n, nil
		}
	}
}
