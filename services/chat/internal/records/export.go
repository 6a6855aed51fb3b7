package records

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	pkgrecords "github.com/talim/realtime/pkg/records"
	"github.com/talim/realtime/services/chat/internal/audit"
	"github.com/talim/realtime/services/chat/internal/store"
)

// Services whose data about a user chat collects over NATS (pkg/records).
var otherOwners = []string{"notification", "presence"}

// ExportChunkLines bounds the lines of one streamed chunk.
const ExportChunkLines = 100

// Emit receives the export in chunks of JSON lines.
type Emit func(lines []string) error

// chunker collects lines and emits them ExportChunkLines at a time.
type chunker struct {
	emit  Emit
	lines []string
}

func (c *chunker) add(kind string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", kind, err)
	}
	return c.addRaw(kind, data)
}

func (c *chunker) addRaw(kind string, data json.RawMessage) error {
	b, err := json.Marshal(pkgrecords.Line{Kind: kind, Data: data})
	if err != nil {
		return fmt.Errorf("encode %s: %w", kind, err)
	}
	c.lines = append(c.lines, string(b))
	if len(c.lines) >= ExportChunkLines {
		return c.flush()
	}
	return nil
}

func (c *chunker) flush() error {
	if len(c.lines) == 0 {
		return nil
	}
	err := c.emit(c.lines)
	c.lines = nil
	return err
}

type memberJSON struct {
	RoomID      string  `json:"roomId"`
	UserID      string  `json:"userId"`
	Role        string  `json:"role"`
	LastReadSeq int64   `json:"lastReadSeq"`
	LastReadAt  *string `json:"lastReadAt"`
	JoinedAt    string  `json:"joinedAt"`
}

func memberOut(m store.Member) memberJSON {
	out := memberJSON{RoomID: m.RoomID, UserID: m.UserID, Role: m.Role, LastReadSeq: m.LastReadSeq, JoinedAt: store.FormatTime(m.JoinedAt)}
	if m.LastReadAt != nil {
		s := store.FormatTime(*m.LastReadAt)
		out.LastReadAt = &s
	}
	return out
}

// ExportUser streams everything stored about userID (docs/safeguarding.md,
// "Export"): a header, memberships with read markers, the messages they sent
// in any room (with kept earlier versions), then the notification and presence
// services' records. Audited before anything is read.
func (r *Records) ExportUser(ctx context.Context, a Actor, userID, reason string, emit Emit) error {
	if err := checkActor(a); err != nil {
		return err
	}
	if err := checkID("user_id", userID); err != nil {
		return err
	}
	reason, err := checkReason(reason)
	if err != nil {
		return err
	}
	seq, err := r.audit(ctx, audit.Entry{Kind: "export.user", Actor: a.UserID, Reason: reason, Target: userID})
	if err != nil {
		return err
	}
	c := &chunker{emit: emit}
	if err := c.add("export", map[string]any{"userId": userID, "exportedAt": store.FormatTime(time.Now()),
		"exportedBy": a.UserID, "reason": reason, "auditSeq": seq}); err != nil {
		return err
	}
	mems, err := r.o.Store.UserMemberships(ctx, userID)
	if err != nil {
		return fmt.Errorf("export user: %w", err)
	}
	rooms := make([]string, 0, len(mems))
	for _, m := range mems {
		rooms = append(rooms, m.RoomID)
		if err := c.add("membership", memberOut(m)); err != nil {
			return err
		}
	}
	sent, err := r.o.Store.SenderRooms(ctx, userID)
	if err != nil {
		return fmt.Errorf("export user: %w", err)
	}
	rooms = append(rooms, sent...)
	slices.Sort(rooms)
	rooms = slices.Compact(rooms)
	for _, room := range rooms {
		if err := r.exportSent(ctx, c, userID, room); err != nil {
			return err
		}
	}
	for _, svc := range otherOwners {
		err := pkgrecords.Export(ctx, r.o.NC, svc, userID, func(lines []pkgrecords.Line) error {
			for _, l := range lines {
				if err := c.addRaw(l.Kind, l.Data); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("export user: %w", err)
		}
	}
	return c.flush()
}

// exportSent adds userID's messages in room and their kept versions.
func (r *Records) exportSent(ctx context.Context, c *chunker, userID, room string) error {
	var after int64
	for {
		msgs, err := r.o.Store.SenderMessages(ctx, userID, room, after, r.o.Batch)
		if err != nil {
			return fmt.Errorf("export user: %w", err)
		}
		for _, m := range msgs {
			after = m.Seq
			b, err := r.keptJSON(ctx, m)
			if err != nil {
				return err
			}
			if err := c.addRaw("message", b); err != nil {
				return err
			}
		}
		if len(msgs) < r.o.Batch {
			return nil
		}
	}
}

// ExportRoom streams a room for an investigation: the room, its members, and
// every message with its kept versions. Only a safeguarding lead, with a
// reason; audited before anything is read.
func (r *Records) ExportRoom(ctx context.Context, a Actor, roomID, reason string, emit Emit) error {
	if err := checkActor(a); err != nil {
		return err
	}
	if err := checkID("room_id", roomID); err != nil {
		return err
	}
	reason, err := checkReason(reason)
	if err != nil {
		return err
	}
	if !a.Lead() {
		return fmt.Errorf("%w: only a safeguarding lead may export a room", ErrForbidden)
	}
	room, err := r.o.Store.Room(ctx, roomID)
	if err != nil {
		return fmt.Errorf("export room: %w", err)
	}
	seq, err := r.audit(ctx, audit.Entry{Kind: "export.room", Actor: a.UserID, Reason: reason, Target: roomID})
	if err != nil {
		return err
	}
	c := &chunker{emit: emit}
	if err := c.add("export", map[string]any{"roomId": roomID, "exportedAt": store.FormatTime(time.Now()),
		"exportedBy": a.UserID, "reason": reason, "auditSeq": seq}); err != nil {
		return err
	}
	if err := c.add("room", map[string]any{"roomId": room.ID, "name": room.Name, "type": room.Type,
		"archived": room.Archived, "createdAt": store.FormatTime(room.CreatedAt)}); err != nil {
		return err
	}
	for after := ""; ; {
		ms, err := r.o.Store.RoomMembers(ctx, roomID, after, r.o.Batch)
		if err != nil {
			return fmt.Errorf("export room: %w", err)
		}
		for _, m := range ms {
			after = m.UserID
			if err := c.add("membership", memberOut(m)); err != nil {
				return err
			}
		}
		if len(ms) < r.o.Batch {
			break
		}
	}
	var after int64
	for {
		msgs, err := r.o.Store.MessagesAfter(ctx, roomID, after, r.o.Batch)
		if err != nil {
			return fmt.Errorf("export room: %w", err)
		}
		for _, m := range msgs {
			after = m.Seq
			b, err := r.keptJSON(ctx, m)
			if err != nil {
				return err
			}
			if err := c.addRaw("message", b); err != nil {
				return err
			}
		}
		if len(msgs) < r.o.Batch {
			return c.flush()
		}
	}
}
