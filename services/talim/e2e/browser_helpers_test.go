package e2e

// Helpers of the real-browser tests (browser_*_test.go): Debian's headless Chromium
// driven with chromedp against the demo page the edge serves. One Chromium process per
// test; every user gets a separate browser context (an incognito-like profile with its
// own cookies and storage). On failure each open page is saved as a PNG under
// $TALIM_ARTIFACTS (default services/talim/e2e/artifacts/) and its console output is
// logged.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/talim/realtime/services/edge"
	"github.com/talim/realtime/services/talim"
)

// chromiumPath is Debian's Chromium (package chromium).
const chromiumPath = "/usr/bin/chromium"

// browserStepTimeout bounds every single wait on the page.
const browserStepTimeout = 15 * time.Second

// browser is one headless Chromium process.
type browser struct {
	t       *testing.T
	ctx     context.Context // the browser's root context (first tab)
	mu      sync.Mutex
	pages   []*page
	closers []context.CancelFunc
}

// page is one tab in its own browser context, signed in as one demo user.
type page struct {
	b    *browser
	name string
	ctx  context.Context
	mu   sync.Mutex
	logs []string
}

// newBrowser starts Chromium for t (skipping the test when it is not installed) and
// stops it at cleanup, saving screenshots of every page first when t failed.
func newBrowser(t *testing.T) *browser {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skipf("%s not found: `make browser-deps` installs it (apt-get install chromium)", chromiumPath)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		// timers of background tabs must not be throttled: several users' pages are
		// open at once and each keeps its own reconnect and typing timers.
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		chromedp.WindowSize(1280, 800),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	b := &browser{t: t, ctx: bctx}
	t.Cleanup(func() {
		b.mu.Lock()
		closers := b.closers
		b.mu.Unlock()
		for _, c := range closers {
			c()
		}
		// Give Chromium a moment to exit cleanly, then kill it with the allocator.
		done := make(chan struct{})
		go func() { _ = chromedp.Cancel(bctx); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
		}
		cancelBrowser()
		cancelAlloc()
	})
	// Start the browser now so a broken install fails here, not in the first step.
	// (No timeout on this first run: its context would stop the browser when it ends.)
	start := time.Now()
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start %s: %v", chromiumPath, err)
	}
	t.Logf("chromium started in %s", time.Since(start).Round(time.Millisecond))
	// Registered after the browser's own cleanup, so it runs first (cleanups are LIFO).
	t.Cleanup(func() {
		if t.Failed() {
			b.saveArtifacts()
		}
	})
	return b
}

// open opens a new tab in a fresh browser context and navigates it to rawURL.
func (b *browser) open(name, rawURL string) *page {
	b.t.Helper()
	return b.openWith(name, rawURL)
}

// openPhone is open with a phone's viewport (390×844 CSS pixels, touch, mobile).
func (b *browser) openPhone(name, rawURL string) *page {
	b.t.Helper()
	return b.openWith(name, rawURL, chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile, chromedp.EmulateTouch, chromedp.EmulatePortrait))
}

func (b *browser) openWith(name, rawURL string, before ...chromedp.Action[chromedp.Void]) *page {
	b.t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	b.mu.Lock()
	b.closers = append(b.closers, cancel) // after the failure screenshots, see newBrowser
	b.mu.Unlock()
	p := &page{b: b, name: name, ctx: ctx}
	// The first run on a context opens its tab and must not carry a step timeout.
	if err := chromedp.Do(ctx); err != nil {
		b.t.Fatalf("%s: open a tab: %v", name, err)
	}
	// Subscribe before navigating so nothing the page logs is lost; kept for failures.
	console := chromedp.Console(ctx)
	go func() {
		for m, err := range console {
			if err != nil {
				return
			}
			p.log(m.String())
		}
	}()
	b.mu.Lock()
	b.pages = append(b.pages, p)
	b.mu.Unlock()
	p.run("navigate to "+rawURL, append(before, chromedp.Navigate(rawURL))...)
	return p
}

func (p *page) log(line string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.logs) < 500 {
		p.logs = append(p.logs, time.Now().Format("15:04:05.000")+" "+line)
	}
}

// run runs actions with the step deadline and fails the test on error.
func (p *page) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.b.t.Helper()
	p.runWithin(browserStepTimeout, what, actions...)
}

func (p *page) runWithin(d time.Duration, what string, actions ...chromedp.Action[chromedp.Void]) {
	p.b.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, d)
	defer cancel()
	start := time.Now()
	if err := chromedp.Do(ctx, actions...); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("not within %s", d)
		}
		p.b.t.Fatalf("%s: %s: %v (after %s)", p.name, what, err, time.Since(start).Round(time.Millisecond))
	}
}

// waitJS polls a JavaScript boolean expression until it is true (with the step deadline).
func (p *page) waitJS(what, expr string) {
	p.b.t.Helper()
	p.waitJSWithin(browserStepTimeout, what, expr)
}

func (p *page) waitJSWithin(d time.Duration, what, expr string) {
	p.b.t.Helper()
	p.runWithin(d, "wait for "+what, chromedp.Poll[chromedp.Void]("Boolean("+expr+")", chromedp.WithPollingInterval(25*time.Millisecond), chromedp.WithPollingTimeout(d)))
}

// eval evaluates a JavaScript expression (awaiting a promise) and returns its value.
func eval[T any](p *page, what, expr string) T {
	p.b.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, browserStepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		p.b.t.Fatalf("%s: %s: %v", p.name, what, err)
	}
	return v
}

type renderedMessage struct {
	ID      string `json:"id"`
	Seq     int64  `json:"seq"`
	Sender  string `json:"sender"`
	Content string `json:"content"`
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// artifactsDir is $TALIM_ARTIFACTS or services/talim/e2e/artifacts (created with a
// .gitignore that ignores everything in it).
func artifactsDir() (string, error) {
	dir := os.Getenv("TALIM_ARTIFACTS")
	if dir == "" {
		dir = "artifacts"
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", err
		}
		gi := filepath.Join(dir, ".gitignore")
		if _, err := os.Stat(gi); errors.Is(err, os.ErrNotExist) {
			_ = os.WriteFile(gi, []byte("# screenshots of failed browser tests\n*\n"), 0o644)
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	return filepath.Abs(dir)
}

// saveArtifacts screenshots every page and logs its console output.
func (b *browser) saveArtifacts() {
	t := b.t
	dir, err := artifactsDir()
	if err != nil {
		t.Logf("artifacts: %v", err)
		return
	}
	b.mu.Lock()
	pages := append([]*page(nil), b.pages...)
	b.mu.Unlock()
	stamp := time.Now().Format("20060102-150405")
	for _, p := range pages {
		ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100: PNG (below: JPEG)
		var html string
		if err == nil {
			html, _ = chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("html")))
		}
		cancel()
		base := filepath.Join(dir, unsafeName.ReplaceAllString(t.Name()+"-"+p.name+"-"+stamp, "_"))
		if err != nil {
			t.Logf("artifacts: screenshot of %s: %v", p.name, err)
		} else if err := os.WriteFile(base+".png", png, 0o644); err != nil {
			t.Logf("artifacts: %v", err)
		} else {
			t.Logf("artifacts: screenshot of %s saved to %s.png", p.name, base)
		}
		if html != "" {
			_ = os.WriteFile(base+".html", []byte(html), 0o644)
		}
		p.mu.Lock()
		logs := strings.Join(p.logs, "\n")
		p.mu.Unlock()
		if logs != "" {
			t.Logf("console of %s:\n%s", p.name, logs)
		}
	}
}

// pageURL is the demo page at base's root (the edge redirects it to the React demo at
// /kit/, query kept) signed in as userID.
func pageURL(base, userID string) string {
	return base + "/?user=" + url.QueryEscape(userID)
}

// spareAddr returns a loopback address with a port nothing listens on right now.
func spareAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// extraEdge is an edge of its own on a fixed address, attached to a running stack's
// NATS and JWT secret, in development mode (demo page and /dev/tokens), that the test
// can stop and start again: what a deploy or crash of the one edge a browser is
// connected to looks like.
type extraEdge struct {
	t      *testing.T
	st     *talim.Stack
	addr   string
	cancel context.CancelFunc
	done   chan error
}

func newExtraEdge(t *testing.T, st *talim.Stack) *extraEdge {
	t.Helper()
	e := &extraEdge{t: t, st: st, addr: spareAddr(t)}
	e.start()
	t.Cleanup(e.stop)
	return e
}

func (e *extraEdge) url() string { return "http://" + e.addr }

// start runs a new edge.Server on the address and waits until it is ready.
func (e *extraEdge) start() {
	e.t.Helper()
	cfg := edge.Config{
		Addr:         e.addr,
		AdminAddr:    "127.0.0.1:0",
		JWTSecret:    e.st.JWTSecret,
		DevMode:      true,
		DevUsers:     talim.DemoUsers,
		DrainWindow:  200 * time.Millisecond,
		PingInterval: 5 * time.Second,
	}
	cfg.NATS.URL = e.st.NATSURL
	cfg.Defaults()
	srv, err := edge.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		e.t.Fatalf("extra edge: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	select {
	case <-srv.Ready():
	case err := <-done:
		cancel()
		e.t.Fatalf("extra edge on %s: %v", e.addr, err)
	case <-time.After(20 * time.Second):
		cancel()
		e.t.Fatalf("extra edge on %s: not ready after 20 s", e.addr)
	}
	e.cancel, e.done = cancel, done
}

// stop ends the edge's Run (it drains: its connections are closed with 1012) and
// waits for it to return.
func (e *extraEdge) stop() {
	if e.cancel == nil {
		return
	}
	e.cancel()
	select {
	case err := <-e.done:
		if err != nil && !errors.Is(err, context.Canceled) {
			e.t.Errorf("extra edge: Run: %v", err)
		}
	case <-time.After(20 * time.Second):
		e.t.Errorf("extra edge: Run did not return 20 s after cancel")
	}
	e.cancel, e.done = nil, nil
}
