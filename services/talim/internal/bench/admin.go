package bench

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/talim/realtime/pkg/grpcx"
	chatv1 "github.com/talim/realtime/proto/talim/chat/v1"
	notificationv1 "github.com/talim/realtime/proto/talim/notification/v1"
)

// admin is the bench's gRPC client of ChatAdminService and NotificationService.
type admin struct {
	cc    *grpc.ClientConn
	chat  chatv1.ChatAdminServiceClient
	notif notificationv1.NotificationServiceClient
}

func dialAdmin(addr, token string) (*admin, error) {
	if err := CheckLoopbackAddr(addr); err != nil {
		return nil, err
	}
	cc, err := grpc.NewClient("passthrough:///"+addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(grpcx.TokenCredentials{Token: token, Insecure: true}))
	if err != nil {
		return nil, err
	}
	return &admin{cc: cc, chat: chatv1.NewChatAdminServiceClient(cc), notif: notificationv1.NewNotificationServiceClient(cc)}, nil
}

// memberBatch is the size of one AddMembers call.
const memberBatch = 500

// createRoom creates a group room with the given members (in batches).
func (a *admin) createRoom(ctx context.Context, room string, users []string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	members := func(us []string) []*chatv1.Member {
		ms := make([]*chatv1.Member, len(us))
		for i, u := range us {
			ms[i] = &chatv1.Member{UserId: u, Role: chatv1.Role_ROLE_MEMBER}
		}
		return ms
	}
	first := users[:min(len(users), memberBatch)]
	if _, err := a.chat.CreateRoom(ctx, &chatv1.CreateRoomRequest{RoomId: room, Name: room, Type: chatv1.RoomType_ROOM_TYPE_GROUP, Members: members(first)}); err != nil {
		return fmt.Errorf("create room %s: %w", room, err)
	}
	for i := len(first); i < len(users); i += memberBatch {
		batch := users[i:min(i+memberBatch, len(users))]
		if _, err := a.chat.AddMembers(ctx, &chatv1.AddMembersRequest{RoomId: room, Members: members(batch)}); err != nil {
			return fmt.Errorf("add members to %s: %w", room, err)
		}
	}
	return nil
}

// notify sends notification k (title "b<ns>:<k>") to users, in calls of at most
// 10,000 recipients.
func (a *admin) notify(ctx context.Context, k int, users []string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	title := fmt.Sprintf("b%d:%d", time.Now().UnixNano(), k)
	for i := 0; i < len(users); i += 10_000 {
		_, err := a.notif.Send(ctx, &notificationv1.SendRequest{
			Recipients: users[i:min(i+10_000, len(users))], Category: "bench", Title: title, Body: "bench",
			IdempotencyKey: fmt.Sprintf("%s-%d", title, i),
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// createOpenRoom creates an open room with no members: anyone may join it, and the
// first join makes them a member.
func (a *admin) createOpenRoom(ctx context.Context, room string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if _, err := a.chat.CreateRoom(ctx, &chatv1.CreateRoomRequest{RoomId: room, Name: room, Type: chatv1.RoomType_ROOM_TYPE_OPEN}); err != nil {
		return fmt.Errorf("create open room %s: %w", room, err)
	}
	return nil
}
