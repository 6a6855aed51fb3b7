// Package core is the presence domain: it applies the edges' connection events
// and heartbeats and the replicas' internal events to the soft state
// (internal/state), publishes every change, records presence subscriptions
// (internal/watch), answers subscribe-presence with what the viewer may see
// (internal/visibility), stores chosen statuses and lastSeenAt (internal/store),
// and answers talim.presence.v1.query. Package handler decodes NATS messages and
// calls it; the design is in the doc of package presence (services/presence/doc.go).
package core

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/talim/realtime/pkg/subject"
	"github.com/talim/realtime/pkg/webhook"
	presencev1 "github.com/talim/realtime/proto/talim/presence/v1"
	"github.com/talim/realtime/services/presence/internal/state"
	"github.com/talim/realtime/services/presence/internal/store"
	"github.com/talim/realtime/services/presence/internal/visibility"
	"github.com/talim/realtime/services/presence/internal/watch"
)

// Internal subjects between presence replicas (JSON). Only presence publishes them.
const (
	InternalPrefix = "talim.presence.v1.internal."
	// SubjectStatus carries StatusEvent: a set-status handled by one replica.
	SubjectStatus = InternalPrefix + "status"
	// SubjectWatch carries WatchEvent: a change of a connection's subscriptions.
	SubjectWatch = InternalPrefix + "watch"
)

// StatusEvent is a set-status handled by replica Origin.
type StatusEvent struct {
	Origin   string `json:"origin"`
	UserID   string `json:"userId"`
	Status   string `json:"status"`
	AtUnixMs int64  `json:"atUnixMs"`
}

// WatchEvent is a change of a connection's subscriptions made by replica Origin.
type WatchEvent struct {
	Origin       string   `json:"origin"`
	EdgeID       string   `json:"edgeId"`
	ConnectionID string   `json:"connectionId"`
	Add          []string `json:"add,omitempty"`
	Remove       []string `json:"remove,omitempty"`
}

// StatusUnknown is what a user whose presence the viewer may not see looks like.
const StatusUnknown = "unknown"

// LastSeenLayout is RFC 3339 with milliseconds, in UTC ("Z").
const LastSeenLayout = "2006-01-02T15:04:05.000Z07:00"

func formatMs(ms int64) string {
	if ms <= 0 {
		return ""
	}
	return time.UnixMilli(ms).UTC().Format(LastSeenLayout)
}

// Options configures a Core.
type Options struct {
	NC *nats.Conn
	// InstanceID tells this replica's internal events from the others'.
	InstanceID string
	Logger     *slog.Logger
	Registry   prometheus.Registerer
	Tracker    *state.Tracker
	Watches    *watch.Sets
	Visibility visibility.Checker
	Store      *store.Store
	// Writer stores lastSeenAt in the background.
	Writer *store.Writer
	// MaxSubscriptions is the number of users one connection may watch.
	MaxSubscriptions int
	// Hooks receives presence.changed webhook events (nil: none).
	Hooks *HookQueue
}

// Core is one replica's presence state and logic. Edge and internal events must
// be applied from one goroutine (package handler's event loop); the other methods
// are safe for concurrent use.
type Core struct {
	nc       *nats.Conn
	instance string
	log      *slog.Logger
	tracker  *state.Tracker
	watches  *watch.Sets
	vis      visibility.Checker
	store    *store.Store
	writer   *store.Writer
	maxSubs  int
	hooks    *HookQueue
	m        *metrics
}

// New returns a core; it registers the metrics on o.Registry.
func New(o Options) *Core {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Core{
		nc: o.NC, instance: o.InstanceID, log: o.Logger, tracker: o.Tracker, watches: o.Watches, vis: o.Visibility,
		store: o.Store, writer: o.Writer, maxSubs: o.MaxSubscriptions, hooks: o.Hooks, m: newMetrics(o.Registry, o.Tracker, o.Watches),
	}
}

// MaxSubscriptions is the number of users one connection may watch.
func (c *Core) MaxSubscriptions() int { return c.maxSubs }

// LimitError is returned by Subscribe when the connection would watch more than
// Max users; it held Held before the call.
type LimitError struct{ Max, Held int }

func (e *LimitError) Error() string {
	return "presence subscription limit reached"
}

// Item is one user's presence as a viewer sees it; LastSeenAt is nil when
// unknown or never seen.
type Item struct {
	UserID     string  `json:"userId"`
	Status     string  `json:"status"`
	LastSeenAt *string `json:"lastSeenAt"`
}

// Subscribe records that connection conn of edge watches ids (at most
// MaxSubscriptions per connection, else a *LimitError), and returns the current
// presence of every id (StatusUnknown for users viewer may not see) and the ids
// viewer may see, which the edge is to watch.
func (c *Core) Subscribe(ctx context.Context, viewer, edge, conn string, ids []string) ([]Item, []string, error) {
	if before, err := c.watches.Add(edge, conn, ids, c.maxSubs); errors.Is(err, watch.ErrLimit) {
		return nil, nil, &LimitError{Max: c.maxSubs, Held: before}
	}
	c.broadcast(SubjectWatch, WatchEvent{Origin: c.instance, EdgeID: edge, ConnectionID: conn, Add: ids})

	others := make([]string, 0, len(ids))
	for _, id := range ids {
		if id != viewer {
			others = append(others, id)
		}
	}
	visible := map[string]bool{viewer: true}
	if len(others) > 0 {
		v, err := c.vis.Visible(ctx, viewer, others)
		if err != nil {
			// Fail closed: nobody else is visible until chat answers again.
			c.m.visibilityErrs.Inc()
			c.log.WarnContext(ctx, "visibility check failed; answering unknown", "user", viewer, "err", err)
			v = nil
		}
		for id, ok := range v {
			if ok {
				visible[id] = true
			}
		}
	}

	var shown []string
	for _, id := range ids {
		if visible[id] {
			shown = append(shown, id)
		}
	}
	views := c.tracker.View(shown)
	var needStore []string
	for i, v := range views {
		if v.Status == state.Offline && v.LastSeenMs == 0 {
			needStore = append(needStore, shown[i])
		}
	}
	stored := map[string]time.Time{}
	if len(needStore) > 0 {
		var err error
		if stored, err = c.store.LastSeen(ctx, needStore); err != nil {
			c.log.WarnContext(ctx, "load lastSeenAt; answering null", "err", err)
		}
	}
	nowStr := time.Now().UTC().Format(LastSeenLayout)
	byID := make(map[string]Item, len(shown))
	for i, v := range views {
		item := Item{UserID: shown[i], Status: v.Status}
		switch {
		case v.Status != state.Offline:
			item.LastSeenAt = &nowStr // online, away or busy: seen now
		case v.LastSeenMs > 0:
			ls := formatMs(v.LastSeenMs)
			item.LastSeenAt = &ls
		default:
			if t, ok := stored[shown[i]]; ok {
				ls := t.UTC().Format(LastSeenLayout)
				item.LastSeenAt = &ls
			}
		}
		byID[shown[i]] = item
	}
	items := make([]Item, 0, len(ids))
	for _, id := range ids {
		if it, ok := byID[id]; ok {
			items = append(items, it)
		} else {
			items = append(items, Item{UserID: id, Status: StatusUnknown})
		}
	}
	return items, shown, nil
}

// Unsubscribe forgets that connection conn of edge watches ids.
func (c *Core) Unsubscribe(edge, conn string, ids []string) {
	c.watches.Remove(edge, conn, ids)
	c.broadcast(SubjectWatch, WatchEvent{Origin: c.instance, EdgeID: edge, ConnectionID: conn, Remove: ids})
}

// SetStatus stores user's chosen status (state.ValidStatus), applies it here and
// broadcasts it to the other replicas, which apply it with the same timestamp (and
// so publish the same version).
func (c *Core) SetStatus(ctx context.Context, user, status string) error {
	now := time.Now()
	if err := c.store.SetStatus(ctx, user, status, now); err != nil {
		return err
	}
	// Stored with millisecond precision; use the same value everywhere.
	atMs := now.UnixMilli()
	c.apply(c.tracker.SetStatus(user, status, atMs, now))
	c.broadcast(SubjectStatus, StatusEvent{Origin: c.instance, UserID: user, Status: status, AtUnixMs: atMs})
	return nil
}

// Query returns which of ids hold a live connection (or are in their grace
// period), whatever their chosen status, and the status others see of every id.
func (c *Core) Query(ids []string) (online []string, statuses map[string]string) {
	online = []string{}
	statuses = make(map[string]string, len(ids))
	for i, v := range c.tracker.View(ids) {
		statuses[ids[i]] = v.Status
		if v.Connected {
			online = append(online, ids[i])
		}
	}
	return online, statuses
}

// Connected applies an edge's connect event.
func (c *Core) Connected(edge, conn, user string, atMs int64, now time.Time) {
	c.apply(c.tracker.Connected(edge, conn, user, atMs, now))
}

// Disconnected applies an edge's disconnect event.
func (c *Core) Disconnected(edge, conn string, atMs int64, now time.Time) {
	c.apply(c.tracker.Disconnected(edge, conn, atMs, now))
}

// Heartbeat applies an edge's heartbeat.
func (c *Core) Heartbeat(edge string, conns []state.HeartbeatConn, interval time.Duration, atMs int64, stopping bool, now time.Time) {
	c.apply(c.tracker.Heartbeat(edge, conns, interval, atMs, stopping, now))
}

// ApplyStatus applies another replica's set-status; this replica's own were
// applied when the command was handled.
func (c *Core) ApplyStatus(ev StatusEvent, now time.Time) {
	if ev.Origin == c.instance {
		return
	}
	c.apply(c.tracker.SetStatus(ev.UserID, ev.Status, ev.AtUnixMs, now))
}

// ApplyWatch applies another replica's change of a connection's subscriptions.
func (c *Core) ApplyWatch(ev WatchEvent) {
	if ev.Origin == c.instance {
		return
	}
	c.watches.Apply(ev.EdgeID, ev.ConnectionID, ev.Add, ev.Remove)
}

// Advance fires the timers due by now (grace ends, edge expiry) and returns when
// the next one is due.
func (c *Core) Advance(now time.Time) time.Time {
	r, next := c.tracker.Advance(now)
	c.apply(r)
	return next
}

// apply publishes a result's changes, queues lastSeenAt writes and forgets the
// subscriptions of closed connections.
func (c *Core) apply(r state.Result) {
	for _, ch := range r.Changes {
		c.publish(ch)
	}
	for _, gc := range r.GoneConns {
		c.watches.DropConn(gc.Edge, gc.Conn)
	}
	for _, e := range r.GoneEdges {
		c.watches.DropEdge(e)
	}
}

func (c *Core) publish(ch state.Change) {
	b, err := proto.Marshal(&presencev1.StatusChange{
		UserId: ch.UserID, Status: ch.Status, LastSeenAt: formatMs(ch.LastSeenMs), Version: ch.Version,
	})
	if err != nil {
		c.log.Error("marshal status change", "user", ch.UserID, "err", err)
		return
	}
	if err := c.nc.Publish(subject.PresenceChangedFor(ch.UserID), b); err != nil {
		c.log.Warn("publish status change", "user", ch.UserID, "err", err)
		return
	}
	c.m.published.WithLabelValues(ch.Status).Inc()
	if !c.hooks.add(webhook.Event{Type: webhook.PresenceChanged, Key: ch.UserID + "\x00" + strconv.FormatInt(ch.Version, 10),
		Time: time.Now(), Data: map[string]any{"userId": ch.UserID, "status": ch.Status,
			"lastSeenAt": formatMs(ch.LastSeenMs), "version": ch.Version}}) {
		c.log.Warn("presence webhook queue full: event dropped", "user", ch.UserID)
	}
	c.log.Debug("presence changed", "user", ch.UserID, "status", ch.Status, "version", ch.Version)
	if ch.PersistLastSeen && ch.LastSeenMs > 0 {
		if err := c.writer.Save(ch.UserID, time.UnixMilli(ch.LastSeenMs)); err != nil {
			c.m.writesDropped.Inc()
		}
	}
}

func (c *Core) broadcast(subj string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		c.log.Error("marshal internal event", "subject", subj, "err", err)
		return
	}
	if err := c.nc.Publish(subj, b); err != nil {
		c.log.Warn("publish internal event", "subject", subj, "err", err)
	}
}
