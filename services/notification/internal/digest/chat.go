package digest

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/nats-io/nats.go"

	"github.com/talim/realtime/pkg/subject"
)

// SubjectUnreadDirect is the NATS request chat answers with a user's direct rooms
// that have unread messages (services/chat/internal/core/unread_direct.go).
const SubjectUnreadDirect = subject.ChatUnreadDirect

// ChatDirects asks chat over NATS.
type ChatDirects struct {
	NC *nats.Conn
}

// UnreadDirect implements Directs.
func (c ChatDirects) UnreadDirect(ctx context.Context, userID string) ([]DirectRoom, error) {
	req, err := json.Marshal(map[string]string{"userId": userID})
	if err != nil {
		return nil, err
	}
	m, err := c.NC.RequestWithContext(ctx, SubjectUnreadDirect, req)
	if err != nil {
		return nil, fmt.Errorf("ask chat for unread direct rooms: %w", err)
	}
	var resp struct {
		Rooms []DirectRoom `json:"rooms"`
		Error string       `json:"error"`
	}
	if err := json.Unmarshal(m.Data, &resp); err != nil {
		return nil, fmt.Errorf("unread direct rooms reply: %w", err)
	}
	if resp.Error != "" {
		return nil, fmt.Errorf("unread direct rooms: %s", resp.Error)
	}
	return resp.Rooms, nil
}
