package notification_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/talim/realtime/pkg/devstack/testkit"
	"github.com/talim/realtime/pkg/subject"
	notificationv1 "github.com/talim/realtime/proto/talim/notification/v1"
)

// BenchmarkSend_10000Recipients_1000Online times a 10,000-recipient Send through
// gRPC with 1,000 recipients "online" (a NATS subscription on their user subject,
// as an edge holds), until every online recipient has its live event.
func BenchmarkSend_10000Recipients_1000Online(b *testing.B) {
	e := start(b)
	recipients := make([]string, 10000)
	for i := range recipients {
		recipients[i] = fmt.Sprintf("student-%05d", i)
	}
	var delivered atomic.Int64
	online := testkit.NATSConn(b, e.nc.ConnectedUrl())
	for i := 0; i < len(recipients); i += 10 { // every 10th: 1,000 users
		if _, err := online.Subscribe(subject.User(recipients[i]), func(*nats.Msg) { delivered.Add(1) }); err != nil {
			b.Fatal(err)
		}
	}
	if err := online.Flush(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		delivered.Store(0)
		resp := e.send(b, &notificationv1.SendRequest{Recipients: recipients, Category: "announcement",
			Title: "School closed tomorrow", Body: "Snow day.", IdempotencyKey: fmt.Sprintf("bench-%d", i)})
		if resp.GetRecipients() != 10000 {
			b.Fatalf("response = %v", resp)
		}
		deadline := time.Now().Add(30 * time.Second)
		for delivered.Load() < 1000 {
			if time.Now().After(deadline) {
				b.Fatalf("%d of 1000 online recipients got the event", delivered.Load())
			}
			time.Sleep(time.Millisecond)
		}
	}
	elapsed := time.Since(start)
	b.ReportMetric(float64(b.N)*10000/elapsed.Seconds(), "docs/s")
	b.ReportMetric(elapsed.Seconds()/float64(b.N), "s/send")
}
