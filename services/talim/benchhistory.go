package talim

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/talim/realtime/pkg/client"
	chatv1 "github.com/talim/realtime/proto/talim/chat/v1"
)

const benchHistoryUsage = `talim bench history — history pages of one big room, through the edge

Starts the whole system in this process (like talim soak: embedded NATS and FerretDB
over a private PostgreSQL by default, loopback, a temporary data directory), creates
one room, fills it with --messages messages in bulk straight into the store (the
documents chat's store writes, with their buckets; far faster than sending them one by
one, and the pages read them as any other), then connects one client over WebSocket
and times --pages get-chat-room-history requests: the latest page, pages before a
random seq and pages after a random seq, --limit messages each. Prints the latency
percentiles (and writes them as JSON with --out).
`

// historyBenchResult is the JSON result of talim bench history.
type historyBenchResult struct {
	Store    string             `json:"store"`
	Messages int                `json:"messages"`
	Limit    int                `json:"limit"`
	FillSec  float64            `json:"fillSeconds"`
	Pages    map[string]latency `json:"pages"`
	LoadAvg  string             `json:"loadAvg"`
	CPUs     int                `json:"cpus"`
	Started  time.Time          `json:"startedAt"`
}

type latency struct {
	N     int     `json:"n"`
	P50Ms float64 `json:"p50Ms"`
	P95Ms float64 `json:"p95Ms"`
	P99Ms float64 `json:"p99Ms"`
	MaxMs float64 `json:"maxMs"`
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

// BenchHistoryCommand runs `talim bench history`.
func BenchHistoryCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("talim bench history", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, benchHistoryUsage); fs.PrintDefaults() }
	n := fs.Int("messages", 100000, "messages stored in the room")
	pages := fs.Int("pages", 300, "history requests timed, split between latest, before and after")
	limit := fs.Int("limit", 50, "messages per page")
	store := fs.String("store", StorePostgreSQL, "embedded FerretDB backend: postgresql or sqlite")
	out := fs.String("out", "", "also write the JSON result to this file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *n < 1 || *pages < 3 || *limit < 1 {
		fmt.Fprintln(stderr, "talim bench history: --messages, --limit >= 1 and --pages >= 3")
		return 2
	}
	res, err := benchHistory(ctx, *store, *n, *pages, *limit, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "talim bench history: %v\n", err)
		return 1
	}
	b, _ := json.MarshalIndent(res, "", "  ")
	fmt.Fprintf(stdout, "%s\n", b)
	if *out != "" {
		if err := os.WriteFile(*out, append(b, '\n'), 0o644); err != nil {
			fmt.Fprintf(stderr, "talim bench history: %v\n", err)
			return 1
		}
	}
	return 0
}

func benchHistory(ctx context.Context, storeName string, n, pages, limit int, logw io.Writer) (*historyBenchResult, error) {
	dir, err := os.MkdirTemp("", "talim-bench-history-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	sctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	st, err := StartStack(sctx, StackConfig{DataDir: dir, Store: storeName})
	cancel()
	if err != nil {
		return nil, fmt.Errorf("start system: %w", err)
	}
	defer st.Close()
	res := &historyBenchResult{Store: storeName, Messages: n, Limit: limit, Pages: map[string]latency{}, CPUs: runtime.NumCPU(), Started: time.Now().UTC()}

	conn, err := st.Dial()
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	const room, user = "bench-history", "bench-reader"
	if _, err := chatv1.NewChatAdminServiceClient(conn).CreateRoom(ctx, &chatv1.CreateRoomRequest{RoomId: room, Name: room,
		Type: chatv1.RoomType_ROOM_TYPE_GROUP, Members: []*chatv1.Member{{UserId: user, Role: chatv1.Role_ROLE_MEMBER}}}); err != nil {
		return nil, fmt.Errorf("create room: %w", err)
	}
	fmt.Fprintf(logw, "bench history: filling %s with %d messages in bulk\n", room, n)
	t0 := time.Now()
	if err := fillRoom(ctx, st.MongoURI, st.Database, room, n); err != nil {
		return nil, err
	}
	res.FillSec = time.Since(t0).Seconds()
	fmt.Fprintf(logw, "bench history: filled in %.1fs; timing %d pages of %d\n", res.FillSec, pages, limit)

	tok, err := st.Token(user, "Reader", time.Hour)
	if err != nil {
		return nil, err
	}
	c := client.New(client.Options{URL: st.WSURL, Token: tok})
	if err := c.Connect(ctx); err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	defer c.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	kinds := []string{"latest", "before", "after"}
	times := map[string][]time.Duration{}
	// Paced under the edge's per-connection command rate (TALIM_EDGE_COMMAND_RATE,
	// 20/s): one reader paging, as a client scrolling back does.
	pace := time.NewTicker(70 * time.Millisecond)
	defer pace.Stop()
	for i := range pages {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-pace.C:
		}
		kind := kinds[i%3]
		var o client.HistoryOptions
		o.Limit = limit
		want := limit
		switch kind {
		case "before":
			o.BeforeSeq = int64(limit+1) + rng.Int64N(int64(max(1, n-limit)))
		case "after":
			o.AfterSeq = rng.Int64N(int64(max(1, n-limit)))
		}
		rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
		start := time.Now()
		p, err := c.History(rctx, room, o)
		d := time.Since(start)
		rcancel()
		if err != nil {
			return nil, fmt.Errorf("%s page %+v: %w", kind, o, err)
		}
		if n >= limit && len(p.Messages) != want {
			return nil, fmt.Errorf("%s page %+v: %d messages, want %d", kind, o, len(p.Messages), want)
		}
		times[kind] = append(times[kind], d)
		times["all"] = append(times["all"], d)
	}
	for k, ds := range times {
		res.Pages[k] = summarize(ds)
	}
	res.LoadAvg = loadAvg() // 1, 5 and 15 minutes, at the end of the timed pages
	return res, nil
}

// fillRoom writes messages 1..n of room as chat's store does (its document shape,
// bucket = seq/64: services/chat/internal/store), then the room's lastSeq.
func fillRoom(ctx context.Context, uri, db, room string, n int) error {
	cl, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		return err
	}
	defer func() { _ = cl.Disconnect(context.Background()) }()
	msgs := cl.Database(db).Collection("messages")
	now := time.Now().UTC().Truncate(time.Millisecond)
	content := strings.Repeat("history bench message ", 4)
	batch := make([]any, 0, 1000)
	for seq := 1; seq <= n; seq++ {
		id := fmt.Sprintf("bench-%d", seq)
		batch = append(batch, bson.D{{Key: "_id", Value: "m_" + id}, {Key: "roomId", Value: room}, {Key: "seq", Value: int64(seq)},
			{Key: "senderId", Value: "bench-writer"}, {Key: "senderName", Value: "Writer"}, {Key: "type", Value: "text"},
			{Key: "content", Value: content}, {Key: "clientMsgId", Value: id}, {Key: "createdAt", Value: now},
			{Key: "editedAt", Value: nil}, {Key: "deleted", Value: false}, {Key: "bucket", Value: int64(seq / 64)}})
		if len(batch) == cap(batch) || seq == n {
			if _, err := msgs.InsertMany(ctx, batch); err != nil {
				return fmt.Errorf("fill: %w", err)
			}
			batch = batch[:0]
		}
	}
	_, err = cl.Database(db).Collection("rooms").UpdateOne(ctx, bson.D{{Key: "_id", Value: room}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "lastSeq", Value: int64(n)}}}})
	return err
}

func summarize(ds []time.Duration) latency {
	slices.Sort(ds)
	q := func(p float64) float64 {
		i := min(len(ds)-1, int(p*float64(len(ds))))
		return float64(ds[i].Microseconds()) / 1000
	}
	return latency{N: len(ds), P50Ms: q(0.5), P95Ms: q(0.95), P99Ms: q(0.99), MaxMs: q(1)}
}
