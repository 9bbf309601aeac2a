package jetstream

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/scenarios"
	"github.com/brokerlab/brokerlab/scenarios/scenario"
)

func TestNames(t *testing.T) {
	for _, c := range []struct {
		topic, stream, subject string
		p                      int32
	}{
		{"bench", "bench-0", "bench.0", 0},
		{"a.b", "a_b-12", "a.b.12", 12},
	} {
		if got := StreamName(c.topic, c.p); got != c.stream {
			t.Errorf("StreamName(%q, %d) = %q, want %q", c.topic, c.p, got, c.stream)
		}
		if got := Subject(c.topic, c.p); got != c.subject {
			t.Errorf("Subject(%q, %d) = %q, want %q", c.topic, c.p, got, c.subject)
		}
		if p, ok := partitionOf(c.topic, c.stream); !ok || p != c.p {
			t.Errorf("partitionOf(%q, %q) = %d, %v", c.topic, c.stream, p, ok)
		}
	}
	for _, s := range []string{"other-0", "bench-", "bench-x", "bench--1", "bench"} {
		if p, ok := partitionOf("bench", s); ok {
			t.Errorf("partitionOf(bench, %q) = %d, want no partition", s, p)
		}
	}
}

func TestMaxPayload(t *testing.T) {
	for _, c := range []struct {
		size int
		want int32
	}{{0, 1 << 20}, {1024, 1 << 20}, {1 << 20, 1<<20 + 64<<10}, {1 << 30, 64 << 20}} {
		if got := maxPayload(c.size); got != c.want {
			t.Errorf("maxPayload(%d) = %d, want %d", c.size, got, c.want)
		}
	}
}

func TestActivity(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	var a activity
	if !a.firstAtOrAfter(t0).IsZero() || a.before(at(5)) {
		t.Fatal("empty log has events")
	}
	// Two stretches: 0..2 ms (sub-gap steps) and 50 ms.
	for _, us := range []int{0, 500, 1000, 1500, 2000} {
		a.mark(t0.Add(time.Duration(us) * time.Microsecond))
	}
	a.mark(at(50))
	a.mark(at(1)) // late and inside the first stretch
	if len(a.stretches) != 2 {
		t.Fatalf("stretches %+v", a.stretches)
	}
	for _, c := range []struct{ q, want time.Time }{
		{at(-10), at(0)},
		{at(1), at(1)},
		{at(3), at(50)},
		{at(50), at(50)},
		{at(51), time.Time{}},
	} {
		if got := a.firstAtOrAfter(c.q); !got.Equal(c.want) {
			t.Errorf("firstAtOrAfter(%v) = %v, want %v", c.q.Sub(t0), got.Sub(t0), c.want.Sub(t0))
		}
	}
	if a.before(t0) || !a.before(at(1)) {
		t.Error("before")
	}
}

func TestLeaderHistory(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	h := newLeaderHistory()
	h.observe("s-0", 1, at(0))
	h.observe("s-0", 1, at(1)) // no change
	h.observe("s-1", 2, at(0))
	h.observe(metaGroup, 1, at(0))
	h.observe("s-0", 0, at(5))
	h.observe(metaGroup, 2, at(4))
	h.observe("s-0", 1, at(3)) // out of order: kept after the previous
	if got := h.current("s-0"); got != 1 {
		t.Errorf("current = %d", got)
	}
	if got := h.ledAt(1, at(2)); len(got) != 2 || got[0] != metaGroup || got[1] != "s-0" {
		t.Errorf("ledAt(1, 2s) = %v", got)
	}
	if e, ok := h.electedAfter("s-0", 1, at(2)); !ok || e.leader != 0 || !e.at.Equal(at(5)) {
		t.Errorf("electedAfter = %+v, %v", e, ok)
	}
	if _, ok := h.electedAfter("s-1", 2, at(0)); ok {
		t.Error("s-1 never changed leader")
	}
	if h.current("none") != -1 {
		t.Error("unknown group has a leader")
	}
}

func TestCheckWorkload(t *testing.T) {
	good := scenarios.ProducerConfig{Rate: 10, Workload: scenario.Workload{Timeout: time.Second, Acks: scenario.AcksAll}}
	if err := checkWorkload(good); err != nil {
		t.Fatal(err)
	}
	for _, mod := range []func(*scenarios.ProducerConfig){
		func(c *scenarios.ProducerConfig) { c.Rate = -1 },
		func(c *scenarios.ProducerConfig) { c.Workload.Timeout = 0 },
		func(c *scenarios.ProducerConfig) { c.Workload.Retries = -1 },
		func(c *scenarios.ProducerConfig) { c.Workload.MessageSize = -1 },
		func(c *scenarios.ProducerConfig) { c.Workload.Acks = 2 },
	} {
		c := good
		mod(&c)
		if err := checkWorkload(c); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}

func TestUnanswered(t *testing.T) {
	if !unanswered(context.DeadlineExceeded) || unanswered(errors.New("stream not found")) {
		t.Error("unanswered")
	}
}

func TestReconnectedAfter(t *testing.T) {
	t0 := time.Now()
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	for _, c := range []struct {
		name   string
		events []connEvent
		want   int // seconds after t0; -1 for none
	}{
		{"moved to another server", []connEvent{{at(0), 0}, {at(3), -1}, {at(4), 1}}, 4},
		{"never reconnected", []connEvent{{at(0), 0}, {at(3), -1}}, -1},
		{"back to the restarted server", []connEvent{{at(0), 0}, {at(3), -1}, {at(9), 0}}, 9},
		{"still on the paused server", []connEvent{{at(0), 0}}, -1},
		{"a move before the fault does not count", []connEvent{{at(0), 1}, {at(1), 0}}, -1},
	} {
		tr := newClientTrack("c")
		for _, e := range c.events {
			tr.conn(e.at, e.server)
		}
		got := tr.reconnectedAfter(0, at(2))
		switch {
		case c.want < 0 && !got.IsZero():
			t.Errorf("%s: reconnected at +%v, want never", c.name, got.Sub(t0))
		case c.want >= 0 && !got.Equal(at(c.want)):
			t.Errorf("%s: reconnected at %v, want +%ds", c.name, got.Sub(t0), c.want)
		}
	}
}
