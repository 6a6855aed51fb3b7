package e2e

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/talim/realtime/pkg/grpcx"
	chatv1 "github.com/talim/realtime/proto/talim/chat/v1"
	notificationv1 "github.com/talim/realtime/proto/talim/notification/v1"
)

// TestSecurity_GRPCServiceToken: both internal APIs refuse calls without the
// service token or with a wrong one (Unauthenticated) and do nothing.
func TestSecurity_GRPCServiceToken(t *testing.T) {
	ns := startNATSAt(t)
	fdb := startFerretAt(t)
	rg := newRig(t, ns.URL(), fdb.URI())
	b := rg.startBasic(nil)
	dial := func(addr, tok string) *grpc.ClientConn {
		opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
		if tok != "" {
			opts = append(opts, grpc.WithPerRPCCredentials(grpcx.TokenCredentials{Token: tok, Insecure: true}))
		}
		conn, err := grpc.NewClient(addr, opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	for _, cred := range []struct{ name, token string }{
		{"NoToken", ""}, {"WrongToken", "not-the-service-token"}, {"TokenPrefix", rg.SvcToken[:len(rg.SvcToken)-1]},
	} {
		t.Run("Chat_"+cred.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, err := chatv1.NewChatAdminServiceClient(dial(b.Chat.GRPCAddr(), cred.token)).CreateRoom(ctx,
				&chatv1.CreateRoomRequest{RoomId: "g-" + cred.name, Name: "x", Type: chatv1.RoomType_ROOM_TYPE_GROUP})
			if status.Code(err) != codes.Unauthenticated {
				t.Fatalf("CreateRoom: %v, want Unauthenticated", err)
			}
		})
		t.Run("Notification_"+cred.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, err := notificationv1.NewNotificationServiceClient(dial(b.Notification.GRPCAddr(), cred.token)).Send(ctx,
				&notificationv1.SendRequest{Recipients: []string{"u"}, Category: "c", Title: "t", IdempotencyKey: "g-" + cred.name})
			if status.Code(err) != codes.Unauthenticated {
				t.Fatalf("Send: %v, want Unauthenticated", err)
			}
		})
	}
	if n := rg.storeCounts()["notifications"]; n != 0 {
		t.Fatalf("%d notifications stored by refused calls", n)
	}
	if len(rg.storedMessages("g-NoToken")) != 0 {
		t.Fatal("messages in a room that should not exist")
	}
}

// TestSecurity_NATSPermissions_EdgeUser: a brief check from the e2e side with the
// deployment's own deploy/nats/nats.conf (the full matrix of every user is
// deploy/nats_test.go): an edge credential cannot forge user events, presence
// changes or chat membership, nor read commands meant for services.
func TestSecurity_NATSPermissions_EdgeUser(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "..", "deploy", "nats", "nats.conf"))
	if err != nil {
		t.Fatal(err)
	}
	// Same treatment as deploy/nats_test.go: no cluster block, no pid file or
	// monitoring port, random client port.
	conf := regexp.MustCompile(`(?s)\ncluster \{.*?\n\}\n`).ReplaceAllString(string(raw), "\n")
	for _, v := range []string{"EDGE", "CHAT", "NOTIFICATION", "PRESENCE", "ADMIN"} {
		t.Setenv(v+"_NATS_PASSWORD", "pw-"+v)
	}
	t.Setenv("POD_NAME", "e2e-nats")
	path := filepath.Join(t.TempDir(), "nats.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(path)
	if err != nil {
		t.Fatal(err)
	}
	opts.Host, opts.Port, opts.HTTPPort, opts.PidFile = "127.0.0.1", server.RANDOM_PORT, 0, ""
	opts.NoLog, opts.NoSigs, opts.LameDuckDuration = true, true, 0
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats not ready")
	}
	t.Cleanup(srv.Shutdown)
	url := srv.ClientURL()
	connect := func(user string) (*nats.Conn, chan error) {
		errs := make(chan error, 16)
		nc, err := nats.Connect(url, nats.UserInfo(user, "pw-"+map[string]string{"edge": "EDGE", "talim-admin": "ADMIN"}[user]),
			nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err }))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		return nc, errs
	}
	// The operators' user watches everything: nothing forged may get through.
	adminNC, _ := connect("talim-admin")
	received := make(chan string, 8)
	if _, err := adminNC.Subscribe("talim.>", func(m *nats.Msg) { received <- m.Subject }); err != nil {
		t.Fatal(err)
	}
	if err := adminNC.Flush(); err != nil {
		t.Fatal(err)
	}
	edgeNC, edgeErrs := connect("edge")
	for _, row := range []struct{ name, subject string }{
		{"PublishUserEvent", "talim.user.v1.victim"},
		{"PublishPresenceChange", "talim.presence.v1.changed.victim"},
		{"PublishMembership", "talim.chat.v1.membership.room-1"},
		{"PublishPresenceInternal", "talim.presence.v1.internal.status"},
	} {
		t.Run(row.name, func(t *testing.T) {
			if err := edgeNC.Publish(row.subject, []byte("forged")); err != nil {
				t.Fatal(err)
			}
			_ = edgeNC.Flush()
			select {
			case err := <-edgeErrs:
				if err == nil || !regexp.MustCompile(`(?i)permissions violation`).MatchString(err.Error()) {
					t.Fatalf("error %v, want a permissions violation", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("publish on %s was not refused", row.subject)
			}
		})
	}
	t.Run("SubscribeServiceCommands", func(t *testing.T) {
		if _, err := edgeNC.Subscribe("talim.cmd.v1.chat.send-chat-message", func(*nats.Msg) {}); err != nil {
			t.Fatal(err)
		}
		_ = edgeNC.Flush()
		select {
		case err := <-edgeErrs:
			if !regexp.MustCompile(`(?i)permissions violation`).MatchString(err.Error()) {
				t.Fatalf("error %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("subscription to chat commands was not refused")
		}
	})
	select {
	case s := <-received:
		t.Fatalf("a forged message reached %s", s)
	default:
	}
}
