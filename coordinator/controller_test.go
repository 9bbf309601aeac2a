package coordinator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/brokerlab/brokerlab/broker"
	"github.com/brokerlab/brokerlab/faultnet"
	"github.com/brokerlab/brokerlab/internal/testutil"
)

// checkFailover waits until every live handle sees partitions of topic that
// dead led (in before) led by another member of their old ISR at epoch+1, and
// dead out of every ISR. It returns how long that took from since.
func checkFailover(t *testing.T, live []*handle, topic string, before broker.TopicView, dead int32, since time.Time, timeout time.Duration) time.Duration {
	t.Helper()
	var took time.Duration
	testutil.Eventually(t, timeout, func() error {
		for _, h := range live {
			tv, ok := h.lastView().Topic(topic)
			if !ok {
				return fmt.Errorf("broker %d lost topic %s", h.id, topic)
			}
			for i, old := range before.Partitions {
				ps := tv.Partitions[i]
				if ps.InISR(dead) {
					return fmt.Errorf("broker %d: %s/%d isr %v still has dead %d", h.id, topic, i, ps.ISR, dead)
				}
				switch {
				case old.Leader == dead:
					if ps.Leader == dead || !old.InISR(ps.Leader) || ps.LeaderEpoch != old.LeaderEpoch+1 {
						return fmt.Errorf("broker %d: %s/%d leader %d epoch %d (was %d epoch %d isr %v)", h.id, topic, i,
							ps.Leader, ps.LeaderEpoch, old.Leader, old.LeaderEpoch, old.ISR)
					}
				case ps.Leader != old.Leader || ps.LeaderEpoch != old.LeaderEpoch:
					return fmt.Errorf("broker %d: %s/%d leader %d epoch %d moved though leader %d lived", h.id, topic, i,
						ps.Leader, ps.LeaderEpoch, old.Leader)
				}
			}
		}
		took = time.Since(since)
		return nil
	})
	return took
}

// mostLeading returns the handle leading the most partitions of topic,
// skipping skip.
func mostLeading(hs []*handle, v broker.ClusterView, topic string, skip *handle) *handle {
	counts := leaderCounts(v, topic)
	var best *handle
	for _, h := range hs {
		if h != skip && (best == nil || counts[h.id] > counts[best.id]) {
			best = h
		}
	}
	return best
}

func TestLeaderFailoverWithinSessionTTL(t *testing.T) {
	t.Parallel()
	e := startEtcd(t)
	fast := func(c *Config) { c.SessionTTL = FastSessionTTL }
	hs := startHandles(t, e.Endpoints(), 3, fast)
	createTopic(t, hs, hs[0], broker.TopicConfig{Name: "t", Partitions: 6, ReplicationFactor: 3, MinInsync: 2})
	ctrl := controllerOf(t, hs)
	v := ctrl.lastView()
	victim := mostLeading(hs, v, "t", ctrl)
	before, _ := v.Topic("t")

	victim.p.Close() // crash: the lease is left to expire
	start := time.Now()
	live := without(hs, victim)
	took := checkFailover(t, live, "t", before, victim.id, start, 10*time.Second)
	t.Logf("leaders moved %v after the crash (session ttl %v)", took, FastSessionTTL)
	// The lease expires after the TTL; the rest is scheduling slack on a
	// loaded 2-core machine (a graceful close would keep it ~7 s).
	if took > FastSessionTTL+2*time.Second {
		t.Errorf("failover took %v, more than ttl + 2 s", took)
	}

	// The broker returns: a follower, not in any ISR until its leader adds
	// it back.
	back := startHandle(t, e.Endpoints(), victim.id, fast)
	all := append(live, back)
	slices.SortFunc(all, func(a, b *handle) int { return int(a.id - b.id) })
	waitBrokers(t, all, []int32{0, 1, 2})
	after, _ := ctrl.lastView().Topic("t")
	for _, ps := range after.Partitions {
		if ps.Leader == back.id || ps.InISR(back.id) || !ps.HasReplica(back.id) {
			t.Fatalf("returned broker in %+v", ps)
		}
		// Its leader re-adds it once caught up.
		isr := append(slices.Clone(ps.ISR), back.id)
		if _, err := all[ps.Leader].p.AlterISR(context.Background(), withISR(ps, isr)); err != nil {
			t.Fatalf("re-add %d to %s/%d: %v", back.id, ps.Topic, ps.Partition, err)
		}
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		tv, _ := back.lastView().Topic("t")
		for _, ps := range tv.Partitions {
			if !ps.InISR(back.id) {
				return fmt.Errorf("%s/%d isr %v", ps.Topic, ps.Partition, ps.ISR)
			}
		}
		return nil
	})
}

func TestControllerFailoverThenLeaderFailover(t *testing.T) {
	t.Parallel()
	e := startEtcd(t)
	hs := startHandles(t, e.Endpoints(), 3, nil)
	createTopic(t, hs, hs[0], broker.TopicConfig{Name: "t", Partitions: 6, ReplicationFactor: 3})
	old := controllerOf(t, hs)
	before, _ := old.lastView().Topic("t")

	old.p.Close()
	start := time.Now()
	live := without(hs, old)
	next := controllerOf(t, live)
	if next == old {
		t.Fatal("dead controller still acts")
	}
	took := checkFailover(t, live, "t", before, old.id, start, 10*time.Second)
	t.Logf("new controller %d moved the old controller's leaderships after %v", next.id, took)
	testutil.Eventually(t, 5*time.Second, func() error {
		for _, h := range live {
			if c := h.lastView().ControllerID; c != next.id {
				return fmt.Errorf("broker %d sees controller %d, want %d", h.id, c, next.id)
			}
		}
		return nil
	})

	// The new controller handles a later failure: the last broker alone
	// leads everything.
	before, _ = next.lastView().Topic("t")
	other := without(live, next)[0]
	other.p.Close()
	checkFailover(t, []*handle{next}, "t", before, other.id, time.Now(), 10*time.Second)
	tv, _ := next.lastView().Topic("t")
	for _, ps := range tv.Partitions {
		if ps.Leader != next.id || !slices.Equal(ps.ISR, []int32{next.id}) {
			t.Fatalf("with one broker left: %+v", ps)
		}
	}
}

// A partition with no live ISR member goes offline and comes back with the
// in-sync replica that returns; unclean election takes any live replica.
func TestOfflinePartitionsAndUncleanElection(t *testing.T) {
	t.Parallel()
	e := startEtcd(t)
	hs := startHandles(t, e.Endpoints(), 3, nil)
	ctx := context.Background()
	for _, unclean := range []bool{false, true} {
		name := fmt.Sprintf("unclean-%v", unclean)
		createTopic(t, hs, hs[0], broker.TopicConfig{Name: name, Partitions: 3, ReplicationFactor: 2, UncleanElection: unclean})
	}
	ctrl := controllerOf(t, hs)
	// Pick a broker that is not the controller and shrink the ISR of every
	// partition it leads to itself alone.
	victim := without(hs, ctrl)[0]
	shrunk := map[string]broker.PartitionState{}
	for _, tv := range victim.lastView().Topics {
		for _, ps := range tv.Partitions {
			if ps.Leader != victim.id {
				continue
			}
			got, err := victim.p.AlterISR(ctx, withISR(ps, []int32{victim.id}))
			if err != nil {
				t.Fatal(err)
			}
			shrunk[fmt.Sprintf("%s/%d", ps.Topic, ps.Partition)] = got
		}
	}
	if len(shrunk) == 0 {
		t.Fatal("victim leads nothing")
	}
	victim.p.Close()
	live := without(hs, victim)
	testutil.Eventually(t, 10*time.Second, func() error {
		v := ctrl.lastView()
		for key, old := range shrunk {
			tv, _ := v.Topic(old.Topic)
			ps := tv.Partitions[old.Partition]
			other := old.Replicas[0]
			if other == victim.id {
				other = old.Replicas[1]
			}
			tvCfg, _ := v.Topic(old.Topic)
			if tvCfg.Config.UncleanElection {
				if ps.Leader != other || !slices.Equal(ps.ISR, []int32{other}) || ps.LeaderEpoch != old.LeaderEpoch+1 {
					return fmt.Errorf("unclean %s: %+v", key, ps)
				}
			} else if ps.Leader != -1 || !slices.Equal(ps.ISR, []int32{victim.id}) || ps.LeaderEpoch != old.LeaderEpoch+1 {
				return fmt.Errorf("clean %s: %+v", key, ps)
			}
		}
		return nil
	})
	// The in-sync replica returns and leads its offline partitions again.
	back := startHandle(t, e.Endpoints(), victim.id, nil)
	waitBrokers(t, append(live, back), []int32{0, 1, 2})
	testutil.Eventually(t, 10*time.Second, func() error {
		v := back.lastView()
		for key, old := range shrunk {
			tv, _ := v.Topic(old.Topic)
			ps := tv.Partitions[old.Partition]
			if !tv.Config.UncleanElection && (ps.Leader != victim.id || ps.LeaderEpoch != old.LeaderEpoch+2) {
				return fmt.Errorf("clean %s after return: %+v", key, ps)
			}
		}
		return nil
	})
}

// A broker that restarts before its old session expired replaces its
// registration: the controller treats it as failed (its leaderships move
// and it leaves the ISRs) without waiting for the old lease.
func TestRestartWithinSessionIsAFailure(t *testing.T) {
	t.Parallel()
	e := startEtcd(t)
	slow := func(c *Config) { c.SessionTTL = 30 * time.Second }
	hs := startHandles(t, e.Endpoints(), 3, slow)
	createTopic(t, hs, hs[0], broker.TopicConfig{Name: "t", Partitions: 6, ReplicationFactor: 3})
	ctrl := controllerOf(t, hs)
	victim := mostLeading(hs, ctrl.lastView(), "t", ctrl)
	before, _ := ctrl.lastView().Topic("t")
	victim.p.Close()
	start := time.Now()
	back := startHandle(t, e.Endpoints(), victim.id, slow)
	live := without(hs, victim)
	took := checkFailover(t, live, "t", before, victim.id, start, 5*time.Second)
	if took > 5*time.Second {
		t.Fatalf("took %v: waited for the old session", took)
	}
	waitBrokers(t, append(live, back), []int32{0, 1, 2})
}

// Deregister (graceful shutdown) moves leaderships at once.
func TestDeregisterMovesLeadersAtOnce(t *testing.T) {
	t.Parallel()
	e := startEtcd(t)
	slow := func(c *Config) { c.SessionTTL = 30 * time.Second }
	hs := startHandles(t, e.Endpoints(), 3, slow)
	createTopic(t, hs, hs[0], broker.TopicConfig{Name: "t", Partitions: 6, ReplicationFactor: 3})
	ctrl := controllerOf(t, hs)
	victim := mostLeading(hs, ctrl.lastView(), "t", nil) // may be the controller
	before, _ := ctrl.lastView().Topic("t")
	if err := victim.p.Deregister(context.Background()); err != nil {
		t.Fatal(err)
	}
	victim.p.Close()
	checkFailover(t, without(hs, victim), "t", before, victim.id, time.Now(), 5*time.Second)
}

// A controller cut off from etcd is replaced; its writes, even delivered
// late, change nothing; after the cut heals it rejoins as a plain broker.
func TestDeposedControllerCannotWrite(t *testing.T) {
	t.Parallel()
	e := startEtcd(t)
	nw := faultnet.New(testutil.Logger(t, slog.LevelWarn))
	t.Cleanup(func() { nw.Close() })
	nw.Register("etcd", e.Endpoints()[0])
	hs := make([]*handle, 3)
	for i := range hs {
		name := fmt.Sprintf("b%d", i)
		hs[i] = startHandle(t, e.Endpoints(), int32(i), func(c *Config) { c.Dial = nw.Dialer(name) })
	}
	waitBrokers(t, hs, []int32{0, 1, 2})
	createTopic(t, hs, hs[0], broker.TopicConfig{Name: "t", Partitions: 6, ReplicationFactor: 3})
	old := controllerOf(t, hs)
	oldKey, oldRev := electionKeyOf(t, old)

	nw.Cut(fmt.Sprintf("b%d", old.id), "etcd")
	live := without(hs, old)
	next := controllerOf(t, live)
	// Once its session has ended the old controller stops acting.
	testutil.Eventually(t, 10*time.Second, func() error {
		if old.p.IsController() {
			return errors.New("old controller still acting")
		}
		return nil
	})
	// The new controller handles the cut broker's lease expiry: the
	// registration goes first, the elections are later writes, so wait
	// for both to reach the new controller's view.
	var tv broker.TopicView
	testutil.Eventually(t, 10*time.Second, func() error {
		v := next.lastView()
		if _, ok := v.Broker(old.id); ok {
			return fmt.Errorf("cut broker %d still registered: %+v", old.id, v.Brokers)
		}
		var ok bool
		if tv, ok = v.Topic("t"); !ok || len(tv.Partitions) == 0 {
			return errors.New("topic t not in the view")
		}
		for _, ps := range tv.Partitions {
			if ps.Leader == old.id || ps.InISR(old.id) {
				return fmt.Errorf("cut broker still in %+v", ps)
			}
		}
		return nil
	})

	nw.Heal(fmt.Sprintf("b%d", old.id), "etcd")
	// A write the deposed controller had in flight reaches etcd now: the
	// fence refuses it.
	stale := &controller{p: old.p, log: old.p.log, key: oldKey, rev: oldRev,
		fence: clientv3.Compare(clientv3.CreateRevision(oldKey), "=", oldRev), st: newState(old.p.keys)}
	ps := tv.Partitions[0]
	forged := ps
	forged.Leader, forged.LeaderEpoch = old.id, ps.LeaderEpoch+7
	key := old.p.keys.partition("t", 0)
	err := stale.commit(context.Background(), []change{{
		cmps: []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(key), "=", ps.Version)},
		ops:  []clientv3.Op{clientv3.OpPut(key, encodePartition(forged))},
	}})
	if !errors.Is(err, errDeposed) {
		t.Fatalf("deposed controller's write: %v", err)
	}
	cur, err := next.p.getPartition(context.Background(), "t", 0)
	if err != nil || cur.Version != ps.Version || cur.Leader != ps.Leader {
		t.Fatalf("state after deposed write: %+v %v (was %+v)", cur, err, ps)
	}
	// It registers again with a new session and is a live broker, not the
	// controller.
	waitBrokers(t, hs, []int32{0, 1, 2})
	if c := controllerOf(t, hs); c != next {
		t.Fatalf("controller moved to %d after the heal", c.id)
	}
}

// A controller whose lease is revoked underneath is deposed at once.
func TestRevokedControllerLeaseFencesWrites(t *testing.T) {
	t.Parallel()
	e := startEtcd(t)
	hs := startHandles(t, e.Endpoints(), 2, nil)
	createTopic(t, hs, hs[0], broker.TopicConfig{Name: "t", Partitions: 2, ReplicationFactor: 2})
	old := controllerOf(t, hs)
	key, rev := electionKeyOf(t, old)
	if _, err := old.p.client.Revoke(context.Background(), old.p.currentLease()); err != nil {
		t.Fatal(err)
	}
	c := &controller{p: old.p, log: old.p.log, key: key, rev: rev,
		fence: clientv3.Compare(clientv3.CreateRevision(key), "=", rev), st: newState(old.p.keys)}
	tv, _ := old.lastView().Topic("t")
	ps := tv.Partitions[0]
	pkey := old.p.keys.partition("t", 0)
	err := c.commit(context.Background(), []change{{
		cmps: []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(pkey), "=", ps.Version)},
		ops:  []clientv3.Op{clientv3.OpPut(pkey, encodePartition(withEpoch(ps, 99)))},
	}})
	if !errors.Is(err, errDeposed) {
		t.Fatalf("write after revoke: %v", err)
	}
	// The broker notices, registers again and the cluster settles with one
	// controller.
	waitBrokers(t, hs, []int32{0, 1})
	controllerOf(t, hs)
}

// electionKeyOf returns the election key and create revision of a handle
// that is controller.
func electionKeyOf(t *testing.T, h *handle) (string, int64) {
	t.Helper()
	key := fmt.Sprintf("%s/%x", h.p.keys.election(), int64(h.p.currentLease()))
	resp, err := h.p.client.Get(context.Background(), key)
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("election key %s: %v %v", key, resp, err)
	}
	return key, resp.Kvs[0].CreateRevision
}
