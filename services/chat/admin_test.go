package chat_test

import (
	"context"
	"encoding/json"
	"net"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/talim/realtime/pkg/grpcx"
	chatv1 "github.com/talim/realtime/proto/talim/chat/v1"
	"github.com/talim/realtime/services/chat"
)

func wantCode(t *testing.T, err error, code codes.Code) *status.Status {
	t.Helper()
	st, _ := status.FromError(err)
	if st.Code() != code {
		t.Fatalf("want %v, got %v", code, err)
	}
	return st
}

func TestAdmin_ServiceTokenAndValidation(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 1)
	ctx := h.ctx()
	bad, err := grpc.NewClient(h.svcs[0].GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(grpcx.TokenCredentials{Token: "wrong", Insecure: true}))
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	_, err = chatv1.NewChatAdminServiceClient(bad).CreateRoom(ctx, &chatv1.CreateRoomRequest{RoomId: "x", Type: chatv1.RoomType_ROOM_TYPE_GROUP})
	wantCode(t, err, codes.Unauthenticated)
	hr, err := healthpb.NewHealthClient(bad).Check(ctx, &healthpb.HealthCheckRequest{Service: "talim.chat.v1.ChatAdminService"})
	if err != nil || hr.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health %v %v", hr, err)
	}

	_, err = h.admin.CreateRoom(ctx, &chatv1.CreateRoomRequest{RoomId: "$bad", Members: []*chatv1.Member{{UserId: "", Role: chatv1.Role_ROLE_MEMBER}, {UserId: "ok"}}})
	st := wantCode(t, err, codes.InvalidArgument)
	fields := map[string]bool{}
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				fields[v.GetField()] = true
			}
		}
	}
	for _, f := range []string{"room_id", "type", "members[0].user_id", "members[1].role"} {
		if !fields[f] {
			t.Fatalf("missing violation for %s in %v", f, fields)
		}
	}
	_, err = h.admin.PostMessage(ctx, &chatv1.PostMessageRequest{RoomId: "r", ServiceName: "lms", Content: "  ", IdempotencyKey: ""})
	st = wantCode(t, err, codes.InvalidArgument)
	if len(st.Details()) == 0 {
		t.Fatal("no details")
	}
}

func TestAdmin_RoomsMembersAndPosting(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 1)
	ctx := h.ctx()
	aliceIn, bobIn := h.inbox("alice"), h.inbox("bob")
	res, err := h.admin.CreateRoom(ctx, &chatv1.CreateRoomRequest{RoomId: "class-1", Name: "Physics", Type: chatv1.RoomType_ROOM_TYPE_CLASS,
		Members: []*chatv1.Member{{UserId: "alice", Role: chatv1.Role_ROLE_TEACHER}}})
	if err != nil || !res.GetCreated() || res.GetRoom().GetName() != "Physics" || res.GetRoom().GetType() != chatv1.RoomType_ROOM_TYPE_CLASS {
		t.Fatalf("create %v %v", res, err)
	}
	if d := decode[map[string]string](t, aliceIn.wait("room-membership", 1)[0].GetData()); d["change"] != "added" || d["role"] != "teacher" {
		t.Fatalf("added event %v", d)
	}
	res, err = h.admin.CreateRoom(ctx, &chatv1.CreateRoomRequest{RoomId: "class-1", Name: "Physics", Type: chatv1.RoomType_ROOM_TYPE_CLASS})
	if err != nil || res.GetCreated() {
		t.Fatalf("idempotent create %v %v", res, err)
	}
	_, err = h.admin.CreateRoom(ctx, &chatv1.CreateRoomRequest{RoomId: "class-1", Type: chatv1.RoomType_ROOM_TYPE_GROUP})
	wantCode(t, err, codes.AlreadyExists)
	gen, err := h.admin.CreateRoom(ctx, &chatv1.CreateRoomRequest{Type: chatv1.RoomType_ROOM_TYPE_GROUP})
	if err != nil || gen.GetRoom().GetRoomId() == "" {
		t.Fatalf("generated id %v %v", gen, err)
	}

	add, err := h.admin.AddMembers(ctx, &chatv1.AddMembersRequest{RoomId: "class-1", Members: []*chatv1.Member{
		{UserId: "bob", Role: chatv1.Role_ROLE_MEMBER}, {UserId: "carl", Role: chatv1.Role_ROLE_READONLY}, {UserId: "alice", Role: chatv1.Role_ROLE_OWNER}}})
	if err != nil || add.GetAdded() != 2 || add.GetUpdated() != 1 {
		t.Fatalf("add %v %v", add, err)
	}
	bobIn.wait("room-membership", 1)
	page1, err := h.admin.ListMembers(ctx, &chatv1.ListMembersRequest{RoomId: "class-1", Limit: 2})
	if err != nil || len(page1.GetMembers()) != 2 || !page1.GetHasMore() || page1.GetMembers()[0].GetUserId() != "alice" || page1.GetMembers()[0].GetRole() != chatv1.Role_ROLE_OWNER {
		t.Fatalf("list %v %v", page1, err)
	}
	page2, err := h.admin.ListMembers(ctx, &chatv1.ListMembersRequest{RoomId: "class-1", AfterUserId: "bob", Limit: 2})
	if err != nil || len(page2.GetMembers()) != 1 || page2.GetHasMore() || page2.GetMembers()[0].GetUserId() != "carl" {
		t.Fatalf("list page 2 %v %v", page2, err)
	}

	h.user("bob").join(map[string]any{"roomId": "class-1"})
	post := &chatv1.PostMessageRequest{RoomId: "class-1", ServiceName: "lms", DisplayName: "Assignments", Content: "Assignment due tomorrow", IdempotencyKey: "due-42"}
	pr, err := h.admin.PostMessage(ctx, post)
	if err != nil || pr.GetSeq() != 1 {
		t.Fatalf("post %v %v", pr, err)
	}
	var m message
	if err := json.Unmarshal([]byte(pr.GetMessageJson()), &m); err != nil || m.SenderID != "svc:lms" || m.SenderName != "Assignments" || m.Type != "system" || m.ClientMsgID != "due-42" || m.ID != pr.GetMessageId() {
		t.Fatalf("posted %+v %v", m, err)
	}
	again, err := h.admin.PostMessage(ctx, post)
	if err != nil || again.GetMessageId() != pr.GetMessageId() || again.GetSeq() != 1 {
		t.Fatalf("idempotent post %v %v", again, err)
	}
	ev := bobIn.wait("chat-message", 1)[0]
	if got := decode[struct{ Message message }](t, ev.GetData()).Message; got.ID != m.ID {
		t.Fatalf("delivered %+v", got)
	}
	gr, err := h.admin.GetRoom(ctx, &chatv1.GetRoomRequest{RoomId: "class-1"})
	if err != nil || gr.GetRoom().GetMemberCount() != 3 || gr.GetRoom().GetLastSeq() != 1 {
		t.Fatalf("get %v %v", gr, err)
	}
	rm, err := h.admin.RemoveMembers(ctx, &chatv1.RemoveMembersRequest{RoomId: "class-1", UserIds: []string{"carl", "nobody"}})
	if err != nil || rm.GetRemoved() != 1 {
		t.Fatalf("remove %v %v", rm, err)
	}
	if _, err := h.admin.ArchiveRoom(ctx, &chatv1.ArchiveRoomRequest{RoomId: "class-1"}); err != nil {
		t.Fatal(err)
	}
	post.IdempotencyKey = "after-archive"
	_, err = h.admin.PostMessage(ctx, post)
	wantCode(t, err, codes.FailedPrecondition)
	_, err = h.admin.GetRoom(ctx, &chatv1.GetRoomRequest{RoomId: "missing"})
	wantCode(t, err, codes.NotFound)
	_, err = h.admin.PostMessage(ctx, &chatv1.PostMessageRequest{RoomId: "missing", ServiceName: "lms", Content: "x", IdempotencyKey: "k"})
	wantCode(t, err, codes.NotFound)
}

// RegisterGRPC may be called before Run; calls fail with Unavailable until then.
func TestAdmin_UnavailableBeforeRun(t *testing.T) {
	t.Parallel()
	svc, err := chat.New(chat.Config{ServiceToken: "t"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	svc.RegisterGRPC(gs)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = gs.Serve(lis) }()
	defer gs.Stop()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = chatv1.NewChatAdminServiceClient(conn).GetRoom(ctx, &chatv1.GetRoomRequest{RoomId: "r"})
	wantCode(t, err, codes.Unavailable)
}
