package notification

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/talim/realtime/pkg/grpcx"
	notificationv1 "github.com/talim/realtime/proto/talim/notification/v1"
)

const reachUsage = `usage:
  talim reach prefs get   --user U
  talim reach prefs set   --user U [--time-zone Europe/London|school] [--quiet 21:00-07:00|off|school]
                          [--set push:grade=off ...] [--digest on|off|school]
  talim reach school get  --school S
  talim reach school set  --file school.json   (JSON of talim.notification.v1.School; "-" reads stdin)
  talim reach contact get --user U
  talim reach contact set --user U --email E [--school S] [--guardian]
common flags: --addr host:port --token T --timeout 30s
`

// ReachCommand is `talim reach`: preferences, school settings and calendar, and
// the contact directory through ReachService (docs/notifications-admin.md). Output
// is JSON. Exit status: 0 done, 1 the call failed, 2 bad usage.
func ReachCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return reachCommand(ctx, args, stdout, stderr, os.LookupEnv, os.Stdin)
}

func reachCommand(ctx context.Context, args []string, stdout, stderr io.Writer, lookup func(string) (string, bool), stdin io.Reader) int {
	if len(args) < 2 {
		fmt.Fprint(stderr, reachUsage)
		return 2
	}
	what := args[0] + " " + args[1]
	fs := flag.NewFlagSet("talim reach "+what, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, reachUsage) }
	user := fs.String("user", "", "user id")
	school := fs.String("school", "", "school id")
	tz := fs.String("time-zone", "", "IANA time zone, or \"school\" to follow the school")
	quiet := fs.String("quiet", "", "quiet hours HH:MM-HH:MM, \"off\" or \"school\"")
	var sets listFlag
	fs.Var(&sets, "set", "channel:category=on|off (repeatable, comma-separated)")
	digest := fs.String("digest", "", "email digest: on, off or school")
	file := fs.String("file", "", "school settings as JSON (\"-\": stdin)")
	email := fs.String("email", "", "email address")
	guardian := fs.Bool("guardian", false, "the user is a guardian")
	addr := fs.String("addr", "", "gRPC address (default $TALIM_GRPC_ADDR or 127.0.0.1:9090)")
	token := fs.String("token", "", "service token (default $TALIM_SERVICE_TOKEN or <data dir>/service-token)")
	timeout := fs.Duration("timeout", 30*time.Second, "call timeout")
	if err := fs.Parse(args[2:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "talim reach: "+format+"\n", a...)
		return 2
	}
	if fs.NArg() > 0 {
		return usage("unexpected argument %q", fs.Arg(0))
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
		fmt.Fprintf(stderr, "talim reach: dial %s: %v\n", *addr, err)
		return 1
	}
	defer conn.Close()
	cl := notificationv1.NewReachServiceClient(conn)
	cctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	var out proto.Message
	switch what {
	case "prefs get":
		if *user == "" {
			return usage("--user is required")
		}
		out, err = cl.GetUserPreferences(cctx, &notificationv1.GetUserPreferencesRequest{UserId: *user})
	case "prefs set":
		if *user == "" {
			return usage("--user is required")
		}
		var cur *notificationv1.GetUserPreferencesResponse
		if cur, err = cl.GetUserPreferences(cctx, &notificationv1.GetUserPreferencesRequest{UserId: *user}); err != nil {
			break
		}
		p := cur.GetPreferences()
		if p == nil {
			p = &notificationv1.UserPreferences{}
		}
		if msg := editPrefs(p, *tz, *quiet, sets, *digest); msg != "" {
			return usage("%s", msg)
		}
		out, err = cl.SetUserPreferences(cctx, &notificationv1.SetUserPreferencesRequest{UserId: *user, Preferences: p})
	case "school get":
		if *school == "" {
			return usage("--school is required")
		}
		out, err = cl.GetSchool(cctx, &notificationv1.GetSchoolRequest{SchoolId: *school})
	case "school set":
		var b []byte
		switch *file {
		case "":
			return usage("--file is required (JSON of talim.notification.v1.School)")
		case "-":
			b, err = io.ReadAll(io.LimitReader(stdin, 1<<20))
		default:
			b, err = os.ReadFile(*file)
		}
		if err != nil {
			return usage("read %s: %v", *file, err)
		}
		var sc notificationv1.School
		if err := protojson.Unmarshal(b, &sc); err != nil {
			return usage("%s: %v", *file, err)
		}
		out, err = cl.SetSchool(cctx, &notificationv1.SetSchoolRequest{School: &sc})
	case "contact get":
		if *user == "" {
			return usage("--user is required")
		}
		out, err = cl.GetContact(cctx, &notificationv1.GetContactRequest{UserId: *user})
	case "contact set":
		if *user == "" {
			return usage("--user is required")
		}
		out, err = cl.SetContact(cctx, &notificationv1.SetContactRequest{Contact: &notificationv1.Contact{
			UserId: *user, SchoolId: *school, Email: *email, Guardian: *guardian}})
	default:
		return usage("unknown command %q\n%s", what, reachUsage)
	}
	if err != nil {
		st := status.Convert(err)
		fmt.Fprintf(stderr, "talim reach %s: %s: %s\n", what, st.Code(), st.Message())
		return 1
	}
	b, _ := protojson.MarshalOptions{Multiline: true, EmitUnpopulated: true}.Marshal(out)
	fmt.Fprintln(stdout, string(b))
	return 0
}

// editPrefs applies the prefs set flags to p; it returns a usage message or "".
func editPrefs(p *notificationv1.UserPreferences, tz, quiet string, sets []string, digest string) string {
	switch tz {
	case "":
	case "school":
		p.TimeZone = ""
	default:
		p.TimeZone = tz
	}
	switch quiet {
	case "":
	case "school":
		p.QuietHours, p.QuietHoursOff = nil, false
	case "off":
		p.QuietHours, p.QuietHoursOff = nil, true
	default:
		a, b, ok := strings.Cut(quiet, "-")
		if !ok {
			return "--quiet: want HH:MM-HH:MM, off or school"
		}
		p.QuietHours, p.QuietHoursOff = &notificationv1.QuietHours{Start: a, End: b}, false
	}
	for _, s := range sets {
		key, val, ok := strings.Cut(s, "=")
		ch, cat, ok2 := strings.Cut(key, ":")
		on, err := parseOnOff(val)
		if !ok || !ok2 || err != nil {
			return fmt.Sprintf("--set %q: want channel:category=on|off", s)
		}
		replaced := false
		for _, e := range p.Settings {
			if e.GetChannel() == ch && e.GetCategory() == cat {
				e.Enabled, replaced = on, true
			}
		}
		if !replaced {
			p.Settings = append(p.Settings, &notificationv1.ChannelSetting{Channel: ch, Category: cat, Enabled: on})
		}
	}
	switch digest {
	case "":
	case "school":
		p.Digest = nil
	default:
		on, err := parseOnOff(digest)
		if err != nil {
			return "--digest: want on, off or school"
		}
		p.Digest = &on
	}
	return ""
}

func parseOnOff(v string) (bool, error) {
	switch v {
	case "on":
		return true, nil
	case "off":
		return false, nil
	}
	return strconv.ParseBool(v)
}
