package edge

import (
	"hash/maphash"
	"log/slog"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"

	"github.com/talim/realtime/pkg/subject"
)

// dispatcher delivers the messages of the per-user and presence-watch subscriptions.
//
// nats.go runs one goroutine per callback subscription; with one subscription per
// connected user that would be one more goroutine (and stack) per user. Instead every
// subscription is a channel subscription on one of a few shard channels, each drained
// by one goroutine. A subject always maps to the same shard, so one user's events keep
// their order. Delivery only enqueues into connection writers, so a shard never blocks
// on a socket; if a shard channel still fills up, NATS reports a slow consumer and
// drops (at-most-once live delivery, docs/protocol.md "Chat").
type dispatcher struct {
	log    *slog.Logger
	shards []chan *nats.Msg
	seed   maphash.Seed
	done   chan struct{}
	wg     sync.WaitGroup
}

const (
	dispatchShards   = 8
	dispatchChanSize = 16384
)

func newDispatcher(log *slog.Logger) *dispatcher {
	d := &dispatcher{log: log, seed: maphash.MakeSeed(), done: make(chan struct{})}
	d.shards = make([]chan *nats.Msg, dispatchShards)
	for i := range d.shards {
		d.shards[i] = make(chan *nats.Msg, dispatchChanSize)
	}
	return d
}

// shard returns the channel a subject's subscription delivers to.
func (d *dispatcher) shard(subj string) chan *nats.Msg {
	return d.shards[maphash.String(d.seed, subj)%uint64(len(d.shards))]
}

func (d *dispatcher) start(user, presence func(*nats.Msg, *shardState)) {
	for _, ch := range d.shards {
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			st := &shardState{}
			for {
				select {
				case <-d.done:
					return
				case m := <-ch:
					if strings.HasPrefix(m.Subject, subject.UserPrefix) {
						user(m, st)
					} else {
						presence(m, st)
					}
				}
			}
		}()
	}
}

func (d *dispatcher) stop() {
	close(d.done)
	d.wg.Wait()
}
