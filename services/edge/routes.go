package edge

import "github.com/talim/realtime/pkg/subject"

// Services that own client events.
const (
	svcChat         = "chat"
	svcNotification = "notification"
	svcPresence     = "presence"
)

// routeTable is THE event → service routing table (docs/CONTRACTS.md). Edge-local
// events (auth-refresh, ping) are handled in commands.go.
var routeTable = map[string]string{
	"join-chat-room":             svcChat,
	"leave-chat-room":            svcChat,
	"send-chat-message":          svcChat,
	"get-chat-room-history":      svcChat,
	"mark-message-read":          svcChat,
	"typing":                     svcChat,
	"edit-chat-message":          svcChat,
	"delete-chat-message":        svcChat,
	"list-rooms":                 svcChat,
	"open-direct-room":           svcChat,
	"oversight-room-history":     svcChat,
	"report-message":             svcChat,
	"block-user":                 svcChat,
	"unblock-user":               svcChat,
	"mute-room":                  svcChat,
	"release-held-message":       svcChat,
	"list-notifications":         svcNotification,
	"mark-notification-read":     svcNotification,
	"ack-notification":           svcNotification,
	"register-push-subscription": svcNotification,
	"remove-push-subscription":   svcNotification,
	"get-push-config":            svcNotification,
	"subscribe-presence":         svcPresence,
	"unsubscribe-presence":       svcPresence,
	"set-status":                 svcPresence,
	"get-preferences":            svcNotification,
	"set-preferences":            svcNotification,
}

// eventJoinRoom is the join the edge gates (joingate.go).
const eventJoinRoom = "join-chat-room"

// Edge-local events.
const (
	eventAuthRefresh = "auth-refresh"
	eventPing        = "ping"
)

// route is a resolved event: its service and NATS subject, built once.
type route struct {
	event   string
	service string
	subject string
}

// routes maps every forwarded event to its route; lookups with routes[string(b)]
// do not allocate.
var routes = func() map[string]*route {
	m := make(map[string]*route, len(routeTable))
	for ev, svc := range routeTable {
		m[ev] = &route{event: ev, service: svc, subject: subject.Command(svc, ev)}
	}
	return m
}()

// eventLabel bounds the metrics label of an event name.
func eventLabel(ev []byte) string {
	if r, ok := routes[string(ev)]; ok {
		return r.event
	}
	switch string(ev) {
	case eventAuthRefresh:
		return eventAuthRefresh
	case eventPing:
		return eventPing
	}
	return "unknown"
}
