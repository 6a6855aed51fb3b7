// Package metrics keeps deploy/grafana/exported-metrics.txt (the metric families
// the services export, which the dashboards and alert rules may name:
// deploy/monitoring_test.go) equal to a scrape of a running system.
package metrics

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	notificationv1 "github.com/talim/realtime/proto/talim/notification/v1"
	"github.com/talim/realtime/services/edge/edgetest"
	"github.com/talim/realtime/services/talim"
)

var update = flag.Bool("update", false, "rewrite deploy/grafana/exported-metrics.txt from the scrape")

const listPath = "../../../../deploy/grafana/exported-metrics.txt"

// TestExportedMetricsList starts the system, drives every command path once
// (connect, a refused connect, join, send, an error, a notification and its
// listing, presence, a close) and compares the families on every /metrics with the checked-in list.
func TestExportedMetricsList(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st, err := talim.StartStack(ctx, talim.StackConfig{DataDir: t.TempDir(), DevMode: true, Seed: true})
	if err != nil {
		t.Fatalf("start stack: %v", err)
	}
	defer func() { _ = st.Close() }()

	tok := func(u string) string {
		s, err := st.Token(u, u, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	a := edgetest.Dial(t, st.WSURL, tok("t1"))
	b := edgetest.Dial(t, st.WSURL, tok("s1"))
	for _, c := range []*edgetest.Client{a, b} {
		if _, perr := c.Request("join-chat-room", map[string]any{"roomId": "room-123"}); perr != nil {
			t.Fatal(perr)
		}
	}
	if _, perr := a.Request("send-chat-message", map[string]any{"roomId": "room-123", "content": "hi", "clientMsgId": "m1"}); perr != nil {
		t.Fatal(perr)
	}
	b.Expect(t, "chat-message", 10*time.Second)
	if _, perr := a.Request("send-chat-message", map[string]any{"roomId": "nope", "content": "hi", "clientMsgId": "m2"}); perr == nil {
		t.Fatal("send to a missing room succeeded")
	}
	if _, perr := a.Request("subscribe-presence", map[string]any{"userIds": []string{"s1"}}); perr != nil {
		t.Logf("subscribe-presence: %v", perr)
	}
	conn, err := st.Dial()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := notificationv1.NewNotificationServiceClient(conn).Send(ctx, &notificationv1.SendRequest{
		Recipients: []string{"s1"}, Category: "c", Title: "t", IdempotencyKey: "k1",
	}); err != nil {
		t.Fatal(err)
	}
	b.Expect(t, "notification", 10*time.Second)
	if _, perr := b.Request("list-notifications", map[string]any{}); perr != nil {
		t.Fatal(perr)
	}
	edgetest.DialRefused(t, st.WSURL, "not-a-token")
	b.Close()
	<-b.Done()

	var got []string
	for _, svc := range []string{"edge", "chat", "notification", "presence"} {
		fams := scrape(t, st.AdminAddrs[svc])
		for name, mf := range fams {
			got = append(got, fmt.Sprintf("%s %s", name, strings.ToLower(mf.GetType().String())))
		}
	}
	slices.Sort(got)
	got = slices.Compact(got)
	want := readList(t)
	if *update {
		body := "# Metric families scraped from every service of a running talim dev after some\n" +
			"# traffic (services/talim/e2e/metrics, go test -update). Dashboards and rules may\n" +
			"# name only these (deploy/monitoring_test.go).\n" + strings.Join(got, "\n") + "\n"
		if err := os.WriteFile(filepath.FromSlash(listPath), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	for _, m := range want {
		if !slices.Contains(got, m) {
			t.Errorf("listed but not exported (or type changed): %s", m)
		}
	}
	for _, m := range got {
		if !slices.Contains(want, m) {
			t.Errorf("exported but not listed: %s (run go test -update)", m)
		}
	}
}

func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse %s/metrics: %v", addr, err)
	}
	return fams
}

func readList(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.FromSlash(listPath))
	if err != nil && !*update {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}
