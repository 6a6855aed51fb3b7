package talim

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/talim/realtime/pkg/grpcx"
	chatv1 "github.com/talim/realtime/proto/talim/chat/v1"
)

// DemoRooms are the rooms talim dev seeds: an open room, a class and an announcement
// room, with the demo teacher and students as members.
var DemoRooms = []*chatv1.CreateRoomRequest{
	{RoomId: "room-123", Name: "Room 123", Type: chatv1.RoomType_ROOM_TYPE_OPEN, Members: []*chatv1.Member{
		{UserId: "t1", Role: chatv1.Role_ROLE_OWNER}, {UserId: "s1", Role: chatv1.Role_ROLE_MEMBER}, {UserId: "s2", Role: chatv1.Role_ROLE_MEMBER},
	}},
	{RoomId: "class-7a", Name: "Class 7A", Type: chatv1.RoomType_ROOM_TYPE_CLASS, Members: []*chatv1.Member{
		{UserId: "t1", Role: chatv1.Role_ROLE_TEACHER}, {UserId: "s1", Role: chatv1.Role_ROLE_MEMBER}, {UserId: "s2", Role: chatv1.Role_ROLE_MEMBER},
	}},
	{RoomId: "announcements", Name: "School announcements", Type: chatv1.RoomType_ROOM_TYPE_ANNOUNCEMENT, Members: []*chatv1.Member{
		{UserId: "t1", Role: chatv1.Role_ROLE_OWNER}, {UserId: "s1", Role: chatv1.Role_ROLE_MEMBER}, {UserId: "s2", Role: chatv1.Role_ROLE_MEMBER},
	}},
}

// Dial opens a gRPC client connection to the stack's internal APIs with the service token.
func (st *Stack) Dial() (*grpc.ClientConn, error) {
	conn, err := grpc.NewClient(st.GRPCAddr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(grpcx.TokenCredentials{Token: st.ServiceToken, Insecure: true}))
	if err != nil {
		return nil, fmt.Errorf("dial grpc %s: %w", st.GRPCAddr, err)
	}
	return conn, nil
}

// seed creates the demo rooms through ChatAdminService, the way the main application
// would. CreateRoom is idempotent, so every start may run it.
func (st *Stack) seed(ctx context.Context) error {
	conn, err := st.Dial()
	if err != nil {
		return err
	}
	defer conn.Close()
	admin := chatv1.NewChatAdminServiceClient(conn)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, r := range DemoRooms {
		if _, err := admin.CreateRoom(ctx, r); err != nil {
			return fmt.Errorf("seed room %s: %w", r.GetRoomId(), err)
		}
		if _, err := admin.AddMembers(ctx, &chatv1.AddMembersRequest{RoomId: r.GetRoomId(), Members: r.GetMembers()}); err != nil {
			return fmt.Errorf("seed members of %s: %w", r.GetRoomId(), err)
		}
	}
	return nil
}
