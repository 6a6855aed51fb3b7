package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Polling is the Socket.IO long-polling scenario (`talim bench polling`): N sessions
// on the Engine.IO polling transport that never upgrade, each sending the edge-local
// `ping` event with an ack id at an open-loop total rate; the latency is from the POST
// of an event to the GET that brings its ack back. It measures the polling transport
// of the edge (HTTP requests, the pipe, the writer), not the chat path. It is bounded
// (at most 2,000 sessions, 5,000 events/s, 2 minutes), runs in this process and
// targets a running development stack on loopback (CONNECT with auth {userId}).
const Polling = "polling"

// PollingOptions configure a polling run.
type PollingOptions struct {
	URL      string // http://127.0.0.1:8080 (loopback only)
	Conns    int
	Rate     float64 // events/s in total
	Duration time.Duration
}

// PollingResult is the outcome of a polling run.
type PollingResult struct {
	Scenario    string  `json:"scenario"`
	Conns       int     `json:"conns"`
	Connected   int     `json:"connected"`
	Rate        float64 `json:"rate"`
	Seconds     float64 `json:"seconds"`
	Sent        int64   `json:"sent"`
	Acked       int64   `json:"acked"`
	AckedPerSec float64 `json:"ackedPerSec"`
	Errors      int64   `json:"errors"`
	P50Ms       float64 `json:"p50Ms"`
	P99Ms       float64 `json:"p99Ms"`
	MaxMs       float64 `json:"maxMs"`
	GETs        int64   `json:"gets"`
	POSTs       int64   `json:"posts"`
}

func (o *PollingOptions) check() error {
	o.Conns = orInt(o.Conns, 200)
	o.Rate = orFloat(o.Rate, 500)
	o.Duration = orDur(o.Duration, 10*time.Second)
	switch {
	case o.Conns < 1 || o.Conns > 2000:
		return fmt.Errorf("bench polling: %d sessions: want 1..2000", o.Conns)
	case o.Rate <= 0 || o.Rate > 5000:
		return fmt.Errorf("bench polling: rate %v: want 0..5000 events/s", o.Rate)
	case o.Duration > 2*time.Minute:
		return errors.New("bench polling: duration over 2m")
	}
	return CheckLoopbackURL(o.URL)
}

type pollBenchConn struct {
	base  string // …/socket.io/?EIO=4&transport=polling&sid=…
	hc    *http.Client
	st    *pollStats
	postM sync.Mutex
	mu    sync.Mutex
	sent  map[int64]time.Time
	next  int64
}

type pollStats struct {
	sent, acked, errors, gets, posts atomic.Int64
	mu                               sync.Mutex
	lat                              []time.Duration
}

func (c *pollBenchConn) do(ctx context.Context, method, u, body string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, strings.NewReader(body))
	if err != nil {
		return "", err
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
		c.st.posts.Add(1)
	} else {
		c.st.gets.Add(1)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %d %s", method, resp.StatusCode, b)
	}
	return string(b), nil
}

func (c *pollBenchConn) post(ctx context.Context, body string) error {
	c.postM.Lock()
	defer c.postM.Unlock()
	_, err := c.do(ctx, http.MethodPost, c.base, body)
	return err
}

// open makes the handshake and the CONNECT of user.
func (c *pollBenchConn) open(ctx context.Context, root, user string) error {
	body, err := c.do(ctx, http.MethodGet, root, "")
	if err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	var open struct{ SID string }
	if !strings.HasPrefix(body, "0") || json.Unmarshal([]byte(body[1:]), &open) != nil {
		return fmt.Errorf("handshake: %q", body)
	}
	c.base = root + "&sid=" + open.SID
	return c.post(ctx, `40{"userId":`+strconv.Quote(user)+`}`)
}

// poll runs the GET loop until ctx ends.
func (c *pollBenchConn) poll(ctx context.Context) {
	for ctx.Err() == nil {
		body, err := c.do(ctx, http.MethodGet, c.base, "")
		if err != nil {
			if ctx.Err() == nil {
				c.st.errors.Add(1)
			}
			return
		}
		now := time.Now()
		for _, p := range strings.Split(body, "\x1e") {
			switch {
			case p == "2":
				go func() { _ = c.post(ctx, "3") }()
			case p == "1":
				c.st.errors.Add(1)
				return
			case strings.HasPrefix(p, "43"):
				end := strings.IndexByte(p, '[')
				id, err := strconv.ParseInt(p[2:max(end, 2)], 10, 64)
				if err != nil {
					continue
				}
				c.mu.Lock()
				t0, ok := c.sent[id]
				delete(c.sent, id)
				c.mu.Unlock()
				if ok {
					c.st.acked.Add(1)
					c.st.mu.Lock()
					c.st.lat = append(c.st.lat, now.Sub(t0))
					c.st.mu.Unlock()
				}
			}
		}
	}
}

func (c *pollBenchConn) send(ctx context.Context) {
	c.mu.Lock()
	c.next++
	id := c.next
	c.sent[id] = time.Now()
	c.mu.Unlock()
	c.st.sent.Add(1)
	if err := c.post(ctx, "42"+strconv.FormatInt(id, 10)+`["ping",{}]`); err != nil && ctx.Err() == nil {
		c.st.errors.Add(1)
	}
}

// RunPolling runs the polling scenario.
func RunPolling(ctx context.Context, o PollingOptions) (*PollingResult, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	root := strings.TrimSuffix(o.URL, "/") + "/socket.io/?EIO=4&transport=polling"
	tr := &http.Transport{MaxIdleConnsPerHost: 3 * o.Conns, MaxConnsPerHost: 0, IdleConnTimeout: time.Minute}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: time.Minute}
	st := &pollStats{}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	conns := make([]*pollBenchConn, 0, o.Conns)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer stop()
	for i := 0; i < o.Conns; i++ {
		c := &pollBenchConn{hc: hc, st: st, sent: map[int64]time.Time{}}
		if err := c.open(ctx, root, fmt.Sprintf("bench-poll-%d", i)); err != nil {
			if len(conns) == 0 {
				return nil, fmt.Errorf("bench polling: first session: %w (is the target a development stack?)", err)
			}
			st.errors.Add(1)
			continue
		}
		conns = append(conns, c)
		wg.Add(1)
		go func() { defer wg.Done(); c.poll(runCtx) }()
	}
	interval := time.Duration(float64(time.Second) / o.Rate)
	t0 := time.Now()
	end := t0.Add(o.Duration)
	var sends sync.WaitGroup
	for k := 0; ; k++ {
		at := t0.Add(time.Duration(k) * interval)
		if !at.Before(end) || ctx.Err() != nil {
			break
		}
		if d := time.Until(at); d > 0 {
			time.Sleep(d) // open-loop schedule
		}
		c := conns[k%len(conns)]
		sends.Add(1)
		go func() { defer sends.Done(); c.send(runCtx) }()
	}
	sends.Wait()
	// Acks still in flight get a moment to arrive.
	deadline := time.Now().Add(5 * time.Second)
	for st.acked.Load()+st.errors.Load() < st.sent.Load() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	secs := time.Since(t0).Seconds()
	stop() // ends the GET loops first: the close packet below is not an error
	wg.Wait()
	for _, c := range conns {
		_ = c.post(ctx, "1")
	}
	res := &PollingResult{Scenario: Polling, Conns: o.Conns, Connected: len(conns), Rate: o.Rate, Seconds: secs,
		Sent: st.sent.Load(), Acked: st.acked.Load(), Errors: st.errors.Load(), GETs: st.gets.Load(), POSTs: st.posts.Load()}
	res.AckedPerSec = float64(res.Acked) / o.Duration.Seconds()
	st.mu.Lock()
	lat := slices.Clone(st.lat)
	st.mu.Unlock()
	slices.Sort(lat)
	if n := len(lat); n > 0 {
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		res.P50Ms, res.P99Ms, res.MaxMs = ms(lat[n/2]), ms(lat[min(n-1, n*99/100)]), ms(lat[n-1])
	}
	return res, nil
}

// PollingCommand is `talim bench polling [flags]`; it prints the result as JSON.
func PollingCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var o PollingOptions
	fs := flag.NewFlagSet("talim bench polling", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.URL, "url", "http://127.0.0.1:8080", "edge of a running talim dev (loopback only)")
	fs.IntVar(&o.Conns, "conns", 0, "polling sessions (default 200, at most 2000)")
	fs.Float64Var(&o.Rate, "rate", 0, "ping events/s in total (default 500, at most 5000)")
	fs.DurationVar(&o.Duration, "duration", 0, "sending phase (default 10s, at most 2m)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	res, err := RunPolling(ctx, o)
	if err != nil {
		fmt.Fprintf(stderr, "talim bench: %v\n", err)
		return 1
	}
	var b bytes.Buffer
	_ = json.NewEncoder(&b).Encode(res)
	_, _ = stdout.Write(b.Bytes())
	return 0
}
