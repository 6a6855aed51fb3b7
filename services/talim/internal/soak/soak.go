// Package soak drives steady chat, notification and presence traffic against a
// running system for a long time and samples the process's memory (RSS), goroutines
// and open file descriptors, to show they stay flat (docs/reliability.md, "Soak").
//
// The system runs in the same process as the load (talim soak starts it with
// StartStack), so the samples include the N client connections; those are opened
// before the first sample and kept for the whole run (churned connections are
// replaced one for one), so they add a constant, not a trend.
package soak

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/talim/realtime/pkg/client"
)

// Target is the system under load.
type Target struct {
	WSURL string
	// Token signs a token for a user.
	Token func(user string) (string, error)
	// CreateRoom creates a group room with members (idempotent).
	CreateRoom func(ctx context.Context, id string, members []string) error
	// Notify sends one notification to each recipient.
	Notify func(ctx context.Context, key string, recipients []string) error
}

// Options configure a run.
type Options struct {
	Duration    time.Duration // default 10m
	Conns       int           // default 200
	RoomSize    int           // default 10
	MsgRate     float64       // chat messages/s in total, default 20
	NotifyRate  float64       // notifications/s (each to 5 users), default 2
	ChurnEvery  time.Duration // one connection closed and reopened, default 2s
	SampleEvery time.Duration // default 5s
	Tolerance   float64       // allowed growth last vs second quartile, default 0.10
	Store       string        // recorded in the report
	Log         io.Writer
}

func (o *Options) defaults() {
	if o.Duration <= 0 {
		o.Duration = 10 * time.Minute
	}
	if o.Conns <= 0 {
		o.Conns = 200
	}
	if o.RoomSize <= 0 {
		o.RoomSize = 10
	}
	if o.MsgRate <= 0 {
		o.MsgRate = 20
	}
	if o.NotifyRate <= 0 {
		o.NotifyRate = 2
	}
	if o.ChurnEvery <= 0 {
		o.ChurnEvery = 2 * time.Second
	}
	if o.SampleEvery <= 0 {
		o.SampleEvery = 5 * time.Second
	}
	if o.Tolerance <= 0 {
		o.Tolerance = 0.10
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
}

// Sample is one measurement of the process.
type Sample struct {
	AtSeconds  float64 `json:"atSeconds"`
	RSSBytes   int64   `json:"rssBytes"`
	HeapBytes  uint64  `json:"heapBytes"`
	Goroutines int     `json:"goroutines"`
	FDs        int     `json:"fds"`
}

// Verdict compares the second and the last quartile of one metric.
type Verdict struct {
	Metric   string  `json:"metric"`
	Q2Mean   float64 `json:"q2Mean"`
	Q4Mean   float64 `json:"q4Mean"`
	Growth   float64 `json:"growth"` // (q4-q2)/q2
	Slack    float64 `json:"slack"`  // absolute growth always allowed
	Flat     bool    `json:"flat"`
	Describe string  `json:"describe"`
}

// Report is the result of a run.
type Report struct {
	StartedAt     time.Time        `json:"startedAt"`
	Duration      string           `json:"duration"`
	Store         string           `json:"store"`
	Conns         int              `json:"conns"`
	Rooms         int              `json:"rooms"`
	MsgRate       float64          `json:"msgRate"`
	NotifyRate    float64          `json:"notifyRate"`
	ChurnEvery    string           `json:"churnEvery"`
	MessagesAcked int64            `json:"messagesAcked"`
	SendErrors    int64            `json:"sendErrors"`
	ErrorKinds    map[string]int64 `json:"sendErrorKinds"`
	Delivered     int64            `json:"chatMessagesDelivered"`
	Notifications int64            `json:"notificationsSent"`
	NotifyErrors  int64            `json:"notifyErrors"`
	Reconnects    int64            `json:"churnedConnections"`
	Samples       []Sample         `json:"samples"`
	Verdicts      []Verdict        `json:"verdicts"`
	Pass          bool             `json:"pass"`
	GoVersion     string           `json:"goVersion"`
	NumCPU        int              `json:"numCPU"`
}

type conn struct {
	user, room string
	c          *client.Client
}

// Run drives the load for o.Duration and returns the report.
func Run(ctx context.Context, t Target, o Options) (*Report, error) {
	o.defaults()
	rooms := (o.Conns + o.RoomSize - 1) / o.RoomSize
	rep := &Report{StartedAt: time.Now().UTC(), Duration: o.Duration.String(), Store: o.Store, Conns: o.Conns, Rooms: rooms,
		MsgRate: o.MsgRate, NotifyRate: o.NotifyRate, ChurnEvery: o.ChurnEvery.String(), GoVersion: runtime.Version(), NumCPU: runtime.NumCPU()}
	user := func(i int) string { return fmt.Sprintf("soak-u%04d", i) }
	roomOf := func(i int) string { return fmt.Sprintf("soak-r%03d", i/o.RoomSize) }
	for r := range rooms {
		var members []string
		for i := r * o.RoomSize; i < min((r+1)*o.RoomSize, o.Conns); i++ {
			members = append(members, user(i))
		}
		if err := t.CreateRoom(ctx, fmt.Sprintf("soak-r%03d", r), members); err != nil {
			return nil, fmt.Errorf("create room: %w", err)
		}
	}
	var delivered atomic.Int64
	open := func(i int) (*conn, error) {
		tok, err := t.Token(user(i))
		if err != nil {
			return nil, err
		}
		c := client.New(client.Options{URL: t.WSURL, Token: tok, Backoff: client.Backoff{Initial: 100 * time.Millisecond, Max: 2 * time.Second}})
		c.OnMessage(func(client.Message) { delivered.Add(1) })
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := c.Connect(cctx); err != nil {
			c.Close()
			return nil, fmt.Errorf("connect %s: %w", user(i), err)
		}
		if _, err := c.JoinRoom(cctx, roomOf(i), client.JoinOptions{Limit: 1}); err != nil {
			c.Close()
			return nil, fmt.Errorf("join %s: %w", roomOf(i), err)
		}
		// Watch the roommates' presence.
		var mates []string
		for j := (i / o.RoomSize) * o.RoomSize; j < min((i/o.RoomSize+1)*o.RoomSize, o.Conns); j++ {
			if j != i {
				mates = append(mates, user(j))
			}
		}
		if _, err := c.SubscribePresence(cctx, mates...); err != nil {
			c.Close()
			return nil, fmt.Errorf("subscribe presence: %w", err)
		}
		return &conn{user: user(i), room: roomOf(i), c: c}, nil
	}
	conns := make([]*conn, o.Conns)
	var mu sync.Mutex // guards conns entries during churn
	fmt.Fprintf(o.Log, "soak: opening %d connections in %d rooms\n", o.Conns, rooms)
	for i := range conns {
		c, err := open(i)
		if err != nil {
			closeAll(conns)
			return nil, err
		}
		conns[i] = c
	}
	defer func() { mu.Lock(); closeAll(conns); mu.Unlock() }()

	runCtx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()
	var wg sync.WaitGroup
	var acked, sendErrs, notified, notifyErrs, churned atomic.Int64
	var kindsMu sync.Mutex
	kinds := map[string]int64{}
	countErr := func(kind string) {
		sendErrs.Add(1)
		kindsMu.Lock()
		kinds[kind]++
		kindsMu.Unlock()
	}
	// Chat: MsgRate sends/s from random connections, each in its own goroutine
	// bounded by a semaphore so a slow store cannot pile them up.
	sem := make(chan struct{}, 64)
	wg.Go(func() {
		tick := time.NewTicker(time.Duration(float64(time.Second) / o.MsgRate))
		defer tick.Stop()
		n := 0
		for {
			select {
			case <-runCtx.Done():
				return
			case <-tick.C:
			}
			n++
			i := rand.IntN(o.Conns)
			mu.Lock()
			c := conns[i]
			mu.Unlock()
			select {
			case sem <- struct{}{}:
			default:
				countErr("skipped: 64 sends in flight") // overloaded: counted, skipped
				continue
			}
			wg.Go(func() {
				defer func() { <-sem }()
				sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
				defer scancel()
				if _, err := c.c.Send(sctx, c.room, "soak message "+strconv.Itoa(n), client.SendOptions{}); err != nil {
					var pe *client.Error
					switch {
					case errors.As(err, &pe):
						countErr(pe.Code)
					case errors.Is(err, client.ErrClosed):
						countErr("connection churned meanwhile")
					case errors.Is(err, context.DeadlineExceeded):
						countErr("timeout")
					default:
						countErr(err.Error())
					}
					return
				}
				acked.Add(1)
			})
		}
	})
	// Notifications.
	wg.Go(func() {
		tick := time.NewTicker(time.Duration(float64(time.Second) / o.NotifyRate))
		defer tick.Stop()
		n := 0
		for {
			select {
			case <-runCtx.Done():
				return
			case <-tick.C:
			}
			n++
			var to []string
			for range 5 {
				to = append(to, user(rand.IntN(o.Conns)))
			}
			nctx, ncancel := context.WithTimeout(ctx, 10*time.Second)
			if err := t.Notify(nctx, fmt.Sprintf("soak-%d-%d", rep.StartedAt.UnixNano(), n), to); err != nil {
				notifyErrs.Add(1)
			} else {
				notified.Add(1)
			}
			ncancel()
		}
	})
	// Presence churn: a connection leaves and a new one of the same user comes back;
	// sometimes a status change.
	wg.Go(func() {
		tick := time.NewTicker(o.ChurnEvery)
		defer tick.Stop()
		for {
			select {
			case <-runCtx.Done():
				return
			case <-tick.C:
			}
			i := rand.IntN(o.Conns)
			mu.Lock()
			old := conns[i]
			mu.Unlock()
			old.c.Close()
			c, err := open(i)
			if err != nil {
				if runCtx.Err() != nil {
					return
				}
				fmt.Fprintf(o.Log, "soak: reopen: %v\n", err)
				continue
			}
			mu.Lock()
			conns[i] = c
			mu.Unlock()
			churned.Add(1)
			sctx, scancel := context.WithTimeout(ctx, 5*time.Second)
			_, _ = c.c.SetStatus(sctx, []string{"online", "away", "busy"}[rand.IntN(3)])
			scancel()
		}
	})
	// Samples.
	start := time.Now()
	sample := func() {
		s := Sample{AtSeconds: time.Since(start).Seconds(), Goroutines: runtime.NumGoroutine()}
		s.RSSBytes, s.FDs = procStats()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		s.HeapBytes = ms.HeapAlloc
		rep.Samples = append(rep.Samples, s)
		fmt.Fprintf(o.Log, "soak: %6.0fs rss %6.1f MB heap %6.1f MB goroutines %5d fds %4d acked %d errors %d notifications %d churned %d\n",
			s.AtSeconds, float64(s.RSSBytes)/1e6, float64(s.HeapBytes)/1e6, s.Goroutines, s.FDs, acked.Load(), sendErrs.Load(), notified.Load(), churned.Load())
	}
	tick := time.NewTicker(o.SampleEvery)
	sample()
loop:
	for {
		select {
		case <-runCtx.Done():
			break loop
		case <-tick.C:
			sample()
		}
	}
	tick.Stop()
	wg.Wait()
	rep.MessagesAcked, rep.SendErrors, rep.Delivered = acked.Load(), sendErrs.Load(), delivered.Load()
	kindsMu.Lock()
	rep.ErrorKinds = kinds
	kindsMu.Unlock()
	rep.Notifications, rep.NotifyErrors, rep.Reconnects = notified.Load(), notifyErrs.Load(), churned.Load()
	rep.Verdicts, rep.Pass = judge(rep.Samples, o.Tolerance)
	if ctx.Err() != nil {
		return rep, ctx.Err()
	}
	return rep, nil
}

func closeAll(conns []*conn) {
	for _, c := range conns {
		if c != nil {
			c.c.Close()
		}
	}
}

// judge: a metric is flat when the mean of the last quartile of the samples is at
// most (1+tol) × the mean of the second quartile plus a small absolute slack (the
// first quartile is warm-up: caches, pools and buffers filling).
func judge(samples []Sample, tol float64) ([]Verdict, bool) {
	n := len(samples)
	if n < 8 {
		return []Verdict{{Metric: "samples", Describe: fmt.Sprintf("%d samples: need at least 8 (longer --duration or shorter --sample)", n)}}, false
	}
	q := n / 4
	metrics := []struct {
		name  string
		get   func(Sample) float64
		slack float64
	}{
		{"rss_bytes", func(s Sample) float64 { return float64(s.RSSBytes) }, 8 << 20},
		{"goroutines", func(s Sample) float64 { return float64(s.Goroutines) }, 20},
		{"open_fds", func(s Sample) float64 { return float64(s.FDs) }, 10},
	}
	pass := true
	var out []Verdict
	for _, m := range metrics {
		mean := func(ss []Sample) float64 {
			var sum float64
			for _, s := range ss {
				sum += m.get(s)
			}
			return sum / float64(len(ss))
		}
		q2, q4 := mean(samples[q:2*q]), mean(samples[n-q:])
		v := Verdict{Metric: m.name, Q2Mean: q2, Q4Mean: q4, Slack: m.slack}
		if q2 > 0 {
			v.Growth = (q4 - q2) / q2
		}
		v.Flat = q4 <= q2*(1+tol)+m.slack
		v.Describe = fmt.Sprintf("last-quartile mean %.0f vs second-quartile mean %.0f (%+.1f%%; allowed %.0f%% + %.0f)", q4, q2, 100*v.Growth, 100*tol, m.slack)
		pass = pass && v.Flat
		out = append(out, v)
	}
	return out, pass
}

// procStats reads this process's resident set size and open descriptors (Linux).
func procStats() (rss int64, fds int) {
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				f := strings.Fields(rest)
				if len(f) > 0 {
					kb, _ := strconv.ParseInt(f[0], 10, 64)
					rss = kb * 1024
				}
			}
		}
	}
	if ents, err := os.ReadDir("/proc/self/fd"); err == nil {
		fds = len(ents)
	}
	return rss, fds
}

// WriteReport writes the JSON and a short markdown table.
func WriteReport(rep *Report, jsonPath, mdPath string) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(jsonPath, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.WriteFile(mdPath, []byte(Markdown(rep)), 0o644)
}

// Markdown renders the report's summary.
func Markdown(rep *Report) string {
	var b strings.Builder
	verdict := "PASS"
	if !rep.Pass {
		verdict = "FAIL"
	}
	fmt.Fprintf(&b, "# Soak report (%s)\n\n", verdict)
	fmt.Fprintf(&b, "Started %s, store FerretDB/%s, duration %s, %d connections in %d rooms, %.0f chat messages/s, %.1f notifications/s (5 recipients each), one connection churned every %s; %d CPUs, %s.\n\n",
		rep.StartedAt.Format(time.RFC3339), rep.Store, rep.Duration, rep.Conns, rep.Rooms, rep.MsgRate, rep.NotifyRate, rep.ChurnEvery, rep.NumCPU, rep.GoVersion)
	fmt.Fprintf(&b, "Messages acked %d (send errors %d: %v), chat-message deliveries %d, notification sends %d (errors %d), churned connections %d.\n\n",
		rep.MessagesAcked, rep.SendErrors, rep.ErrorKinds, rep.Delivered, rep.Notifications, rep.NotifyErrors, rep.Reconnects)
	b.WriteString("| metric | 2nd-quartile mean | last-quartile mean | growth | flat |\n| --- | ---: | ---: | ---: | --- |\n")
	for _, v := range rep.Verdicts {
		scale, unit := 1.0, ""
		if v.Metric == "rss_bytes" {
			scale, unit = 1e6, " MB"
		}
		fmt.Fprintf(&b, "| %s | %.1f%s | %.1f%s | %+.1f%% | %v |\n", v.Metric, v.Q2Mean/scale, unit, v.Q4Mean/scale, unit, 100*v.Growth, v.Flat)
	}
	if n := len(rep.Samples); n > 0 {
		f, l := rep.Samples[0], rep.Samples[n-1]
		fmt.Fprintf(&b, "\nFirst sample: RSS %.1f MB, %d goroutines, %d fds. Last sample (%.0f s): RSS %.1f MB, %d goroutines, %d fds. %d samples in the JSON.\n",
			float64(f.RSSBytes)/1e6, f.Goroutines, f.FDs, l.AtSeconds, float64(l.RSSBytes)/1e6, l.Goroutines, l.FDs, n)
	}
	return b.String()
}
