package broker_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/broker"
	"github.com/brokerlab/brokerlab/broker/brokertest"
	"github.com/brokerlab/brokerlab/internal/testutil"
)

// handPlane is a control plane the test drives by hand: the broker gets
// exactly the views the test delivers, so what the broker does with a view
// (serve, keep, delete) is the only thing under test.
type handPlane struct {
	mu     sync.Mutex // serialises deliveries, as the contract requires
	self   broker.BrokerInfo
	onView func(broker.ClusterView)
	closed bool
	closes int // Close calls
}

func (p *handPlane) Register(_ context.Context, self broker.BrokerInfo, onView func(broker.ClusterView)) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.self, p.onView = self, onView
	onView(broker.ClusterView{ClusterID: "hand", ControllerID: self.ID, Brokers: []broker.BrokerInfo{self}})
	return nil
}

func (p *handPlane) AlterISR(context.Context, broker.PartitionState) (broker.PartitionState, error) {
	return broker.PartitionState{}, broker.ErrStaleState
}

func (p *handPlane) CreateTopics(_ context.Context, ts []broker.TopicConfig) []error {
	return slices.Repeat([]error{broker.ErrPolicyViolation}, len(ts))
}

func (p *handPlane) DeleteTopics(_ context.Context, names []string) []error {
	return slices.Repeat([]error{broker.ErrPolicyViolation}, len(names))
}

func (p *handPlane) Deregister(context.Context) error { return nil }

func (p *handPlane) Close() error {
	p.mu.Lock()
	p.closed = true
	p.closes++
	p.mu.Unlock()
	return nil
}

func (p *handPlane) closeCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closes
}

// deliver hands the broker a view with the given topics (each with one
// partition led by the broker at version) and deleted names.
func (p *handPlane) deliver(version int64, topics []string, deleted ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.onView == nil {
		return
	}
	v := broker.ClusterView{ClusterID: "hand", ControllerID: p.self.ID, Brokers: []broker.BrokerInfo{p.self}, DeletedTopics: deleted}
	for _, name := range topics {
		st := broker.PartitionState{Topic: name, Partition: 0, Replicas: []int32{p.self.ID}, Leader: p.self.ID,
			LeaderEpoch: int32(version), ISR: []int32{p.self.ID}, Version: version, MinInsync: 1}
		v.Topics = append(v.Topics, broker.TopicView{
			Config:     broker.TopicConfig{Name: name, Partitions: 1, ReplicationFactor: 1, MinInsync: 1},
			Partitions: []broker.PartitionState{st},
		})
	}
	p.onView(v)
}

func startHand(t *testing.T, dir string) (*broker.Broker, *handPlane) {
	t.Helper()
	cfg := broker.DefaultConfig()
	cfg.NodeID = 1
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = dir
	cfg.Logger = testutil.Logger(t, -4)
	cp := &handPlane{}
	b := brokertest.Start(t, cfg, cp)
	return b, cp
}

// waitServed waits until the broker's local replicas are exactly topics
// (partition 0 of each), as leader.
func waitServed(t *testing.T, b *broker.Broker, topics ...string) {
	t.Helper()
	testutil.Eventually(t, 10*time.Second, func() error {
		var got []string
		for _, s := range b.Status() {
			if s.Role != "leader" {
				return fmt.Errorf("%s/%d is %s", s.Topic, s.Partition, s.Role)
			}
			got = append(got, s.Topic)
		}
		slices.Sort(got)
		if !slices.Equal(got, topics) {
			return fmt.Errorf("serving %v, want %v", got, topics)
		}
		return nil
	})
}

func dirExists(t *testing.T, path string) bool {
	t.Helper()
	_, err := os.Stat(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return err == nil
}

// TestViewWithoutTopicKeepsData: a view that lacks a topic (a control plane
// that forgot it for a while) stops serving it and deletes nothing; when a
// view has it again every acknowledged message is read back. Only a view
// naming it in DeletedTopics removes its data. Memory and file storage alike.
func TestViewWithoutTopicKeepsData(t *testing.T) {
	for _, storage := range []string{"file", "memory"} {
		t.Run(storage, func(t *testing.T) {
			dir := ""
			if storage == "file" {
				dir = t.TempDir()
			}
			b, cp := startHand(t, dir)
			cp.deliver(1, []string{"t"})
			waitServed(t, b, "t")
			msgs := mixedMessages(300, 1, 7)
			produceKafkaGo(t, b.Addr(), "t", msgs, 0)

			cp.deliver(2, nil)
			waitServed(t, b)
			if dir != "" && !dirExists(t, filepath.Join(dir, "t-0")) {
				t.Fatal("a view without the topic removed its directory")
			}
			cp.deliver(3, []string{"t"})
			waitServed(t, b, "t")
			readKafkaGo(t, b.Addr(), "t", perPartition(msgs, 1))

			// Announced deletion: the data goes, whether the replica is
			// served or already parked by an earlier view.
			cp.deliver(4, nil)
			waitServed(t, b)
			cp.deliver(5, nil, "t")
			testutil.Eventually(t, 10*time.Second, func() error {
				if !b.View().Deleted("t") {
					return errors.New("deletion not applied yet")
				}
				return nil
			})
			if dir != "" {
				testutil.Eventually(t, 10*time.Second, func() error {
					if dirExists(t, filepath.Join(dir, "t-0")) {
						return errors.New("t-0 still on disk")
					}
					return nil
				})
			}
			// Created again under the same name: an empty log, not the old one.
			cp.deliver(6, []string{"t"})
			waitServed(t, b, "t")
			if s := b.Status()[0]; s.LogEnd != 0 {
				t.Fatalf("recreated topic starts at log end %d, want 0 (old data kept)", s.LogEnd)
			}
		})
	}
}

// TestDeletedTopicRemovesServedReplica: a topic named in DeletedTopics while
// the broker serves it stops being served and loses its data at once.
func TestDeletedTopicRemovesServedReplica(t *testing.T) {
	dir := t.TempDir()
	b, cp := startHand(t, dir)
	cp.deliver(1, []string{"t", "u"})
	waitServed(t, b, "t", "u")
	msgs := mixedMessages(50, 1, 3)
	produceKafkaGo(t, b.Addr(), "t", msgs, 0)
	produceKafkaGo(t, b.Addr(), "u", msgs, 0)
	cp.deliver(2, []string{"u"}, "t")
	waitServed(t, b, "u")
	testutil.Eventually(t, 10*time.Second, func() error {
		if dirExists(t, filepath.Join(dir, "t-0")) {
			return errors.New("t-0 still on disk")
		}
		return nil
	})
	readKafkaGo(t, b.Addr(), "u", perPartition(msgs, 1))
}

// TestDeletedTopicPurgedAfterRestart: a broker restarted on a data directory
// removes the leftovers of a topic deleted while it was down (it never opens
// them) and nothing else, even topics whose names extend the deleted one's.
func TestDeletedTopicPurgedAfterRestart(t *testing.T) {
	dir := t.TempDir()
	b, cp := startHand(t, dir)
	topics := []string{"t", "t-1", "tt"}
	cp.deliver(1, topics)
	waitServed(t, b, topics...)
	msgs := mixedMessages(40, 1, 5)
	for _, name := range topics {
		produceKafkaGo(t, b.Addr(), name, msgs, 0)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	b, cp = startHand(t, dir)
	cp.deliver(2, []string{"tt"}, "t")
	waitServed(t, b, "tt")
	testutil.Eventually(t, 10*time.Second, func() error {
		if dirExists(t, filepath.Join(dir, "t-0")) {
			return errors.New("t-0 still on disk")
		}
		return nil
	})
	if !dirExists(t, filepath.Join(dir, "t-1-0")) {
		t.Fatal("deleting t removed t-1's directory")
	}
	cp.deliver(3, []string{"t-1", "tt"}, "t")
	waitServed(t, b, "t-1", "tt")
	readKafkaGo(t, b.Addr(), "t-1", perPartition(msgs, 1))
	readKafkaGo(t, b.Addr(), "tt", perPartition(msgs, 1))
}
