package talim

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
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/talim/realtime/pkg/config"
	"github.com/talim/realtime/pkg/grpcx"
	sgv1 "github.com/talim/realtime/proto/talim/safeguarding/v1"
)

// PolicyCommand is `talim policy`: show the messaging policy, or change it
// through SafeguardingService.SetPolicy (docs/protocol.md "Safeguarding").
func PolicyCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return policyCommand(ctx, args, stdout, stderr, os.LookupEnv)
}

func policyCommand(ctx context.Context, args []string, stdout, stderr io.Writer, lookup func(string) (string, bool)) int {
	fs := flag.NewFlagSet("talim policy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: talim policy [show] [--school S]")
		fmt.Fprintln(stderr, "       talim policy set --actor USER [--leads u1,u2] [--direct-pairs teacher:student,...]")
		fmt.Fprintln(stderr, "                        [--second-adult off|include|visible] [--second-adult-ids u1] [--hours 08:00-16:00]")
		fmt.Fprintln(stderr, "                        [--days 1,2,3,4,5] [--time-zone Europe/London] [--no-hours]")
		fs.PrintDefaults()
	}
	verb := "show"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		verb, args = args[0], args[1:]
	}
	school := fs.String("school", "", "school (default: default)")
	actor := fs.String("actor", "", "user making the change (audited; required for set)")
	leads := fs.String("leads", "", "safeguarding lead user ids, comma-separated")
	pairs := fs.String("direct-pairs", "", "role pairs allowed in direct rooms, comma-separated (e.g. teacher:student)")
	second := fs.String("second-adult", "", "teacher–student direct rooms: off, include or visible")
	secondIDs := fs.String("second-adult-ids", "", "user ids added with --second-adult include (default: the leads)")
	hours := fs.String("hours", "", "pupils' sending hours HH:MM-HH:MM")
	days := fs.String("days", "", "school days, comma-separated weekday numbers (0 Sunday; default 1-5)")
	zone := fs.String("time-zone", "", "IANA time zone of the hours")
	noHours := fs.Bool("no-hours", false, "remove the school hours")
	addr := fs.String("addr", "", "gRPC address (default $TALIM_GRPC_ADDR or 127.0.0.1:9090)")
	token := fs.String("token", "", "service token (default $TALIM_SERVICE_TOKEN or <data dir>/service-token)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "talim policy: "+format+"\n", a...)
		return code
	}
	if verb != "show" && verb != "set" {
		return fail(2, "unknown action %q (show or set)", verb)
	}
	if *addr == "" {
		*addr = "127.0.0.1:9090"
		if v, ok := lookup("TALIM_GRPC_ADDR"); ok && v != "" {
			*addr = v
		}
	}
	if strings.HasPrefix(*addr, ":") {
		*addr = "127.0.0.1" + *addr
	}
	if *token == "" {
		if v, ok := lookup("TALIM_SERVICE_TOKEN"); ok && strings.TrimSpace(v) != "" {
			*token = strings.TrimSpace(v)
		} else {
			dir := "data"
			if v, ok := lookup("TALIM_DATA_DIR"); ok && v != "" {
				dir = v
			}
			t, err := ReadSecret(dir, "service-token")
			if err != nil {
				return fail(2, "%v", err)
			}
			*token = t
		}
	}
	conn, err := grpc.NewClient(*addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(grpcx.TokenCredentials{Token: *token, Insecure: true}))
	if err != nil {
		return fail(1, "dial %s: %v", *addr, err)
	}
	defer conn.Close()
	api := sgv1.NewSafeguardingServiceClient(conn)
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cur, err := api.GetPolicy(cctx, &sgv1.GetPolicyRequest{School: *school})
	if err != nil {
		return fail(1, "%v", err)
	}
	p := cur.GetPolicy()
	if verb == "set" {
		if *actor == "" {
			return fail(2, "--actor is required")
		}
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if set["leads"] {
			p.Leads = config.SplitList(*leads)
		}
		if set["direct-pairs"] {
			p.DirectPairs = config.SplitList(*pairs)
		}
		if set["second-adult"] {
			v, ok := map[string]sgv1.SecondAdult{"off": sgv1.SecondAdult_SECOND_ADULT_OFF,
				"include": sgv1.SecondAdult_SECOND_ADULT_INCLUDE, "visible": sgv1.SecondAdult_SECOND_ADULT_VISIBLE}[*second]
			if !ok {
				return fail(2, "--second-adult must be off, include or visible")
			}
			p.SecondAdult = v
		}
		if set["second-adult-ids"] {
			p.SecondAdultIds = config.SplitList(*secondIDs)
		}
		if *noHours {
			p.Hours = nil
		} else if set["hours"] || set["days"] || set["time-zone"] {
			if p.Hours == nil {
				p.Hours = &sgv1.SchoolHours{}
			}
			if set["hours"] {
				start, end, ok := strings.Cut(*hours, "-")
				if !ok {
					return fail(2, "--hours must be HH:MM-HH:MM")
				}
				p.Hours.Start, p.Hours.End = start, end
			}
			if set["time-zone"] {
				p.Hours.TimeZone = *zone
			}
			if set["days"] {
				p.Hours.Days = nil
				for _, d := range config.SplitList(*days) {
					var n int32
					if _, err := fmt.Sscan(d, &n); err != nil {
						return fail(2, "--days: %q is not a weekday number", d)
					}
					p.Hours.Days = append(p.Hours.Days, n)
				}
			}
		}
		res, err := api.SetPolicy(cctx, &sgv1.SetPolicyRequest{Policy: p, ExpectedVersion: p.GetVersion(), Actor: *actor})
		if err != nil {
			return fail(1, "%v", err)
		}
		p = res.GetPolicy()
	}
	p.Rules = nil // long; managed through SetContentRules
	b, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(p)
	if err != nil {
		return fail(1, "%v", err)
	}
	fmt.Fprintln(stdout, string(b))
	return 0
}
