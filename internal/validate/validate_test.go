package validate

import (
	"strings"
	"testing"
)

func TestTopicName(t *testing.T) {
	for _, ok := range []string{"a", "orders", "a.b-c_D9", "...", "-", strings.Repeat("x", MaxTopicName)} {
		if err := TopicName(ok); err != nil {
			t.Errorf("TopicName(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"", ".", "..", "a/b", "a b", "ü", "a\x00", strings.Repeat("x", MaxTopicName+1)} {
		if err := TopicName(bad); err == nil {
			t.Errorf("TopicName(%q) = nil, want an error", bad)
		}
	}
}

func TestISR(t *testing.T) {
	replicas := []int32{1, 2, 3}
	for _, c := range []struct {
		isr    []int32
		leader int32
		ok     bool
	}{
		{[]int32{1, 2, 3}, 1, true},
		{[]int32{2}, 2, true},
		{[]int32{3, 1}, -1, true},
		{nil, -1, false},
		{[]int32{1, 4}, 1, false},    // not a replica
		{[]int32{1, 2, 1}, 1, false}, // twice
		{[]int32{2, 3}, 1, false},    // lacks the leader
	} {
		if err := ISR(c.isr, replicas, c.leader); (err == nil) != c.ok {
			t.Errorf("ISR(%v, leader %d) = %v, want ok=%v", c.isr, c.leader, err, c.ok)
		}
	}
}

// FuzzTopicName: an accepted name is never a path step and stays within
// Kafka's alphabet and length.
func FuzzTopicName(f *testing.F) {
	f.Add("orders")
	f.Add("..")
	f.Add("a/b")
	f.Fuzz(func(t *testing.T, name string) {
		if TopicName(name) != nil {
			return
		}
		if name == "." || name == ".." || strings.ContainsAny(name, "/\\\x00") || len(name) > MaxTopicName || name == "" {
			t.Fatalf("accepted %q", name)
		}
	})
}
