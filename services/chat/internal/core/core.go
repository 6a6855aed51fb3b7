// Package core is the chat domain: access rules, the client events of
// docs/protocol.md "Chat" (served over NATS by package command), the admin operations behind
// ChatAdminService, and the events published to users.
package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"
	"google.golang.org/protobuf/proto"

	"github.com/talim/realtime/pkg/command"
	"github.com/talim/realtime/pkg/natsx"
	"github.com/talim/realtime/pkg/subject"
	"github.com/talim/realtime/pkg/webhook"
	chatv1 "github.com/talim/realtime/proto/talim/chat/v1"
	edgev1 "github.com/talim/realtime/proto/talim/edge/v1"
	"github.com/talim/realtime/services/chat/internal/audit"
	"github.com/talim/realtime/services/chat/internal/pipeline"
	"github.com/talim/realtime/services/chat/internal/roster"
	"github.com/talim/realtime/services/chat/internal/store"
)

// Options configures Core.
type Options struct {
	Store    *store.Store
	NC       *nats.Conn
	Logger   *slog.Logger
	Registry prometheus.Registerer
	// TypingInterval is the minimum gap between forwarded typing events per user
	// and room (default 1s).
	TypingInterval time.Duration
	// FanoutWorkers bounds rooms publishing at once (default pipeline.DefaultWorkers).
	FanoutWorkers int
	// MaxBatch bounds one group-commit insert (default pipeline.DefaultMaxBatch).
	MaxBatch int
	// Webhooks receives message.created and message.deleted (nil: none).
	Webhooks *webhook.Producer
	// Safeguard stores policies, reports, blocks and held messages.
	Safeguard *store.SafeguardStore
	// Audit receives every policy change and every decision on a held message
	// (nil: not audited).
	Audit audit.Appender
	// Notifier tells safeguarding leads about reports (nil: the review queue only).
	Notifier Notifier
	// Now is the clock of school hours (default time.Now).
	Now func() time.Time
}

// Core holds the chat service's state. Create with New; Close when done.
type Core struct {
	store  *store.Store
	nc     *nats.Conn
	log    *slog.Logger
	roster *roster.Cache
	seq    *pipeline.Sequencer
	fanout *pipeline.Fanout
	joins  *pipeline.MemberWriter
	latest singleflight.Group // latest history pages being read, by room and limit
	typing *throttle
	subs   []*nats.Subscription
	// safeguarding (policy.go, safeguard.go)
	guard     *store.SafeguardStore
	pol       policies
	auditLog  audit.Appender
	notifier  Notifier
	now       func() time.Time
	seenMu    sync.Mutex
	seenRoles map[string]string // user id to the roles last queued for recording
	rolesQ    chan seenRoles
	rolesDone chan struct{}
	hooks     *webhook.Producer
	stop      chan struct{}
	done      chan struct{}
}

// New builds the core and subscribes to membership invalidations.
func New(o Options) (*Core, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.TypingInterval <= 0 {
		o.TypingInterval = time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	c := &Core{store: o.Store, nc: o.NC, log: o.Logger, hooks: o.Webhooks, stop: make(chan struct{}), done: make(chan struct{}),
		guard: o.Safeguard, auditLog: o.Audit, notifier: o.Notifier, now: o.Now, seenRoles: map[string]string{},
		rolesQ: make(chan seenRoles, 4096), rolesDone: make(chan struct{}),
		pol: policies{bySchl: map[string]*livePolicy{}}}
	c.roster = roster.New(o.Store, 0, o.Registry)
	c.fanout = pipeline.NewFanout(pipeline.FanoutOptions{
		Workers: o.FanoutWorkers, Logger: o.Logger, Registry: o.Registry,
		Members: func(ctx context.Context, roomID string) (*roster.Members, error) {
			st, err := c.roster.Get(ctx, roomID)
			if err != nil {
				return nil, err
			}
			return st.Members(), nil
		},
		Publish: func(subj string, b []byte, h map[string][]string) error { return natsx.Publish(o.NC, subj, b, h) },
	})
	c.seq = pipeline.NewSequencer(pipeline.SequencerOptions{
		Store: o.Store, Logger: o.Logger, Registry: o.Registry, MaxBatch: o.MaxBatch, Committed: c.deliverMessages,
	})
	c.joins = pipeline.NewMemberWriter(o.Store, 0, 0)
	c.typing = newThrottle(o.TypingInterval)
	sub, err := o.NC.Subscribe(subject.ChatMembership+">", func(m *nats.Msg) {
		var ev chatv1.MembershipChanged
		if err := proto.Unmarshal(m.Data, &ev); err != nil || ev.GetRoomId() == "" {
			c.log.Warn("bad membership-changed message", "subject", m.Subject)
			return
		}
		if len(ev.GetMembers()) == 0 {
			c.roster.Invalidate(ev.GetRoomId())
			return
		}
		c.roster.Apply(ev.GetRoomId(), fromProto(ev.GetMembers()), ev.GetChangedAtUnixNs())
	})
	if err != nil {
		return nil, fmt.Errorf("subscribe membership changes: %w", err)
	}
	c.subs = append(c.subs, sub)
	if err := c.subscribePolicy(); err != nil {
		return nil, err
	}
	go c.janitor()
	go c.rolesWriter()
	return c, nil
}

// ServeSharedRooms answers talim.chat.v1.shared-rooms in queue group "chat".
func (c *Core) ServeSharedRooms() error {
	sub, err := c.nc.QueueSubscribe(subject.ChatSharedRooms, "chat", func(m *nats.Msg) {
		var req chatv1.SharedRoomsRequest
		var resp chatv1.SharedRoomsResponse
		if err := proto.Unmarshal(m.Data, &req); err != nil {
			resp.Error = "malformed request"
		} else if !ValidID(req.GetUserId()) {
			resp.Error = "invalid user_id"
		} else {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			users, err := c.store.SharedWith(ctx, req.GetUserId(), validIDs(req.GetOtherUserIds()))
			cancel()
			if err != nil {
				c.log.Warn("shared rooms", "user", req.GetUserId(), "err", err)
				resp.Error = "unavailable"
			}
			resp.VisibleUserIds = users
		}
		if b, err := proto.Marshal(&resp); err == nil && m.Reply != "" {
			_ = m.Respond(b)
		}
	})
	if err != nil {
		return fmt.Errorf("subscribe shared rooms: %w", err)
	}
	c.subs = append(c.subs, sub)
	return nil
}

func validIDs(ids []string) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if ValidID(id) {
			out = append(out, id)
		}
	}
	return out
}

// Close stops subscriptions and waits for queued deliveries until ctx ends.
func (c *Core) Close(ctx context.Context) {
	for _, s := range c.subs {
		_ = s.Unsubscribe()
	}
	close(c.stop)
	<-c.done
	<-c.rolesDone
	c.typing.stopAll()
	c.joins.Close()
	if err := c.seq.Close(ctx); err != nil {
		c.log.Warn("room summaries not written before shutdown", "err", err)
	}
	c.fanout.Close(ctx)
}

func (c *Core) janitor() {
	defer close(c.done)
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			c.roster.Sweep()
			c.typing.sweep(time.Now())
		}
	}
}

// readHistory reads a history page. Concurrent reads of the latest page of one
// room (a join storm: every joiner asks for it) share one store read, so a
// caller may get a read that started up to one read's duration before its
// request. That widens, by that much, a window every join has anyway (a message
// stored after the history read and fanned out before the edge registers the
// join): the client sees such a message's seq as a gap at the next message and
// fills it from history (docs/protocol.md, resume and gaps).
func (c *Core) readHistory(ctx context.Context, q store.HistoryQuery) ([]store.Message, bool, error) {
	if !q.Latest {
		return c.store.History(ctx, q)
	}
	type page struct {
		msgs []store.Message
		more bool
	}
	key := fmt.Sprintf("%s\x00%d", q.RoomID, q.Limit)
	v, err, _ := c.latest.Do(key, func() (any, error) {
		// Not the first caller's ctx: its cancellation must not fail the others.
		rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		msgs, more, err := c.store.History(rctx, q)
		return page{msgs, more}, err
	})
	if err != nil {
		return nil, false, err
	}
	p := v.(page)
	return p.msgs, p.more, nil
}

// ---- access ----

// ErrArchived means the room is archived (read-only).
var ErrArchived = errors.New("room is archived")

// room returns the cached state of roomID; not_found when it does not exist.
func (c *Core) room(ctx context.Context, roomID string) (*roster.State, error) {
	st, err := c.roster.Get(ctx, roomID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, command.NotFound("room %q not found", roomID)
	}
	if err != nil {
		if ctx.Err() != nil && !errors.Is(err, command.ErrUnavailable) && !errors.Is(err, store.ErrUnavailable) {
			err = fmt.Errorf("%w: %w", command.ErrUnavailable, err)
		}
		return nil, fmt.Errorf("load room %s: %w", roomID, err)
	}
	return st, nil
}

// member returns the room and userID's role, or forbidden for non-members.
func (c *Core) member(ctx context.Context, roomID, userID string) (*roster.State, string, error) {
	st, err := c.room(ctx, roomID)
	if err != nil {
		return nil, "", err
	}
	role, ok := st.Role(userID)
	if !ok {
		return nil, "", command.Forbidden("not a member of room %q", roomID)
	}
	return st, role, nil
}

// canPost is the posting rule: readonly members never post; in announcement rooms
// only owners and teachers (by membership role) post; archived rooms take nothing.
func canPost(st *roster.State, role string) error {
	switch {
	case st.Room.Archived:
		return command.Forbidden("room %q is archived", st.Room.ID)
	case role == store.RoleReadonly:
		return command.Forbidden("readonly members cannot post")
	case st.Room.Type == store.TypeAnnouncement && role != store.RoleOwner && role != store.RoleTeacher:
		return command.Forbidden("only owners and teachers post in announcement rooms")
	}
	return nil
}

// canDelete: the sender, the room's owners and teachers (membership role), and
// members whose token carries the "teacher" role.
func canDelete(role string, tokenRoles []string, m *store.Message, userID string) bool {
	return m.SenderID == userID || role == store.RoleOwner || role == store.RoleTeacher ||
		slices.Contains(tokenRoles, store.RoleTeacher)
}

// ---- outbound ----

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("encode event: %v", err)) // only our own plain structs are encoded
	}
	return b
}

// publishUser sends ob to one user's connections.
func (c *Core) publishUser(userID string, ob *edgev1.Outbound) {
	b, err := proto.Marshal(ob)
	if err == nil {
		err = c.nc.Publish(subject.User(userID), b)
	}
	if err != nil {
		c.log.Warn("publish to user", "user", userID, "event", ob.GetEvent(), "err", err)
	}
}

// roomEvent queues ob for the room's members (except exceptUser) in room order.
func (c *Core) roomEvent(roomID string, ob *edgev1.Outbound, exceptUser string) {
	b, err := proto.Marshal(ob)
	if err != nil {
		c.log.Error("fan-out: marshal", "room", roomID, "event", ob.GetEvent(), "err", err)
		return
	}
	c.fanout.Enqueue(roomID, pipeline.Delivery{Payload: b, Except: exceptUser})
}

// deliverMessages is the sequencer's commit hook: chat-message to joined
// connections, room-updated to the members' other connections. Each message is
// encoded once for every member.
func (c *Core) deliverMessages(ctx context.Context, roomID string, msgs []store.Message) {
	ds := make([]pipeline.Delivery, 0, len(msgs))
	for _, m := range msgs {
		ob := &edgev1.Outbound{
			Event: "chat-message", Data: mustJSON(map[string]any{"message": m}),
			RoomId: roomID, Seq: m.Seq,
			AltEvent: "room-updated", AltData: mustJSON(map[string]any{"roomId": roomID, "lastSeq": m.Seq, "lastMessage": m}),
		}
		b, err := proto.Marshal(ob)
		if err != nil {
			c.log.Error("fan-out: marshal", "room", roomID, "seq", m.Seq, "err", err)
			continue
		}
		ds = append(ds, pipeline.Delivery{Payload: b, Trace: ctx})
	}
	c.fanout.Enqueue(roomID, ds...)
}

type membershipEvent struct {
	RoomID string `json:"roomId"`
	Change string `json:"change"`
	Role   string `json:"role"`
}

// membershipChanged applies deltas to the local cache and tells every instance;
// without deltas (a change of the room itself) the room is dropped everywhere.
// A change affecting many users is published in chunks (bounded messages).
func (c *Core) membershipChanged(roomID string, deltas ...roster.Delta) {
	at := time.Now().UnixNano()
	if len(deltas) == 0 {
		c.roster.Invalidate(roomID)
	} else {
		c.roster.Apply(roomID, deltas, at)
	}
	for first := true; first || len(deltas) > 0; first = false {
		chunk := deltas[:min(len(deltas), maxDeltasPerMessage)]
		deltas = deltas[len(chunk):]
		b, _ := proto.Marshal(&chatv1.MembershipChanged{RoomId: roomID, Members: toProto(chunk), ChangedAtUnixNs: at})
		if err := c.nc.Publish(subject.Membership(roomID), b); err != nil {
			c.log.Warn("publish membership change", "room", roomID, "err", err)
		}
	}
}

// maxDeltasPerMessage bounds one MembershipChanged (about 40 bytes a delta).
const maxDeltasPerMessage = 1000

func toProto(ds []roster.Delta) []*chatv1.MemberDelta {
	out := make([]*chatv1.MemberDelta, len(ds))
	for i, d := range ds {
		out[i] = &chatv1.MemberDelta{UserId: d.UserID, Role: d.Role}
	}
	return out
}

func fromProto(ds []*chatv1.MemberDelta) []roster.Delta {
	out := make([]roster.Delta, 0, len(ds))
	for _, d := range ds {
		if d.GetUserId() != "" {
			out = append(out, roster.Delta{UserID: d.GetUserId(), Role: d.GetRole()})
		}
	}
	return out
}

// notifyAdded tells userID they were added to roomID (or their role changed).
func (c *Core) notifyAdded(roomID, userID, role string) {
	c.publishUser(userID, &edgev1.Outbound{Event: "room-membership",
		Data: mustJSON(membershipEvent{RoomID: roomID, Change: "added", Role: role})})
}

// notifyRemoved cuts userID off roomID on every connection at once (the edge
// applies control.remove_rooms before anything later on the subject).
func (c *Core) notifyRemoved(roomID, userID, role string) {
	c.publishUser(userID, &edgev1.Outbound{Event: "room-membership",
		Data:    mustJSON(membershipEvent{RoomID: roomID, Change: "removed", Role: role}),
		Control: &edgev1.Control{RemoveRooms: []string{roomID}}})
}
