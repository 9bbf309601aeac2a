package gossip_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/broker"
	"github.com/brokerlab/brokerlab/gossip"
	"github.com/brokerlab/brokerlab/internal/testutil"
)

// startPlane registers a plane alone (no broker behind it) and returns it
// with a function reading its latest view.
func startPlane(t *testing.T, id int32, bind string, seeds []string) (*gossip.Plane, func() broker.ClusterView, error) {
	t.Helper()
	p := newPlane(t, id, bind, seeds)
	views := make(chan broker.ClusterView, 1)
	var last broker.ClusterView
	get := func() broker.ClusterView {
		select {
		case last = <-views:
		default:
		}
		return last
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := p.Register(ctx, broker.BrokerInfo{ID: id, Addr: fmt.Sprintf("127.0.0.1:%d", 9000+id)}, func(v broker.ClusterView) {
		select {
		case <-views:
		default:
		}
		views <- v
	})
	return p, get, err
}

// newPlane builds a slots plane with fast timings, closed at the test's
// end; it is not registered yet.
func newPlane(t *testing.T, id int32, bind string, seeds []string) *gossip.Plane {
	t.Helper()
	cfg := fastConfig(gossip.PlacementSlots)
	cfg.Bind, cfg.Seeds = bind, seeds
	cfg.Logger = testutil.Logger(t, slog.LevelWarn).With("node-id", id)
	p, err := gossip.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func TestFormFromSeeds(t *testing.T) {
	addrs := []string{freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)}
	seeds := addrs[:3]

	// A seed that is not the first never forms a cluster alone.
	lone := freeAddr(t)
	if _, _, err := startPlane(t, 9, lone, []string{freeAddr(t), lone}); !errors.Is(err, gossip.ErrNoSeed) {
		t.Fatalf("a non-first seed with no seed answering: %v, want ErrNoSeed", err)
	}

	// The first seed, finding no other seed, forms the cluster alone and
	// takes every slot.
	p1, v1, err := startPlane(t, 1, addrs[0], seeds)
	if err != nil {
		t.Fatal(err)
	}
	if got := p1.SlotsOf(1); got != gossip.Slots {
		t.Fatalf("first seed owns %d slots, want all %d", got, gossip.Slots)
	}
	// Views come soon after Register, not necessarily before it returns.
	testutil.Eventually(t, 10*time.Second, func() error {
		if len(v1().Brokers) == 0 {
			return errors.New("no view yet")
		}
		return nil
	})
	if n := len(v1().Brokers); n != 1 {
		t.Fatalf("first seed sees %d brokers, want itself only", n)
	}
	// The other seeds join through it; a node that knows only the third
	// seed joins through that one.
	_, _, err = startPlane(t, 2, addrs[1], seeds)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = startPlane(t, 3, addrs[2], seeds)
	if err != nil {
		t.Fatal(err)
	}
	p4, v4, err := startPlane(t, 4, addrs[3], []string{addrs[2]})
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 20*time.Second, func() error {
		for _, v := range []broker.ClusterView{v1(), v4()} {
			if len(v.Brokers) != 4 {
				return fmt.Errorf("view lists %d brokers, want 4", len(v.Brokers))
			}
		}
		// Joined nodes take a share of the slots, and the first seed
		// learns it too (its state converges by gossip, not at once).
		for id := int32(1); id <= 4; id++ {
			if n := p4.SlotsOf(id); n == 0 {
				return fmt.Errorf("node %d owns no slot yet", id)
			}
		}
		if m := p1.Masters(); !slices.Equal(m, []int32{1, 2, 3, 4}) {
			return fmt.Errorf("masters %v", m)
		}
		return nil
	})
	total := 0
	for id := int32(1); id <= 4; id++ {
		total += p1.SlotsOf(id)
	}
	if total != gossip.Slots {
		t.Fatalf("slots add up to %d, want %d", total, gossip.Slots)
	}
}

// TestDeleteTopicAnnounced: a deletion made on one node reaches another's
// view as DeletedTopics, and a new creation under the name replaces it.
func TestDeleteTopicAnnounced(t *testing.T) {
	a, b := freeAddr(t), freeAddr(t)
	p1, _, err := startPlane(t, 1, a, []string{a, b})
	if err != nil {
		t.Fatal(err)
	}
	_, v2, err := startPlane(t, 2, b, []string{a, b})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// Creation needs both members live in p1's view.
	testutil.Eventually(t, 10*time.Second, func() error {
		return p1.CreateTopics(ctx, []broker.TopicConfig{{Name: "d", Partitions: 2, ReplicationFactor: 2}})[0]
	})
	testutil.Eventually(t, 10*time.Second, func() error {
		if _, ok := v2().Topic("d"); !ok {
			return errors.New("topic not seen")
		}
		return nil
	})
	if err := p1.DeleteTopics(ctx, []string{"d"})[0]; err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		v := v2()
		if _, ok := v.Topic("d"); ok || !v.Deleted("d") {
			return fmt.Errorf("view: topics %d, deleted %v", len(v.Topics), v.DeletedTopics)
		}
		return nil
	})
	if err := p1.CreateTopics(ctx, []broker.TopicConfig{{Name: "d", Partitions: 1, ReplicationFactor: 1}})[0]; err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		v := v2()
		if tv, ok := v.Topic("d"); !ok || v.Deleted("d") || len(tv.Partitions) != 1 {
			return fmt.Errorf("view after re-creation: deleted %v", v.DeletedTopics)
		}
		return nil
	})
}

// TestFormSeedsStartedTogether: seeds started at the same moment answer
// each other's memberlist joins before any has formed; the first seed must
// still form the cluster and claim the slots (it counts only an answer
// from a formed cluster), so that topics can be placed. Containers of a
// deployment start this way.
func TestFormSeedsStartedTogether(t *testing.T) {
	seeds := []string{freeAddr(t), freeAddr(t), freeAddr(t)}
	planes := make([]*gossip.Plane, len(seeds))
	for i, addr := range seeds {
		planes[i] = newPlane(t, int32(i), addr, seeds)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	errs := make(chan error, len(planes))
	for i, p := range planes {
		go func() {
			errs <- p.Register(ctx, broker.BrokerInfo{ID: int32(i), Addr: fmt.Sprintf("127.0.0.1:%d", 9100+i)}, func(broker.ClusterView) {})
		}()
	}
	for range planes {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, 20*time.Second, func() error {
		for i, p := range planes {
			if m := p.Masters(); !slices.Equal(m, []int32{0, 1, 2}) {
				return fmt.Errorf("node %d sees masters %v", i, m)
			}
		}
		return nil
	})
	testutil.Eventually(t, 10*time.Second, func() error {
		return planes[0].CreateTopics(ctx, []broker.TopicConfig{{Name: "t", Partitions: 3, ReplicationFactor: 3}})[0]
	})
}
