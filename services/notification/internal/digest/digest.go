package digest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"time"

	"github.com/talim/realtime/services/notification/internal/reach"
	"github.com/talim/realtime/services/notification/internal/store"
)

// Inbox gives a user's unread notifications created after since, newest first.
type Inbox interface {
	UnreadSince(ctx context.Context, userID string, since, now time.Time, limit int) ([]Item, error)
}

// Directs gives a user's direct rooms with unread messages.
type Directs interface {
	UnreadDirect(ctx context.Context, userID string) ([]DirectRoom, error)
}

// Gate is reach.Gate as the digest uses it.
type Gate interface {
	Decide(ctx context.Context, userID, channel, category string, urgent bool, now time.Time) (bool, time.Time, error)
}

// Users loads a user's preferences, contact and school.
type Users interface {
	Load(ctx context.Context, userID string) (*reach.User, *reach.School, error)
}

// Defaults of Options.
const (
	DefaultEveryHours = 24
	DefaultTick       = time.Minute
	DefaultLease      = 2 * time.Minute
	// DefaultLookbackHours is how many past hour buckets every tick polls: a user
	// whose due time passed while every instance was down longer than this is
	// found again only by Enrol (a preference or contact change).
	DefaultLookbackHours = 72
	DefaultMaxItems      = 20
	DefaultRetry         = 15 * time.Minute
	slotBatch            = 500
)

// Options configures a Runner.
type Options struct {
	Schedule *Schedule
	Inbox    Inbox
	Directs  Directs // nil: no direct messages in digests
	Gate     Gate
	Users    Users
	Sender   Sender
	// From is the sender address, PublicURL the https base of the unsubscribe
	// link (Handler), AppURL the link to the app.
	From, PublicURL, AppURL string
	Secret                  []byte
	EveryHours              int
	Tick, Lease, Retry      time.Duration
	LookbackHours           int
	MaxItems                int
	// Owner names this instance in leases.
	Owner string
	Now   func() time.Time
	Log   *slog.Logger
}

// Runner sends due digests. Several runners (instances) may share one schedule.
type Runner struct {
	o Options
}

// New returns a runner with defaults filled in.
func New(o Options) *Runner {
	if o.EveryHours <= 0 {
		o.EveryHours = DefaultEveryHours
	}
	if o.Tick <= 0 {
		o.Tick = DefaultTick
	}
	if o.Lease <= 0 {
		o.Lease = DefaultLease
	}
	if o.Retry <= 0 {
		o.Retry = DefaultRetry
	}
	if o.LookbackHours <= 0 {
		o.LookbackHours = DefaultLookbackHours
	}
	if o.MaxItems <= 0 {
		o.MaxItems = DefaultMaxItems
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Runner{o: o}
}

func (r *Runner) now() time.Time { return r.o.Now().UTC().Truncate(time.Millisecond) }

func (r *Runner) every(sc *reach.School) time.Duration {
	if sc != nil && sc.DigestEveryHours > 0 {
		return time.Duration(sc.DigestEveryHours) * time.Hour
	}
	return time.Duration(r.o.EveryHours) * time.Hour
}

// Enrol puts a user with an email address on the schedule (idempotent): the first
// digest is due now and covers the last interval. Users without an address are
// left out; whether the digest is on is checked when it is due.
func (r *Runner) Enrol(ctx context.Context, userID string) error {
	u, sc, err := r.o.Users.Load(ctx, userID)
	if err != nil {
		return fmt.Errorf("enrol %s: %w", userID, err)
	}
	if u.Contact.Email == "" {
		return nil
	}
	now := r.now()
	return r.o.Schedule.Enrol(ctx, userID, now, now.Add(-r.every(sc)))
}

// Run polls every Tick until ctx ends.
func (r *Runner) Run(ctx context.Context) {
	t := time.NewTicker(r.o.Tick)
	defer t.Stop()
	for {
		if _, err := r.RunOnce(ctx); err != nil && ctx.Err() == nil {
			r.o.Log.Warn("digest tick", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// RunOnce handles every due entry of the polled hour buckets and returns how many
// digests it sent.
func (r *Runner) RunOnce(ctx context.Context) (int, error) {
	now := r.now()
	sent := 0
	var errs []error
	for slot := slotOf(now) - int64(r.o.LookbackHours); slot <= slotOf(now); slot++ {
		es, err := r.o.Schedule.InSlot(ctx, slot, slotBatch)
		if err != nil {
			return sent, err
		}
		for i := range es {
			if ctx.Err() != nil {
				return sent, ctx.Err()
			}
			ok, err := r.process(ctx, &es[i])
			if err != nil {
				errs = append(errs, err)
			}
			if ok {
				sent++
			}
		}
	}
	return sent, errors.Join(errs...)
}

// digestID is the id (and Message-ID local part) of user's digest with cut-off cut.
func digestID(user string, cut time.Time) string {
	h := sha256.Sum256([]byte(user + "\x00" + strconv.FormatInt(cut.UnixMilli(), 10)))
	return "d_" + hex.EncodeToString(h[:16])
}

func (r *Runner) unsubscribeURL(user string) string {
	return r.o.PublicURL + UnsubscribePath + "?t=" + url.QueryEscape(SignUnsubscribe(r.o.Secret, user))
}

func (r *Runner) process(ctx context.Context, e *Entry) (bool, error) {
	now := r.now()
	ver, err := r.o.Schedule.Claim(ctx, e, r.o.Owner, now, r.o.Lease)
	if errors.Is(err, ErrLostLease) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	user := e.UserID
	log := r.o.Log.With("user", user)
	if e.Pending != "" {
		// A previous holder crashed between recording and finishing a send: the
		// email may be out. At most once: count it as sent.
		log.Warn("digest left pending by a crashed instance; not sending it again", "digest", e.Pending)
		return false, r.o.Schedule.Done(ctx, user, ver, now.Add(time.Duration(r.o.EveryHours)*time.Hour), e.PendingCut, nil)
	}
	u, sc, err := r.o.Users.Load(ctx, user)
	if err != nil {
		return false, errors.Join(err, r.o.Schedule.Done(ctx, user, ver, now.Add(r.o.Retry), time.Time{}, nil))
	}
	every := r.every(sc)
	if u.Contact.Email == "" || !reach.DigestEnabled(&u.Prefs, &u.Contact, sc) {
		return false, r.o.Schedule.Done(ctx, user, ver, now.Add(every), now, nil)
	}
	c, err := r.gather(ctx, u, sc, e.Since, now)
	if err != nil {
		return false, errors.Join(err, r.o.Schedule.Done(ctx, user, ver, now.Add(r.o.Retry), time.Time{}, nil))
	}
	if c.Empty() {
		return false, r.o.Schedule.Done(ctx, user, ver, now.Add(every), time.Time{}, nil)
	}
	cat := reach.CategoryChatDirect
	if len(c.Items) > 0 {
		cat = reach.NormalizeCategory(c.Items[0].Category)
	}
	allowed, notBefore, err := r.o.Gate.Decide(ctx, user, reach.ChannelEmail, cat, false, now)
	switch {
	case err != nil:
		return false, errors.Join(err, r.o.Schedule.Done(ctx, user, ver, now.Add(r.o.Retry), time.Time{}, nil))
	case !allowed:
		return false, r.o.Schedule.Done(ctx, user, ver, now.Add(every), time.Time{}, nil)
	case notBefore.After(now):
		log.Debug("digest waits for quiet hours to end", "until", notBefore)
		return false, r.o.Schedule.Done(ctx, user, ver, notBefore, time.Time{}, nil)
	}
	id := digestID(user, now)
	if ver, err = r.o.Schedule.MarkPending(ctx, user, ver, id, now); err != nil {
		return false, err
	}
	host := "talim"
	if pu, perr := url.Parse(r.o.PublicURL); perr == nil && pu.Hostname() != "" {
		host = pu.Hostname()
	}
	m, err := Build(&Envelope{ID: id + "@" + host, From: r.o.From, To: u.Contact.Email, Content: c, Date: now})
	if err == nil {
		err = r.o.Sender.Send(ctx, m)
	}
	if err != nil {
		log.Warn("digest not sent; retrying later", "digest", id, "err", err)
		return false, errors.Join(err, r.o.Schedule.Done(ctx, user, ver, now.Add(r.o.Retry), time.Time{}, nil))
	}
	log.Info("digest sent", "digest", id, "items", len(c.Items), "directs", len(c.Directs))
	return true, r.o.Schedule.Done(ctx, user, ver, now.Add(every), now, &now)
}

// gather collects what the digest says, leaving out categories the user does not
// want by email.
func (r *Runner) gather(ctx context.Context, u *reach.User, sc *reach.School, since, now time.Time) (*Content, error) {
	c := &Content{UserID: u.ID, AppURL: r.o.AppURL, UnsubscribeURL: r.unsubscribeURL(u.ID)}
	items, err := r.o.Inbox.UnreadSince(ctx, u.ID, since, now, 5*r.o.MaxItems)
	if err != nil {
		return nil, err
	}
	for _, it := range items {
		if !reach.Effective(&u.Prefs, sc, reach.ChannelEmail, reach.NormalizeCategory(it.Category)) {
			continue
		}
		if len(c.Items) < r.o.MaxItems {
			c.Items = append(c.Items, it)
		} else {
			c.MoreItems++
		}
	}
	if r.o.Directs != nil && reach.Effective(&u.Prefs, sc, reach.ChannelEmail, reach.CategoryChatDirect) {
		ds, err := r.o.Directs.UnreadDirect(ctx, u.ID)
		if err != nil {
			// The notifications still go out; the rooms are in the next digest.
			r.o.Log.Warn("digest without direct messages", "user", u.ID, "err", err)
		}
		for _, d := range ds {
			if d.Unread > 0 {
				c.Directs = append(c.Directs, d)
			}
		}
	}
	return c, nil
}

// StoreInbox reads the notification inbox store.
type StoreInbox struct {
	Store *store.Store
}

// UnreadSince implements Inbox.
func (s StoreInbox) UnreadSince(ctx context.Context, userID string, since, now time.Time, limit int) ([]Item, error) {
	notes, _, err := s.Store.List(ctx, store.ListQuery{UserID: userID, UnreadOnly: true, Limit: limit, Now: now})
	if err != nil {
		return nil, fmt.Errorf("unread notifications of %s: %w", userID, err)
	}
	out := make([]Item, 0, len(notes))
	for _, n := range notes {
		if n.CreatedAt.After(since) {
			out = append(out, Item{Category: n.Category, Title: n.Title, Body: n.Body, CreatedAt: n.CreatedAt})
		}
	}
	return out, nil
}
