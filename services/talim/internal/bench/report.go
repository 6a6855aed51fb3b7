package bench

import (
	"fmt"
	"html/template"
	"io"
	"maps"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Result is the outcome of one run; its JSON is the one line `talim bench` prints.
type Result struct {
	Scenario string         `json:"scenario"`
	Label    string         `json:"label,omitempty"`
	Time     string         `json:"time"`
	Machine  Machine        `json:"machine"`
	Params   map[string]any `json:"params"`
	ChildEnv []string       `json:"childEnv,omitempty"`

	Connections struct {
		Target     int     `json:"target"`
		Reached    int64   `json:"reached"`
		Failed     int64   `json:"failed"`
		Joined     int64   `json:"joined,omitempty"`
		JoinFailed int64   `json:"joinFailed,omitempty"`
		Seconds    float64 `json:"seconds"`
		Connect    Summary `json:"connectLatency"`
	} `json:"connections"`

	Messages struct {
		Sent       int64 `json:"sent"`
		SendFailed int64 `json:"sendFailed"`
		Totals
		// Unanswered: sent, neither acknowledged nor refused (by the end of the run).
		Unanswered  int64 `json:"unanswered"`
		Recovered   int64 `json:"recoveredByResume,omitempty"`
		Deliveries  int64 `json:"deliveryFrames"`
		Reconnected int64 `json:"reconnected,omitempty"`
		// Rejoined: resumed joins acknowledged after a reconnect; InSend: before the
		// send phase's scheduled end.
		Rejoined          int64 `json:"rejoined,omitempty"`
		RejoinedInSend    int64 `json:"rejoinedDuringSend,omitempty"`
		ReconnectedInSend int64 `json:"reconnectedDuringSend,omitempty"`
	} `json:"messages"`

	SendSeconds      float64  `json:"sendSeconds,omitempty"`
	MessagesPerSec   float64  `json:"messagesPerSec,omitempty"`
	DeliveriesPerSec float64  `json:"deliveriesPerSec,omitempty"`
	E2E              Summary  `json:"e2eLatency"`
	Ack              Summary  `json:"sendAckLatency"`
	Lag              Summary  `json:"scheduleLag"`
	Rejoin           *Summary `json:"reconnectToRejoin,omitempty"`
	// Join: first join of each connection, sent → ack (errors are not in it).
	Join        *Summary `json:"joinLatency,omitempty"`
	JoinSeconds float64  `json:"joinSeconds,omitempty"`
	JoinsPerSec float64  `json:"joinsPerSec,omitempty"`
	// Refusals: error frames by command (send, join, rejoin, probe, history) and
	// code; RefusalLatency: send → error frame; RetryAfter: the retryAfterMs values.
	Refusals       map[string]map[string]int64 `json:"refusals,omitempty"`
	RefusalLatency *Summary                    `json:"refusalLatency,omitempty"`
	RetryAfter     *Summary                    `json:"retryAfter,omitempty"`
	Probe          *ProbeResult                `json:"probe,omitempty"`
	// Counters: talim_* counters (and process CPU) that grew over the measured
	// phase, by process group, from the admin /metrics; Ratios derives per-message
	// and per-delivery costs from them.
	Counters  map[string]map[string]float64 `json:"counters,omitempty"`
	Ratios    map[string]float64            `json:"ratios,omitempty"`
	Profiles  map[string]string             `json:"profiles,omitempty"`
	Problems  []string                      `json:"problems,omitempty"`
	Idle      *IdleResult                   `json:"idle,omitempty"`
	Processes map[string]ProcResult         `json:"processes"`
	Errors    map[string]int64              `json:"errors,omitempty"`
	Closes    map[string]int64              `json:"closes,omitempty"`
	Other     map[string]int64              `json:"otherEvents,omitempty"`

	e2e, ack, lag, rejoin, connect, join, probe, refusal, retry Hist
	sendStart, sendEnd                                          time.Time
	sysBase, sysEnd                                             procSet
	notifyAcked, notifyMax                                      int64
}

// Machine describes where the run happened.
type Machine struct {
	NProc int    `json:"nproc"`
	CPU   string `json:"cpu"`
	MemGB int64  `json:"memGiB"`
	Go    string `json:"go"`
}

// IdleResult is the idle scenario's memory figure.
type IdleResult struct {
	EdgeAlone       bool    `json:"edgeAlone"`
	RSSBeforeBytes  int64   `json:"rssBeforeBytes"`
	RSSAfterBytes   int64   `json:"rssAfterBytes"`
	RSSAfter2sBytes int64   `json:"rssAfter2sBytes"`
	PerConnBytes    float64 `json:"perConnBytes"`
	Note            string  `json:"note"`
}

// ProbeResult is the overload probe: joins sent After the send phase ended.
type ProbeResult struct {
	After   string           `json:"after"`
	Room    string           `json:"room"` // fresh (first join of a probe room) or own
	OK      int64            `json:"ok"`
	Failed  int64            `json:"failed"`
	Latency Summary          `json:"latency"` // acknowledged probes, sent → ack
	Codes   map[string]int64 `json:"codes,omitempty"`
}

// ProcResult is a process group's CPU and RSS over the measured phase.
type ProcResult struct {
	CPUSeconds float64 `json:"cpuSeconds"`
	CPUPercent float64 `json:"cpuPercent,omitempty"` // of one core, over the phase
	RSSBytes   int64   `json:"rssBytes"`
	// CPU µs per acknowledged message, per delivery, per successful join (join-storm),
	// over the measured phase including the drain.
	CPUUsPerMessage  float64 `json:"cpuUsPerMessage,omitempty"`
	CPUUsPerDelivery float64 `json:"cpuUsPerDelivery,omitempty"`
	CPUUsPerJoin     float64 `json:"cpuUsPerJoin,omitempty"`
}

func machine() Machine {
	m := Machine{NProc: runtime.NumCPU(), Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				m.CPU = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		_, _ = fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(strings.SplitN(string(b), "\n", 2)[0], "MemTotal:")), "%d", &kb)
		m.MemGB = int64(math.Round(float64(kb) / (1 << 20)))
	}
	return m
}

func (r *Result) init(o Options) {
	r.Scenario, r.Label, r.Time, r.Machine = o.Scenario, o.Label, time.Now().UTC().Format(time.RFC3339), machine()
	r.Connections.Target = o.Conns
	r.Params = map[string]any{"conns": o.Conns, "workers": o.Workers, "connectRate": o.ConnectRate}
	switch o.Scenario {
	case Idle:
		r.Params["settle"] = o.Settle.String()
	case Fanout:
		r.Params["rate"], r.Params["duration"], r.Params["senders"], r.Params["padBytes"] = o.Rate, o.Duration.String(), o.Senders, o.PadBytes
	case Rooms, ReconnectStorm:
		r.Params["rooms"], r.Params["roomSize"], r.Params["rate"], r.Params["duration"] = o.Rooms, o.RoomSize, o.Rate, o.Duration.String()
		if o.Scenario == ReconnectStorm {
			r.Params["dropWindow"] = o.DropWindow.String()
		}
	case JoinStorm:
		r.Params["joinInflight"] = o.JoinInflight
	case Notify:
		r.Params["rate"], r.Params["duration"] = o.Rate, o.Duration.String()
	}
	if o.ProbeAfter > 0 {
		r.Params["probeAfter"], r.Params["probeConns"], r.Params["probeRoom"] = o.ProbeAfter.String(), o.ProbeConns, o.ProbeRoom
	}
	if o.Profile != "" {
		r.Params["profile"] = o.Profile
	}
	r.Processes = map[string]ProcResult{}
}

func (r *Result) addErr(k string) {
	if r.Errors == nil {
		r.Errors = map[string]int64{}
	}
	r.Errors[k]++
}

func addMap(dst *map[string]int64, src map[string]int64) {
	for k, v := range src {
		if *dst == nil {
			*dst = map[string]int64{}
		}
		(*dst)[k] += v
	}
}

// fold merges the workers' reports.
func (r *Result) fold(ws []*WorkerStats) {
	rooms := map[string]*RoomStats{}
	var wcpu float64
	var wrss int64
	for _, s := range ws {
		r.Messages.Sent += s.Sent
		r.Messages.SendFailed += s.SendFailed
		r.Messages.Recovered += s.Recovered
		r.Messages.Deliveries += s.Deliveries
		r.Messages.Reconnected += s.Reconnected
		r.Messages.Rejoined += s.Rejoined
		r.Messages.RejoinedInSend += s.RejoinedInSend
		r.Messages.ReconnectedInSend += s.ReconnectedInSend
		for op, m := range s.Codes {
			if r.Refusals == nil {
				r.Refusals = map[string]map[string]int64{}
			}
			if r.Refusals[op] == nil {
				r.Refusals[op] = map[string]int64{}
			}
			for k, v := range m {
				r.Refusals[op][k] += v
			}
		}
		r.join.Merge(s.Join.Hist())
		r.probe.Merge(s.Probe.Hist())
		r.refusal.Merge(s.Refusal.Hist())
		r.retry.Merge(s.RetryAfter.Hist())
		for k, v := range s.Rooms {
			if rooms[k] == nil {
				rooms[k] = NewRoomStats()
			}
			rooms[k].Merge(v)
		}
		r.e2e.Merge(s.E2E.Hist())
		r.ack.Merge(s.Ack.Hist())
		r.lag.Merge(s.Lag.Hist())
		r.connect.Merge(s.Connect.Hist())
		r.rejoin.Merge(s.Rejoin.Hist())
		addMap(&r.Errors, s.Errors)
		addMap(&r.Closes, s.Closes)
		addMap(&r.Other, s.Other)
		wcpu += s.CPUSeconds
		wrss += s.RSSBytes
	}
	if nr := rooms[NotifyRoom]; nr != nil {
		nr.Acked, nr.AckedMax = r.notifyAcked, r.notifyMax
	}
	r.Messages.Totals = Tally(rooms)
	if r.Scenario != Notify && r.Scenario != Idle {
		r.Messages.Unanswered = max(r.Messages.Sent-r.Messages.Acked-r.Messages.SendFailed, 0)
	}
	r.Processes["workers"] = ProcResult{CPUSeconds: round3(wcpu), RSSBytes: wrss}
}

func round3(f float64) float64 { return math.Round(f*1000) / 1000 }

// perUnit is v/n rounded to 0.1, or 0 when n is 0.
func perUnit(v float64, n int64) float64 {
	if n <= 0 {
		return 0
	}
	return math.Round(v/float64(n)*10) / 10
}

// ratios fills Counters, Ratios, Profiles and Problems from the observer: NATS
// publishes per delivery and store operations per message (chat), socket frames and
// bytes per delivery (edge).
func (r *Result) ratios(o *observer) {
	if o == nil {
		return
	}
	r.Counters = o.deltas()
	o.mu.Lock()
	if len(o.profiles) > 0 {
		r.Profiles = maps.Clone(o.profiles)
	}
	r.Problems = slices.Clone(o.problems)
	o.mu.Unlock()
	unit, per := r.Messages.Acked, "PerMessage"
	if r.Scenario == JoinStorm {
		unit, per = r.Connections.Joined, "PerJoin"
	}
	set := func(k string, v float64, n int64) {
		if n <= 0 {
			return
		}
		if r.Ratios == nil {
			r.Ratios = map[string]float64{}
		}
		r.Ratios[k] = math.Round(v/float64(n)*1000) / 1000
	}
	svc, edge := r.Counters["services"], r.Counters["edge"]
	if v, ok := sumPrefix(svc, "talim_chat_fanout_publishes_total"); ok {
		set("natsPublishesPerDelivery", v, r.Messages.Delivered)
		set("natsPublishes"+per, v, unit)
	}
	if v, ok := sumPrefix(svc, "talim_chat_store_seconds_count"); ok {
		set("storeOps"+per, v, unit)
		for k, n := range svc {
			if op, ok := strings.CutPrefix(k, "talim_chat_store_seconds_count{"); ok {
				set("storeOps"+per+"{"+op, n, unit)
			}
		}
	}
	if v, ok := sumPrefix(edge, "talim_edge_frames_out_total"); ok {
		set("edgeFramesOutPerDelivery", v, r.Messages.Delivered)
	}
	if v, ok := sumPrefix(edge, "talim_edge_bytes_out_total"); ok {
		set("edgeBytesOutPerDelivery", v, r.Messages.Delivered)
	}
}

func (r *Result) finish(rn *run) {
	if !r.sendStart.IsZero() && r.sendEnd.After(r.sendStart) {
		r.SendSeconds = round3(r.sendEnd.Sub(r.sendStart).Seconds())
		r.MessagesPerSec = math.Round(float64(r.Messages.Acked) / r.SendSeconds)
		r.DeliveriesPerSec = math.Round(float64(r.Messages.Delivered) / r.SendSeconds)
	}
	r.E2E, r.Ack, r.Lag, r.Connections.Connect = r.e2e.Summary(), r.ack.Summary(), r.lag.Summary(), r.connect.Summary()
	opt := func(h *Hist) *Summary {
		if h.N == 0 {
			return nil
		}
		s := h.Summary()
		return &s
	}
	r.Rejoin, r.Join, r.RefusalLatency, r.RetryAfter = opt(&r.rejoin), opt(&r.join), opt(&r.refusal), opt(&r.retry)
	if r.JoinSeconds > 0 && r.Scenario == JoinStorm {
		r.JoinsPerSec = math.Round(float64(r.Connections.Joined) / r.JoinSeconds)
	}
	if r.Probe != nil {
		r.Probe.Latency = r.probe.Summary()
		r.Probe.Codes = r.Refusals["probe"]
	}
	phase := r.sendEnd.Sub(r.sendStart).Seconds()
	put := func(name string, a, b ProcStat) {
		if b.PID == 0 && b.RSSBytes == 0 {
			return
		}
		p := ProcResult{CPUSeconds: round3(b.CPUSeconds - a.CPUSeconds), RSSBytes: b.RSSBytes}
		if phase > 0 {
			p.CPUPercent = math.Round(p.CPUSeconds / phase * 100)
		}
		p.CPUUsPerMessage = perUnit(p.CPUSeconds*1e6, r.Messages.Acked)
		p.CPUUsPerDelivery = perUnit(p.CPUSeconds*1e6, r.Messages.Delivered)
		if r.Scenario == JoinStorm {
			p.CPUUsPerJoin = perUnit(p.CPUSeconds*1e6, r.Connections.Joined)
		}
		r.Processes[name] = p
	}
	edgeName := "edge"
	if rn.t.EdgePID == rn.t.ServicesPID {
		edgeName = "system" // talim dev: edge, services, NATS and FerretDB in one process
	}
	put(edgeName, r.sysBase.edge, r.sysEnd.edge)
	put("services", r.sysBase.services, r.sysEnd.services)
	put("postgres", r.sysBase.store, r.sysEnd.store)
	r.ratios(rn.obs)
	if w, ok := r.Processes["workers"]; ok && phase > 0 {
		w.CPUPercent = 0 // worker CPU is cumulative over the whole run, not the phase
		r.Processes["workers"] = w
	}
}

// chartTmpl is the self-contained latency chart: one log-x bar chart per histogram.
var chartTmpl = template.Must(template.New("chart").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>talim bench {{.Scenario}}</title>
<style>body{font:14px system-ui,sans-serif;margin:24px;color:#222}h1{font-size:18px}h2{font-size:15px;margin-top:28px}
table{border-collapse:collapse}td,th{padding:2px 10px;text-align:right;border-bottom:1px solid #ddd}
svg text{font-size:11px;fill:#444}.bar{fill:#3a7bd5}.p99{stroke:#d33;stroke-width:1.5}</style></head><body>
<h1>talim bench {{.Scenario}}{{if .Label}} — {{.Label}}{{end}}</h1>
<p>{{.When}} · {{.Machine}}</p>
<p>{{.Headline}}</p>
{{range .Charts}}<h2>{{.Title}}</h2>
<table><tr><th>n</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th></tr>
<tr><td>{{.S.N}}</td><td>{{.S.P50}} ms</td><td>{{.S.P90}} ms</td><td>{{.S.P99}} ms</td><td>{{.S.P999}} ms</td><td>{{.S.Max}} ms</td></tr></table>
<svg width="760" height="240" viewBox="0 0 760 240" xmlns="http://www.w3.org/2000/svg">
<line x1="50" y1="200" x2="740" y2="200" stroke="#888"/>
{{range .Bars}}<rect class="bar" x="{{.X}}" y="{{.Y}}" width="{{.W}}" height="{{.H}}"><title>{{.Tip}}</title></rect>
{{end}}{{range .Ticks}}<line x1="{{.X}}" y1="200" x2="{{.X}}" y2="205" stroke="#888"/><text x="{{.X}}" y="218" text-anchor="middle">{{.L}}</text>
{{end}}{{if .P99X}}<line class="p99" x1="{{.P99X}}" y1="10" x2="{{.P99X}}" y2="200"/><text x="{{.P99X}}" y="10" dx="4">p99</text>{{end}}
<text x="395" y="236" text-anchor="middle">latency (ms, log scale) — bar height: share of samples</text>
</svg>
{{end}}</body></html>
`))

type chartBar struct {
	X, Y, W, H float64
	Tip        string
}
type chartTick struct {
	X float64
	L string
}
type chart struct {
	Title string
	S     Summary
	Bars  []chartBar
	Ticks []chartTick
	P99X  float64
}

// buildChart bins h into 60 log-spaced bins between 0.01 ms and 10 s.
func buildChart(title string, h *Hist) chart {
	c := chart{Title: title, S: h.Summary()}
	if h.N == 0 {
		return c
	}
	const bins, x0, x1 = 60, 50.0, 740.0
	lo, hi := math.Log10(10.0), math.Log10(1e7) // µs
	xOf := func(us float64) float64 {
		v := math.Log10(max(us, 10))
		return x0 + (min(v, hi)-lo)/(hi-lo)*(x1-x0)
	}
	counts := make([]int64, bins)
	for i, n := range h.Counts {
		if n == 0 {
			continue
		}
		mid := float64(bucketLow(i)+bucketHigh(i)) / 2
		b := int((math.Log10(max(mid, 10)) - lo) / (hi - lo) * bins)
		counts[min(max(b, 0), bins-1)] += n
	}
	var peak int64
	for _, n := range counts {
		peak = max(peak, n)
	}
	w := (x1 - x0) / bins
	for b, n := range counts {
		if n == 0 {
			continue
		}
		hgt := float64(n) / float64(peak) * 180
		fromUs := math.Pow(10, lo+float64(b)/bins*(hi-lo))
		toUs := math.Pow(10, lo+float64(b+1)/bins*(hi-lo))
		c.Bars = append(c.Bars, chartBar{X: x0 + float64(b)*w, Y: 200 - hgt, W: w - 1, H: hgt,
			Tip: fmt.Sprintf("%.3g–%.3g ms: %d (%.2f%%)", fromUs/1000, toUs/1000, n, 100*float64(n)/float64(h.N))})
	}
	for _, t := range []struct {
		us float64
		l  string
	}{{10, "0.01"}, {100, "0.1"}, {1000, "1"}, {1e4, "10"}, {1e5, "100"}, {1e6, "1000"}, {1e7, "10000"}} {
		c.Ticks = append(c.Ticks, chartTick{X: xOf(t.us), L: t.l})
	}
	c.P99X = xOf(float64(h.Quantile(0.99)))
	return c
}

// WriteChart writes the self-contained HTML latency chart of r.
func (r *Result) WriteChart(w io.Writer) error {
	var charts []chart
	for _, c := range []struct {
		t string
		h *Hist
	}{{"end-to-end latency (sender timestamp → receiver)", &r.e2e}, {"send → ack latency", &r.ack},
		{"schedule lag (how late sends left)", &r.lag}, {"connect latency (dial → connected frame)", &r.connect},
		{"reconnect → rejoined (reconnect-storm)", &r.rejoin}, {"join latency (join sent → ack)", &r.join},
		{"overload probe (join sent → ack)", &r.probe}, {"send → refusal (error frame)", &r.refusal}} {
		if c.h.N > 0 {
			charts = append(charts, buildChart(c.t, c.h))
		}
	}
	head := fmt.Sprintf("connections %d/%d · acked %d · stored %d · delivered %d · lost %d · duplicated %d · %.0f deliveries/s",
		r.Connections.Reached, r.Connections.Target, r.Messages.Acked, r.Messages.Stored, r.Messages.Delivered, r.Messages.Lost, r.Messages.Duplicated, r.DeliveriesPerSec)
	if r.Idle != nil {
		head = fmt.Sprintf("connections %d · edge RSS per connection %.0f bytes (%.2f KiB)", r.Connections.Reached, r.Idle.PerConnBytes, r.Idle.PerConnBytes/1024)
	}
	return chartTmpl.Execute(w, map[string]any{
		"Scenario": r.Scenario, "Label": r.Label, "When": r.Time, "Headline": head, "Charts": charts,
		"Machine": fmt.Sprintf("%d × %s, %d GiB, %s", r.Machine.NProc, r.Machine.CPU, r.Machine.MemGB, r.Machine.Go),
	})
}
