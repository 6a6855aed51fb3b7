package notification

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/talim/realtime/pkg/grpcx"
	webhookv1 "github.com/talim/realtime/proto/talim/webhook/v1"
)

const webhooksUsage = `usage: talim webhooks <command> [flags]
  list                                   list subscriptions
  create --url URL --events T1,T2 [--description D] [--secret whsec_...]
  delete --id sub_...
  rotate --id sub_... [--grace 24h]      new secret; the old one signs during the grace period
  dead --id sub_... [--limit N]          list dead letters
  replay --id sub_... [--event evt_...]  queue dead letters again (all without --event)
common flags: --addr host:port --token T --timeout 30s
`

// WebhooksCommand is `talim webhooks`: it manages webhook subscriptions through
// WebhookService (docs/webhooks.md). Exit status: 0 done, 1 the call failed, 2 bad
// usage. Address and token default as for `talim notify`.
func WebhooksCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return webhooksCommand(ctx, args, stdout, stderr, os.LookupEnv)
}

func webhooksCommand(ctx context.Context, args []string, stdout, stderr io.Writer, lookup func(string) (string, bool)) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, webhooksUsage)
		return map[bool]int{true: 2, false: 0}[len(args) == 0]
	}
	cmd := args[0]
	fs := flag.NewFlagSet("talim webhooks "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "", "gRPC address (default $TALIM_GRPC_ADDR or 127.0.0.1:9090)")
	token := fs.String("token", "", "service token (default $TALIM_SERVICE_TOKEN or <data dir>/service-token)")
	timeout := fs.Duration("timeout", 30*time.Second, "call timeout")
	id := fs.String("id", "", "subscription id")
	url := fs.String("url", "", "receiver URL (create)")
	var events listFlag
	fs.Var(&events, "events", "event types, comma-separated (create)")
	desc := fs.String("description", "", "description (create)")
	secret := fs.String("secret", "", "whsec_ secret (create, rotate; default generated)")
	grace := fs.Duration("grace", 0, "grace period of the previous secret (rotate; default server's)")
	limit := fs.Int("limit", 0, "at most this many (dead)")
	var eventIDs listFlag
	fs.Var(&eventIDs, "event", "event ids to replay, comma-separated (replay)")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "talim webhooks %s: "+format+"\n", append([]any{cmd}, a...)...)
		return 2
	}
	if fs.NArg() > 0 {
		return usage("unexpected argument %q", fs.Arg(0))
	}
	needID := cmd == "delete" || cmd == "rotate" || cmd == "dead" || cmd == "replay"
	if needID && *id == "" {
		return usage("--id is required")
	}
	if cmd == "create" && (*url == "" || len(events) == 0) {
		return usage("--url and --events are required")
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
			return usage("%v", err)
		}
		*token = t
	}
	conn, err := grpc.NewClient(dialTarget(*addr), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(grpcx.TokenCredentials{Token: *token, Insecure: true}))
	if err != nil {
		fmt.Fprintf(stderr, "talim webhooks: dial %s: %v\n", *addr, err)
		return 1
	}
	defer conn.Close()
	cctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	c := webhookv1.NewWebhookServiceClient(conn)
	switch cmd {
	case "list":
		r, err := c.ListSubscriptions(cctx, &webhookv1.ListSubscriptionsRequest{})
		if err == nil {
			for _, s := range r.GetSubscriptions() {
				fmt.Fprintf(stdout, "%s\t%s\t%s\t%d secret(s)\t%s\n", s.GetId(), s.GetUrl(), strings.Join(s.GetEventTypes(), ","),
					s.GetActiveSecrets(), s.GetDescription())
			}
		}
		return callResult(stderr, cmd, err)
	case "create":
		r, err := c.CreateSubscription(cctx, &webhookv1.CreateSubscriptionRequest{Url: *url, EventTypes: events, Description: *desc, Secret: *secret})
		if err == nil {
			fmt.Fprintf(stdout, "subscription %s\nsecret %s\n", r.GetSubscription().GetId(), r.GetSecret())
		}
		return callResult(stderr, cmd, err)
	case "delete":
		_, err := c.DeleteSubscription(cctx, &webhookv1.DeleteSubscriptionRequest{Id: *id})
		return callResult(stderr, cmd, err)
	case "rotate":
		r, err := c.RotateSecret(cctx, &webhookv1.RotateSecretRequest{Id: *id, Secret: *secret, GraceSeconds: int64(grace.Seconds())})
		if err == nil {
			fmt.Fprintf(stdout, "secret %s\nprevious secret signs until %s\n", r.GetSecret(), r.GetPreviousExpiresAt().AsTime().Format(time.RFC3339))
		}
		return callResult(stderr, cmd, err)
	case "dead":
		r, err := c.ListDeadLetters(cctx, &webhookv1.ListDeadLettersRequest{SubscriptionId: *id, Limit: int32(*limit)})
		if err == nil {
			for _, d := range r.GetDeadLetters() {
				fmt.Fprintf(stdout, "%s\t%s\t%d attempts\t%s\t%s\n", d.GetEventId(), d.GetEventType(), d.GetAttempts(),
					d.GetDeadAt().AsTime().Format(time.RFC3339), d.GetReason())
			}
		}
		return callResult(stderr, cmd, err)
	case "replay":
		r, err := c.ReplayDeadLetters(cctx, &webhookv1.ReplayDeadLettersRequest{SubscriptionId: *id, EventIds: eventIDs})
		if err == nil {
			fmt.Fprintf(stdout, "%d dead letters queued again\n", r.GetReplayed())
		}
		return callResult(stderr, cmd, err)
	}
	fmt.Fprintf(stderr, "talim webhooks: unknown command %q\n\n%s", cmd, webhooksUsage)
	return 2
}

func callResult(stderr io.Writer, cmd string, err error) int {
	if err == nil {
		return 0
	}
	st := status.Convert(err)
	fmt.Fprintf(stderr, "talim webhooks %s: %s: %s\n", cmd, st.Code(), st.Message())
	return 1
}
