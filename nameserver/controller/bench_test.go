package controller_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/nameserver"
)

// BenchmarkSwitch measures, over 10 master kills in one cluster (3
// controllers, 2 name servers, 2 groups of 2), the switch time: from the
// kill to the first acks=all write acknowledged by the new master, written
// by a client that follows the name servers' route and asks again on
// every error. The killed broker is restarted and rejoins the
// SyncStateSet before the next kill. It also reports the controllers'
// broker traffic per broker per second over an idle 5 s.
//
//	go test ./nameserver/controller -run '^$' -bench Switch -benchtime 1x
func BenchmarkSwitch(b *testing.B) {
	for _, prof := range []struct {
		name string
		tm   func() nameserver.Timings
	}{{"fast", nameserver.Fast}, {"production", func() nameserver.Timings {
		// Production everywhere but the route poll (30 s), which would
		// hold the cluster's forming for half a minute; clients ask again
		// on every error anyway.
		t := nameserver.Production()
		t.RoutePoll = time.Second
		return t
	}}} {
		b.Run(prof.name, func(b *testing.B) {
			for range b.N {
				benchSwitch(b, prof.tm())
			}
		})
	}
}

func benchSwitch(b *testing.B, tm nameserver.Timings) {
	cl := newCluster(b, options{controllers: 3, timings: func(t *nameserver.Timings) { *t = tm }})
	part := cl.partitions(b, "a")[0]

	l := cl.leaderCtrl(b)
	before := l.Stats()
	idle := 5 * time.Second
	time.Sleep(idle) // measuring idle traffic over a fixed interval
	after := l.Stats()
	bytes := float64(after.BrokerBytesIn+after.BrokerBytesOut-before.BrokerBytesIn-before.BrokerBytesOut) / idle.Seconds() / 4
	reqs := float64(after.Requests-before.Requests) / idle.Seconds() / 4
	b.ReportMetric(bytes, "ctrl-B/s/broker")
	b.ReportMetric(reqs, "ctrl-req/s/broker")

	var times []time.Duration
	master := int32(1)
	for i := range 10 {
		kill := time.Now()
		cl.c.Kill(master)
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
		times = append(times, time.Since(kill))
		cl.c.Restart(master)
		cl.wantSyncStateSet(b, "a", 1, 2)
		master = next
	}
	slices.Sort(times)
	b.ReportMetric(float64(times[len(times)/2].Milliseconds()), "median-switch-ms")
	b.ReportMetric(float64(times[len(times)-1].Milliseconds()), "max-switch-ms")
	b.Logf("switch times %v", times)
}
