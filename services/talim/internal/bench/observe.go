package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// adminGroup is one process group's admin endpoints: every service's /metrics is
// scraped; the CPU profile comes from the first address (one process, one profile).
type adminGroup struct {
	name    string   // services, edge
	names   []string // service names, parallel to addrs
	addrs   []string
	profile bool // fetch a CPU profile of this group's process
}

// observer scrapes the system's admin endpoints before and after the measured phase
// and, with a profile directory, fetches CPU profiles during it. A nil observer
// does nothing.
type observer struct {
	groups []adminGroup
	dir    string
	logf   func(string, ...any)
	hc     *http.Client

	before, after map[string]map[string]float64 // group → series → value
	raw           map[string][]byte             // group → last scrape, for the files
	wg            sync.WaitGroup
	mu            sync.Mutex
	profiles      map[string]string // group → profile file
	problems      []string
}

// newObserver returns nil when t has no admin address.
func newObserver(t Target, dir string, logf func(string, ...any)) *observer {
	var gs []adminGroup
	if len(t.ServicesAdmin) > 0 {
		g := adminGroup{name: "services", profile: dir != ""}
		for _, n := range slices.Sorted(maps.Keys(t.ServicesAdmin)) {
			g.names, g.addrs = append(g.names, n), append(g.addrs, t.ServicesAdmin[n])
		}
		// Put chat first: its address gives the profile.
		if i := slices.Index(g.names, "chat"); i > 0 {
			g.names[0], g.names[i] = g.names[i], g.names[0]
			g.addrs[0], g.addrs[i] = g.addrs[i], g.addrs[0]
		}
		gs = append(gs, g)
	}
	if t.EdgeAdmin != "" {
		// An edge in the services' process is profiled with them.
		alone := t.EdgePID == 0 || t.EdgePID != t.ServicesPID || len(gs) == 0
		gs = append(gs, adminGroup{name: "edge", names: []string{"edge"}, addrs: []string{t.EdgeAdmin}, profile: dir != "" && alone})
	}
	if len(gs) == 0 {
		return nil
	}
	return &observer{groups: gs, dir: dir, logf: logf, hc: &http.Client{}, profiles: map[string]string{}}
}

func (o *observer) problem(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	o.mu.Lock()
	o.problems = append(o.problems, msg)
	o.mu.Unlock()
	o.logf("%s", msg)
}

// begin scrapes the counters and, with a profile directory, starts a CPU profile of
// d (whole seconds, at least 1) at start for every group that has one.
func (o *observer) begin(ctx context.Context, start time.Time, d time.Duration) {
	if o == nil {
		return
	}
	o.before, _ = o.scrape(ctx)
	if o.dir == "" {
		return
	}
	if err := os.MkdirAll(o.dir, 0o755); err != nil {
		o.problem("profile dir: %v", err)
		return
	}
	secs := max(int(math.Ceil(d.Seconds())), 1)
	for _, g := range o.groups {
		if !g.profile {
			continue
		}
		o.wg.Go(func() {
			select {
			case <-time.After(time.Until(start)):
			case <-ctx.Done():
				return
			}
			file := filepath.Join(o.dir, g.name+".pprof")
			url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", g.addrs[0], secs)
			if err := o.get(ctx, url, time.Duration(secs)*time.Second+time.Minute, file); err != nil {
				o.problem("profile of %s: %v (is TALIM_ADMIN_PPROF=true set on it?)", g.name, err)
				return
			}
			o.mu.Lock()
			o.profiles[g.name] = file
			o.mu.Unlock()
		})
	}
}

// end waits for the profiles, scrapes the counters again and, with a profile
// directory, writes each group's scrape to <group>-metrics.txt.
func (o *observer) end(ctx context.Context) {
	if o == nil {
		return
	}
	o.wg.Wait()
	o.after, o.raw = o.scrape(ctx)
	if o.dir == "" {
		return
	}
	for _, g := range o.groups {
		if b := o.raw[g.name]; len(b) > 0 {
			if err := os.WriteFile(filepath.Join(o.dir, g.name+"-metrics.txt"), b, 0o644); err != nil {
				o.problem("write %s metrics: %v", g.name, err)
			}
		}
	}
}

// get fetches url into file.
func (o *observer) get(ctx context.Context, url string, timeout time.Duration, file string) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := o.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s: %s: %s", url, resp.Status, strings.TrimSpace(string(b)))
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, io.LimitReader(resp.Body, 256<<20)); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", url, err)
	}
	return f.Close()
}

// scrape reads every group's /metrics: the counters by group, and the raw text
// (each service's scrape after a "# talim bench: <service> <addr>" line).
func (o *observer) scrape(ctx context.Context) (map[string]map[string]float64, map[string][]byte) {
	vals, raw := map[string]map[string]float64{}, map[string][]byte{}
	for _, g := range o.groups {
		m := map[string]float64{}
		var all bytes.Buffer
		for i, addr := range g.addrs {
			b, err := o.metrics(ctx, addr)
			if err != nil {
				o.problem("scrape %s %s: %v", g.names[i], addr, err)
				continue
			}
			fmt.Fprintf(&all, "# talim bench: %s %s\n", g.names[i], addr)
			all.Write(b)
			for k, v := range ParseCounters(b) {
				m[k] += v
			}
		}
		vals[g.name], raw[g.name] = m, all.Bytes()
	}
	return vals, raw
}

func (o *observer) metrics(ctx context.Context, addr string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := o.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s", resp.Status)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 32<<20))
}

// ParseCounters returns the counter-like series of a Prometheus text scrape: the
// talim_* series ending in _total or _count, by series (name and labels as
// written). Process metrics are left out: the services of talim dev share one
// process, so their sum would count it three times (the bench reads /proc instead).
func ParseCounters(b []byte) map[string]float64 {
	out := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		var series, rest string
		if i := strings.IndexByte(line, '{'); i >= 0 {
			j := strings.LastIndexByte(line, '}')
			if j < i {
				continue
			}
			series, rest = line[:j+1], line[j+1:]
		} else {
			var ok bool
			if series, rest, ok = strings.Cut(line, " "); !ok {
				continue
			}
		}
		name, _, _ := strings.Cut(series, "{")
		if !strings.HasPrefix(name, "talim_") || !strings.HasSuffix(name, "_total") && !strings.HasSuffix(name, "_count") {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		out[series] += v
	}
	return out
}

// deltas are the counters that grew over the measured phase, by group.
func (o *observer) deltas() map[string]map[string]float64 {
	if o == nil || o.after == nil {
		return nil
	}
	out := map[string]map[string]float64{}
	for g, after := range o.after {
		for k, v := range after {
			if d := v - o.before[g][k]; d > 0 {
				if out[g] == nil {
					out[g] = map[string]float64{}
				}
				out[g][k] = round3(d)
			}
		}
	}
	return out
}

// sumPrefix adds the series of m whose name (before any label) is name.
func sumPrefix(m map[string]float64, name string) (float64, bool) {
	var s float64
	found := false
	for k, v := range m {
		if n, _, _ := strings.Cut(k, "{"); n == name {
			s += v
			found = true
		}
	}
	return s, found
}
