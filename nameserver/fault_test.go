package nameserver

import (
	"testing"
	"time"
)

func TestLatencyTable(t *testing.T) {
	tab := DefaultLatencyTable()
	for _, tc := range []struct {
		latency time.Duration
		failed  bool
		want    time.Duration
	}{
		{10 * time.Millisecond, false, 0},
		{50 * time.Millisecond, false, 0},
		{549 * time.Millisecond, false, 0},
		{550 * time.Millisecond, false, 30 * time.Second},
		{time.Second, false, time.Minute},
		{2500 * time.Millisecond, false, 2 * time.Minute},
		{3 * time.Second, false, 3 * time.Minute},
		{20 * time.Second, false, 10 * time.Minute},
		{time.Millisecond, true, 10 * time.Minute},
	} {
		if got := tab.isolation(tc.latency, tc.failed); got != tc.want {
			t.Errorf("latency %v failed %v: %v, want %v", tc.latency, tc.failed, got, tc.want)
		}
	}
	fast := FastLatencyTable()
	if got := fast.isolation(0, true); got != 10*time.Second {
		t.Errorf("fast failure window %v", got)
	}
	if got := fast.isolation(time.Second, false); got != time.Second {
		t.Errorf("fast 1s-latency window %v", got)
	}
	for _, bad := range []LatencyTable{
		{},
		{LatencyMax: []time.Duration{1}, NotAvailable: nil},
		{LatencyMax: []time.Duration{2, 1}, NotAvailable: []time.Duration{0, 0}},
		{LatencyMax: []time.Duration{1}, NotAvailable: []time.Duration{-1}},
	} {
		if _, err := NewFaultTolerance(bad); err == nil {
			t.Errorf("accepted %+v", bad)
		}
	}
}

func TestFaultTolerance(t *testing.T) {
	ft, err := NewFaultTolerance(DefaultLatencyTable())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1000, 0)
	ft.now = func() time.Time { return now }

	ft.Update("a", 20*time.Millisecond, false)
	if !ft.Available("a") || !ft.Available("never-seen") {
		t.Fatal("fast send isolated its group")
	}
	ft.Update("a", 0, true) // failed: the largest window
	ft.Update("b", 600*time.Millisecond, false)
	if ft.Available("a") || ft.Available("b") {
		t.Fatal("failed or slow group still available")
	}
	if iso := ft.Isolated(); len(iso) != 2 || !iso["a"].Equal(now.Add(10*time.Minute)) {
		t.Fatalf("isolated %v", iso)
	}
	now = now.Add(30 * time.Second)
	if ft.Available("a") || !ft.Available("b") {
		t.Fatal("b's 30s window or a's 600s window wrong")
	}
	ft.Update("a", time.Millisecond, false) // a fast success ends isolation early
	if !ft.Available("a") {
		t.Fatal("fast success did not end the isolation")
	}

	r := TopicRoute{Topic: "t", Partitions: 4, Groups: []GroupRoute{
		{GroupInfo: GroupInfo{Group: "a", Members: []Member{{BrokerID: 0, NodeID: 1}, {BrokerID: 1, NodeID: 2}}}, Queues: 2},
		{GroupInfo: GroupInfo{Group: "b", Members: []Member{{BrokerID: 0, NodeID: 3}}}, Queues: 2, FirstPartition: 2},
	}}
	ft.Update("b", 0, true)
	qs := r.WriteQueues(ft)
	if len(qs) != 2 || qs[0].Group != "a" || qs[1].Partition != 1 {
		t.Fatalf("write queues with b isolated: %+v", qs)
	}
	ft.Update("a", 0, true)
	if qs := r.WriteQueues(ft); len(qs) != 4 {
		t.Fatalf("every group isolated: want all queues as a last resort, got %+v", qs)
	}
}
