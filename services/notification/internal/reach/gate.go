package reach

import (
	"context"
	"fmt"
	"time"
)

// Gate decides whether and when a notification may take a channel to a user. It is
// the one place preferences, quiet hours and the school calendar are applied; Web
// Push and email digests ask it before sending. It is safe for concurrent use.
type Gate struct {
	st *Store
}

// NewGate returns a gate reading st.
func NewGate(st *Store) *Gate { return &Gate{st: st} }

// Decide answers for one notification of category (any string; unknown categories
// count as "general") on channel ("in-app", "push" or "email") to userID at now:
//
//   - allowed == false: the user (or the school's default) has switched this
//     channel off for this category; do not send, now or later. notBefore is zero.
//   - allowed == true and notBefore is zero: send now.
//   - allowed == true and notBefore is after now: now is in the user's quiet hours
//     or on a day without school; send at notBefore, when it ends. Ask again then
//     if the wait was long: preferences may have changed.
//
// In-app delivery and urgent notifications are never delayed (but an urgent
// notification still respects a channel switched off). err is non-nil only when
// the store could not be read or the channel or user id is invalid; callers should
// then retry later rather than send.
func (g *Gate) Decide(ctx context.Context, userID, channel, category string, urgent bool, now time.Time) (allowed bool, notBefore time.Time, err error) {
	if !ValidID(userID) {
		return false, time.Time{}, fmt.Errorf("decide: invalid user id")
	}
	if !ValidChannel(channel) {
		return false, time.Time{}, fmt.Errorf("decide: unknown channel %q", channel)
	}
	category = NormalizeCategory(category)
	u, err := g.st.User(ctx, userID)
	if err != nil {
		return false, time.Time{}, fmt.Errorf("decide: %w", err)
	}
	sc, err := g.st.School(ctx, u.Contact.SchoolID)
	if err != nil {
		return false, time.Time{}, fmt.Errorf("decide: %w", err)
	}
	return decide(&u.Prefs, sc, channel, category, urgent, now)
}

// decide is Decide on loaded documents.
func decide(p *Prefs, sc *School, channel, category string, urgent bool, now time.Time) (bool, time.Time, error) {
	if !Effective(p, sc, channel, category) {
		return false, time.Time{}, nil
	}
	if channel == ChannelInApp || urgent {
		return true, time.Time{}, nil
	}
	cal, err := NewCalendar(p, sc)
	if err != nil {
		return false, time.Time{}, fmt.Errorf("decide: %w", err)
	}
	next, err := cal.NextAllowed(now)
	if err != nil {
		return false, time.Time{}, fmt.Errorf("decide: %w", err)
	}
	if next.Equal(now) {
		return true, time.Time{}, nil
	}
	return true, next, nil
}
