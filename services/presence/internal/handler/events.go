package handler

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/talim/realtime/pkg/subject"
	presencev1 "github.com/talim/realtime/proto/talim/presence/v1"
	"github.com/talim/realtime/services/presence/internal/core"
	"github.com/talim/realtime/services/presence/internal/state"
)

// Subjects is what the event loop consumes: the edges' connection events and
// heartbeats and the replicas' internal events. Subscribe them all to the one
// channel given to RunEvents.
var Subjects = []string{subject.PresenceConn + ">", subject.PresenceHeartbeat + ">", core.InternalPrefix + "*"}

// RunEvents applies edge and replica events in arrival order and fires timers
// (grace ends, edge expiry) until ctx ends. It is the only goroutine that feeds
// the core edge events.
func (h *Handler) RunEvents(ctx context.Context, events <-chan *nats.Msg) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-events:
			h.handleEvent(m, time.Now())
		case <-timer.C:
		}
		next := h.core.Advance(time.Now())
		timer.Reset(max(time.Until(next), time.Millisecond))
	}
}

func (h *Handler) handleEvent(m *nats.Msg, now time.Time) {
	switch {
	case strings.HasPrefix(m.Subject, subject.PresenceConn):
		var ev presencev1.ConnectionEvent
		if err := proto.Unmarshal(m.Data, &ev); err != nil {
			h.log.Warn("bad connection event", "subject", m.Subject, "err", err)
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
			h.core.Connected(edge, ev.GetConnectionId(), ev.GetUserId(), ev.GetAtUnixMs(), now)
		case presencev1.ConnectionEvent_KIND_DISCONNECTED:
			h.core.Disconnected(edge, ev.GetConnectionId(), ev.GetAtUnixMs(), now)
		}
	case strings.HasPrefix(m.Subject, subject.PresenceHeartbeat):
		var hb presencev1.Heartbeat
		if err := proto.Unmarshal(m.Data, &hb); err != nil {
			h.log.Warn("bad heartbeat", "subject", m.Subject, "err", err)
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
		h.core.Heartbeat(edge, list, interval, hb.GetAtUnixMs(), hb.GetStopping(), now)
	case m.Subject == core.SubjectStatus:
		var ev core.StatusEvent
		if err := json.Unmarshal(m.Data, &ev); err != nil || !state.ValidStatus(ev.Status) || ev.UserID == "" {
			h.log.Warn("bad status event", "err", err)
			return
		}
		h.core.ApplyStatus(ev, now)
	case m.Subject == core.SubjectWatch:
		var ev core.WatchEvent
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			h.log.Warn("bad watch event", "err", err)
			return
		}
		h.core.ApplyWatch(ev)
	}
}

// edgeID prefers the id in the message and falls back to the subject's last token.
func edgeID(fromMsg, subj, prefix string) string {
	if fromMsg != "" {
		return fromMsg
	}
	return strings.TrimPrefix(subj, prefix)
}
