package records

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/talim/realtime/services/chat/internal/audit"
	"github.com/talim/realtime/services/chat/internal/core"
	"github.com/talim/realtime/services/chat/internal/store"
)

// OversightQuery is an oversight read of a room's history.
type OversightQuery struct {
	Actor  Actor
	RoomID string
	Reason string
	// Before pages backwards from this seq (exclusive); 0: the newest page.
	Before int64
	// Limit is the page size (0: core.DefaultPageLimit; at most core.MaxPageLimit).
	Limit int
}

// OversightPage is a page of a room's history as a safeguarding lead sees it.
type OversightPage struct {
	RoomID   string            `json:"roomId"`
	Messages []json.RawMessage `json:"messages"`
	HasMore  bool              `json:"hasMore"`
	AuditSeq int64             `json:"auditSeq"`
}

// ReadRoomHistory is the oversight read (docs/safeguarding.md, "Oversight"): any
// room, edited originals and deleted texts included. The actor must be a
// safeguarding lead and give a reason; the read is audited before any message
// is read, so no read goes unrecorded.
func (r *Records) ReadRoomHistory(ctx context.Context, q OversightQuery) (OversightPage, error) {
	if err := checkActor(q.Actor); err != nil {
		return OversightPage{}, err
	}
	if err := checkID("roomId", q.RoomID); err != nil {
		return OversightPage{}, err
	}
	reason, err := checkReason(q.Reason)
	if err != nil {
		return OversightPage{}, err
	}
	if q.Before < 0 {
		return OversightPage{}, invalid("beforeSeq", "must be >= 1")
	}
	limit := q.Limit
	switch {
	case limit < 0:
		return OversightPage{}, invalid("limit", "must be at least 1")
	case limit == 0:
		limit = core.DefaultPageLimit
	}
	limit = min(limit, core.MaxPageLimit)
	if !q.Actor.Lead() {
		return OversightPage{}, fmt.Errorf("%w: only a safeguarding lead may read a room's full history", ErrForbidden)
	}
	if _, err := r.o.Store.Room(ctx, q.RoomID); err != nil {
		return OversightPage{}, fmt.Errorf("oversight read: %w", err)
	}
	seq, err := r.audit(ctx, audit.Entry{Kind: "oversight.read", Actor: q.Actor.UserID, Reason: reason, Target: q.RoomID,
		Detail: map[string]string{"beforeSeq": strconv.FormatInt(q.Before, 10), "limit": strconv.Itoa(limit)}})
	if err != nil {
		return OversightPage{}, err
	}
	msgs, more, err := r.o.Store.KeptHistory(ctx, q.RoomID, q.Before, limit)
	if err != nil {
		return OversightPage{}, fmt.Errorf("oversight read: %w", err)
	}
	page := OversightPage{RoomID: q.RoomID, HasMore: more, AuditSeq: seq, Messages: make([]json.RawMessage, 0, len(msgs))}
	for _, m := range msgs {
		b, err := r.keptJSON(ctx, m)
		if err != nil {
			return OversightPage{}, err
		}
		page.Messages = append(page.Messages, b)
	}
	return page, nil
}

// keptJSON is the protocol's message object plus "versions" (the earlier
// versions, oldest first) and "redacted" when retention or erasure removed it.
func (r *Records) keptJSON(ctx context.Context, m store.Kept) (json.RawMessage, error) {
	versions, err := r.o.Store.Revisions(ctx, m.ID, m.Rev)
	if err != nil {
		return nil, fmt.Errorf("oversight read: %w", err)
	}
	type version struct {
		Version    int64   `json:"version"`
		Content    string  `json:"content"`
		SenderName string  `json:"senderName"`
		EditedAt   *string `json:"editedAt"`
		Change     string  `json:"change"`
		ReplacedAt string  `json:"replacedAt"`
		ReplacedBy string  `json:"replacedBy"`
	}
	vs := make([]version, len(versions))
	for i, v := range versions {
		vs[i] = version{Version: v.Rev, Content: v.Content, SenderName: v.SenderName, Change: v.Change,
			ReplacedAt: store.FormatTime(v.ReplacedAt), ReplacedBy: v.ReplacedBy}
		if v.EditedAt != nil {
			s := store.FormatTime(*v.EditedAt)
			vs[i].EditedAt = &s
		}
	}
	base, err := json.Marshal(m.Message)
	if err != nil {
		return nil, fmt.Errorf("encode message %s: %w", m.ID, err)
	}
	extra, err := json.Marshal(struct {
		Versions []version `json:"versions"`
		Redacted string    `json:"redacted,omitempty"`
	}{vs, m.Redacted})
	if err != nil {
		return nil, fmt.Errorf("encode message %s: %w", m.ID, err)
	}
	// Splice: {...message..., "versions":[...], "redacted":...}
	out := make([]byte, 0, len(base)+len(extra))
	out = append(out, base[:len(base)-1]...)
	out = append(out, ',')
	out = append(out, extra[1:]...)
	return out, nil
}
