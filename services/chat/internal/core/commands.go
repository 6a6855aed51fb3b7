package core

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/talim/realtime/pkg/command"
	"github.com/talim/realtime/pkg/webhook"
	edgev1 "github.com/talim/realtime/proto/talim/edge/v1"
	"github.com/talim/realtime/services/chat/internal/roster"
	"github.com/talim/realtime/services/chat/internal/store"
)

// Register registers every chat client event on srv.
func (c *Core) Register(srv *command.Server) {
	c.handle(srv, "join-chat-room", typed(c.joinRoom))
	c.handle(srv, "leave-chat-room", typed(c.leaveRoom))
	c.handle(srv, "send-chat-message", typed(c.sendMessage))
	c.handle(srv, "get-chat-room-history", typed(c.history))
	c.handle(srv, "mark-message-read", typed(c.markRead))
	c.handle(srv, "typing", typed(c.typingEvent))
	c.handle(srv, "edit-chat-message", typed(c.editMessage))
	c.handle(srv, "delete-chat-message", typed(c.deleteMessage))
	c.handle(srv, "list-rooms", typed(c.listRooms))
	c.handle(srv, "open-direct-room", typed(c.openDirectRoom))
	c.handle(srv, "report-message", typed(c.reportMessage))
	c.handle(srv, "block-user", typed(c.blockUser))
	c.handle(srv, "unblock-user", typed(c.unblockUser))
	c.handle(srv, "mute-room", typed(c.muteRoom))
	c.handle(srv, "release-held-message", typed(c.releaseHeld))
}

type historyPage struct {
	RoomID   string            `json:"roomId"`
	Messages []json.RawMessage `json:"messages"`
	HasMore  bool              `json:"hasMore"`
}

// MaxPageBytes bounds the encoded messages of one history page. Without it a page
// of 50 (up to 200) messages of 4000 characters could exceed the edge's outbound
// queue (1 MiB by default; the connection closed with 4008 on every join) and the
// NATS payload limit (1 MB). 256 KiB leaves room for live frames in the queue.
const MaxPageBytes = 256 << 10

// newPage encodes msgs (oldest first) into a page of at most MaxPageBytes of
// messages, always at least one. When it must drop messages it keeps the end of
// the page the client reads first and reports hasMore, so the client pages on in
// the same direction: keepNewest for the newest page and beforeSeq paging (older
// messages dropped), otherwise the oldest are kept (afterSeq and resume paging).
func newPage(roomID string, msgs []store.Message, more, keepNewest bool) (historyPage, error) {
	enc := make([]json.RawMessage, len(msgs))
	for i, m := range msgs {
		b, err := json.Marshal(m)
		if err != nil {
			return historyPage{}, fmt.Errorf("encode message %s: %w", m.ID, err)
		}
		enc[i] = b
	}
	total, n := 0, 0
	for n < len(enc) {
		i := n
		if keepNewest {
			i = len(enc) - 1 - n
		}
		if n > 0 && total+len(enc[i]) > MaxPageBytes {
			break
		}
		total += len(enc[i]) + 1
		n++
	}
	if n < len(enc) {
		more = true
		if keepNewest {
			enc = enc[len(enc)-n:]
		} else {
			enc = enc[:n]
		}
	}
	return historyPage{RoomID: roomID, Messages: enc, HasMore: more}, nil
}

type readState struct {
	RoomID      string `json:"roomId"`
	LastSeq     int64  `json:"lastSeq"`
	LastReadSeq int64  `json:"lastReadSeq"`
	Unread      int64  `json:"unread"`
}

func unread(lastSeq, lastRead int64) int64 { return max(0, lastSeq-lastRead) }

type joinRoomReq struct {
	RoomID   string `json:"roomId"`
	SinceSeq *int64 `json:"sinceSeq"`
	Limit    *int   `json:"limit"`
}

func (r *joinRoomReq) check() error {
	return CheckID("roomId", r.RoomID)
}

func (c *Core) joinRoom(ctx context.Context, cmd *edgev1.Command, req *joinRoomReq) (*edgev1.Reply, error) {
	if req.SinceSeq != nil && *req.SinceSeq < 0 {
		return nil, command.BadRequest("sinceSeq must be >= 0")
	}
	limit, err := pageLimit(req.Limit)
	if err != nil {
		return nil, err
	}
	user := cmd.GetIdentity().GetUserId()
	st, err := c.room(ctx, req.RoomID)
	if err != nil {
		return nil, err
	}
	added := false
	if _, ok := st.Role(user); !ok {
		if st.Room.Type != store.TypeOpen {
			return nil, command.Forbidden("not a member of room %q", req.RoomID)
		}
		// Group-committed with the other joins in flight (pipeline.MemberWriter).
		added, err = c.joins.Ensure(ctx, store.Member{RoomID: req.RoomID, UserID: user, Role: store.RoleMember, JoinedAt: store.Now()})
		if err != nil {
			return nil, fmt.Errorf("join open room: %w", err)
		}
		if added {
			// One delta, whatever the room's size: no instance reloads its members.
			c.membershipChanged(req.RoomID, roster.Delta{UserID: user, Role: store.RoleMember})
			c.notifyAdded(req.RoomID, user, store.RoleMember)
		}
	}
	// Fresh reads for the counters. Summaries this instance has not written yet
	// are taken before the reads (see pipeline summaries). The latest history page
	// is read from the messages themselves, so its newest seq is the room's
	// lastSeq at that moment and the room summary is not read at all; a resume
	// (sinceSeq) reads the summary first, so that lastSeq never exceeds what the
	// history can show. A member added just now has read nothing: no marker read.
	pend, hasPend := c.seq.Unflushed(req.RoomID)
	pendRead := c.seq.UnflushedRead(req.RoomID, user)
	var lastSeq int64
	if req.SinceSeq != nil {
		room, err := c.store.Room(ctx, req.RoomID)
		if err != nil {
			return nil, fmt.Errorf("join: %w", err)
		}
		lastSeq = room.LastSeq
	}
	var lastReadSeq int64
	if !added {
		mem, err := c.store.Member(ctx, req.RoomID, user)
		if errors.Is(err, store.ErrNotFound) {
			return nil, command.Forbidden("not a member of room %q", req.RoomID)
		} else if err != nil {
			return nil, fmt.Errorf("join: %w", err)
		}
		lastReadSeq = mem.LastReadSeq
	}
	q := store.HistoryQuery{RoomID: req.RoomID, Limit: limit, Latest: req.SinceSeq == nil}
	if req.SinceSeq != nil {
		q.After = *req.SinceSeq
	}
	msgs, more, err := c.readHistory(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("join: %w", err)
	}
	// The summary can lag behind stored messages (another instance's write in
	// flight); never report a lastSeq below what the history shows.
	if hasPend && pend.Seq > lastSeq {
		lastSeq = pend.Seq
	}
	if n := len(msgs); n > 0 && msgs[n-1].Seq > lastSeq {
		lastSeq = msgs[n-1].Seq
	}
	lastRead := max(lastReadSeq, pendRead)
	reply, err := command.OK(readState{RoomID: req.RoomID, LastSeq: lastSeq, LastReadSeq: lastRead, Unread: unread(lastSeq, lastRead)})
	if err != nil {
		return nil, err
	}
	page, err := newPage(req.RoomID, msgs, more, q.Latest)
	if err != nil {
		return nil, fmt.Errorf("join: %w", err)
	}
	frame, err := command.Frame("chat-room-history", page)
	if err != nil {
		return nil, err
	}
	reply.Frames = append(reply.Frames, frame)
	reply.JoinRooms = []string{req.RoomID}
	return reply, nil
}

type leaveRoomReq struct {
	RoomID string `json:"roomId"`
}

func (r *leaveRoomReq) check() error {
	return CheckID("roomId", r.RoomID)
}

func (c *Core) leaveRoom(ctx context.Context, cmd *edgev1.Command, req *leaveRoomReq) (*edgev1.Reply, error) {
	reply, err := command.OK(map[string]string{"roomId": req.RoomID})
	if err != nil {
		return nil, err
	}
	reply.LeaveRooms = []string{req.RoomID}
	return reply, nil
}

type sendMessageReq struct {
	RoomID      string  `json:"roomId"`
	Content     string  `json:"content"`
	Type        *string `json:"type"`
	ClientMsgID string  `json:"clientMsgId"`
}

func (r *sendMessageReq) check() error {
	return CheckID("roomId", r.RoomID)
}

func (c *Core) sendMessage(ctx context.Context, cmd *edgev1.Command, req *sendMessageReq) (*edgev1.Reply, error) {
	if req.ClientMsgID == "" {
		return nil, command.BadRequest("clientMsgId is required")
	}
	if !ValidClientMsgID(req.ClientMsgID) {
		return nil, command.BadRequest("clientMsgId must be 1..%d characters of [A-Za-z0-9_-:@.]", MaxClientMsgID)
	}
	typ := "text"
	if req.Type != nil {
		typ = *req.Type
		if !msgTypeRe.MatchString(typ) || typ == store.MessageTypeSystem {
			return nil, command.BadRequest("type must be a lower-case word (default text); system is reserved")
		}
	}
	content, err := checkContent(req.Content)
	if err != nil {
		return nil, err
	}
	id := cmd.GetIdentity()
	st, role, err := c.member(ctx, req.RoomID, id.GetUserId())
	if err != nil {
		return nil, err
	}
	if err := canPost(st, role); err != nil {
		return nil, err
	}
	var others []string
	if st.Room.Type == store.TypeDirect {
		others = directPeers(st, memberIDs(st), id.GetUserId())
	}
	lp, err := c.sendPolicy(ctx, id, st.Room.Type, others)
	if err != nil {
		return nil, err
	}
	if busy, retry := c.fanout.Busy(req.RoomID); busy {
		// The room's deliveries are behind: refuse now rather than queue a message
		// that would reach its readers seconds late (nothing was stored).
		return nil, &command.Error{Code: command.CodeRateLimited,
			Message: "room is busy: its deliveries are behind; nothing was stored, retry later", RetryAfterMs: retry.Milliseconds()}
	}
	name := id.GetDisplayName()
	if name == "" {
		name = id.GetUserId()
	}
	msg := store.Message{
		ID: store.MessageID(req.RoomID, id.GetUserId(), req.ClientMsgID), RoomID: req.RoomID,
		SenderID: id.GetUserId(), SenderName: name, Type: typ, Content: content, ClientMsgID: req.ClientMsgID,
	}
	held, flag, err := c.contentRules(ctx, lp, msg, id.GetRoles())
	if err != nil || held != nil {
		return held, err
	}
	m, dup, err := c.seq.AppendAfter(ctx, msg, st.Room.LastSeq)
	if err != nil {
		return nil, fmt.Errorf("send to %s: %w", req.RoomID, err)
	}
	// Also for a duplicate: its first send may have failed here (docs/webhooks.md
	// "When an event is written").
	if err := c.publishHook(ctx, webhook.MessageCreated, m, m.CreatedAt); err != nil {
		return nil, fmt.Errorf("send to %s: %w", req.RoomID, err)
	}
	if flag != nil {
		_ = c.raiseReport(ctx, store.Report{ID: reportID("rule:"+flag.RuleID, m.ID), School: DefaultSchool, RoomID: m.RoomID,
			MessageID: m.ID, ReporterID: "rule:" + flag.RuleID, Reason: flag.Category, Status: "open", CreatedAt: store.Now()})
	}
	if !dup {
		c.requestPush(st, &m)
	}
	return command.OK(map[string]any{"message": m})
}

type historyReq struct {
	RoomID    string `json:"roomId"`
	BeforeSeq *int64 `json:"beforeSeq"`
	AfterSeq  *int64 `json:"afterSeq"`
	Limit     *int   `json:"limit"`
}

func (r *historyReq) check() error {
	return CheckID("roomId", r.RoomID)
}

func (c *Core) history(ctx context.Context, cmd *edgev1.Command, req *historyReq) (*edgev1.Reply, error) {
	if req.BeforeSeq != nil && req.AfterSeq != nil {
		return nil, command.BadRequest("give beforeSeq or afterSeq, not both")
	}
	if (req.BeforeSeq != nil && *req.BeforeSeq < 1) || (req.AfterSeq != nil && *req.AfterSeq < 0) {
		return nil, command.BadRequest("beforeSeq must be >= 1 and afterSeq >= 0")
	}
	limit, err := pageLimit(req.Limit)
	if err != nil {
		return nil, err
	}
	if _, _, err := c.member(ctx, req.RoomID, cmd.GetIdentity().GetUserId()); err != nil {
		return nil, err
	}
	q := store.HistoryQuery{RoomID: req.RoomID, Limit: limit}
	switch {
	case req.BeforeSeq != nil:
		q.Before = *req.BeforeSeq
	case req.AfterSeq != nil:
		q.After = *req.AfterSeq
	default:
		q.Latest = true
	}
	msgs, more, err := c.store.History(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	page, err := newPage(req.RoomID, msgs, more, req.AfterSeq == nil)
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	return command.OK(page)
}

type markReadReq struct {
	RoomID    string  `json:"roomId"`
	Seq       *int64  `json:"seq"`
	MessageID *string `json:"messageId"`
}

func (r *markReadReq) check() error {
	return CheckID("roomId", r.RoomID)
}

func (c *Core) markRead(ctx context.Context, cmd *edgev1.Command, req *markReadReq) (*edgev1.Reply, error) {
	if (req.Seq == nil) == (req.MessageID == nil) {
		return nil, command.BadRequest("give seq or messageId")
	}
	user := cmd.GetIdentity().GetUserId()
	if _, _, err := c.member(ctx, req.RoomID, user); err != nil {
		return nil, err
	}
	var seq int64
	if req.MessageID != nil {
		if err := CheckID("messageId", *req.MessageID); err != nil {
			return nil, err
		}
		m, err := c.roomMessage(ctx, req.RoomID, *req.MessageID)
		if err != nil {
			return nil, err
		}
		seq = m.Seq
	} else {
		if seq = *req.Seq; seq < 1 {
			return nil, command.BadRequest("seq must be >= 1")
		}
	}
	pend, hasPend := c.seq.Unflushed(req.RoomID)
	pendRead := c.seq.UnflushedRead(req.RoomID, user)
	room, err := c.store.Room(ctx, req.RoomID)
	if err != nil {
		return nil, fmt.Errorf("mark read: %w", err)
	}
	patchRoom(room, pend, hasPend)
	if seq > room.LastSeq {
		seq = room.LastSeq // never mark beyond what exists
	}
	if seq <= pendRead {
		// The user's own message (not written to the marker yet) already read it.
		mem, err := c.store.Member(ctx, req.RoomID, user)
		if errors.Is(err, store.ErrNotFound) {
			return nil, command.Forbidden("not a member of room %q", req.RoomID)
		} else if err != nil {
			return nil, fmt.Errorf("mark read: %w", err)
		}
		lastRead := max(mem.LastReadSeq, pendRead)
		return command.OK(readState{RoomID: req.RoomID, LastSeq: room.LastSeq, LastReadSeq: lastRead, Unread: unread(room.LastSeq, lastRead)})
	}
	now := store.Now()
	c.flushRoom(ctx, req.RoomID)
	mem, moved, err := c.store.MarkRead(ctx, req.RoomID, user, seq, now)
	if errors.Is(err, store.ErrNotFound) {
		return nil, command.Forbidden("not a member of room %q", req.RoomID)
	} else if err != nil {
		return nil, fmt.Errorf("mark read: %w", err)
	}
	if moved {
		c.roomEvent(req.RoomID, &edgev1.Outbound{Event: "message-read", RoomId: req.RoomID,
			Data: mustJSON(map[string]any{"roomId": req.RoomID, "userId": user, "seq": mem.LastReadSeq, "readAt": store.FormatTime(now)})}, "")
	}
	return command.OK(readState{RoomID: req.RoomID, LastSeq: room.LastSeq, LastReadSeq: mem.LastReadSeq, Unread: unread(room.LastSeq, mem.LastReadSeq)})
}

// roomMessage returns message id of roomID, not_found when it is elsewhere.
func (c *Core) roomMessage(ctx context.Context, roomID, id string) (*store.Message, error) {
	m, err := c.store.Message(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && m.RoomID != roomID) {
		return nil, command.NotFound("message %q not found in room %q", id, roomID)
	}
	if err != nil {
		return nil, fmt.Errorf("get message: %w", err)
	}
	return m, nil
}

type typingEventReq struct {
	RoomID   string `json:"roomId"`
	IsTyping *bool  `json:"isTyping"`
}

func (r *typingEventReq) check() error {
	return CheckID("roomId", r.RoomID)
}

func (c *Core) typingEvent(ctx context.Context, cmd *edgev1.Command, req *typingEventReq) (*edgev1.Reply, error) {
	if req.IsTyping == nil {
		return nil, command.BadRequest("isTyping is required")
	}
	user := cmd.GetIdentity().GetUserId()
	st, role, err := c.member(ctx, req.RoomID, user)
	if err != nil {
		return nil, err
	}
	if err := canPost(st, role); err != nil {
		return nil, err
	}
	c.typing.offer(user, req.RoomID, *req.IsTyping, func(v bool) {
		c.roomEvent(req.RoomID, &edgev1.Outbound{Event: "typing", RoomId: req.RoomID,
			Data: mustJSON(map[string]any{"roomId": req.RoomID, "userId": user, "isTyping": v})}, user)
	})
	return command.OK(struct{}{})
}

type editMessageReq struct {
	RoomID    string `json:"roomId"`
	MessageID string `json:"messageId"`
	Content   string `json:"content"`
}

func (r *editMessageReq) check() error {
	return firstErr(CheckID("roomId", r.RoomID), CheckID("messageId", r.MessageID))
}

func (c *Core) editMessage(ctx context.Context, cmd *edgev1.Command, req *editMessageReq) (*edgev1.Reply, error) {
	content, err := checkContent(req.Content)
	if err != nil {
		return nil, err
	}
	user := cmd.GetIdentity().GetUserId()
	st, _, err := c.member(ctx, req.RoomID, user)
	if err != nil {
		return nil, err
	}
	if st.Room.Archived {
		return nil, command.Forbidden("room %q is archived", req.RoomID)
	}
	m, err := c.roomMessage(ctx, req.RoomID, req.MessageID)
	if err != nil {
		return nil, err
	}
	switch {
	case m.SenderID != user:
		return nil, command.Forbidden("only the sender can edit a message")
	case m.Deleted:
		return nil, command.Forbidden("a deleted message cannot be edited")
	}
	updated, err := c.store.EditKeeping(ctx, req.RoomID, req.MessageID, user, content, store.Now()) // keeps the original for oversight
	if errors.Is(err, store.ErrNotFound) {                                                          // deleted meanwhile
		return nil, command.Forbidden("a deleted message cannot be edited")
	} else if err != nil {
		return nil, fmt.Errorf("edit: %w", err)
	}
	c.messageUpdated(ctx, *updated)
	return command.OK(map[string]any{"message": updated})
}

type deleteMessageReq struct {
	RoomID    string `json:"roomId"`
	MessageID string `json:"messageId"`
}

func (r *deleteMessageReq) check() error {
	return firstErr(CheckID("roomId", r.RoomID), CheckID("messageId", r.MessageID))
}

func (c *Core) deleteMessage(ctx context.Context, cmd *edgev1.Command, req *deleteMessageReq) (*edgev1.Reply, error) {
	id := cmd.GetIdentity()
	st, role, err := c.member(ctx, req.RoomID, id.GetUserId())
	if err != nil {
		return nil, err
	}
	if st.Room.Archived {
		return nil, command.Forbidden("room %q is archived", req.RoomID)
	}
	m, err := c.roomMessage(ctx, req.RoomID, req.MessageID)
	if err != nil {
		return nil, err
	}
	if !canDelete(role, id.GetRoles(), m, id.GetUserId()) {
		return nil, command.Forbidden("only the sender, a room owner or a teacher can delete a message")
	}
	if m.Deleted {
		// Idempotent; publish again in case the first delete failed to.
		if err := c.publishHook(ctx, webhook.MessageDeleted, *m, time.Now()); err != nil {
			return nil, fmt.Errorf("delete: %w", err)
		}
		return command.OK(map[string]any{"message": m})
	}
	deleted, err := c.store.DeleteKeeping(ctx, req.RoomID, req.MessageID, id.GetUserId(), store.Now()) // keeps the text for oversight
	if err != nil {
		return nil, fmt.Errorf("delete: %w", err)
	}
	if err := c.publishHook(ctx, webhook.MessageDeleted, *deleted, time.Now()); err != nil {
		return nil, fmt.Errorf("delete: %w", err)
	}
	c.messageUpdated(ctx, *deleted)
	return command.OK(map[string]any{"message": deleted})
}

// messageUpdated refreshes the room summary and tells joined connections.
func (c *Core) messageUpdated(ctx context.Context, m store.Message) {
	c.flushRoom(ctx, m.RoomID)
	if err := c.store.ReplaceLastMessage(ctx, m); err != nil {
		c.log.WarnContext(ctx, "update room summary", "room", m.RoomID, "err", err)
	}
	c.roomEvent(m.RoomID, &edgev1.Outbound{Event: "chat-message-updated", RoomId: m.RoomID, Seq: m.Seq,
		Data: mustJSON(map[string]any{"message": m})}, "")
}

// RoomSummary is a list-rooms entry (and open-direct-room's room).
type RoomSummary struct {
	RoomID      string         `json:"roomId"`
	Name        string         `json:"name"`
	Type        string         `json:"type"`
	Archived    bool           `json:"archived"`
	Role        string         `json:"role"`
	LastSeq     int64          `json:"lastSeq"`
	LastReadSeq int64          `json:"lastReadSeq"`
	Unread      int64          `json:"unread"`
	LastMessage *store.Message `json:"lastMessage"`
	Muted       bool           `json:"muted,omitempty"`
	activity    time.Time
}

func summarize(r store.Room, m store.Member) RoomSummary {
	return RoomSummary{RoomID: r.ID, Name: r.Name, Type: r.Type, Archived: r.Archived, Role: m.Role,
		LastSeq: r.LastSeq, LastReadSeq: m.LastReadSeq, Unread: unread(r.LastSeq, m.LastReadSeq),
		LastMessage: r.LastMessage, Muted: m.Muted, activity: r.LastActivityAt}
}

type listRoomsReq struct{}

func (c *Core) listRooms(ctx context.Context, cmd *edgev1.Command, req *listRoomsReq) (*edgev1.Reply, error) {
	user := cmd.GetIdentity().GetUserId()
	mems, err := c.store.UserMemberships(ctx, user)
	if err != nil {
		return nil, fmt.Errorf("list rooms: %w", err)
	}
	ids := make([]string, len(mems))
	byRoom := make(map[string]store.Member, len(mems))
	for i, m := range mems {
		ids[i], byRoom[m.RoomID] = m.RoomID, m
	}
	type pending struct {
		last store.Message
		ok   bool
		read int64
	}
	pend := make(map[string]pending, len(ids))
	for _, id := range ids {
		var p pending
		p.last, p.ok = c.seq.Unflushed(id)
		p.read = c.seq.UnflushedRead(id, user)
		pend[id] = p
	}
	rooms, err := c.store.Rooms(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("list rooms: %w", err)
	}
	out := make([]RoomSummary, 0, len(rooms))
	for _, r := range rooms {
		p := pend[r.ID]
		patchRoom(&r, p.last, p.ok)
		m := byRoom[r.ID]
		m.LastReadSeq = max(m.LastReadSeq, p.read)
		out = append(out, summarize(r, m))
	}
	slices.SortFunc(out, func(a, b RoomSummary) int {
		if c := b.activity.Compare(a.activity); c != 0 {
			return c
		}
		return cmp.Compare(a.RoomID, b.RoomID)
	})
	return command.OK(map[string]any{"rooms": out})
}

// DirectRoomID is the id of the 1:1 room of a and b (order does not matter).
func DirectRoomID(a, b string) string {
	if b < a {
		a, b = b, a
	}
	h := sha256.Sum256([]byte(a + "\x00" + b))
	return "dm:" + fmt.Sprintf("%x", h[:16])
}

type openDirectRoomReq struct {
	UserID string `json:"userId"`
}

func (r *openDirectRoomReq) check() error {
	return CheckID("userId", r.UserID)
}

func (c *Core) openDirectRoom(ctx context.Context, cmd *edgev1.Command, req *openDirectRoomReq) (*edgev1.Reply, error) {
	me := cmd.GetIdentity().GetUserId()
	if req.UserID == me {
		return nil, command.BadRequest("userId must be another user")
	}
	lp, err := c.policy(ctx, DefaultSchool)
	if err != nil {
		return nil, err
	}
	myRoles := cmd.GetIdentity().GetRoles()
	if err := c.forbidDirect(ctx, lp, me, myRoles, req.UserID); err != nil {
		return nil, err
	}
	roomID := DirectRoomID(me, req.UserID)
	now := store.Now()
	// The deterministic _id makes concurrent calls converge on one room: one
	// insert wins, the others see a duplicate and reuse it.
	created, err := c.store.CreateRoom(ctx, store.Room{ID: roomID, Type: store.TypeDirect, LastActivityAt: now, CreatedAt: now})
	if err != nil {
		return nil, fmt.Errorf("open direct room: %w", err)
	}
	if !created {
		existing, err := c.store.Room(ctx, roomID)
		if err != nil {
			return nil, fmt.Errorf("open direct room: %w", err)
		}
		if existing.Type != store.TypeDirect {
			return nil, command.Forbidden("room %q is not a direct room", roomID)
		}
	}
	var deltas []roster.Delta
	for _, u := range []string{me, req.UserID} {
		added, err := c.store.EnsureMember(ctx, store.Member{RoomID: roomID, UserID: u, Role: store.RoleMember, JoinedAt: now})
		if err != nil {
			return nil, fmt.Errorf("open direct room: %w", err)
		}
		if added {
			deltas = append(deltas, roster.Delta{UserID: u, Role: store.RoleMember})
			defer c.notifyAdded(roomID, u, store.RoleMember)
		}
	}
	if lp.SecondAdult == SecondAdultInclude {
		otherRoles, err := c.rolesOf(ctx, req.UserID)
		if err != nil {
			return nil, err
		}
		if teacherStudent(myRoles, otherRoles) {
			adults := lp.SecondAdultIDs
			if len(adults) == 0 {
				adults = lp.Leads
			}
			for _, u := range adults {
				if u == me || u == req.UserID {
					continue
				}
				added, err := c.store.EnsureMember(ctx, store.Member{RoomID: roomID, UserID: u, Role: store.RoleReadonly, JoinedAt: now})
				if err != nil {
					return nil, fmt.Errorf("open direct room: second adult: %w", err)
				}
				if added {
					deltas = append(deltas, roster.Delta{UserID: u, Role: store.RoleReadonly})
					defer c.notifyAdded(roomID, u, store.RoleReadonly)
				}
			}
		}
	}
	if len(deltas) > 0 {
		c.membershipChanged(roomID, deltas...)
	}
	room, err := c.store.Room(ctx, roomID)
	if err != nil {
		return nil, fmt.Errorf("open direct room: %w", err)
	}
	mem, err := c.store.Member(ctx, roomID, me)
	if err != nil {
		return nil, fmt.Errorf("open direct room: %w", err)
	}
	return command.OK(map[string]any{"room": summarize(*room, *mem)})
}

// patchRoom applies a summary this instance has not written yet (last, when ok)
// to r, when it is newer.
func patchRoom(r *store.Room, last store.Message, ok bool) {
	if ok && last.Seq > r.LastSeq {
		r.LastSeq, r.LastMessage, r.LastActivityAt = last.Seq, &last, last.CreatedAt
	}
}

// flushRoom waits (best effort, bounded by ctx) until the summary writer has no
// write of roomID's documents pending, before another update of them.
func (c *Core) flushRoom(ctx context.Context, roomID string) {
	if err := c.seq.FlushRoom(ctx, roomID); err != nil {
		c.log.Warn("room summaries still pending", "room", roomID, "err", err)
	}
}
