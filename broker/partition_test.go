package broker

import (
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/broker/storage"
)

// TestLeaderTracksReplicasAddedWithinEpoch: a control plane may add a
// replica without a new leader epoch (nameserver-controller's replicas are
// the group's registered members, and a slave can register after its
// master led the topic). The leader must then count the new replica's
// fetches: propose it for the ISR once caught up. Before the fix the
// follower map was built only on becoming leader, so such a slave was
// never added and acks=all writes failed for good.
func TestLeaderTracksReplicasAddedWithinEpoch(t *testing.T) {
	p := newPartition("t", 0, 0, storage.NewMemory(storage.Config{}), slog.New(slog.DiscardHandler))
	now := time.Now()
	st := PartitionState{Topic: "t", Replicas: []int32{0}, Leader: 0, LeaderEpoch: 1, ISR: []int32{0}, Version: 1, MinInsync: 2}
	p.apply(st, now)
	if isr := p.followerFetched(1, 0, now); isr != nil {
		t.Fatalf("a broker that is not a replica proposed ISR %v", isr)
	}

	st.Replicas = []int32{0, 1, 2}
	if changed := p.apply(st, now); changed {
		t.Error("a replica change within the epoch reported a role change")
	}
	isr := p.followerFetched(1, 0, now)
	if !slices.Equal(isr, []int32{0, 1}) {
		t.Fatalf("caught-up new replica 1: proposed ISR %v, want [0 1]", isr)
	}

	// A replica dropped from the assignment is forgotten.
	st.Replicas = []int32{0, 1}
	st.Version = 2
	st.ISR = []int32{0, 1}
	p.apply(st, now)
	if isr := p.followerFetched(2, 0, now); isr != nil {
		t.Fatalf("removed replica 2 proposed ISR %v", isr)
	}
}
