package nodes

import (
	"testing"
	"time"
)

func TestBrokerNames(t *testing.T) {
	for _, id := range []int32{0, 7, 12} {
		if got, ok := BrokerID(BrokerName(id)); !ok || got != id {
			t.Errorf("BrokerID(BrokerName(%d)) = %d, %v", id, got, ok)
		}
	}
	for _, bad := range []string{"", "broker", "broker x", "etcd 0", "broker 0, broker 1", "nameserver 1"} {
		if id, ok := BrokerID(bad); ok {
			t.Errorf("BrokerID(%q) = %d, want not a broker", bad, id)
		}
	}
}

func TestDeparturesDetected(t *testing.T) {
	var d Departures
	t0 := time.Now()
	if got := d.Detected("broker 1", t0); !got.IsZero() {
		t.Fatalf("empty log detected %v", got)
	}
	d.Record(1, t0.Add(time.Second))
	d.Record(1, t0.Add(5*time.Second))
	d.Record(2, t0.Add(2*time.Second))
	for _, c := range []struct {
		node  string
		since time.Duration
		want  time.Duration // -1: none
	}{
		{"broker 1", 0, time.Second},
		{"broker 1", time.Second, time.Second}, // at since counts
		{"broker 1", 2 * time.Second, 5 * time.Second},
		{"broker 1", 6 * time.Second, -1},
		{"broker 2", 0, 2 * time.Second},
		{"broker 3", 0, -1},
		{"etcd 0", 0, -1},
	} {
		got := d.Detected(c.node, t0.Add(c.since))
		if c.want < 0 {
			if !got.IsZero() {
				t.Errorf("%s since +%v: %v, want none", c.node, c.since, got.Sub(t0))
			}
			continue
		}
		if !got.Equal(t0.Add(c.want)) {
			t.Errorf("%s since +%v: +%v, want +%v", c.node, c.since, got.Sub(t0), c.want)
		}
	}
}
