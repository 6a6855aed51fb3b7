package webhook

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/talim/realtime/pkg/mongox"
	webhookv1 "github.com/talim/realtime/proto/talim/webhook/v1"
)

// Limits of the WebhookService.
const (
	MaxDescription   = 256
	MaxDeadLetters   = 1000
	MaxReplayIDs     = 1000
	MaxSubscriptions = 100
)

// API implements WebhookService. Until SetStore is called (and after
// SetStore(nil)) every call returns Unavailable.
type API struct {
	webhookv1.UnimplementedWebhookServiceServer
	store    atomic.Pointer[Store]
	cfg      Config
	producer *Producer // invalidated on changes (same process); may be nil
	now      func() time.Time
	log      *slog.Logger
}

var _ webhookv1.WebhookServiceServer = (*API)(nil)

// NewAPI returns an API that is not serving yet. p, if not nil, is told when the
// subscriptions change so this process's producers see them at once.
func NewAPI(cfg Config, p *Producer, log *slog.Logger) *API {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &API{cfg: cfg.withDefaults(), producer: p, now: time.Now, log: log}
}

// SetClock replaces the clock of creation times and rotation expiries (tests).
func (a *API) SetClock(now func() time.Time) { a.now = now }

// SetProducer makes p see subscription changes at once; call before SetStore.
func (a *API) SetProducer(p *Producer) { a.producer = p }

// SetStore makes the API serve with st (nil: stop serving).
func (a *API) SetStore(st *Store) { a.store.Store(st) }

func (a *API) get() (*Store, error) {
	st := a.store.Load()
	if st == nil {
		return nil, status.Error(codes.Unavailable, "webhook service is not connected yet")
	}
	return st, nil
}

func (a *API) grpcErr(method string, err error) error {
	if _, ok := status.FromError(err); ok {
		return err
	}
	switch {
	case errors.Is(err, ErrNotFound):
		return status.Error(codes.NotFound, "subscription not found")
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "canceled")
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "deadline exceeded")
	case mongox.IsUnavailable(err):
		a.log.Warn("webhook call failed: store unavailable", "method", method, "err", err)
		return status.Error(codes.Unavailable, "store unavailable, retry")
	}
	a.log.Error("webhook call failed", "method", method, "err", err)
	return status.Error(codes.Internal, "internal error")
}

func invalid(format string, args ...any) error {
	return status.Errorf(codes.InvalidArgument, format, args...)
}

func checkSubID(id string) error {
	if !ValidSubscriptionID(id) {
		return invalid("id must be a subscription id (sub_ and 26 characters of [a-z2-7])")
	}
	return nil
}

func toProto(s *Subscription, now time.Time) *webhookv1.Subscription {
	return &webhookv1.Subscription{Id: s.ID, Url: s.URL, EventTypes: s.Events, Description: s.Description,
		CreatedAt: timestamppb.New(s.CreatedAt), ActiveSecrets: int32(len(s.activeKeys(now)))}
}

// CreateSubscription implements WebhookService.
func (a *API) CreateSubscription(ctx context.Context, req *webhookv1.CreateSubscriptionRequest) (*webhookv1.CreateSubscriptionResponse, error) {
	st, err := a.get()
	if err != nil {
		return nil, err
	}
	if err := ValidateURL(req.GetUrl(), a.cfg.AllowPrivate); err != nil {
		return nil, invalid("url: %v", err)
	}
	if len(req.GetEventTypes()) == 0 {
		return nil, invalid("event_types: name at least one of %v", EventTypes)
	}
	var events []string
	for _, t := range req.GetEventTypes() {
		if !KnownType(t) {
			return nil, invalid("event_types: unknown type %q (known: %v)", t, EventTypes)
		}
		if !slices.Contains(events, t) {
			events = append(events, t)
		}
	}
	if len(req.GetDescription()) > MaxDescription || !utf8.ValidString(req.GetDescription()) {
		return nil, invalid("description: at most %d bytes of UTF-8", MaxDescription)
	}
	secret := req.GetSecret()
	if secret == "" {
		if secret, err = NewSecret(); err != nil {
			return nil, a.grpcErr("CreateSubscription", err)
		}
	} else if _, err := ParseSecret(secret); err != nil {
		return nil, invalid("secret: %v", err)
	}
	existing, err := st.Subscriptions(ctx)
	if err != nil {
		return nil, a.grpcErr("CreateSubscription", err)
	}
	if len(existing) >= MaxSubscriptions {
		return nil, status.Errorf(codes.ResourceExhausted, "at most %d subscriptions", MaxSubscriptions)
	}
	now := a.now().UTC().Truncate(time.Millisecond)
	sub := Subscription{ID: NewSubscriptionID(), URL: req.GetUrl(), Events: events, Description: req.GetDescription(),
		Keys: []SigningKey{{Secret: secret}}, CreatedAt: now}
	if err := st.CreateSubscription(ctx, sub); err != nil {
		return nil, a.grpcErr("CreateSubscription", err)
	}
	a.producer.Invalidate()
	return &webhookv1.CreateSubscriptionResponse{Subscription: toProto(&sub, now), Secret: secret}, nil
}

// ListSubscriptions implements WebhookService.
func (a *API) ListSubscriptions(ctx context.Context, _ *webhookv1.ListSubscriptionsRequest) (*webhookv1.ListSubscriptionsResponse, error) {
	st, err := a.get()
	if err != nil {
		return nil, err
	}
	subs, err := st.Subscriptions(ctx)
	if err != nil {
		return nil, a.grpcErr("ListSubscriptions", err)
	}
	now := a.now()
	out := &webhookv1.ListSubscriptionsResponse{}
	for i := range subs {
		out.Subscriptions = append(out.Subscriptions, toProto(&subs[i], now))
	}
	return out, nil
}

// DeleteSubscription implements WebhookService.
func (a *API) DeleteSubscription(ctx context.Context, req *webhookv1.DeleteSubscriptionRequest) (*webhookv1.DeleteSubscriptionResponse, error) {
	st, err := a.get()
	if err != nil {
		return nil, err
	}
	if err := checkSubID(req.GetId()); err != nil {
		return nil, err
	}
	if err := st.DeleteSubscription(ctx, req.GetId()); err != nil {
		return nil, a.grpcErr("DeleteSubscription", err)
	}
	a.producer.Invalidate()
	return &webhookv1.DeleteSubscriptionResponse{}, nil
}

// RotateSecret implements WebhookService.
func (a *API) RotateSecret(ctx context.Context, req *webhookv1.RotateSecretRequest) (*webhookv1.RotateSecretResponse, error) {
	st, err := a.get()
	if err != nil {
		return nil, err
	}
	if err := checkSubID(req.GetId()); err != nil {
		return nil, err
	}
	if req.GetGraceSeconds() < 0 || req.GetGraceSeconds() > 30*24*3600 {
		return nil, invalid("grace_seconds: 0 (default) to 30 days")
	}
	grace := a.cfg.RotationGrace
	if req.GetGraceSeconds() > 0 {
		grace = time.Duration(req.GetGraceSeconds()) * time.Second
	}
	secret := req.GetSecret()
	if secret == "" {
		if secret, err = NewSecret(); err != nil {
			return nil, a.grpcErr("RotateSecret", err)
		}
	} else if _, err := ParseSecret(secret); err != nil {
		return nil, invalid("secret: %v", err)
	}
	sub, err := st.Subscription(ctx, req.GetId())
	if err != nil {
		return nil, a.grpcErr("RotateSecret", err)
	}
	now := a.now().UTC().Truncate(time.Millisecond)
	expires := now.Add(grace)
	keys := []SigningKey{{Secret: secret}}
	for _, k := range sub.Keys {
		if !k.Expires.IsZero() && !now.Before(k.Expires) {
			continue // expired: dropped
		}
		if k.Expires.IsZero() || k.Expires.After(expires) {
			k.Expires = expires
		}
		keys = append(keys, k)
	}
	if err := st.SetKeys(ctx, sub.ID, keys); err != nil {
		return nil, a.grpcErr("RotateSecret", err)
	}
	return &webhookv1.RotateSecretResponse{Secret: secret, PreviousExpiresAt: timestamppb.New(expires)}, nil
}

// ListDeadLetters implements WebhookService.
func (a *API) ListDeadLetters(ctx context.Context, req *webhookv1.ListDeadLettersRequest) (*webhookv1.ListDeadLettersResponse, error) {
	st, err := a.get()
	if err != nil {
		return nil, err
	}
	if err := checkSubID(req.GetSubscriptionId()); err != nil {
		return nil, err
	}
	limit := int(req.GetLimit())
	if limit < 0 {
		return nil, invalid("limit: must not be negative")
	}
	if limit == 0 || limit > MaxDeadLetters {
		limit = MaxDeadLetters
	}
	if _, err := st.Subscription(ctx, req.GetSubscriptionId()); err != nil {
		return nil, a.grpcErr("ListDeadLetters", err)
	}
	dead, err := st.DeadLetters(ctx, req.GetSubscriptionId(), limit)
	if err != nil {
		return nil, a.grpcErr("ListDeadLetters", err)
	}
	out := &webhookv1.ListDeadLettersResponse{}
	for _, d := range dead {
		out.DeadLetters = append(out.DeadLetters, &webhookv1.DeadLetter{SubscriptionId: d.Sub, EventId: d.EventID,
			EventType: d.Type, Body: d.Body, Attempts: int32(d.Attempts), Reason: d.Reason,
			CreatedAt: timestamppb.New(d.CreatedAt), DeadAt: timestamppb.New(d.DeadAt)})
	}
	return out, nil
}

// ReplayDeadLetters implements WebhookService.
func (a *API) ReplayDeadLetters(ctx context.Context, req *webhookv1.ReplayDeadLettersRequest) (*webhookv1.ReplayDeadLettersResponse, error) {
	st, err := a.get()
	if err != nil {
		return nil, err
	}
	if err := checkSubID(req.GetSubscriptionId()); err != nil {
		return nil, err
	}
	if len(req.GetEventIds()) > MaxReplayIDs {
		return nil, invalid("event_ids: at most %d", MaxReplayIDs)
	}
	for _, id := range req.GetEventIds() {
		if !ValidEventID(id) {
			return nil, invalid("event_ids: %q is not an event id (evt_ and 26 characters of [a-z2-7])", id)
		}
	}
	if _, err := st.Subscription(ctx, req.GetSubscriptionId()); err != nil {
		return nil, a.grpcErr("ReplayDeadLetters", err)
	}
	n, err := st.Replay(ctx, req.GetSubscriptionId(), req.GetEventIds(), a.now())
	if err != nil {
		return nil, a.grpcErr("ReplayDeadLetters", err)
	}
	return &webhookv1.ReplayDeadLettersResponse{Replayed: int32(n)}, nil
}
