package coordinator

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/brokerlab/brokerlab/broker"
	"github.com/brokerlab/brokerlab/internal/testutil"
)

// BenchmarkLeaderFailover kills the broker leading the most partitions of a
// 3-broker, 6-partition, RF 3 topic under acks=all load (fast profile, 2 s
// session) and measures, per kill, the time from the kill to the first
// acknowledged write on every partition it led (client included: kafka-go
// with a 100 ms metadata TTL), and to the controller's new leaders in every
// broker's view. The killed broker is restarted and back in every ISR
// before the next kill. Run with -benchtime=10x for the median of 10.
func BenchmarkLeaderFailover(b *testing.B) {
	e := startEtcd(b)
	cc := newCoordCluster(b, []*Etcd{e}, 3, FastSessionTTL)
	const topic, parts = "failover", 6
	l := cc.loadTopic(b, topic, parts, 2, func(w *kafka.Writer) {
		w.WriteBackoffMin, w.WriteBackoffMax = 10*time.Millisecond, 50*time.Millisecond
		w.Transport.(*kafka.Transport).MetadataTTL = 100 * time.Millisecond
	})
	all := upTo(parts)
	var writes, views []time.Duration
	b.ResetTimer()
	for range b.N {
		victim := cc.mostLeadingBroker(topic, -1)
		before, _ := cc.view().Topic(topic)
		affected := ledBy(before, victim)
		killed := time.Now()
		cc.Kill(victim)
		views = append(views, cc.waitFailover(b, before, victim, killed))
		first := l.waitAcks(b, affected, killed)
		var worst time.Duration
		for _, d := range first {
			worst = max(worst, d)
		}
		writes = append(writes, worst)
		cc.Restart(victim)
		for p := range int32(parts) {
			cc.WaitISR(topic, p, 1, 2, 3)
		}
		l.waitAcks(b, all, time.Now())
	}
	b.StopTimer()
	b.ReportMetric(median(writes).Seconds()*1000, "ms-to-ack-median")
	b.ReportMetric(slices.Max(writes).Seconds()*1000, "ms-to-ack-max")
	b.ReportMetric(median(views).Seconds()*1000, "ms-to-new-leader-median")
	b.ReportMetric(0, "ns/op")
	b.Logf("per kill, to first ack on every affected partition: %v; to new leaders in every view: %v", writes, views)
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

var idleWindow = flag.Duration("idle-window", 0, "BenchmarkIdleRequests: measuring window (default the session TTL, at least 6 s)")

// BenchmarkIdleRequests measures the etcd traffic of an idle cluster: N
// lightweight brokers (registered handles, no Kafka listener) holding one
// topic of P partitions, RF 3, placed by the controller. After the topic is
// everywhere, every handle's requests are counted over a window.
func BenchmarkIdleRequests(b *testing.B) {
	for _, profile := range []struct {
		name string
		ttl  time.Duration
	}{{"fast", FastSessionTTL}, {"production", ProductionSessionTTL}} {
		for _, brokers := range []int{3, 10, 30} {
			for _, partitions := range []int32{100, 1000} {
				name := fmt.Sprintf("%s/brokers=%d/partitions=%d", profile.name, brokers, partitions)
				b.Run(name, func(b *testing.B) { benchIdle(b, profile.ttl, brokers, partitions) })
			}
		}
	}
}

func benchIdle(b *testing.B, ttl time.Duration, brokers int, partitions int32) {
	e := startEtcd(b)
	hs := startHandles(b, e.Endpoints(), brokers, func(c *Config) { c.SessionTTL = ttl })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := hs[0].p.CreateTopics(ctx, []broker.TopicConfig{{Name: "idle", Partitions: partitions, ReplicationFactor: 3}})[0]; err != nil {
		b.Fatal(err)
	}
	testutil.Eventually(b, time.Minute, func() error {
		for _, h := range hs {
			if _, ok := h.lastView().Topic("idle"); !ok {
				return fmt.Errorf("broker %d has no topic yet", h.id)
			}
		}
		return nil
	})
	window := *idleWindow
	if window == 0 {
		window = max(ttl, 6*time.Second)
	}
	planes := make([]*Plane, len(hs))
	for i, h := range hs {
		planes[i] = h.p
	}
	b.ResetTimer()
	var d Stats
	var secs float64
	for range b.N {
		start, t0 := SumStats(planes...), time.Now()
		<-time.After(window) // the measuring window, not a synchronisation
		d = SumStats(planes...).Sub(start)
		secs = time.Since(t0).Seconds()
	}
	b.StopTimer()
	tot := d.Total()
	b.ReportMetric(float64(tot.Requests)/secs, "req/s")
	b.ReportMetric(float64(tot.Responses)/secs, "resp/s")
	b.ReportMetric(float64(tot.BytesSent+tot.BytesReceived)/secs, "bytes/s")
	b.ReportMetric(float64(d.WatchEvents)/secs, "watch-events/s")
	b.ReportMetric(0, "ns/op")
	b.Logf("%d brokers, %d partitions, ttl %v, %.1f s: %v", len(hs), partitions, ttl, secs, nonZero(d))
}

// nonZero lists the kinds that carried traffic.
func nonZero(s Stats) map[string]Counter {
	out := map[string]Counter{}
	for k, c := range s.ByKind {
		if c != (Counter{}) {
			out[k] = c
		}
	}
	return out
}

// BenchmarkFailoverTraffic measures the etcd traffic one broker failure
// causes: N lightweight brokers share a topic of P partitions, RF 3; the
// broker leading the most partitions crashes, and every surviving handle's
// traffic is counted from the crash until all of them see the new leaders
// (the lease expiry, the controller's writes, and the watch fan-out of every
// changed partition state to every broker).
func BenchmarkFailoverTraffic(b *testing.B) {
	for _, brokers := range []int{3, 10, 30} {
		for _, partitions := range []int32{100, 1000} {
			b.Run(fmt.Sprintf("brokers=%d/partitions=%d", brokers, partitions), func(b *testing.B) {
				var d Stats
				var moved int
				for range b.N {
					d, moved = failoverTraffic(b, brokers, partitions)
				}
				tot := d.Total()
				b.ReportMetric(float64(tot.Requests), "req")
				b.ReportMetric(float64(tot.Responses), "resp")
				b.ReportMetric(float64(tot.BytesSent+tot.BytesReceived), "bytes")
				b.ReportMetric(float64(d.WatchEvents), "watch-events")
				b.ReportMetric(float64(moved), "leaders-moved")
				b.ReportMetric(0, "ns/op")
				b.Logf("%d brokers, %d partitions, %d leaders moved: %v", brokers, partitions, moved, nonZero(d))
			})
		}
	}
}

func failoverTraffic(b *testing.B, brokers int, partitions int32) (Stats, int) {
	b.StopTimer()
	e := startEtcd(b)
	hs := startHandles(b, e.Endpoints(), brokers, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := hs[0].p.CreateTopics(ctx, []broker.TopicConfig{{Name: "f", Partitions: partitions, ReplicationFactor: 3}})[0]; err != nil {
		b.Fatal(err)
	}
	testutil.Eventually(b, time.Minute, func() error {
		for _, h := range hs {
			if _, ok := h.lastView().Topic("f"); !ok {
				return fmt.Errorf("broker %d has no topic yet", h.id)
			}
		}
		return nil
	})
	v := hs[0].lastView()
	victim := mostLeading(hs, v, "f", nil)
	before, _ := v.Topic("f")
	live := without(hs, victim)
	planes := make([]*Plane, len(live))
	for i, h := range live {
		planes[i] = h.p
	}
	b.StartTimer()
	start := SumStats(planes...)
	victim.p.Close()
	testutil.Eventually(b, time.Minute, func() error {
		for _, h := range live {
			tv, _ := h.lastView().Topic("f")
			for i, ps := range tv.Partitions {
				if ps.InISR(victim.id) || before.Partitions[i].Leader == victim.id && ps.LeaderEpoch == before.Partitions[i].LeaderEpoch {
					return fmt.Errorf("broker %d: partition %d not moved yet", h.id, i)
				}
			}
		}
		return nil
	})
	d := SumStats(planes...).Sub(start)
	b.StopTimer()
	return d, leaderCounts(v, "f")[victim.id]
}
