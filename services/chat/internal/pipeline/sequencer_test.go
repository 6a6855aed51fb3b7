package pipeline_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/talim/realtime/pkg/devstack/testkit"
	"github.com/talim/realtime/services/chat/internal/pipeline"
	"github.com/talim/realtime/services/chat/internal/store"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// Two sequencers (two instances) on one store: seqs stay 1..N, the conflict path
// runs, and duplicates sent to both resolve to one stored message.
func TestSequencer_TwoInstancesContend(t *testing.T) {
	_, db := testkit.MongoClient(t)
	st := store.New(db, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := st.EnsureIndexes(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateRoom(ctx, store.Room{ID: "r", Type: store.TypeGroup}); err != nil {
		t.Fatal(err)
	}
	var seqs [2]*pipeline.Sequencer
	for i := range seqs {
		seqs[i] = pipeline.NewSequencer(pipeline.SequencerOptions{Store: st, Registry: prometheus.NewRegistry()})
	}
	const n = 120
	got := make([]store.Message, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			key := fmt.Sprint(i % (n - 20)) // 20 keys are sent twice, to both instances
			m, _, err := seqs[i%2].Append(ctx, store.Message{ID: store.MessageID("r", "u", key), RoomID: "r", SenderID: "u", Type: "text", Content: key, ClientMsgID: key})
			if err != nil {
				t.Errorf("append %d: %v", i, err)
			}
			got[i] = m
		})
	}
	wg.Wait()
	byKey := map[string]int64{}
	for _, m := range got {
		if s, ok := byKey[m.ClientMsgID]; ok && s != m.Seq {
			t.Fatalf("key %s acked with seqs %d and %d", m.ClientMsgID, s, m.Seq)
		}
		byKey[m.ClientMsgID] = m.Seq
	}
	msgs, more, err := st.History(ctx, store.HistoryQuery{RoomID: "r", Limit: 200})
	if err != nil || more || len(msgs) != n-20 {
		t.Fatalf("stored %d (more %v, err %v), want %d", len(msgs), more, err, n-20)
	}
	for i, m := range msgs {
		if m.Seq != int64(i+1) || byKey[m.ClientMsgID] != m.Seq {
			t.Fatalf("position %d: %+v", i, m)
		}
	}
	conflicts := 0.0
	for _, s := range seqs {
		conflicts += testutil.ToFloat64(pipelineConflicts(s))
	}
	t.Logf("seq conflicts between the two instances: %v", conflicts)
}

func pipelineConflicts(s *pipeline.Sequencer) prometheus.Collector { return s.ConflictsMetric() }
