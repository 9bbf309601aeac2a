package controller_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/broker/brokertest"
	"github.com/brokerlab/brokerlab/nameserver"
)

// profiles are the timing profiles the switch benchmarks run under.
var profiles = []struct {
	name string
	tm   func() nameserver.Timings
}{{"fast", nameserver.Fast}, {"production", func() nameserver.Timings {
	// Production everywhere but the route poll (30 s), which would
	// hold the cluster's forming for half a minute; clients ask again
	// on every error anyway.
	t := nameserver.Production()
	t.RoutePoll = time.Second
	return t
}}}

// BenchmarkSwitch measures, over 10 master kills in one cluster (3
// controllers, 2 name servers, 2 groups of 2), the switch time: from the
// kill to the first acks=all write acknowledged by the new master, written
// by a client that follows the name servers' route and asks again on
// every error. The killed broker is restarted and rejoins the
// SyncStateSet before the next kill. It also reports the controllers'
// broker traffic per broker per second over an idle 5 s.
//
//	go test ./nameserver/controller -run '^$' -bench '^BenchmarkSwitch$' -benchtime 1x
func BenchmarkSwitch(b *testing.B) {
	for _, prof := range profiles {
		b.Run(prof.name, func(b *testing.B) {
			for range b.N {
				cl := newCluster(b, options{controllers: 3, timings: func(t *nameserver.Timings) { *t = prof.tm() }})
				idleTraffic(b, cl)
				benchSwitch(b, cl, func(master int32) func() {
					cl.c.Kill(master)
					return func() { cl.c.Restart(master) }
				})
			}
		})
	}
}

// BenchmarkSilentSwitch is BenchmarkSwitch with a silent master instead of
// a dead one: its connections stay open and carry nothing, so no close
// tells the controller, and the switch waits for the heartbeat timeout and
// the next scan. "pause" stalls every link of the master (clients' too);
// "cut-from-controllers" black-holes only its links to the controllers,
// while clients still reach it. The master is resumed (healed) and
// rejoins the SyncStateSet as a slave before the next run. The production
// profile (10 s timeout, 5 s scan) takes about 3 minutes per fault.
//
//	go test ./nameserver/controller -run '^$' -bench SilentSwitch -benchtime 1x
func BenchmarkSilentSwitch(b *testing.B) {
	for _, prof := range profiles {
		for _, fault := range []string{"pause", "cut-from-controllers"} {
			b.Run(prof.name+"/"+fault, func(b *testing.B) {
				for range b.N {
					cl := newCluster(b, options{controllers: 3, timings: func(t *nameserver.Timings) { *t = prof.tm() }})
					benchSwitch(b, cl, func(master int32) func() {
						name := brokertest.Name(master)
						if fault == "pause" {
							cl.nw.Pause(name)
							return func() { cl.nw.Resume(name) }
						}
						for i := range cl.ctrls {
							cl.nw.Cut(name, ctrlName(i))
						}
						return func() {
							for i := range cl.ctrls {
								cl.nw.Heal(name, ctrlName(i))
							}
						}
					})
				}
			})
		}
	}
}

// idleTraffic reports the controller leader's broker traffic per broker
// per second over an idle 5 s.
func idleTraffic(b *testing.B, cl *cluster) {
	l := cl.leaderCtrl(b)
	before := l.Stats()
	idle := 5 * time.Second
	time.Sleep(idle) // measuring idle traffic over a fixed interval
	after := l.Stats()
	bytes := float64(after.BrokerBytesIn+after.BrokerBytesOut-before.BrokerBytesIn-before.BrokerBytesOut) / idle.Seconds() / 4
	reqs := float64(after.Requests-before.Requests) / idle.Seconds() / 4
	b.ReportMetric(bytes, "ctrl-B/s/broker")
	b.ReportMetric(reqs, "ctrl-req/s/broker")
}

// benchSwitch applies fault to group a's master 10 times, each time
// measuring from the fault to the first acknowledged write on the new
// master, then undoing it and waiting until the old master is back in the
// SyncStateSet.
func benchSwitch(b *testing.B, cl *cluster, fault func(master int32) (undo func())) {
	part := cl.partitions(b, "a")[0]
	var times []time.Duration
	master := int32(1)
	for i := range 10 {
		at := time.Now()
		undo := fault(master)
		next := 3 - master
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		for ctx.Err() == nil {
			r, err := cl.rc.Route(ctx, topic)
			if err != nil {
				continue
			}
			g, ok := r.Group(part)
			m, okm := g.Master()
			if !ok || !okm || m.NodeID != next {
				_, _ = cl.rc.Refresh(ctx, topic)
				time.Sleep(5 * time.Millisecond) // a client's retry pause
				continue
			}
			if _, err := cl.produce(ctx, m.Addr, part, time.Second, "switch-"+string(rune('a'+i))); err == nil {
				break
			}
		}
		cancel()
		times = append(times, time.Since(at))
		undo()
		cl.wantSyncStateSet(b, "a", 1, 2)
		master = next
	}
	slices.Sort(times)
	b.ReportMetric(float64(times[len(times)/2].Milliseconds()), "median-switch-ms")
	b.ReportMetric(float64(times[len(times)-1].Milliseconds()), "max-switch-ms")
	b.Logf("switch times %v", times)
}
