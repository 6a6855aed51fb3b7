// Package subject names every NATS subject Talim Realtime uses, in one place.
// See docs/architecture.md for who publishes and who subscribes.
package subject

import (
	"encoding/base64"
	"regexp"
	"strings"
)

// Subject prefixes and fixed subjects.
const (
	CommandPrefix     = "talim.cmd.v1."
	UserPrefix        = "talim.user.v1."
	PresenceConn      = "talim.presence.v1.conn."
	PresenceHeartbeat = "talim.presence.v1.heartbeat."
	PresenceChanged   = "talim.presence.v1.changed."
	PresenceQuery     = "talim.presence.v1.query"
	ChatMembership    = "talim.chat.v1.membership."
	ChatSharedRooms   = "talim.chat.v1.shared-rooms"
	// ChatPolicyChanged carries a school name: every chat instance drops its
	// cached policy of that school (docs/protocol.md "Safeguarding").
	ChatPolicyChanged = "talim.chat.v1.policy-changed"
	HealthPrefix      = "talim.health.v1."
	// NotificationChatPush carries chat's notificationv1.ChatPushRequest to the
	// notification service (docs/protocol.md "Web Push").
	NotificationChatPush = "talim.notification.v1.chat-push"
	// ChatUnreadDirect is the request notification's email digest makes for a
	// user's direct rooms with unread messages (JSON, docs/CONTRACTS.md).
	ChatUnreadDirect = "talim.chat.v1.unread-direct"
)

// safeToken matches ids that are used in subjects as they are.
var safeToken = regexp.MustCompile(`^[A-Za-z0-9_\-:@]{1,128}$`)

// Token encodes an id (user or room) as one NATS subject token. Ids made of
// [A-Za-z0-9_-:@] are used unchanged; anything else (dots, spaces, wildcards,
// non-ASCII) becomes "~" followed by unpadded base64url, so it can never span tokens
// or act as a wildcard.
func Token(id string) string {
	if safeToken.MatchString(id) {
		return id
	}
	return "~" + base64.RawURLEncoding.EncodeToString([]byte(id))
}

// Command is the subject an edge sends event to for service.
func Command(service, event string) string { return CommandPrefix + service + "." + event }

// CommandWildcard is what a service subscribes to (with queue group service).
func CommandWildcard(service string) string { return CommandPrefix + service + ".>" }

// EventFromCommand returns the event name of a command subject of service.
func EventFromCommand(service, subj string) string {
	return strings.TrimPrefix(subj, CommandPrefix+service+".")
}

// User is the per-user outbound subject.
func User(userID string) string { return UserPrefix + Token(userID) }

// PresenceChangedFor is the subject presence publishes userID's status changes on.
func PresenceChangedFor(userID string) string { return PresenceChanged + Token(userID) }

// Membership is the subject chat publishes membership changes of roomID on.
func Membership(roomID string) string { return ChatMembership + Token(roomID) }

// Health is the health request subject of service.
func Health(service string) string { return HealthPrefix + service }
