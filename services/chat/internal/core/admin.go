package core

import (
	"context"
	"errors"
	"fmt"

	"github.com/talim/realtime/pkg/service"
	"github.com/talim/realtime/services/chat/internal/roster"
	"github.com/talim/realtime/services/chat/internal/store"
)

// ErrTypeConflict means CreateRoom found the id taken by a room of another type.
var ErrTypeConflict = errors.New("room exists with another type")

// CreateRoom creates a room with initial members. An existing room of the same
// type is not an error (created = false) and the members are still applied, so a
// retried call completes what a failed one started. An empty id gets "r_<random>".
func (c *Core) CreateRoom(ctx context.Context, id, name, typ string, members []store.Member) (*store.Room, bool, error) {
	if id == "" {
		id = "r_" + service.RandomToken(12)
	}
	if typ == store.TypeDirect { // before anything is created
		if err := c.directMembersAllowed(ctx, id, members); err != nil {
			return nil, false, err
		}
	}
	now := store.Now()
	created, err := c.store.CreateRoom(ctx, store.Room{ID: id, Name: name, Type: typ, LastActivityAt: now, CreatedAt: now})
	if err != nil {
		return nil, false, fmt.Errorf("create room: %w", err)
	}
	room, err := c.store.Room(ctx, id)
	if err != nil {
		return nil, false, fmt.Errorf("create room: %w", err)
	}
	if !created && room.Type != typ {
		return nil, false, fmt.Errorf("create room %s: %w (%s)", id, ErrTypeConflict, room.Type)
	}
	if _, _, err := c.AddMembers(ctx, id, members); err != nil {
		return nil, false, err
	}
	return room, created, nil
}

// GetRoom returns the room and its member count.
func (c *Core) GetRoom(ctx context.Context, id string) (*store.Room, int64, error) {
	pend, hasPend := c.seq.Unflushed(id)
	room, err := c.store.Room(ctx, id)
	if err != nil {
		return nil, 0, fmt.Errorf("get room: %w", err)
	}
	patchRoom(room, pend, hasPend)
	// Other instances write their summaries behind their acks: an admin read takes
	// lastSeq from the messages themselves.
	last, err := c.store.MaxSeq(ctx, id)
	if err != nil {
		return nil, 0, fmt.Errorf("get room: %w", err)
	}
	room.LastSeq = max(room.LastSeq, last)
	n, err := c.store.CountMembers(ctx, id)
	if err != nil {
		return nil, 0, fmt.Errorf("get room: %w", err)
	}
	return room, n, nil
}

// ArchiveRoom makes the room read-only.
func (c *Core) ArchiveRoom(ctx context.Context, id string) (*store.Room, error) {
	c.flushRoom(ctx, id)
	room, err := c.store.ArchiveRoom(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("archive room: %w", err)
	}
	c.membershipChanged(id) // the cached room state includes archived
	return room, nil
}

// AddMembers adds members or changes their roles; each affected user gets
// room-membership "added" with their (new) role. The memberships are written in
// batches (store.AddMembers: one unordered insert, then role updates for the
// existing ones) and every instance learns the change as deltas, so adding
// 10,000 users costs a few store commands per 1,000 and no member reload.
func (c *Core) AddMembers(ctx context.Context, roomID string, members []store.Member) (added, updated int64, err error) {
	if len(members) == 0 {
		return 0, 0, nil
	}
	room, err := c.store.Room(ctx, roomID)
	if err != nil {
		return 0, 0, fmt.Errorf("add members: %w", err)
	}
	if room.Type == store.TypeDirect {
		if err := c.directMembersAllowed(ctx, roomID, members); err != nil {
			return 0, 0, err
		}
	}
	c.flushRoom(ctx, roomID) // role changes update memberships documents
	now := store.Now()
	for i := range members {
		members[i].RoomID, members[i].JoinedAt = roomID, now
	}
	for len(members) > 0 {
		chunk := members[:min(len(members), addMembersChunk)]
		members = members[len(chunk):]
		res, err := c.store.AddMembers(ctx, chunk)
		var deltas []roster.Delta
		for i, r := range res {
			switch r {
			case store.MemberAdded:
				added++
			case store.MemberUpdated:
				updated++
			default:
				continue
			}
			deltas = append(deltas, roster.Delta{UserID: chunk[i].UserID, Role: chunk[i].Role})
		}
		if len(deltas) > 0 {
			c.membershipChanged(roomID, deltas...)
			for _, d := range deltas {
				c.notifyAdded(roomID, d.UserID, d.Role)
			}
		}
		if err != nil {
			return added, updated, fmt.Errorf("add members: %w", err)
		}
	}
	return added, updated, nil
}

// addMembersChunk is how many memberships one store batch writes.
const addMembersChunk = 500

// RemoveMembers removes members; each removed user's connections lose the room
// at once (control.remove_rooms) and get room-membership "removed".
func (c *Core) RemoveMembers(ctx context.Context, roomID string, userIDs []string) (int64, error) {
	if _, err := c.store.Room(ctx, roomID); err != nil {
		return 0, fmt.Errorf("remove members: %w", err)
	}
	var removed []*store.Member
	defer func() {
		if len(removed) > 0 {
			deltas := make([]roster.Delta, len(removed))
			for i, m := range removed {
				deltas[i] = roster.Delta{UserID: m.UserID}
			}
			c.membershipChanged(roomID, deltas...) // before notifying: our own fan-out stops at once
		}
		for _, m := range removed {
			c.notifyRemoved(roomID, m.UserID, m.Role)
		}
	}()
	for _, u := range userIDs {
		m, err := c.store.RemoveMember(ctx, roomID, u)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return int64(len(removed)), fmt.Errorf("remove members: %w", err)
		}
		removed = append(removed, m)
	}
	return int64(len(removed)), nil
}

// ListMembers pages through a room's members.
func (c *Core) ListMembers(ctx context.Context, roomID, after string, limit int) ([]store.Member, bool, error) {
	if _, err := c.store.Room(ctx, roomID); err != nil {
		return nil, false, fmt.Errorf("list members: %w", err)
	}
	reads := map[string]int64{} // markers this instance has not written yet
	ms, more, err := c.store.ListMembers(ctx, roomID, after, limit)
	if err != nil {
		return nil, false, fmt.Errorf("list members: %w", err)
	}
	for i := range ms {
		if _, ok := reads[ms[i].UserID]; !ok {
			reads[ms[i].UserID] = c.seq.UnflushedRead(roomID, ms[i].UserID)
		}
		ms[i].LastReadSeq = max(ms[i].LastReadSeq, reads[ms[i].UserID])
	}
	return ms, more, nil
}

// PostMessage posts a system message as "svc:<serviceName>" through the same
// seq → store → fan-out path as client messages. key is the idempotency key.
func (c *Core) PostMessage(ctx context.Context, roomID, serviceName, displayName, content, key string) (store.Message, bool, error) {
	st, err := c.roster.Get(ctx, roomID)
	if err != nil {
		return store.Message{}, false, fmt.Errorf("post message: %w", err)
	}
	if st.Room.Archived {
		return store.Message{}, false, fmt.Errorf("post message to %s: %w", roomID, ErrArchived)
	}
	sender := "svc:" + serviceName
	if displayName == "" {
		displayName = serviceName
	}
	m, dup, err := c.seq.AppendAfter(ctx, store.Message{
		ID: store.MessageID(roomID, sender, key), RoomID: roomID, SenderID: sender, SenderName: displayName,
		Type: store.MessageTypeSystem, Content: content, ClientMsgID: key,
	}, st.Room.LastSeq)
	if err != nil {
		return store.Message{}, false, fmt.Errorf("post message to %s: %w", roomID, err)
	}
	return m, dup, nil
}
