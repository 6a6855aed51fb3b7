package push

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/talim/realtime/pkg/subject"
)

// maxQueryIDs is the most ids one talim.presence.v1.query takes
// (services/presence/doc.go "talim.presence.v1.query").
const maxQueryIDs = 10_000

// NATSPresence asks the presence service (talim.presence.v1.query).
type NATSPresence struct {
	NC      *nats.Conn
	Timeout time.Duration
}

var _ Presence = NATSPresence{}

// Online returns the users of ids with a live connection.
func (p NATSPresence) Online(ctx context.Context, ids []string) (map[string]bool, error) {
	online := make(map[string]bool)
	for start := 0; start < len(ids); start += maxQueryIDs {
		req, err := json.Marshal(map[string][]string{"userIds": ids[start:min(start+maxQueryIDs, len(ids))]})
		if err != nil {
			return nil, fmt.Errorf("presence query: %w", err)
		}
		qctx, cancel := context.WithTimeout(ctx, p.Timeout)
		msg, err := p.NC.RequestWithContext(qctx, subject.PresenceQuery, req)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("presence query: %w", err)
		}
		var resp struct {
			Online []string `json:"online"`
			Error  string   `json:"error"`
		}
		if err := json.Unmarshal(msg.Data, &resp); err != nil {
			return nil, fmt.Errorf("presence answer: %w", err)
		}
		if resp.Error != "" {
			return nil, fmt.Errorf("presence refused: %s", resp.Error)
		}
		for _, id := range resp.Online {
			online[id] = true
		}
	}
	return online, nil
}
