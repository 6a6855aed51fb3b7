package push

import (
	"context"
	"time"
)

// Channel is the channel name the pusher gives the Gate.
const Channel = "push"

// Gate decides whether and when a push may be delivered (preferences, quiet hours,
// the school calendar). Decide must be safe for concurrent use. allowed false drops
// the push; a notBefore after now delays it until then; an error retries later.
type Gate interface {
	Decide(ctx context.Context, userID, channel, category string, urgent bool, now time.Time) (allowed bool, notBefore time.Time, err error)
}

// AllowAll is the Gate used until preferences are wired: every push now.
type AllowAll struct{}

var _ Gate = AllowAll{}

// Decide allows every push at once.
func (AllowAll) Decide(context.Context, string, string, string, bool, time.Time) (bool, time.Time, error) {
	return true, time.Time{}, nil
}

// Presence tells which users have a live connection; they get the in-app event
// instead of a push.
type Presence interface {
	Online(ctx context.Context, userIDs []string) (map[string]bool, error)
}
