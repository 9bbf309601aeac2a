package coordinator

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/brokerlab/brokerlab/broker"
)

func brokersN(n int, racks int) []broker.BrokerInfo {
	out := make([]broker.BrokerInfo, n)
	for i := range out {
		out[i] = broker.BrokerInfo{ID: int32(i), Addr: fmt.Sprintf("h:%d", i)}
		if racks > 0 {
			out[i].Rack = fmt.Sprintf("r%d", i%racks)
		}
	}
	return out
}

func partsN(n int) []int32 {
	out := make([]int32, n)
	for i := range out {
		out[i] = int32(i)
	}
	return out
}

func spread(m map[int32]int, ids []broker.BrokerInfo) (lo, hi int) {
	lo, hi = -1, 0
	for _, b := range ids {
		c := m[b.ID]
		if lo < 0 || c < lo {
			lo = c
		}
		hi = max(hi, c)
	}
	return lo, hi
}

func TestPlaceBalancesLeadersAndReplicas(t *testing.T) {
	for _, n := range []int{1, 3, 5, 10} {
		for _, parts := range []int{1, 6, 7, 30, 100} {
			for _, rf := range []int{1, 2, 3} {
				if rf > n {
					continue
				}
				t.Run(fmt.Sprintf("brokers=%d/parts=%d/rf=%d", n, parts, rf), func(t *testing.T) {
					bs := brokersN(n, 0)
					l := newLoad()
					got, err := place(bs, l, partsN(parts), rf)
					if err != nil {
						t.Fatal(err)
					}
					for p, rs := range got {
						if len(rs) != rf || len(slicesCompactSorted(rs)) != rf {
							t.Fatalf("partition %d replicas %v", p, rs)
						}
					}
					if lo, hi := spread(l.leaders, bs); hi-lo > 1 {
						t.Errorf("leaders per broker from %d to %d: %v", lo, hi, l.leaders)
					}
					if lo, hi := spread(l.replicas, bs); hi-lo > 1 {
						t.Errorf("replicas per broker from %d to %d: %v", lo, hi, l.replicas)
					}
				})
			}
		}
	}
}

func TestPlaceKafkaLayoutAndAcrossTopics(t *testing.T) {
	bs := brokersN(3, 0)
	l := newLoad()
	got, err := place(bs, l, partsN(3), 3)
	if err != nil {
		t.Fatal(err)
	}
	want := [][]int32{{0, 1, 2}, {1, 2, 0}, {2, 0, 1}}
	for p, w := range want {
		if !slices.Equal(got[int32(p)], w) {
			t.Fatalf("partition %d: %v, want %v", p, got[int32(p)], w)
		}
	}
	// Single-partition topics one after another still spread leaders.
	l = newLoad()
	for range 6 {
		if _, err := place(bs, l, partsN(1), 2); err != nil {
			t.Fatal(err)
		}
	}
	if lo, hi := spread(l.leaders, bs); lo != 2 || hi != 2 {
		t.Fatalf("six single-partition topics: leaders %v", l.leaders)
	}
	if lo, hi := spread(l.replicas, bs); lo != 4 || hi != 4 {
		t.Fatalf("six single-partition topics: replicas %v", l.replicas)
	}
}

func TestPlaceSpreadsRacks(t *testing.T) {
	for _, tc := range []struct{ brokers, racks, rf int }{{6, 3, 3}, {4, 2, 2}, {9, 3, 3}, {6, 2, 3}} {
		bs := brokersN(tc.brokers, tc.racks)
		got, err := place(bs, newLoad(), partsN(12), tc.rf)
		if err != nil {
			t.Fatal(err)
		}
		for p, rs := range got {
			racks := map[string]bool{}
			for _, r := range rs {
				racks[bs[r].Rack] = true
			}
			if want := min(tc.rf, tc.racks); len(racks) != want {
				t.Errorf("%+v: partition %d replicas %v on %d racks, want %d", tc, p, rs, len(racks), want)
			}
		}
	}
}

func TestPlaceRefuses(t *testing.T) {
	if _, err := place(brokersN(2, 0), newLoad(), partsN(1), 3); !errors.Is(err, broker.ErrNotEnoughBrokers) {
		t.Fatalf("rf 3 on 2 brokers: %v", err)
	}
	if _, err := place(brokersN(2, 0), newLoad(), partsN(1), 0); !errors.Is(err, broker.ErrInvalidTopic) {
		t.Fatalf("rf 0: %v", err)
	}
}

func TestDecide(t *testing.T) {
	ps := func(leader, epoch int32, isr ...int32) broker.PartitionState {
		return broker.PartitionState{Topic: "t", Replicas: []int32{1, 2, 3}, Leader: leader, LeaderEpoch: epoch, ISR: isr, Version: 9}
	}
	alive := func(ids ...int32) func(int32) bool { return func(id int32) bool { return slices.Contains(ids, id) } }
	for _, tc := range []struct {
		name    string
		in      broker.PartitionState
		live    func(int32) bool
		unclean bool
		want    broker.PartitionState
		changed bool
	}{
		{"all live", ps(1, 4, 1, 2, 3), alive(1, 2, 3), false, ps(1, 4, 1, 2, 3), false},
		{"isr in another order", ps(1, 4, 3, 1, 2), alive(1, 2, 3), false, ps(1, 4, 3, 1, 2), false},
		{"dead follower leaves isr", ps(1, 4, 1, 2, 3), alive(1, 3), false, ps(1, 4, 1, 3), true},
		{"dead leader: first live isr member", ps(1, 4, 1, 2, 3), alive(2, 3), false, ps(2, 5, 2, 3), true},
		{"dead leader: replica order, not isr order", ps(1, 4, 1, 3, 2), alive(2, 3), false, ps(2, 5, 2, 3), true},
		{"dead leader: out-of-sync replica not elected", ps(1, 4, 1), alive(2, 3), false, ps(-1, 5, 1), true},
		{"dead leader: unclean takes any replica", ps(1, 4, 1), alive(3), true, ps(3, 5, 3), true},
		{"offline: isr member returns", ps(-1, 5, 1, 2), alive(2), false, ps(2, 6, 2), true},
		{"offline: nobody", ps(-1, 5, 1), alive(), false, ps(-1, 5, 1), false},
		{"offline: unclean, nobody", ps(-1, 5, 1), alive(), true, ps(-1, 5, 1), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, changed := decide(tc.in, tc.live, tc.unclean)
			if changed != tc.changed || got.Leader != tc.want.Leader || got.LeaderEpoch != tc.want.LeaderEpoch || !slices.Equal(got.ISR, tc.want.ISR) {
				t.Fatalf("decide(%+v) = %+v changed %v; want %+v changed %v", tc.in, got, changed, tc.want, tc.changed)
			}
			if !slices.Equal(tc.in.Replicas, []int32{1, 2, 3}) {
				t.Fatal("decide modified its input")
			}
		})
	}
}
