package notification

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/talim/realtime/pkg/config"
	"github.com/talim/realtime/pkg/grpcx"
	"github.com/talim/realtime/pkg/service"
	notificationv1 "github.com/talim/realtime/proto/talim/notification/v1"
)

// NotifyCommand is `talim notify`: it sends one notification through the gRPC API
// and prints the send id and counts. Exit status: 0 sent, 1 the call failed, 2 bad
// usage. The address defaults to TALIM_GRPC_ADDR, else 127.0.0.1:9090; the token to
// TALIM_SERVICE_TOKEN, else the file <TALIM_DATA_DIR or ./data>/service-token that
// `talim dev` writes.
func NotifyCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return notifyCommand(ctx, args, stdout, stderr, os.LookupEnv)
}

// kvList collects repeated --data k=v flags.
type kvList map[string]string

func (l kvList) String() string { return "" }

func (l kvList) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return errors.New("want key=value")
	}
	l[k] = val
	return nil
}

// listFlag collects comma-separated values of a repeatable flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	*l = append(*l, config.SplitList(v)...)
	return nil
}

func notifyCommand(ctx context.Context, args []string, stdout, stderr io.Writer, lookup func(string) (string, bool)) int {
	fs := flag.NewFlagSet("talim notify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: talim notify --to u1,u2 --title TITLE [--body BODY] [--category C] [--priority low|normal|high]")
		fmt.Fprintln(stderr, "                    [--require-ack] [--data k=v ...] [--expires-in 1h] [--idempotency-key K] [--addr host:port] [--token T]")
		fs.PrintDefaults()
	}
	var to listFlag
	data := kvList{}
	fs.Var(&to, "to", "recipient user ids, comma-separated (repeatable)")
	title := fs.String("title", "", "title (required)")
	body := fs.String("body", "", "body")
	category := fs.String("category", "general", "category")
	priority := fs.String("priority", "normal", "priority: low, normal or high")
	requireAck := fs.Bool("require-ack", false, "recipients must acknowledge")
	fs.Var(data, "data", "data entry key=value (repeatable)")
	expiresIn := fs.Duration("expires-in", 0, "expire the notification after this long (0: never)")
	key := fs.String("idempotency-key", "", "idempotency key (default: random, so every call sends)")
	addr := fs.String("addr", "", "gRPC address (default $TALIM_GRPC_ADDR or 127.0.0.1:9090)")
	token := fs.String("token", "", "service token (default $TALIM_SERVICE_TOKEN or <data dir>/service-token)")
	timeout := fs.Duration("timeout", 30*time.Second, "call timeout")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "talim notify: "+format+"\n", a...)
		return 2
	}
	if fs.NArg() > 0 {
		return usage("unexpected argument %q", fs.Arg(0))
	}
	if len(to) == 0 {
		return usage("--to is required")
	}
	if *title == "" {
		return usage("--title is required")
	}
	prio, ok := map[string]notificationv1.Priority{
		"low": notificationv1.Priority_PRIORITY_LOW, "normal": notificationv1.Priority_PRIORITY_NORMAL,
		"high": notificationv1.Priority_PRIORITY_HIGH,
	}[*priority]
	if !ok {
		return usage("--priority must be low, normal or high")
	}
	if *addr == "" {
		*addr = "127.0.0.1:9090"
		if v, ok := lookup("TALIM_GRPC_ADDR"); ok && v != "" {
			*addr = v
		}
	}
	if *token == "" {
		t, err := cliToken(lookup)
		if err != nil {
			fmt.Fprintf(stderr, "talim notify: %v\n", err)
			return 2
		}
		*token = t
	}
	if *key == "" {
		*key = "cli-" + service.RandomToken(16)
	}
	req := &notificationv1.SendRequest{
		Recipients: to, Category: *category, Title: *title, Body: *body, Data: data,
		Priority: prio, RequireAck: *requireAck, IdempotencyKey: *key,
	}
	if *expiresIn > 0 {
		req.ExpiresAt = timestamppb.New(time.Now().Add(*expiresIn))
	}

	conn, err := grpc.NewClient(dialTarget(*addr),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(grpcx.TokenCredentials{Token: *token, Insecure: true}))
	if err != nil {
		fmt.Fprintf(stderr, "talim notify: dial %s: %v\n", *addr, err)
		return 1
	}
	defer conn.Close()
	cctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	resp, err := notificationv1.NewNotificationServiceClient(conn).Send(cctx, req)
	if err != nil {
		st := status.Convert(err)
		fmt.Fprintf(stderr, "talim notify: send to %s: %s: %s\n", *addr, st.Code(), st.Message())
		return 1
	}
	fmt.Fprintf(stdout, "send %s: %d recipients, %d delivered live", resp.GetSendId(), resp.GetRecipients(), resp.GetDeliveredLive())
	if resp.GetDuplicate() {
		fmt.Fprint(stdout, " (duplicate: this idempotency key was used before, nothing new was sent)")
	}
	fmt.Fprintln(stdout)
	return 0
}

// dialTarget turns ":9090" (a listen address) into a dialable loopback target.
func dialTarget(addr string) string {
	if strings.HasPrefix(addr, ":") {
		return "127.0.0.1" + addr
	}
	return addr
}

func cliToken(lookup func(string) (string, bool)) (string, error) {
	if v, ok := lookup("TALIM_SERVICE_TOKEN"); ok && strings.TrimSpace(v) != "" {
		return strings.TrimSpace(v), nil
	}
	dir := "data"
	if v, ok := lookup("TALIM_DATA_DIR"); ok && v != "" {
		dir = v
	}
	p := filepath.Join(dir, "service-token")
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("no service token: pass --token, set TALIM_SERVICE_TOKEN, or start `talim dev` once (it writes %s)", p)
	}
	if err != nil {
		return "", fmt.Errorf("read service token: %w", err)
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "", fmt.Errorf("service token file %s is empty", p)
	}
	return t, nil
}
