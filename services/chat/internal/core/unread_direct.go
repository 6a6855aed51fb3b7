package core

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/talim/realtime/pkg/subject"
	"github.com/talim/realtime/services/chat/internal/store"
)

// SubjectUnreadDirect is the NATS request notification's email digest makes for a
// user's direct rooms with unread messages (docs/CONTRACTS.md). JSON request
// {"userId"}, reply {"rooms":[{"roomId","name","unread"}]} or {"error"}.
const SubjectUnreadDirect = subject.ChatUnreadDirect

// maxUnreadDirect bounds the rooms in one reply.
const maxUnreadDirect = 50

type unreadDirectRoom struct {
	RoomID string `json:"roomId"`
	Name   string `json:"name"`
	Unread int64  `json:"unread"`
}

// ServeUnreadDirect answers SubjectUnreadDirect in queue group "chat". Only the
// count and the room name leave chat, never message text.
func (c *Core) ServeUnreadDirect() error {
	sub, err := c.nc.QueueSubscribe(SubjectUnreadDirect, "chat", func(m *nats.Msg) {
		var req struct {
			UserID string `json:"userId"`
		}
		var resp struct {
			Rooms []unreadDirectRoom `json:"rooms"`
			Error string             `json:"error,omitempty"`
		}
		resp.Rooms = []unreadDirectRoom{}
		if err := json.Unmarshal(m.Data, &req); err != nil || !ValidID(req.UserID) {
			resp.Error = "invalid userId"
		} else {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			rooms, err := c.unreadDirect(ctx, req.UserID)
			cancel()
			if err != nil {
				c.log.Warn("unread direct rooms", "user", req.UserID, "err", err)
				resp.Error = "unavailable"
			}
			resp.Rooms = append(resp.Rooms, rooms...)
		}
		if b, err := json.Marshal(&resp); err == nil && m.Reply != "" {
			_ = m.Respond(b)
		}
	})
	if err != nil {
		return fmt.Errorf("subscribe unread direct: %w", err)
	}
	c.subs = append(c.subs, sub)
	return nil
}

// unreadDirect lists user's direct rooms with unread messages, including messages
// and reads the summary writer has not flushed yet (as list-rooms does).
func (c *Core) unreadDirect(ctx context.Context, user string) ([]unreadDirectRoom, error) {
	mems, err := c.store.UserMemberships(ctx, user)
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(mems))
	byRoom := make(map[string]store.Member, len(mems))
	for _, m := range mems {
		ids = append(ids, m.RoomID)
		byRoom[m.RoomID] = m
	}
	rooms, err := c.store.Rooms(ctx, ids)
	if err != nil {
		return nil, err
	}
	var out []unreadDirectRoom
	for _, r := range rooms {
		if r.Type != store.TypeDirect || len(out) >= maxUnreadDirect {
			continue
		}
		last, ok := c.seq.Unflushed(r.ID)
		patchRoom(&r, last, ok)
		read := max(byRoom[r.ID].LastReadSeq, c.seq.UnflushedRead(r.ID, user))
		if n := unread(r.LastSeq, read); n > 0 {
			out = append(out, unreadDirectRoom{RoomID: r.ID, Name: r.Name, Unread: n})
		}
	}
	return out, nil
}
