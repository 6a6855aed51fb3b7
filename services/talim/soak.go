package talim

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	chatv1 "github.com/talim/realtime/proto/talim/chat/v1"
	notificationv1 "github.com/talim/realtime/proto/talim/notification/v1"
	"github.com/talim/realtime/services/talim/internal/soak"
)

const soakUsage = `talim soak — long-running steady load; memory, goroutines and fds must stay flat

Starts the whole system in this process (embedded NATS and FerretDB — over a private
PostgreSQL by default — on loopback, a temporary data directory), opens --conns connections in rooms of 10, and for
--duration sends chat messages, notifications and presence changes, sampling RSS,
goroutines and open file descriptors. Passes when the last-quartile mean of each is
within 10% (plus a small absolute slack) of the second-quartile mean. Writes
<out>/soak-report.json and <out>/soak-report.md.
`

// SoakCommand runs `talim soak` and returns the exit status (0 pass, 1 fail or
// error, 2 usage).
func SoakCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("talim soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, soakUsage); fs.PrintDefaults() }
	var o soak.Options
	fs.DurationVar(&o.Duration, "duration", 10*time.Minute, "how long the steady load runs")
	fs.IntVar(&o.Conns, "conns", 200, "client connections (one user each)")
	fs.Float64Var(&o.MsgRate, "rate", 20, "chat messages per second in total")
	fs.Float64Var(&o.NotifyRate, "notify-rate", 2, "notification sends per second (5 recipients each)")
	fs.DurationVar(&o.ChurnEvery, "churn", 2*time.Second, "one connection closed and reopened this often")
	fs.DurationVar(&o.SampleEvery, "sample", 5*time.Second, "sampling interval")
	out := fs.String("out", "docs", "directory for soak-report.json and soak-report.md")
	store := fs.String("store", StorePostgreSQL, "embedded FerretDB backend: postgresql (a private PostgreSQL; needs its binaries, make pg-deps) or sqlite (scans whole collections: slows down as messages accumulate)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	o.Log = stderr
	dir, err := os.MkdirTemp("", "talim-soak-")
	if err != nil {
		fmt.Fprintf(stderr, "talim soak: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	// PostgreSQL runs as the postgres user when we are root: it must reach its data dir.
	_ = os.Chmod(dir, 0o755)
	pgPort := 0
	if *store == StorePostgreSQL {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Fprintf(stderr, "talim soak: %v\n", err)
			return 1
		}
		pgPort = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
	}
	o.Store = *store
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	st, err := StartStack(sctx, StackConfig{DataDir: dir, Store: *store, PostgresPort: pgPort, Configure: func(c *ServiceConfigs) {
		// One load process opens every connection from one address.
		c.Edge.ConnectRate, c.Edge.ConnectBurst = 10000, 10000
	}})
	cancel()
	if err != nil {
		fmt.Fprintf(stderr, "talim soak: start system: %v\n", err)
		return 1
	}
	defer st.Close()
	conn, err := st.Dial()
	if err != nil {
		fmt.Fprintf(stderr, "talim soak: %v\n", err)
		return 1
	}
	defer conn.Close()
	chatAPI, notifyAPI := chatv1.NewChatAdminServiceClient(conn), notificationv1.NewNotificationServiceClient(conn)
	target := soak.Target{
		WSURL: st.WSURL,
		Token: func(user string) (string, error) { return st.Token(user, "Soak "+user, 24*time.Hour) },
		CreateRoom: func(ctx context.Context, id string, members []string) error {
			req := &chatv1.CreateRoomRequest{RoomId: id, Name: id, Type: chatv1.RoomType_ROOM_TYPE_GROUP}
			for _, m := range members {
				req.Members = append(req.Members, &chatv1.Member{UserId: m, Role: chatv1.Role_ROLE_MEMBER})
			}
			_, err := chatAPI.CreateRoom(ctx, req)
			return err
		},
		Notify: func(ctx context.Context, key string, to []string) error {
			_, err := notifyAPI.Send(ctx, &notificationv1.SendRequest{Recipients: to, Category: "soak", Title: "soak", Body: key, IdempotencyKey: key})
			return err
		},
	}
	rep, err := soak.Run(ctx, target, o)
	if err != nil {
		fmt.Fprintf(stderr, "talim soak: %v\n", err)
		if rep == nil {
			return 1
		}
	}
	if err := os.MkdirAll(*out, 0o755); err == nil {
		err = soak.WriteReport(rep, filepath.Join(*out, "soak-report.json"), filepath.Join(*out, "soak-report.md"))
		if err != nil {
			fmt.Fprintf(stderr, "talim soak: write report: %v\n", err)
		}
	}
	fmt.Fprint(stdout, soak.Markdown(rep))
	if !rep.Pass {
		return 1
	}
	return 0
}
