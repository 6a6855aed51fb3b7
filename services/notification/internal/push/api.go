package push

import (
	"context"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/talim/realtime/pkg/command"
	"github.com/talim/realtime/pkg/subject"
	edgev1 "github.com/talim/realtime/proto/talim/edge/v1"
	notificationv1 "github.com/talim/realtime/proto/talim/notification/v1"
)

// Client events (docs/protocol.md "Web Push").
const (
	EventRegister  = "register-push-subscription"
	EventRemove    = "remove-push-subscription"
	EventGetConfig = "get-push-config"
)

// maxUserIDLen bounds user ids taken from gRPC callers (the edge's identities are
// already bounded).
const maxUserIDLen = 256

// Register stores a validated subscription for userID.
func (p *Pusher) Register(ctx context.Context, userID, endpoint, p256dh, auth string) (string, error) {
	sub, err := p.cfg.Policy.Validate(endpoint, p256dh, auth)
	if err != nil {
		return "", err
	}
	sub.CreatedAt = p.now()
	if err := p.st.AddSubscription(ctx, userID, sub); err != nil {
		return "", err
	}
	return sub.ID, nil
}

// Remove deletes userID's subscription with endpoint (nothing when absent).
func (p *Pusher) Remove(ctx context.Context, userID, endpoint string) error {
	if endpoint == "" || len(endpoint) > MaxEndpointLen {
		return fmt.Errorf("%w: endpoint must be 1 to %d bytes", ErrInvalid, MaxEndpointLen)
	}
	return p.st.RemoveSubscription(ctx, userID, SubID(endpoint))
}

// RegisterCommands registers the client events on srv; each acts on the command's
// authenticated user only.
func (p *Pusher) RegisterCommands(srv *command.Server) {
	srv.Handle(EventRegister, p.handleRegister)
	srv.Handle(EventRemove, p.handleRemove)
	srv.Handle(EventGetConfig, p.handleGetConfig)
}

// RegisterDisabled registers the events for a service without a VAPID key: input
// is still validated (bad_request), then the answer is unavailable.
func RegisterDisabled(srv *command.Server) {
	off := func(context.Context, *edgev1.Command) (*edgev1.Reply, error) {
		return nil, command.Errorf(command.CodeUnavailable, "web push is not configured")
	}
	srv.Handle(EventRegister, func(ctx context.Context, cmd *edgev1.Command) (*edgev1.Reply, error) {
		var req subscriptionJSON
		if err := command.Decode(cmd, &req); err != nil {
			return nil, err
		}
		return off(ctx, cmd)
	})
	srv.Handle(EventRemove, func(ctx context.Context, cmd *edgev1.Command) (*edgev1.Reply, error) {
		var req struct {
			Endpoint string `json:"endpoint"`
		}
		if err := command.Decode(cmd, &req); err != nil {
			return nil, err
		}
		return off(ctx, cmd)
	})
	srv.Handle(EventGetConfig, func(context.Context, *edgev1.Command) (*edgev1.Reply, error) {
		return command.OK(map[string]any{"vapidPublicKey": ""})
	})
}

type subscriptionJSON struct {
	Endpoint string `json:"endpoint"`
	Keys     struct {
		P256dh string `json:"p256dh"`
		Auth   string `json:"auth"`
	} `json:"keys"`
}

func asCommandErr(op string, err error) error {
	if errors.Is(err, ErrInvalid) {
		return command.BadRequest("%s", err.Error())
	}
	return fmt.Errorf("%s: %w: %w", op, command.ErrUnavailable, err)
}

func (p *Pusher) handleRegister(ctx context.Context, cmd *edgev1.Command) (*edgev1.Reply, error) {
	var req subscriptionJSON
	if err := command.Decode(cmd, &req); err != nil {
		return nil, err
	}
	id, err := p.Register(ctx, cmd.GetIdentity().GetUserId(), req.Endpoint, req.Keys.P256dh, req.Keys.Auth)
	if err != nil {
		return nil, asCommandErr("register push subscription", err)
	}
	return command.OK(map[string]any{"id": id})
}

func (p *Pusher) handleRemove(ctx context.Context, cmd *edgev1.Command) (*edgev1.Reply, error) {
	var req struct {
		Endpoint string `json:"endpoint"`
	}
	if err := command.Decode(cmd, &req); err != nil {
		return nil, err
	}
	if err := p.Remove(ctx, cmd.GetIdentity().GetUserId(), req.Endpoint); err != nil {
		return nil, asCommandErr("remove push subscription", err)
	}
	return command.OK(map[string]any{"removed": true})
}

func (p *Pusher) handleGetConfig(context.Context, *edgev1.Command) (*edgev1.Reply, error) {
	return command.OK(map[string]any{"vapidPublicKey": p.PublicKey()})
}

// GRPC implements notificationv1.PushServiceServer on a pusher set later (the
// service registers it before Run connects); nil pusher answers Unavailable, and
// a nil *GRPC... see Set.
type GRPC struct {
	notificationv1.UnimplementedPushServiceServer
	get func() *Pusher
}

// NewGRPC returns the gRPC API; get returns the running pusher or nil.
func NewGRPC(get func() *Pusher) *GRPC { return &GRPC{get: get} }

func (g *GRPC) pusher() (*Pusher, error) {
	if p := g.get(); p != nil {
		return p, nil
	}
	return nil, status.Error(codes.Unavailable, "web push is not running or not configured")
}

func checkUser(id string) error {
	if id == "" || len(id) > maxUserIDLen || !utf8.ValidString(id) {
		return status.Errorf(codes.InvalidArgument, "user_id must be 1 to %d bytes of UTF-8", maxUserIDLen)
	}
	return nil
}

func grpcErr(err error) error {
	if errors.Is(err, ErrInvalid) {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	return status.Errorf(codes.Unavailable, "%v", err)
}

// RegisterPushSubscription implements PushService.
func (g *GRPC) RegisterPushSubscription(ctx context.Context, req *notificationv1.RegisterPushSubscriptionRequest) (*notificationv1.RegisterPushSubscriptionResponse, error) {
	p, err := g.pusher()
	if err != nil {
		return nil, err
	}
	if err := checkUser(req.GetUserId()); err != nil {
		return nil, err
	}
	id, err := p.Register(ctx, req.GetUserId(), req.GetEndpoint(), req.GetKeys().GetP256Dh(), req.GetKeys().GetAuth())
	if err != nil {
		return nil, grpcErr(err)
	}
	return &notificationv1.RegisterPushSubscriptionResponse{SubscriptionId: id}, nil
}

// RemovePushSubscription implements PushService.
func (g *GRPC) RemovePushSubscription(ctx context.Context, req *notificationv1.RemovePushSubscriptionRequest) (*notificationv1.RemovePushSubscriptionResponse, error) {
	p, err := g.pusher()
	if err != nil {
		return nil, err
	}
	if err := checkUser(req.GetUserId()); err != nil {
		return nil, err
	}
	if err := p.Remove(ctx, req.GetUserId(), req.GetEndpoint()); err != nil {
		return nil, grpcErr(err)
	}
	return &notificationv1.RemovePushSubscriptionResponse{}, nil
}

// GetPushConfig implements PushService.
func (g *GRPC) GetPushConfig(context.Context, *notificationv1.GetPushConfigRequest) (*notificationv1.GetPushConfigResponse, error) {
	p := g.get()
	if p == nil {
		return &notificationv1.GetPushConfigResponse{}, nil
	}
	return &notificationv1.GetPushConfigResponse{VapidPublicKey: p.PublicKey()}, nil
}

// Chat push limits (proto ChatPushRequest).
const (
	maxChatRecipients = 100
	maxChatText       = 200
	maxChatMsgBytes   = 16 << 10
	chatTTL           = 24 * 60 * 60
)

// SubscribeChat queues pushes for chat's ChatPushRequests on
// talim.notification.v1.chat-push (queue group "notification": one instance takes
// each request).
func (p *Pusher) SubscribeChat(nc *nats.Conn) (*nats.Subscription, error) {
	sub, err := nc.QueueSubscribe(subject.NotificationChatPush, "notification", func(m *nats.Msg) {
		if err := p.handleChat(m.Data); err != nil {
			p.log.Warn("push: chat request", "err", err)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", subject.NotificationChatPush, err)
	}
	return sub, nil
}

func (p *Pusher) handleChat(data []byte) error {
	if len(data) > maxChatMsgBytes {
		return fmt.Errorf("chat push request of %d bytes is too large", len(data))
	}
	var req notificationv1.ChatPushRequest
	if err := proto.Unmarshal(data, &req); err != nil {
		return fmt.Errorf("decode chat push request: %w", err)
	}
	if req.GetRoomId() == "" || req.GetMessageId() == "" || len(req.GetRecipientIds()) == 0 || len(req.GetRecipientIds()) > maxChatRecipients {
		return errors.New("chat push request needs room_id, message_id and 1 to 100 recipient_ids")
	}
	recipients := make([]string, 0, len(req.GetRecipientIds()))
	for _, r := range req.GetRecipientIds() {
		if r != req.GetSenderId() && checkUser(r) == nil {
			recipients = append(recipients, r)
		}
	}
	title := "New message from " + truncate(req.GetSenderId(), 64)
	cat := "chat.direct"
	if req.GetReason() == notificationv1.ChatPushReason_CHAT_PUSH_REASON_MENTION {
		title, cat = truncate(req.GetSenderId(), 64)+" mentioned you", "chat.mention"
	}
	c := Content{Kind: "message", Category: cat, Title: title, Body: truncate(req.GetText(), maxChatText),
		RoomID: req.GetRoomId(), Topic: "r:" + req.GetRoomId(), Urgency: "normal", TTLSec: chatTTL}
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.Lease)
	defer cancel()
	return p.Enqueue(ctx, hashID("pf_", "chat", req.GetRoomId(), req.GetMessageId()), recipients, c)
}
