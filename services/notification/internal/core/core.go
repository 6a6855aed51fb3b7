package core

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"

	"github.com/talim/realtime/pkg/natsx"
	"github.com/talim/realtime/pkg/subject"
	"github.com/talim/realtime/pkg/tracing"
	"github.com/talim/realtime/pkg/webhook"
	edgev1 "github.com/talim/realtime/proto/talim/edge/v1"
	"github.com/talim/realtime/services/notification/internal/store"
)

// Defaults of Options.
const (
	// DefaultBatchSize is the number of notifications per InsertMany: a
	// 10,000-recipient send is 10 bulk writes.
	DefaultBatchSize = 1000
	// DefaultWriteConcurrency bounds bulk writes in flight across all sends, so a
	// burst of large sends leaves store connections for inbox queries.
	DefaultWriteConcurrency = 2
	// DefaultSendWriteTimeout bounds writing one send's notifications. The write
	// is detached from the caller's cancellation: once a send exists it is finished
	// even if the caller gives up (a retry with the same key then finds it complete).
	DefaultSendWriteTimeout = 2 * time.Minute
)

// ErrUrgentNotAllowed means an urgent send came with a sender role that is not
// one of Options.UrgentRoles.
var ErrUrgentNotAllowed = errors.New("urgent notifications need one of the configured urgent roles")

// Options configures a Core.
type Options struct {
	Store            *store.Store
	NC               *nats.Conn
	Log              *slog.Logger
	Metrics          *Metrics
	BatchSize        int
	WriteConcurrency int
	SendWriteTimeout time.Duration
	// Now is the clock (tests); time.Now when nil.
	Now func() time.Time
	// Webhooks receives notification.acknowledged events (nil: none).
	Webhooks *webhook.Producer
	// OnStored, when set, is called once a send's notifications are stored and
	// before the send is marked complete (Web Push queues its pushes there); an
	// error fails the Send, and a retry with the same key calls it again.
	OnStored func(ctx context.Context, send *store.Send) error
	// UrgentRoles, when not empty, are the sender roles allowed to send urgent
	// notifications (docs/notifications-admin.md); empty: any authenticated caller.
	UrgentRoles []string
}

// Core executes sends and inbox operations. It is safe for concurrent use.
type Core struct {
	st       *store.Store
	nc       *nats.Conn
	log      *slog.Logger
	m        *Metrics
	batch    int
	writeSem chan struct{}
	writeTO  time.Duration
	now      func() time.Time
	hooks    *webhook.Producer
	onStored func(ctx context.Context, send *store.Send) error
	// urgentRoles: see Options.UrgentRoles.
	urgentRoles []string
}

// New returns a core with defaults filled in.
func New(o Options) *Core {
	c := &Core{st: o.Store, nc: o.NC, log: o.Log, m: o.Metrics, batch: o.BatchSize, writeTO: o.SendWriteTimeout, now: o.Now, hooks: o.Webhooks,
		onStored: o.OnStored, urgentRoles: o.UrgentRoles}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.m == nil {
		c.m = NewMetrics(nil)
	}
	if c.batch <= 0 {
		c.batch = DefaultBatchSize
	}
	if o.WriteConcurrency <= 0 {
		o.WriteConcurrency = DefaultWriteConcurrency
	}
	if c.writeTO <= 0 {
		c.writeTO = DefaultSendWriteTimeout
	}
	if c.now == nil {
		c.now = time.Now
	}
	c.writeSem = make(chan struct{}, o.WriteConcurrency)
	return c
}

// clock returns now in the store's precision (milliseconds), UTC.
func (c *Core) clock() time.Time { return c.now().UTC().Truncate(time.Millisecond) }

// hashID derives a stable id from parts: prefix + 32 hex digits of SHA-256.
func hashID(prefix string, parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return prefix + hex.EncodeToString(h.Sum(nil)[:16])
}

// SendIDFor is the send id of an idempotency key.
func SendIDFor(key string) string { return hashID("s_", "send", key) }

// NotificationIDFor is the id of recipient's notification of the send with key.
func NotificationIDFor(key, recipient string) string { return hashID("n_", key, recipient) }

// SendRequest is a request to notify Recipients: the domain form of
// NotificationService.Send (proto/talim/notification/v1), filled in by package grpcapi.
type SendRequest struct {
	IdempotencyKey string
	Recipients     []string
	Category       string
	Title          string
	Body           string
	Data           map[string]string
	// Priority is "low", "normal" or "high"; empty means "normal".
	Priority   string
	RequireAck bool
	// ExpiresAt, when set, must be in the future.
	ExpiresAt *time.Time
	// Urgent notifications are pushed and emailed during quiet hours; SenderRole
	// must then be one of Options.UrgentRoles when those are configured.
	Urgent     bool
	SenderRole string
}

// SendResult is the outcome of a Send.
type SendResult struct {
	SendID string
	// Recipients is the number of distinct recipients of the send.
	Recipients int64
	// Duplicate is true when the idempotency key was used before; SendID is then
	// the original send's.
	Duplicate bool
	// DeliveredLive counts the recipients this call delivered to live.
	DeliveredLive int64
}

// Send validates req and executes it idempotently (see the package doc).
// Validation failures are an *InvalidError listing every violation.
func (c *Core) Send(ctx context.Context, req SendRequest) (SendResult, error) {
	now := c.clock()
	in, err := validateSend(req, now)
	if err != nil {
		return SendResult{}, err
	}
	if req.Urgent && len(c.urgentRoles) > 0 && !slices.Contains(c.urgentRoles, req.SenderRole) {
		return SendResult{}, fmt.Errorf("sender role %q: %w", req.SenderRole, ErrUrgentNotAllowed)
	}
	send := &store.Send{Key: in.Key, SendID: SendIDFor(in.Key), Recipients: in.Recipients, Content: in.Content, CreatedAt: now}
	got, created, err := c.st.CreateSend(ctx, send)
	if err != nil {
		return SendResult{}, fmt.Errorf("send %s: %w", send.SendID, err)
	}
	res := SendResult{SendID: got.SendID, Recipients: int64(len(got.Recipients)), Duplicate: !created}
	if created {
		c.m.Sends.WithLabelValues("created").Inc()
	} else {
		c.m.Sends.WithLabelValues("duplicate").Inc()
		if got.Complete {
			return res, nil
		}
		c.log.Info("completing an unfinished send", "send", got.SendID)
	}
	// From here on the send exists: finish it even when the caller goes away.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.writeTO)
	defer cancel()
	live, err := c.write(wctx, got)
	if err != nil {
		return SendResult{}, fmt.Errorf("send %s: %w", got.SendID, err)
	}
	if c.onStored != nil {
		if err := c.onStored(wctx, got); err != nil {
			return SendResult{}, fmt.Errorf("send %s: %w", got.SendID, err)
		}
	}
	if err := c.st.CompleteSend(wctx, got.Key, c.clock()); err != nil {
		return SendResult{}, fmt.Errorf("send %s: %w", got.SendID, err)
	}
	res.DeliveredLive = live
	return res, nil
}

// CheckSend returns the violations of req without executing it (nil when valid).
func (c *Core) CheckSend(req SendRequest) []Violation {
	var ie *InvalidError
	if _, err := validateSend(req, c.clock()); errors.As(err, &ie) {
		return ie.Violations
	}
	return nil
}

// write stores one notification per recipient in batches and delivers each batch
// live right after it is stored. It returns the number of live deliveries.
func (c *Core) write(ctx context.Context, send *store.Send) (int64, error) {
	var live int64
	rs := send.Recipients
	docs := make([]store.Notification, 0, min(c.batch, len(rs)))
	for start := 0; start < len(rs); start += c.batch {
		docs = docs[:0]
		for _, r := range rs[start:min(start+c.batch, len(rs))] {
			ct := send.Content
			docs = append(docs, store.Notification{
				ID: NotificationIDFor(send.Key, r), UserID: r, SendID: send.SendID,
				Category: ct.Category, Title: ct.Title, Body: ct.Body, Data: ct.Data, Priority: ct.Priority,
				RequireAck: ct.RequireAck, CreatedAt: send.CreatedAt, ExpiresAt: ct.ExpiresAt, Urgent: ct.Urgent,
			})
		}
		select {
		case c.writeSem <- struct{}{}:
		case <-ctx.Done():
			return live, fmt.Errorf("wait for a write slot: %w: %w", store.ErrUnavailable, ctx.Err())
		}
		t0 := time.Now()
		inserted, err := c.st.InsertNotifications(ctx, docs)
		<-c.writeSem
		c.m.BulkWrite.Observe(time.Since(t0).Seconds())
		if err != nil {
			return live, err
		}
		c.m.Recipients.Add(float64(len(inserted)))
		online := c.onlineAmong(docs, inserted)
		dctx, span := tracing.StartChild(ctx, "notification deliver", trace.WithSpanKind(trace.SpanKindProducer))
		for _, i := range inserted {
			if online != nil && !online[docs[i].UserID] {
				continue
			}
			if c.deliver(dctx, &docs[i]) {
				live++
			}
		}
		span.End()
	}
	return live, nil
}

// presenceQueryTimeout bounds the question to presence; without an answer in time
// every recipient gets a live publication.
const presenceQueryTimeout = 500 * time.Millisecond

// onlineAmong asks presence (talim.presence.v1.query) which recipients of the
// inserted docs have a live connection, so live delivery publishes only to them and
// DeliveredLive counts recipients who were online. It returns nil — deliver to all —
// when presence does not answer: live delivery is best effort, the inbox is the truth.
func (c *Core) onlineAmong(docs []store.Notification, inserted []int) map[string]bool {
	if len(inserted) == 0 {
		return nil
	}
	ids := make([]string, 0, len(inserted))
	for _, i := range inserted {
		ids = append(ids, docs[i].UserID)
	}
	req, err := json.Marshal(map[string][]string{"userIds": ids})
	if err != nil {
		return nil
	}
	msg, err := c.nc.Request(subject.PresenceQuery, req, presenceQueryTimeout)
	if err != nil {
		c.log.Debug("presence query failed; delivering to every recipient", "err", err)
		return nil
	}
	var resp struct {
		Online []string `json:"online"`
		Error  string   `json:"error"`
	}
	if err := json.Unmarshal(msg.Data, &resp); err != nil || resp.Error != "" {
		c.log.Debug("presence query refused; delivering to every recipient", "err", err, "reason", resp.Error)
		return nil
	}
	online := make(map[string]bool, len(resp.Online))
	for _, id := range resp.Online {
		online[id] = true
	}
	return online
}

// deliver publishes the `notification` event to every connection of the recipient.
func (c *Core) deliver(ctx context.Context, n *store.Notification) bool {
	data, err := encodeNotificationEvent(n)
	if err != nil {
		c.log.ErrorContext(ctx, "encode notification", "id", n.ID, "err", err)
		return false
	}
	if err := c.publish(ctx, n.UserID, &edgev1.Outbound{Event: "notification", Data: data}); err != nil {
		c.log.WarnContext(ctx, "live delivery", "user", n.UserID, "err", err)
		return false
	}
	c.m.LiveDeliveries.Inc()
	return true
}

// publish sends out to userID's connections; a sampled trace in ctx travels in
// the message headers to the edge.
func (c *Core) publish(ctx context.Context, userID string, out *edgev1.Outbound) error {
	b, err := proto.Marshal(out)
	if err != nil {
		return fmt.Errorf("marshal outbound: %w", err)
	}
	if err := natsx.Publish(c.nc, subject.User(userID), b, tracing.Header(ctx)); err != nil {
		return fmt.Errorf("publish to %s: %w", userID, err)
	}
	return nil
}

// readEvent is the data of `notification-read`.
type readEvent struct {
	IDs    []string `json:"ids,omitempty"`
	All    bool     `json:"all,omitempty"`
	Unread int64    `json:"unread"`
}

// syncRead tells the user's connections except exceptConn (all when empty) what
// was marked read. Failures are logged: the store is the truth and clients refetch.
func (c *Core) syncRead(userID, exceptConn string, ev readEvent) {
	data, err := json.Marshal(ev)
	if err == nil {
		err = c.publish(context.Background(), userID, &edgev1.Outbound{Event: "notification-read", Data: data, ExceptConnection: exceptConn})
	}
	if err != nil {
		c.log.Warn("notification-read sync", "user", userID, "err", err)
	}
}

// List returns a page of the user's inbox and the unread count.
func (c *Core) List(ctx context.Context, userID string, unreadOnly bool, before string, limit int) ([]store.Notification, bool, int64, error) {
	now := c.clock()
	if limit == 0 {
		limit = DefaultListLimit
	}
	notes, more, err := c.st.List(ctx, store.ListQuery{UserID: userID, UnreadOnly: unreadOnly, Before: before, Limit: limit, Now: now})
	if err != nil {
		return nil, false, 0, err
	}
	unread, err := c.st.Unread(ctx, userID, now)
	if err != nil {
		return nil, false, 0, err
	}
	return notes, more, unread, nil
}

// MarkRead marks ids (or all when all is true) of the user read, syncs the user's
// connections except exceptConn and returns the unread count. With ids, none of
// which is the user's, it returns store.ErrNotFound; other unknown ids are ignored
// (a notification may expire between listing and marking).
func (c *Core) MarkRead(ctx context.Context, userID, exceptConn string, ids []string, all bool) (int64, error) {
	now := c.clock()
	ev := readEvent{All: all}
	if all {
		if _, err := c.st.MarkAllRead(ctx, userID, now); err != nil {
			return 0, err
		}
	} else {
		owned, err := c.st.MarkRead(ctx, userID, ids, now)
		if err != nil {
			return 0, err
		}
		if len(owned) == 0 {
			return 0, store.ErrNotFound
		}
		ev.IDs = owned
	}
	unread, err := c.st.Unread(ctx, userID, now)
	if err != nil {
		return 0, err
	}
	ev.Unread = unread
	c.syncRead(userID, exceptConn, ev)
	return unread, nil
}

// Ack acknowledges a requireAck notification of the user (idempotent). When this
// also marked it read, the user's other connections get `notification-read`.
func (c *Core) Ack(ctx context.Context, userID, exceptConn, id string) (time.Time, error) {
	now := c.clock()
	res, err := c.st.Ack(ctx, userID, id, now)
	if err != nil {
		return time.Time{}, err
	}
	// Before answering, so an acknowledged ack always has its event (a retry of a
	// failed one publishes again under the same id: docs/webhooks.md).
	if err := c.hooks.Publish(ctx, webhook.Event{Type: webhook.NotificationAcknowledged, Key: userID + "\x00" + id,
		Time: res.AckedAt, Data: map[string]any{"notificationId": id, "userId": userID,
			"ackedAt": res.AckedAt.UTC().Format(webhook.TimeFormat)}}); err != nil {
		return time.Time{}, fmt.Errorf("%w: webhook: %w", store.ErrUnavailable, err)
	}
	if res.MarkedRead {
		unread, err := c.st.Unread(ctx, userID, now)
		if err == nil {
			c.syncRead(userID, exceptConn, readEvent{IDs: []string{id}, Unread: unread})
		}
	}
	return res.AckedAt, nil
}

// Unread returns the user's unread count.
func (c *Core) Unread(ctx context.Context, userID string) (int64, error) {
	return c.st.Unread(ctx, userID, c.clock())
}

// AckStatus is the acknowledgement state of a send.
type AckStatus struct {
	Total, Acknowledged int64
	// Pending are the recipients who have not acknowledged yet.
	Pending []string
}

// AckStatus reports the acknowledgements of a send.
func (c *Core) AckStatus(ctx context.Context, sendID string) (AckStatus, error) {
	total, acked, pending, err := c.st.AckStatus(ctx, sendID, c.clock())
	if err != nil {
		return AckStatus{}, err
	}
	return AckStatus{Total: total, Acknowledged: acked, Pending: pending}, nil
}

// RunCleanup deletes expired notifications every interval until ctx ends.
func (c *Core) RunCleanup(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := c.Cleanup(ctx); err != nil && !errors.Is(err, context.Canceled) {
			c.log.Warn("delete expired notifications", "err", err)
		}
	}
}

// Cleanup deletes the notifications expired by now once.
func (c *Core) Cleanup(ctx context.Context) (int64, error) {
	n, err := c.st.DeleteExpired(ctx, c.clock())
	if err != nil {
		return 0, err
	}
	if n > 0 {
		c.m.Expired.Add(float64(n))
		c.log.Debug("deleted expired notifications", "count", n)
	}
	return n, nil
}
