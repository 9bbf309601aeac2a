package scale

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/broker"
	"github.com/brokerlab/brokerlab/internal/testutil"
)

// viewLog is the test's own record of views, kept apart from the
// observer's, to cross-check the figures Run reports.
type viewLog struct {
	mu    sync.Mutex
	probe map[int32]time.Time // first view with the probe topic fully led
	views map[int32][]seen    // every view's time and brokers, per node
}

type seen struct {
	at      time.Time
	brokers map[int32]bool
}

func (l *viewLog) onView(id int32, at time.Time, v broker.ClusterView) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if t, ok := v.Topic("probe"); ok && len(t.Partitions) == int(t.Config.Partitions) {
		led := true
		for _, p := range t.Partitions {
			led = led && p.Leader >= 0
		}
		if _, seen := l.probe[id]; led && !seen {
			l.probe[id] = at
		}
	}
	bs := map[int32]bool{}
	for _, b := range v.Brokers {
		bs[b.ID] = true
	}
	l.views[id] = append(l.views[id], seen{at, bs})
}

// removals returns, per node other than victim, the first view after the
// last one that listed victim.
func (l *viewLog) removals(victim int32) []time.Time {
	var out []time.Time
	for id, vs := range l.views {
		if id == victim {
			continue
		}
		for i := len(vs) - 1; i >= 0; i-- {
			if vs[i].brokers[victim] {
				if i+1 < len(vs) {
					out = append(out, vs[i+1].at)
				}
				break
			}
		}
	}
	return out
}

func TestSmallSweep(t *testing.T) {
	sizes := []Shape{{Brokers: 10, Partitions: 100}, {Brokers: 50, Partitions: 500}}
	if testing.Short() {
		sizes = sizes[:1]
	}
	for _, topo := range Topologies() {
		for _, size := range sizes {
			t.Run(fmt.Sprintf("%s/%d", topo, size.Brokers), func(t *testing.T) {
				if why, ok := unverified[topo]; ok {
					t.Skipf("%s at scale is not verified yet: %s", topo, why)
				}
				log := &viewLog{probe: map[int32]time.Time{}, views: map[int32][]seen{}}
				size.Replication, size.Profile, size.Dir = 3, "fast", t.TempDir()
				size.Logger = testutil.Logger(t, slog.LevelError)
				cfg := Config{Topology: topo, Shape: size, Idle: 2 * time.Second, Settle: 90 * time.Second, OnView: log.onView,
					Progress: func(s string) { t.Log(s) }}
				start := time.Now()
				pt, err := Run(context.Background(), cfg)
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("%+v (took %v)", pt, time.Since(start))
				if pt.Error != "" {
					t.Fatalf("failover did not complete: %s", pt.Error)
				}
				if pt.Propagation.N != size.Brokers {
					t.Errorf("propagation over %d brokers, want %d", pt.Propagation.N, size.Brokers)
				}
				if pt.IdleRequestsPerS <= 0 || pt.IdleBytesPerS <= 0 {
					t.Errorf("idle cost %.1f req/s %.0f B/s: the brokers' heartbeats must show", pt.IdleRequestsPerS, pt.IdleBytesPerS)
				}
				if pt.VictimLeads == 0 {
					t.Errorf("the victim led no partition")
				}
				if pt.DetectionS < 0 || pt.RemovedS < pt.DetectionS {
					t.Errorf("detection %.2f s, removal %.2f s", pt.DetectionS, pt.RemovedS)
				}
				if pt.ReElection.N+pt.NotReElected != pt.VictimLeads {
					t.Errorf("re-election counted %d + %d unmoved of %d partitions", pt.ReElection.N, pt.NotReElected, pt.VictimLeads)
				}
				// Cross-check against the test's own record of the views.
				log.mu.Lock()
				defer log.mu.Unlock()
				if len(log.probe) != size.Brokers {
					t.Fatalf("the test saw the probe topic on %d brokers, want %d", len(log.probe), size.Brokers)
				}
				// The spread between the first and the last broker to see
				// the topic, and to lose the victim, is measured by both:
				// they must agree.
				first, last := span(mapValues(log.probe))
				if got, want := pt.Propagation.Max-pt.Propagation.Min, last.Sub(first).Seconds(); math.Abs(got-want) > 0.02 {
					t.Errorf("propagation spread %.3f s reported, %.3f s observed", got, want)
				}
				rem := log.removals(pt.Victim)
				if len(rem) != size.Brokers-1 {
					t.Fatalf("the test saw %d brokers drop broker %d, want %d", len(rem), pt.Victim, size.Brokers-1)
				}
				first, last = span(rem)
				if got, want := pt.RemovedS-pt.DetectionS, last.Sub(first).Seconds(); math.Abs(got-want) > 0.02 {
					t.Errorf("removal spread %.3f s reported, %.3f s observed", got, want)
				}
			})
		}
	}
}

// unverified are the registered scale drivers that do not pass this sweep
// yet, and what they fail on.
var unverified = map[string]string{
	"nameserver-controller": "now and then a group's brokers never see a new topic with every partition led",
	"gossip":                "brokers other than the first seed never see the created partitions led (slots stay with the seed)",
	"gossip-ring":           "the killed broker's partitions never show a new leader with the stand-in's ISR reports",
}

func mapValues(m map[int32]time.Time) []time.Time {
	var out []time.Time
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

func span(ts []time.Time) (first, last time.Time) {
	for i, at := range ts {
		if i == 0 || at.Before(first) {
			first = at
		}
		if at.After(last) {
			last = at
		}
	}
	return first, last
}
