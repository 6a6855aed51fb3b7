package core

import (
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/talim/realtime/pkg/subject"
	notificationv1 "github.com/talim/realtime/proto/talim/notification/v1"
	"github.com/talim/realtime/services/chat/internal/roster"
	"github.com/talim/realtime/services/chat/internal/store"
)

// Limits of the push request chat publishes (proto ChatPushRequest).
const (
	maxMentions  = 20
	maxPushText  = 200
	maxMentionID = 128
)

// requestPush asks notification (talim.notification.v1.chat-push) to push m to the
// other member of a direct room, or to the members m mentions (docs/protocol.md
// "Web Push": "@" and a user id). Notification pushes only to those offline. It is
// a NATS publish into the client's buffer: it never waits for notification, and a
// lost request loses a push, never the message.
func (c *Core) requestPush(st *roster.State, m *store.Message) {
	req := &notificationv1.ChatPushRequest{RoomId: m.RoomID, MessageId: m.ID, SenderId: m.SenderID}
	if st.Room.Type == store.TypeDirect {
		req.Reason = notificationv1.ChatPushReason_CHAT_PUSH_REASON_DIRECT
		for _, shard := range st.Members().Shards {
			for _, u := range shard {
				if u != m.SenderID {
					req.RecipientIds = append(req.RecipientIds, u)
				}
			}
		}
	} else {
		req.Reason = notificationv1.ChatPushReason_CHAT_PUSH_REASON_MENTION
		for _, u := range Mentions(m.Content) {
			if _, member := st.Role(u); member && u != m.SenderID {
				req.RecipientIds = append(req.RecipientIds, u)
			}
		}
	}
	if len(req.RecipientIds) == 0 {
		return
	}
	text := m.Content
	if len(text) > maxPushText {
		text = strings.ToValidUTF8(text[:maxPushText], "")
	}
	req.Text = text
	b, err := proto.Marshal(req)
	if err == nil {
		err = c.nc.Publish(subject.NotificationChatPush, b)
	}
	if err != nil {
		c.log.Warn("push request not published", "room", m.RoomID, "err", err)
	}
}

// Mentions returns the distinct user ids mentioned in text, at most 20: "@" at the
// start or after a space, then [A-Za-z0-9_.:@-] characters, a trailing "." ":" or
// "-" not counted (docs/protocol.md "Web Push").
func Mentions(text string) []string {
	var out []string
	seen := map[string]bool{}
	for i := 0; i < len(text) && len(out) < maxMentions; i++ {
		if text[i] != '@' || (i > 0 && !isSpace(text[i-1])) {
			continue
		}
		j := i + 1
		for j < len(text) && isIDByte(text[j]) {
			j++
		}
		id := strings.TrimRight(text[i+1:j], ".:-")
		if id != "" && len(id) <= maxMentionID && !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
		i = j - 1
	}
	return out
}

func isSpace(b byte) bool { return b == ' ' || b == '\n' || b == '\t' || b == '\r' || b == '(' }

func isIDByte(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || strings.IndexByte("_.:@-", b) >= 0
}
