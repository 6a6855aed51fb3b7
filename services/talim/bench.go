package talim

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/talim/realtime/pkg/config"
	"github.com/talim/realtime/pkg/logging"
	"github.com/talim/realtime/pkg/service"
	"github.com/talim/realtime/services/edge"
	"github.com/talim/realtime/services/talim/internal/bench"
)

const benchUsage = `talim bench — load generator (loopback only)

Usage:
  talim bench <scenario> [flags]

Scenarios:
  idle             N authenticated idle connections; edge RSS per connection
  fanout           one room of N members, R messages/s from S member connections
  rooms            M rooms of K members, R messages/s in total from random members
  notify           N online users, R notifications/s (gRPC), each to every user
  reconnect-storm  rooms of K members under load; every client drops and resumes
  join-storm       one open room; N connections join it for the first time
  history          one room of 100,000 messages; get-chat-room-history latency (own flags)

Without --url the bench starts its own system: talim dev (FerretDB over PostgreSQL)
plus a standalone edge, as child processes on spare loopback ports. With --url it
targets a running system (tokens from --data-dir or --jwt-secret).

Run "talim bench <scenario> -h" for the flags.
`

// BenchCommand runs `talim bench` and returns the exit status. The hidden modes
// `bench worker` (a load process) and `bench edge` (a standalone edge configured by
// the environment) are what the coordinator re-executes.
func BenchCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, benchUsage)
		return 2
	}
	switch args[0] {
	case "worker":
		if err := bench.RunWorker(ctx, os.Stdin, stdout); err != nil {
			fmt.Fprintf(stderr, "talim bench worker: %v\n", err)
			return 1
		}
		return 0
	case "edge":
		return benchEdge(ctx, stderr)
	case bench.Polling:
		return bench.PollingCommand(ctx, args[1:], stdout, stderr)
	case "history":
		return BenchHistoryCommand(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, benchUsage)
		return 0
	}
	if !bench.IsScenario(args[0]) {
		fmt.Fprintf(stderr, "talim bench: unknown scenario %q\n\n%s", args[0], benchUsage)
		return 2
	}
	o := bench.Options{Scenario: args[0]}
	fs := flag.NewFlagSet("talim bench "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.Label, "label", "", "label stored in the result")
	fs.IntVar(&o.Conns, "conns", 0, "connections (idle, notify: 1000; join-storm: 10000) or fanout room members (default 1000)")
	fs.IntVar(&o.Rooms, "rooms", 0, "rooms (rooms: 2000, reconnect-storm: 100)")
	fs.IntVar(&o.RoomSize, "room-size", 0, "members per room (rooms: 5, reconnect-storm: 10)")
	fs.Float64Var(&o.Rate, "rate", 0, "messages/s in total (fanout 100, rooms 1000, reconnect-storm 200) or notifications/s (notify 10)")
	fs.DurationVar(&o.Duration, "duration", 0, "sending phase (default 20s); join-storm: length of the --profile CPU profile")
	fs.IntVar(&o.Senders, "senders", 0, "fanout: member connections that send (default 20)")
	fs.IntVar(&o.PadBytes, "pad", 0, "extra bytes of message content")
	fs.IntVar(&o.Workers, "workers", 0, "load processes (default: one per 10,000 connections)")
	fs.Float64Var(&o.ConnectRate, "connect-rate", 0, "new connections/s in total (default 3000)")
	fs.DurationVar(&o.Settle, "settle", 0, "idle: wait before measuring RSS (default 10s)")
	fs.DurationVar(&o.DropWindow, "drop-window", 0, "reconnect-storm: reconnects spread over this window (default 5s)")
	fs.DurationVar(&o.Timeout, "timeout", 0, "bound on the whole run (default duration+15m)")
	fs.IntVar(&o.JoinInflight, "join-inflight", 0, "joins in flight per worker (default 256)")
	fs.DurationVar(&o.ProbeAfter, "probe-after", 0, "rooms, fanout, reconnect-storm: send join probes this long after the send phase ends")
	fs.IntVar(&o.ProbeConns, "probe-conns", 0, "connections per worker that send a probe join (default 20)")
	fs.StringVar(&o.ProbeRoom, "probe-room", "", "what the probe joins: fresh (first join of an open room created up front; default) or own (the connection's room again)")
	fs.StringVar(&o.Profile, "profile", "", "directory: the started system serves pprof; CPU profiles of the measured phase and /metrics scrapes go here")
	url := fs.String("url", "", "target a running edge (http://127.0.0.1:8080); loopback only")
	grpcAddr := fs.String("grpc", "127.0.0.1:9090", "gRPC address of the running system (with --url)")
	dataDir := fs.String("data-dir", "./data", "data dir of the running talim dev (secrets), with --url")
	secret := fs.String("jwt-secret", "", "HS256 secret of the running system (default: from --data-dir)")
	token := fs.String("service-token", "", "service token of the running system (default: from --data-dir)")
	pids := fs.String("pid", "", "with --url: pid of the edge process to measure, optionally ,<services pid>")
	edgeAdmin := fs.String("edge-admin", "", "with --url: admin address (host:port) of the edge, for /metrics and --profile")
	svcAdmin := fs.String("services-admin", "", "with --url: admin address of the chat service (host:port), for /metrics and --profile")
	store := fs.String("store", "postgresql", "store of the started system: postgresql or sqlite")
	edgeAlone := fs.Bool("edge-alone", true, "run the edge in its own process next to talim dev")
	out := fs.String("out", "", "also write the JSON result to this file")
	chart := fs.String("chart", "", "write the latency chart (self-contained HTML) to this file")
	quiet := fs.Bool("quiet", false, "no progress bar or phase messages")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if *url != "" {
		t, err := benchTarget(*url, *grpcAddr, *dataDir, *secret, *token, *pids)
		if err != nil {
			fmt.Fprintf(stderr, "talim bench: %v\n", err)
			return 2
		}
		t.EdgeAdmin = *edgeAdmin
		if *svcAdmin != "" {
			t.ServicesAdmin = map[string]string{"chat": *svcAdmin}
		}
		o.Target = t
	}
	o.System = bench.SystemOptions{Store: *store, EdgeAlone: *edgeAlone, Pprof: o.Profile != ""}
	if !*quiet {
		o.Progress, o.Log = stderr, stderr
	}
	res, err := bench.Run(ctx, o)
	if err != nil {
		fmt.Fprintf(stderr, "talim bench: %v\n", err)
		return 1
	}
	line, _ := json.Marshal(res)
	fmt.Fprintln(stdout, string(line))
	if *out != "" {
		if err := writeFile(*out, func(w io.Writer) error { _, err := w.Write(append(line, '\n')); return err }); err != nil {
			fmt.Fprintf(stderr, "talim bench: %v\n", err)
			return 1
		}
	}
	if *chart != "" {
		if err := writeFile(*chart, res.WriteChart); err != nil {
			fmt.Fprintf(stderr, "talim bench: %v\n", err)
			return 1
		}
	}
	return 0
}

func writeFile(p string, write func(io.Writer) error) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	f, err := os.Create(p)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func benchTarget(url, grpcAddr, dataDir, secret, token, pids string) (*bench.Target, error) {
	if err := bench.CheckLoopbackURL(url); err != nil {
		return nil, err
	}
	if err := bench.CheckLoopbackAddr(grpcAddr); err != nil {
		return nil, err
	}
	ws := strings.TrimSuffix(url, "/")
	ws = strings.Replace(ws, "http://", "ws://", 1)
	ws = strings.Replace(ws, "https://", "wss://", 1)
	if !strings.HasSuffix(ws, "/ws") {
		ws += "/ws"
	}
	t := &bench.Target{WSURL: ws, GRPCAddr: grpcAddr, JWTSecret: secret, ServiceToken: token}
	var err error
	if t.JWTSecret == "" {
		if t.JWTSecret, err = ReadSecret(dataDir, JWTSecretFile); err != nil {
			return nil, err
		}
	}
	if t.ServiceToken == "" {
		if t.ServiceToken, err = ReadSecret(dataDir, ServiceTokenFile); err != nil {
			return nil, err
		}
	}
	if pids != "" {
		ps := strings.Split(pids, ",")
		if _, err := fmt.Sscanf(ps[0], "%d", &t.EdgePID); err != nil {
			return nil, fmt.Errorf("--pid %q: %w", pids, err)
		}
		t.ServicesPID = t.EdgePID
		if len(ps) > 1 {
			if _, err := fmt.Sscanf(ps[1], "%d", &t.ServicesPID); err != nil {
				return nil, fmt.Errorf("--pid %q: %w", pids, err)
			}
		}
	}
	return t, nil
}

// benchEdge runs the edge alone, configured by the environment exactly like
// services/edge/cmd/edge (the bench starts it next to talim dev to measure it apart).
func benchEdge(ctx context.Context, stderr io.Writer) int {
	var cfg edge.Config
	var lg service.Log
	set := config.NewSet(flag.NewFlagSet("talim bench edge", flag.ContinueOnError), os.LookupEnv)
	cfg.Register(set)
	lg.Register(set, "text")
	if err := set.Load(); err != nil {
		fmt.Fprintf(stderr, "talim bench edge: %v\n", err)
		return 2
	}
	log, err := logging.New(stderr, lg.Format, lg.Level)
	if err != nil {
		fmt.Fprintf(stderr, "talim bench edge: %v\n", err)
		return 2
	}
	srv, err := edge.New(cfg, log)
	if err != nil {
		fmt.Fprintf(stderr, "talim bench edge: %v\n", err)
		return 2
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := srv.Run(ctx); err != nil {
		fmt.Fprintf(stderr, "talim bench edge: %v\n", err)
		return 1
	}
	return 0
}
