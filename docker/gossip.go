package docker

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/brokerlab/brokerlab/gossip"
	"github.com/brokerlab/brokerlab/scenarios"
	"github.com/brokerlab/brokerlab/scenarios/nodes"
	"github.com/brokerlab/brokerlab/scenarios/scenario"
	"github.com/segmentio/kafka-go"
)

// gossipPort is memberlist's port (UDP and TCP) in every broker.
const gossipPort = 7946

// gossipSeeds is how many of the first brokers are seeds (the issue's
// default: the first three).
const gossipSeeds = 3

// gossipDeployment is the decentralised topology: brokers only, each running its gossip plane on gossipPort and started with
// --seeds (the first three brokers' gossip addresses). There is no
// control-plane node. The runner asks every broker it reaches for Kafka
// Metadata, whose broker list is that broker's gossip view, for detection.
type gossipDeployment struct {
	*base
}

func gossipStarter(newLauncher NewLauncher, topo string) scenarios.Starter {
	return func(ctx context.Context, env scenarios.Env) (scenarios.Deployment, error) {
		return startGossip(ctx, env, newLauncher, topo)
	}
}

func startGossip(ctx context.Context, env scenarios.Env, newLauncher NewLauncher, topo string) (scenarios.Deployment, error) {
	b, err := newBase(ctx, env, newLauncher)
	if err != nil {
		return nil, err
	}
	d := &gossipDeployment{base: b}
	d.faults = nodes.NewFaults(topo, d)
	ok := false
	defer func() {
		if !ok {
			_ = d.Close()
		}
	}()
	profile := gossip.ProfileProduction
	if env.Spec.Cluster.Profile == scenario.ProfileFast {
		profile = gossip.ProfileFast
	}
	err = d.startBrokers(ctx, env.Spec.Cluster.Brokers, func(n *Node, id int) []string {
		return append(d.brokerArgs(n, id),
			"--control-plane", topo,
			"--gossip-profile", profile,
			"--gossip-bind", "0.0.0.0:"+strconv.Itoa(gossipPort),
			"--gossip-advertise", gossipAddr(n),
			"--seeds", strings.Join(d.seeds(), ","),
		)
	})
	if err != nil {
		return nil, err
	}
	if err := d.bootstrapClients(ctx); err != nil {
		return nil, err
	}
	d.goBg(func(ctx context.Context) { nodes.WatchLive(ctx, 100*time.Millisecond, d.liveBrokers, &d.departures) })
	ok = true
	return d, nil
}

// gossipAddr is a broker's gossip address on the run's network.
func gossipAddr(n *Node) string { return net.JoinHostPort(n.Host, strconv.Itoa(gossipPort)) }

// seeds are the gossip addresses of the first brokers. startBrokers adds
// every broker (and so fixes its address) before it launches any.
func (d *gossipDeployment) seeds() []string {
	var out []string
	for _, n := range d.brokers[:min(gossipSeeds, len(d.brokers))] {
		out = append(out, gossipAddr(n))
	}
	return out
}

// liveBrokers: a broker is live while some other broker the runner reaches
// lists it in its Metadata (its gossip view); it is detected down once
// every other one dropped it. A broker cut off from its peers alone keeps
// answering with itself, which does not count.
func (d *gossipDeployment) liveBrokers(ctx context.Context) []int32 {
	seen := map[int32]bool{}
	answered := 0
	var only int32 = -1
	for i, n := range d.brokers {
		if !d.reachable(n.Name) {
			continue
		}
		mctx, cancel := context.WithTimeout(ctx, time.Second)
		md, err := d.probe.Metadata(mctx, n.addr(), []string{})
		cancel()
		if err != nil {
			d.probe.Disconnect(n.addr())
			continue
		}
		answered++
		only = int32(i)
		for id := range md.Brokers {
			if id != int32(i) {
				seen[id] = true
			}
		}
	}
	if answered == 0 {
		return nil // cannot tell
	}
	if answered == 1 && len(seen) == 0 {
		seen[only] = true
	}
	out := make([]int32, 0, len(seen))
	for id := range d.brokers {
		if seen[int32(id)] {
			out = append(out, int32(id))
		}
	}
	return out
}

// CreateTopic retries while the cluster forms: until the first seed has
// claimed the slots (its seed timeout after a start in which every seed
// answered at once) a broker refuses placement with
// INVALID_REPLICATION_FACTOR, as Kafka does with too few brokers.
func (d *gossipDeployment) CreateTopic(ctx context.Context, t scenario.Topic) error {
	var last error
	err := poll(ctx, 200*time.Millisecond, func() error {
		last = d.createTopic(ctx, t, nil)
		if errors.Is(last, kafka.InvalidReplicationFactor) {
			return last
		}
		return nil
	})
	if last != nil {
		return last
	}
	return err
}

// MetricsTargets are the brokers' endpoints.
func (d *gossipDeployment) MetricsTargets() map[string]string {
	return nodeMetrics(nil, d.brokers)
}

func (d *gossipDeployment) Close() error { return d.close() }
