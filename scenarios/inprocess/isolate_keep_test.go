package inprocess

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/discovery/kclient"
	"github.com/brokerlab/brokerlab/gossip"
	"github.com/brokerlab/brokerlab/internal/poll"
	"github.com/brokerlab/brokerlab/scenarios"
)

// Isolate leader-of bench/0 with clients: keep. While the leader is cut
// off, a client still reaches it with Kafka requests, its links to every
// cluster node are blocked, the rest of the cluster detects it and elects
// another leader of bench/0; a heal gives its links back.

// TestIsolateClientsKeepCoordinator: the peers are the other brokers and
// etcd.
func TestIsolateClientsKeepCoordinator(t *testing.T) {
	testIsolateClientsKeep(t, "coordinator", startCoordinator)
}

// TestIsolateClientsKeepGossip: the peers are the other brokers' data and
// gossip ports.
func TestIsolateClientsKeepGossip(t *testing.T) {
	testIsolateClientsKeep(t, "gossip", func(ctx context.Context, env scenarios.Env) (scenarios.Deployment, error) {
		return startGossip(ctx, env, gossip.TopologyName, gossip.PlacementSlots)
	})
}

func testIsolateClientsKeep(t *testing.T, topology string, start scenarios.Starter) {
	dep, spec := startWithTopic(t, start, `
name: isolate-keep
topologies: [`+topology+`]
cluster: {brokers: 3, etcd: 1, timings: fast}
topic: {name: bench, partitions: 1, replication: 3, min_insync: 2}
workload: {producers: 1, consumers: 1, message_size: 200B, rate: 100, acks: all, duration: 5s, warmup: 0s}
faults:
  - {at: 1s, isolate: leader-of bench/0, clients: keep}
`)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var c *cluster
	peers := map[string]string{} // every cluster node: an address of it
	switch d := dep.(type) {
	case *coordinatorDeployment:
		c = d.cluster
		for i, m := range d.etcd {
			peers["etcd "+fmt.Sprint(i)] = hostPort(m.Endpoints()[0])
		}
	case *gossipDeployment:
		c = d.cluster
		for id, a := range d.gaddr {
			peers[fmt.Sprintf("broker %d gossip", id)] = a
		}
	}
	for _, n := range c.brokers {
		peers[n.name] = n.cfg.Listen
	}
	at := time.Now()
	node, err := dep.Apply(ctx, spec.Timeline()[0], "")
	if err != nil {
		t.Fatal(err)
	}
	old := c.brokerNode(node)
	client := kclient.New(kclient.Config{ClientID: "keep-test", Dial: c.net.Dialer("client-0"), DialTimeout: time.Second})
	defer client.Close()
	mctx, mcancel := context.WithTimeout(ctx, 5*time.Second)
	md, err := client.Metadata(mctx, old.cfg.Listen, []string{"bench"})
	mcancel()
	if err != nil {
		t.Fatalf("a client cannot reach %s cut off from its peers: %v", node, err)
	}
	if len(md.Topics) != 1 {
		t.Fatalf("%s answers a client's Metadata with %+v", node, md)
	}
	for peer, addr := range peers {
		if peer == node || peer == node+" gossip" {
			continue
		}
		if !c.net.Blocked(node, addr) || !c.net.Blocked(c.net.Name(addr), old.cfg.Listen) {
			t.Errorf("the link %s - %s is up while %s is isolated from its peers", node, peer, node)
		}
	}
	if c.net.Blocked("client-0", old.cfg.Listen) {
		t.Errorf("the client's link to %s is cut", node)
	}
	// The rest of the cluster drops the cut-off broker and another one
	// leads bench/0 (fast timings: a 2 s lease, or SWIM with 300 ms probes
	// and a Redis-style election).
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	if err := poll.Until(wctx, 0, 50*time.Millisecond, func() error {
		if dep.Detected(node, at).IsZero() {
			return fmt.Errorf("no detection of %s", node)
		}
		if st, ok := c.partitionState("bench", 0); !ok || st.Leader < 0 || st.Leader == old.id {
			return fmt.Errorf("no new leader of bench/0")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// The client still reaches the cut-off broker.
	mctx, mcancel = context.WithTimeout(ctx, 5*time.Second)
	_, err = client.Metadata(mctx, old.cfg.Listen, []string{"bench"})
	mcancel()
	if err != nil {
		t.Fatalf("after the failover a client cannot reach %s: %v", node, err)
	}
	if err := c.Rejoin(ctx, node); err != nil {
		t.Fatal(err)
	}
	for peer, addr := range peers {
		if c.net.Blocked(node, addr) {
			t.Errorf("the link %s - %s is still cut after the heal", node, peer)
		}
	}
}
