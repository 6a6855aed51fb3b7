package presence

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/talim/realtime/pkg/subject"
	presencev1 "github.com/talim/realtime/proto/talim/presence/v1"
	"github.com/talim/realtime/services/presence/internal/state"
)

// Internal subjects between presence replicas (JSON). Only presence publishes them.
const (
	internalPrefix = "talim.presence.v1.internal."
	// subjectStatus carries statusEvent: a set-status handled by one replica.
	subjectStatus = internalPrefix + "status"
	// subjectWatch carries watchEvent: a change of a connection's subscriptions.
	subjectWatch = internalPrefix + "watch"
)

type statusEvent struct {
	Origin   string `json:"origin"`
	UserID   string `json:"userId"`
	Status   string `json:"status"`
	AtUnixMs int64  `json:"atUnixMs"`
}

type watchEvent struct {
	Origin       string   `json:"origin"`
	EdgeID       string   `json:"edgeId"`
	ConnectionID string   `json:"connectionId"`
	Add          []string `json:"add,omitempty"`
	Remove       []string `json:"remove,omitempty"`
}

// lastSeenLayout is RFC 3339 with milliseconds, in UTC ("Z").
const lastSeenLayout = "2006-01-02T15:04:05.000Z07:00"

func formatMs(ms int64) string {
	if ms <= 0 {
		return ""
	}
	return time.UnixMilli(ms).UTC().Format(lastSeenLayout)
}

// loop applies edge and replica events in arrival order and fires timers (grace
// ends, edge expiry). It is the only goroutine that feeds the tracker edge events.
func (s *Service) loop(ctx context.Context, events <-chan *nats.Msg) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-events:
			s.handleEvent(m, time.Now())
		case <-timer.C:
		}
		r, next := s.tracker.Advance(time.Now())
		s.apply(r)
		timer.Reset(max(time.Until(next), time.Millisecond))
	}
}

func (s *Service) handleEvent(m *nats.Msg, now time.Time) {
	switch {
	case strings.HasPrefix(m.Subject, subject.PresenceConn):
		var ev presencev1.ConnectionEvent
		if err := proto.Unmarshal(m.Data, &ev); err != nil {
			s.log.Warn("bad connection event", "subject", m.Subject, "err", err)
			return
		}
		edge := edgeID(ev.GetEdgeId(), m.Subject, subject.PresenceConn)
		if ev.GetConnectionId() == "" {
			return
		}
		switch ev.GetKind() {
		case presencev1.ConnectionEvent_KIND_CONNECTED:
			if ev.GetUserId() == "" {
				return
			}
			s.apply(s.tracker.Connected(edge, ev.GetConnectionId(), ev.GetUserId(), ev.GetAtUnixMs(), now))
		case presencev1.ConnectionEvent_KIND_DISCONNECTED:
			s.apply(s.tracker.Disconnected(edge, ev.GetConnectionId(), ev.GetAtUnixMs(), now))
		}
	case strings.HasPrefix(m.Subject, subject.PresenceHeartbeat):
		var hb presencev1.Heartbeat
		if err := proto.Unmarshal(m.Data, &hb); err != nil {
			s.log.Warn("bad heartbeat", "subject", m.Subject, "err", err)
			return
		}
		edge := edgeID(hb.GetEdgeId(), m.Subject, subject.PresenceHeartbeat)
		list := make([]state.HeartbeatConn, 0, len(hb.GetConnections()))
		for _, c := range hb.GetConnections() {
			if c.GetConnectionId() != "" && c.GetUserId() != "" {
				list = append(list, state.HeartbeatConn{Conn: c.GetConnectionId(), User: c.GetUserId()})
			}
		}
		interval := time.Duration(hb.GetIntervalMs()) * time.Millisecond
		s.apply(s.tracker.Heartbeat(edge, list, interval, hb.GetAtUnixMs(), hb.GetStopping(), now))
	case m.Subject == subjectStatus:
		var ev statusEvent
		if err := json.Unmarshal(m.Data, &ev); err != nil || !state.ValidStatus(ev.Status) || ev.UserID == "" {
			s.log.Warn("bad status event", "err", err)
			return
		}
		if ev.Origin == s.rt.InstanceID {
			return // applied when the command was handled
		}
		s.apply(s.tracker.SetStatus(ev.UserID, ev.Status, ev.AtUnixMs, now))
	case m.Subject == subjectWatch:
		var ev watchEvent
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			s.log.Warn("bad watch event", "err", err)
			return
		}
		if ev.Origin == s.rt.InstanceID {
			return
		}
		s.watches.Apply(ev.EdgeID, ev.ConnectionID, ev.Add, ev.Remove)
	}
}

// edgeID prefers the id in the message and falls back to the subject's last token.
func edgeID(fromMsg, subj, prefix string) string {
	if fromMsg != "" {
		return fromMsg
	}
	return strings.TrimPrefix(subj, prefix)
}

// apply publishes a result's changes, queues lastSeenAt writes and forgets the
// subscriptions of closed connections.
func (s *Service) apply(r state.Result) {
	for _, c := range r.Changes {
		s.publish(c)
	}
	for _, c := range r.GoneConns {
		s.watches.DropConn(c.Edge, c.Conn)
	}
	for _, e := range r.GoneEdges {
		s.watches.DropEdge(e)
	}
}

func (s *Service) publish(c state.Change) {
	b, err := proto.Marshal(&presencev1.StatusChange{
		UserId: c.UserID, Status: c.Status, LastSeenAt: formatMs(c.LastSeenMs), Version: c.Version,
	})
	if err != nil {
		s.log.Error("marshal status change", "user", c.UserID, "err", err)
		return
	}
	if err := s.rt.NC.Publish(subject.PresenceChangedFor(c.UserID), b); err != nil {
		s.log.Warn("publish status change", "user", c.UserID, "err", err)
		return
	}
	s.m.published.WithLabelValues(c.Status).Inc()
	s.log.Debug("presence changed", "user", c.UserID, "status", c.Status, "version", c.Version)
	if c.PersistLastSeen && c.LastSeenMs > 0 {
		if err := s.writer.Save(c.UserID, time.UnixMilli(c.LastSeenMs)); err != nil {
			s.m.writesDropped.Inc()
		}
	}
}

func (s *Service) broadcast(subj string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		s.log.Error("marshal internal event", "subject", subj, "err", err)
		return
	}
	if err := s.rt.NC.Publish(subj, b); err != nil {
		s.log.Warn("publish internal event", "subject", subj, "err", err)
	}
}
