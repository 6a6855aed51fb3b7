package deploy

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	corev1 "k8s.io/api/core/v1"
)

// metricList reads a "name type" list (deploy/grafana/*.txt) into the series names
// a query may use: a histogram family also has _bucket, _sum and _count series.
func metricList(t *testing.T, file string) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("grafana", file))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) != 2 || strings.HasPrefix(l, "#") {
			continue
		}
		out[f[0]] = true
		if f[1] == "histogram" || f[1] == "summary" {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				out[f[0]+s] = true
			}
		}
	}
	if len(out) == 0 {
		t.Fatalf("grafana/%s lists no metric", file)
	}
	return out
}

// grafanaVars stands in for the dashboard variables so that queries parse.
var grafanaVars = strings.NewReplacer("$__rate_interval", "5m", "${namespace}", ".*", "$namespace", ".*")

// promql is the parser Prometheus itself uses, with its default functions.
var promql = parser.NewParser(parser.Options{})

// metricNames parses expr and returns the metric names its selectors name.
func metricNames(expr string) ([]string, error) {
	e, err := promql.ParseExpr(expr)
	if err != nil {
		return nil, err
	}
	var names []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			for _, m := range vs.LabelMatchers {
				if m.Name == model.MetricNameLabel && m.Type == labels.MatchEqual {
					names = append(names, m.Value)
				}
			}
		}
		return nil
	})
	return names, nil
}

type panel struct {
	Title   string  `json:"title"`
	Panels  []panel `json:"panels"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

// TestDashboards loads every dashboard, parses every PromQL expression and checks
// that it names only metrics the services export (grafana/exported-metrics.txt,
// kept equal to a scrape of a running system by services/talim/e2e/metrics) or,
// for the NATS dashboard, the exporter's documented metrics.
func TestDashboards(t *testing.T) {
	exported := metricList(t, "exported-metrics.txt")
	natsExp := metricList(t, "nats-exporter-metrics.txt")
	files, err := filepath.Glob(filepath.Join("grafana", "*.json"))
	if err != nil || len(files) < 5 {
		t.Fatalf("dashboards: %v %v", files, err)
	}
	uids := map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d struct {
			UID    string  `json:"uid"`
			Title  string  `json:"title"`
			Panels []panel `json:"panels"`
		}
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if d.UID == "" || d.Title == "" || uids[d.UID] {
			t.Errorf("%s: uid %q title %q: both required, uid unique", f, d.UID, d.Title)
		}
		uids[d.UID] = true
		allowed := exported
		if filepath.Base(f) == "nats.json" {
			allowed = natsExp
		}
		n := 0
		var walk func([]panel)
		walk = func(ps []panel) {
			for _, p := range ps {
				walk(p.Panels)
				for _, tg := range p.Targets {
					n++
					names, err := metricNames(grafanaVars.Replace(tg.Expr))
					if err != nil {
						t.Errorf("%s: panel %q: %q does not parse: %v", f, p.Title, tg.Expr, err)
						continue
					}
					if len(names) == 0 {
						t.Errorf("%s: panel %q: %q names no metric", f, p.Title, tg.Expr)
					}
					for _, name := range names {
						if !allowed[name] {
							t.Errorf("%s: panel %q uses %s, which is not exported", f, p.Title, name)
						}
					}
				}
			}
		}
		walk(d.Panels)
		if n == 0 {
			t.Errorf("%s: no queries", f)
		}
	}
}

// TestMetricNameCheckCatchesMistakes: the checks above fail on what they should.
func TestMetricNameCheckCatchesMistakes(t *testing.T) {
	if _, err := metricNames(`sum(rate(talim_edge_connects_total[5m])`); err == nil {
		t.Error("unbalanced parenthesis parsed")
	}
	names, err := metricNames(grafanaVars.Replace(`histogram_quantile(0.99, sum by (le) (rate(talim_edge_nope_bucket{namespace=~"$namespace"}[$__rate_interval])))`))
	if err != nil || !slices.Equal(names, []string{"talim_edge_nope_bucket"}) {
		t.Fatalf("names %v, %v", names, err)
	}
	if metricList(t, "exported-metrics.txt")["talim_edge_nope_bucket"] {
		t.Fatal("an unknown metric is allowed")
	}
}

// externalMetrics are the series rules may use that Talim does not export:
// kube-state-metrics and Prometheus' own scrape health.
var externalMetrics = map[string]bool{"kube_pod_status_ready": true, "up": true}

// TestRules parses every rule expression of the PrometheusRule and checks the
// metric names (exported, recorded by an earlier rule, or external), that the
// SLO alerts are multi-window (two windows each) and that every alert has a
// runbook section in docs/operations.md.
func TestRules(t *testing.T) {
	exported := metricList(t, "exported-metrics.txt")
	doc, err := os.ReadFile(filepath.Join("..", "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, rel := range []string{"base", "overlays/prod"} {
		pr := mustFind[*monitoringv1.PrometheusRule](t, render(t, rel), "talim")
		recorded := map[string]bool{}
		slo := 0
		for _, g := range pr.Spec.Groups {
			for _, r := range g.Rules {
				names, err := metricNames(r.Expr.String())
				if err != nil {
					t.Errorf("%s: rule %s%s: %v", rel, r.Alert, r.Record, err)
					continue
				}
				for _, n := range names {
					if !exported[n] && !recorded[n] && !externalMetrics[n] {
						t.Errorf("%s: rule %s%s uses %s: not exported nor recorded before", rel, r.Alert, r.Record, n)
					}
				}
				if r.Record != "" {
					if _, err := promql.ParseMetricSelector(r.Record); err != nil {
						t.Errorf("%s: record name %q: %v", rel, r.Record, err)
					}
					recorded[r.Record] = true
					continue
				}
				if r.Alert == "" || r.Labels["severity"] == "" || !strings.Contains(string(doc), "### "+r.Alert) {
					t.Errorf("%s: alert %q needs a severity and a section in docs/operations.md", rel, r.Alert)
				}
				if r.Labels["slo"] != "" {
					slo++
					windows := map[string]bool{}
					for _, n := range names {
						windows[n[strings.LastIndex(n, "rate")+4:]] = true
					}
					if len(windows) != 4 {
						t.Errorf("%s: SLO alert %s uses windows %v, want two pairs (long and short)", rel, r.Alert, windows)
					}
				}
			}
		}
		if slo != 6 {
			t.Errorf("%s: %d SLO alerts, want fast and slow burn for each of 3 SLOs", rel, slo)
		}
	}
}

// TestDashboardsConfigMap: every overlay ships the dashboards in one ConfigMap the
// Grafana sidecar picks up, holding every JSON file.
func TestDashboardsConfigMap(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("grafana", "*.json"))
	for _, rel := range []string{"base", "overlays/dev", "overlays/prod"} {
		var cm *corev1.ConfigMap
		for _, c := range all[*corev1.ConfigMap](render(t, rel)) {
			if strings.HasPrefix(c.Name, "talim-grafana-dashboards") {
				cm = c
			}
		}
		if cm == nil {
			t.Fatalf("%s: no dashboards ConfigMap", rel)
		}
		if cm.Labels["grafana_dashboard"] != "1" {
			t.Errorf("%s: dashboards ConfigMap labels %v lack grafana_dashboard=1", rel, cm.Labels)
		}
		for _, f := range files {
			if !json.Valid([]byte(cm.Data[filepath.Base(f)])) {
				t.Errorf("%s: ConfigMap lacks a valid %s", rel, filepath.Base(f))
			}
		}
	}
}
