package coordinator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/brokerlab/brokerlab/broker"
)

// maxTxnOps bounds the writes, and separately the compares, of one controller
// transaction below etcd's default --max-txn-ops of 128.
const maxTxnOps = 100

var (
	errDeposed = errors.New("coordinator: controller deposed")
	errStale   = errors.New("coordinator: controller state is stale")
	// errConflict: a write lost its compare to another writer (a leader's
	// ISR change); the watch brings the newer value.
	errConflict = errors.New("coordinator: controller write conflicted")
)

// controller is the state of one term as controller. One goroutine owns it.
type controller struct {
	p      *Plane
	log    *slog.Logger
	key    string       // election key
	rev    int64        // its create revision: the fencing token
	fence  clientv3.Cmp // the election key still has that create revision
	st     *state
	known  map[int32]int64 // each broker's lease as of the last complete reconcile
	waitTo int64           // do not reconcile before st has seen this revision (our last write)
}

// runController acts as controller until ctx ends (the session ended) or a
// write finds the election key gone or recreated (deposed). All writes are
// transactions conditioned on the election key, so a controller that lost
// its lease cannot change anything even before it notices.
func (p *Plane) runController(ctx context.Context, key string, rev int64) error {
	c := &controller{
		p:     p,
		log:   p.log.With("controller", p.self.ID),
		key:   key,
		rev:   rev,
		fence: clientv3.Compare(clientv3.CreateRevision(key), "=", rev),
		st:    newState(p.keys),
	}
	bo := newBackoff(p.cfg.ReconnectBackoffMax)
	for ctx.Err() == nil {
		err := c.term(ctx)
		switch {
		case errors.Is(err, errDeposed):
			return err
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, errStale):
			c.log.Debug("controller state stale, listing again")
			bo.reset()
		default:
			c.log.Warn("controller pass failed, retrying", "error", err)
			bo.wait(ctx)
		}
	}
	return ctx.Err()
}

// maxConflicts is how many write conflicts in a row a term resolves from
// its watch before it lists the cluster again.
const maxConflicts = 20

// term lists the cluster, then watches it and reconciles after every batch
// of changes, until an error.
func (c *controller) term(ctx context.Context) error {
	rctx, cancel := c.p.requestCtx(ctx)
	resp, err := c.p.client.Get(rctx, c.p.keys.root(), clientv3.WithPrefix())
	cancel()
	if err != nil {
		return fmt.Errorf("coordinator: controller list: %w", err)
	}
	for _, err := range c.st.reset(resp.Kvs, resp.Header.Revision) {
		c.log.Warn("ignoring undecodable key", "error", err)
	}
	if c.known == nil { // first listing of the term: the baseline for restarts
		c.known = c.leases()
	}
	wctx, wcancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer wcancel()
	wch := c.p.client.Watch(wctx, c.p.keys.root(), clientv3.WithPrefix(), clientv3.WithRev(c.st.rev+1))
	dirty, conflicts := true, 0
	for {
		if dirty && c.st.rev >= c.waitTo {
			err := c.reconcile(ctx)
			switch {
			case errors.Is(err, errConflict) && conflicts < maxConflicts:
				// Another writer got to a key first (leaders shrink ISRs
				// while the controller moves leaderships): reconcile again
				// once the watch has brought the state the failed write
				// saw, rather than listing the whole cluster again.
				conflicts++
				if c.st.rev >= c.waitTo {
					continue // the watch has brought it already
				}
			case errors.Is(err, errConflict):
				return errStale
			case err != nil:
				return err
			default:
				dirty, conflicts = false, 0
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case wr, ok := <-wch:
			for {
				if !ok {
					return errors.New("coordinator: controller watch closed")
				}
				if wr.CompactRevision != 0 {
					return errStale
				}
				if err := wr.Err(); err != nil {
					return fmt.Errorf("coordinator: controller watch: %w", err)
				}
				if len(wr.Events) > 0 {
					c.st.apply(wr.Events, wr.Header.Revision)
					dirty = true
				}
				// Coalesce whatever else is already there.
				select {
				case wr, ok = <-wch:
					continue
				default:
				}
				break
			}
		}
	}
}

// leases returns each registered broker's lease.
func (c *controller) leases() map[int32]int64 {
	m := make(map[int32]int64, len(c.st.brokers))
	for id, r := range c.st.brokers {
		m[id] = r.lease
	}
	return m
}

// change is one conditional write of a reconcile pass.
type change struct {
	cmps []clientv3.Cmp
	ops  []clientv3.Op
	desc string
}

// reconcile brings every partition in line with the live brokers, writing
// what must change. A broker whose lease differs from the last pass
// restarted in between (its registration was replaced before the old one
// expired): for this pass it is dead, so it loses its leaderships and ISR
// places like any failed broker, and next pass it is a live follower again.
func (c *controller) reconcile(ctx context.Context) error {
	live := make(map[int32]bool, len(c.st.brokers))
	for id, r := range c.st.brokers {
		if old, ok := c.known[id]; !ok || old == r.lease {
			live[id] = true
		} else {
			c.log.Info("broker restarted within its session", "node-id", id)
		}
	}
	isLive := func(id int32) bool { return live[id] }
	placed, removed := c.placeTopics(live)
	changes := append(placed, c.electLeaders(isLive, removed)...)
	if err := c.commit(ctx, changes); err != nil {
		return err
	}
	c.known = c.leases()
	return nil
}

// placeTopics places the partitions of topics that lack states, or removes a
// topic that cannot be placed (and returns its name in removed).
func (c *controller) placeTopics(live map[int32]bool) (out []change, removed map[string]bool) {
	removed = map[string]bool{}
	brokers := slices.DeleteFunc(slices.Clone(c.st.liveBrokers()), func(b broker.BrokerInfo) bool { return !live[b.ID] })
	names := make([]string, 0, len(c.st.topics))
	for name := range c.st.topics {
		names = append(names, name)
	}
	slices.Sort(names)
	ld := loadOf(c.st)
	for _, name := range names {
		t := c.st.topics[name]
		var missing []int32
		for p := range t.cfg.Partitions {
			if _, ok := c.st.partition(name, p); !ok {
				missing = append(missing, p)
			}
		}
		if len(missing) == 0 {
			continue
		}
		topicCmp := clientv3.Compare(clientv3.ModRevision(c.p.keys.topic(name)), "=", t.modRev)
		assign, err := place(brokers, ld, missing, int(t.cfg.ReplicationFactor))
		if err != nil {
			c.log.Warn("cannot place topic, removing it", "topic", name, "error", err)
			removed[name] = true
			out = append(out, change{
				cmps: []clientv3.Cmp{topicCmp},
				ops:  deleteTopicOps(c.p.keys, name),
				desc: "remove unplaceable topic " + name,
			})
			continue
		}
		for _, p := range missing {
			ps := newPartition(t.cfg, p, assign[p])
			key := c.p.keys.partition(name, p)
			out = append(out, change{
				cmps: []clientv3.Cmp{topicCmp, clientv3.Compare(clientv3.CreateRevision(key), "=", 0)},
				ops:  []clientv3.Op{clientv3.OpPut(key, encodePartition(ps))},
				desc: fmt.Sprintf("place %s/%d on %v", name, p, ps.Replicas),
			})
		}
	}
	return out, removed
}

// electLeaders applies decide to every partition, and removes partition
// states whose topic is gone. Topics being removed are skipped (one
// transaction must not touch a key twice).
func (c *controller) electLeaders(live func(int32) bool, removed map[string]bool) []change {
	var out []change
	for name, tp := range c.st.parts {
		if removed[name] {
			continue
		}
		t, ok := c.st.topics[name]
		for _, ps := range tp.states {
			if ps.Version == 0 {
				continue
			}
			p := ps.Partition
			key := c.p.keys.partition(name, p)
			cmp := clientv3.Compare(clientv3.ModRevision(key), "=", ps.Version)
			if !ok || p >= t.cfg.Partitions {
				out = append(out, change{cmps: []clientv3.Cmp{cmp}, ops: []clientv3.Op{clientv3.OpDelete(key)},
					desc: fmt.Sprintf("remove orphan %s/%d", name, p)})
				continue
			}
			next, changed := decide(ps, live, t.cfg.UncleanElection)
			if !changed {
				continue
			}
			out = append(out, change{cmps: []clientv3.Cmp{cmp}, ops: []clientv3.Op{clientv3.OpPut(key, encodePartition(next))},
				desc: fmt.Sprintf("%s/%d leader %d->%d epoch %d isr %v", name, p, ps.Leader, next.Leader, next.LeaderEpoch, next.ISR)})
			if next.Leader != ps.Leader {
				c.log.Info("electing leader", "topic", name, "partition", p, "old-leader", ps.Leader,
					"leader", next.Leader, "leader-epoch", next.LeaderEpoch, "isr", next.ISR)
			}
		}
	}
	return out
}

// commit writes changes in transactions of at most maxTxnOps writes and
// compares, each conditioned on the fence and on its changes' compares. A
// failed compare means the state moved on (errConflict: reconcile again
// once the watch has caught up with it) or the fence is gone (errDeposed).
func (c *controller) commit(ctx context.Context, changes []change) error {
	for len(changes) > 0 {
		cmps := []clientv3.Cmp{c.fence}
		seen := map[string]bool{cmpKey(c.fence): true}
		var ops []clientv3.Op
		var descs []string
		n := 0
		for ; n < len(changes); n++ {
			ch := changes[n]
			var add []clientv3.Cmp
			for _, cmp := range ch.cmps {
				if k := cmpKey(cmp); !seen[k] {
					add = append(add, cmp)
				}
			}
			if n > 0 && (len(cmps)+len(add) > maxTxnOps || len(ops)+len(ch.ops) > maxTxnOps) {
				break
			}
			for _, cmp := range add {
				seen[cmpKey(cmp)] = true
			}
			cmps = append(cmps, add...)
			ops = append(ops, ch.ops...)
			descs = append(descs, ch.desc)
		}
		changes = changes[n:]
		rctx, cancel := c.p.requestCtx(ctx)
		resp, err := c.p.client.Txn(rctx).If(cmps...).Then(ops...).Else(clientv3.OpGet(c.key)).Commit()
		cancel()
		if err != nil {
			return fmt.Errorf("coordinator: controller write: %w", err)
		}
		if !resp.Succeeded {
			kvs := resp.Responses[0].GetResponseRange().GetKvs()
			if len(kvs) == 0 || kvs[0].CreateRevision != c.rev {
				return errDeposed
			}
			c.waitTo = max(c.waitTo, resp.Header.Revision)
			return errConflict
		}
		c.waitTo = max(c.waitTo, resp.Header.Revision)
		for _, d := range descs {
			c.log.Debug("controller wrote", "change", d, "revision", resp.Header.Revision)
		}
	}
	return nil
}

// cmpKey identifies a compare, to send each once per transaction.
func cmpKey(c clientv3.Cmp) string {
	return c.GetCompare().String()
}
