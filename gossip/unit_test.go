package gossip

import (
	"fmt"
	"math"
	"testing"
)

func TestCRC16Vector(t *testing.T) {
	if got := CRC16([]byte("123456789")); got != 0x31C3 {
		t.Fatalf("CRC16(123456789) = %#x, want 0x31c3 (Redis Cluster spec)", got)
	}
	// Hash tags: only the part in braces counts.
	if Slot("{user1000}.following") != Slot("user1000") || Slot("foo{}{bar}") != int(CRC16([]byte("foo{}{bar}"))%Slots) {
		t.Fatal("hash tags not applied as Redis does")
	}
	if s := Slot(PartitionKey("bench", 0)); s < 0 || s >= Slots {
		t.Fatalf("slot %d", s)
	}
}

func TestRingPlacementBalance(t *testing.T) {
	nodes := []int32{1, 2, 3, 4, 5}
	r := NewRing(nodes, 16)
	const parts = 3000
	leaders := map[int32]int{}
	replicas := map[int32]int{}
	for p := range int32(parts) {
		reps := r.Replicas(PartitionKey("t", p), 3)
		if len(reps) != 3 || reps[0] == reps[1] || reps[1] == reps[2] || reps[0] == reps[2] {
			t.Fatalf("partition %d: replicas %v not 3 distinct nodes", p, reps)
		}
		leaders[reps[0]]++
		for _, n := range reps {
			replicas[n]++
		}
	}
	for _, n := range nodes {
		// Each node should lead about 1/5 and hold about 3/5.
		if l := float64(leaders[n]) / parts; math.Abs(l-0.2) > 0.1 {
			t.Errorf("node %d leads %.2f of partitions, want 0.20 +- 0.10 (%v)", n, l, leaders)
		}
		if h := float64(replicas[n]) / parts; math.Abs(h-0.6) > 0.15 {
			t.Errorf("node %d holds %.2f of partitions, want 0.60 +- 0.15", n, h)
		}
	}
	// Adding a node moves only a share of the leaders (consistent hashing).
	r6 := NewRing(append(nodes, 6), 16)
	moved := 0
	for p := range int32(parts) {
		if r.Replicas(PartitionKey("t", p), 1)[0] != r6.Replicas(PartitionKey("t", p), 1)[0] {
			moved++
		}
	}
	if f := float64(moved) / parts; f > 0.35 || f < 0.05 {
		t.Errorf("adding a sixth node moved %.2f of the leaders, want about 1/6", f)
	}
	t.Logf("leaders %v, replicas %v, moved %d/%d", leaders, replicas, moved, parts)
}

func TestSlotMergeHigherEpochWins(t *testing.T) {
	s := newClusterState()
	s.mergeSlots(slotClaim{Start: 0, End: Slots - 1, Owner: 1, Epoch: 1})
	s.mergeSlots(slotClaim{Start: 100, End: 199, Owner: 2, Epoch: 3})
	s.mergeSlots(slotClaim{Start: 150, End: 250, Owner: 3, Epoch: 2}) // older than 2's claim on 150-199
	for _, c := range []struct {
		slot  int
		owner int32
	}{{99, 1}, {100, 2}, {199, 2}, {200, 3}, {250, 3}, {251, 1}} {
		if s.owner[c.slot] != c.owner {
			t.Errorf("slot %d owned by %d, want %d", c.slot, s.owner[c.slot], c.owner)
		}
	}
	if s.epoch != 3 {
		t.Errorf("current epoch %d, want 3", s.epoch)
	}
	// The run-length encoding round-trips.
	s2 := newClusterState()
	for _, c := range s.claims() {
		s2.mergeSlots(c)
	}
	if s2.owner != s.owner || s2.slotEpoch != s.slotEpoch {
		t.Fatal("claims do not reproduce the slot table")
	}
}

func TestWireRoundTrip(t *testing.T) {
	s := newClusterState()
	s.nodes[1] = "127.0.0.1:7946"
	s.mergeSlots(slotClaim{Start: 0, End: Slots - 1, Owner: 1, Epoch: 1})
	s.mergeTopic(&topicRec{Stamp: 5, Parts: []partRec{{Replicas: []int32{1}, ISR: []int32{1}, Version: 1}}})
	b, err := encode(kindState, s.full())
	if err != nil {
		t.Fatal(err)
	}
	m, err := decode(b)
	if err != nil || m.state == nil {
		t.Fatalf("decode: %v", err)
	}
	for _, bad := range [][]byte{nil, {9, '{', '}'}, {kindUpdate, '{', '}'}, {kindRequest, '{', '}'},
		append([]byte{kindState}, `{"s":[{"a":5,"b":20000,"o":1}]}`...)} {
		if _, err := decode(bad); err == nil {
			t.Errorf("decode(%q) accepted", bad)
		}
	}
}

func FuzzDecode(f *testing.F) {
	s := newClusterState()
	s.nodes[2] = "127.0.0.1:1"
	s.mergeSlots(slotClaim{Start: 0, End: 99, Owner: 2, Epoch: 4})
	full, _ := encode(kindState, s.full())
	f.Add(full)
	u, _ := encode(kindUpdate, update{Origin: 1, Seq: 2, Delta: &delta{Reports: []report{{Reporter: 1, Targets: []int32{2}}}}})
	f.Add(u)
	r, _ := encode(kindRequest, request{ID: 1, From: 1, Kind: reqVote, Epoch: 3, Failed: 2, Slots: []slotClaim{{0, 9, 1, 3}}})
	f.Add(r)
	f.Add([]byte{kindResponse, '{', '}'})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decode(b)
		if err != nil {
			return
		}
		// Whatever decodes must merge without panicking.
		st := newClusterState()
		switch {
		case m.state != nil:
			st.merge(m.state)
		case m.update != nil:
			st.merge(m.update.Delta)
		}
		_ = fmt.Sprint(st.claims())
	})
}
