package coordinator

import (
	"fmt"
	"reflect"
	"sync"

	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/brokerlab/brokerlab/broker"
	"github.com/brokerlab/brokerlab/internal/mailbox"
)

// cache is a handle's mirror of the cluster, written by the watch loop and
// read by the view pump, CreateTopics, DeleteTopics and AlterISR.
type cache struct {
	mu    sync.Mutex // guards st and changedc
	st    *state
	chngd chan struct{} // closed and replaced at every update

	views *mailbox.Latest[broker.ClusterView] // every update's view, for the broker
}

func newCache(k keys) *cache {
	return &cache{st: newState(k), chngd: make(chan struct{}), views: mailbox.New(sameView)}
}

// sameView reports whether two views are equal, so that an update that
// changes nothing the broker sees (a keep-alive, an election key) does not
// wake it.
func sameView(a, b broker.ClusterView) bool { return reflect.DeepEqual(a, b) }

func (c *cache) reset(kvs []*mvccpb.KeyValue, rev int64) []error {
	c.mu.Lock()
	errs := c.st.reset(kvs, rev)
	c.notifyLocked()
	c.mu.Unlock()
	return errs
}

func (c *cache) apply(events []*mvccpb.Event, rev int64) []error {
	c.mu.Lock()
	errs := c.st.apply(events, rev)
	c.notifyLocked()
	c.mu.Unlock()
	return errs
}

// notifyLocked wakes waiters and offers the new view. Lock should be held.
func (c *cache) notifyLocked() {
	close(c.chngd)
	c.chngd = make(chan struct{})
	c.views.Offer(c.st.view())
}

// changed returns a channel closed at the next update.
func (c *cache) changed() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.chngd
}

func (c *cache) view() broker.ClusterView {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st.view()
}

func (c *cache) rev() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st.rev
}

func (c *cache) liveCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.st.brokers)
}

func (c *cache) partition(topic string, p int32) (broker.PartitionState, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ps, ok := c.st.partition(topic, p)
	return clonePartition(ps), ok
}

// topicStatus reports whether the creation of cfg written at rev has
// finished, and with what error.
func (c *cache) topicStatus(cfg broker.TopicConfig, rev int64) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.st.rev < rev {
		return false, nil // the cache has not seen our write yet
	}
	t, ok := c.st.topics[cfg.Name]
	if ok && t.createRev == rev {
		return c.st.complete(t), nil
	}
	if live := len(c.st.brokers); live < int(cfg.ReplicationFactor) {
		return true, fmt.Errorf("coordinator: topic %q: the controller found %d live brokers for replication factor %d: %w",
			cfg.Name, live, cfg.ReplicationFactor, broker.ErrNotEnoughBrokers)
	}
	return true, fmt.Errorf("coordinator: topic %q was deleted while being created: %w", cfg.Name, broker.ErrUnknownTopic)
}

// candidateStatus reports, once the cache has reached rev, whether the
// election candidate name (created at rev) leads, or is gone.
func (c *cache) candidateStatus(name string, rev int64) (lead, gone bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.st.rev < rev {
		return false, false
	}
	me, ok := c.st.candidates[name]
	if !ok || me.createRev != rev {
		return false, true
	}
	for _, o := range c.st.candidates {
		if o.createRev < me.createRev {
			return false, false
		}
	}
	return true, false
}
