package nameserver_test

import (
	"fmt"
	"testing"

	"github.com/brokerlab/brokerlab/internal/testutil"
	"github.com/brokerlab/brokerlab/nameserver"
	"github.com/brokerlab/brokerlab/nameserver/nstest"
)

// stopNameServers closes every name server and waits until every broker's
// registrar has failed to reconnect to each of them several times, so that
// its reconnect backoff has grown past the route poll interval: the first
// thing a restarted name server then hears from a broker is likely a poll,
// answered from its empty table.
func (nc *nsCluster) stopNameServers(t *testing.T) {
	t.Helper()
	before := nc.registrarFailures()
	for _, s := range nc.ns {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, e2eWait, func() error {
		now := nc.registrarFailures()
		for k, n := range now {
			if n < before[k]+5 {
				return fmt.Errorf("registrar %s: %d reconnect failures since the stop, want 5", k, n-before[k])
			}
		}
		return nil
	})
}

// registrarFailures returns the failures of every broker's registration with
// every name server, keyed by broker and name server.
func (nc *nsCluster) registrarFailures() map[string]int64 {
	nc.regMu.Lock()
	defer nc.regMu.Unlock()
	out := map[string]int64{}
	for id, r := range nc.regs {
		for _, st := range r.Stats() {
			out[fmt.Sprintf("%d->%s", id, st.NameServer)] = st.Failures
		}
	}
	return out
}

// startNameServers starts fresh name servers (empty tables) on the addresses
// of the stopped ones.
func (nc *nsCluster) startNameServers(t *testing.T) {
	t.Helper()
	for i, old := range nc.ns {
		nc.ns[i] = nstest.StartNameServer(t, nc.timer, old.Addr(), nc.log.With("node", fmt.Sprintf("ns-%d", i+1)))
	}
}

// awaitRepopulated waits until every broker registered again with every
// name server and the brokers polled them a few times since the restart.
func (nc *nsCluster) awaitRepopulated(t *testing.T) {
	t.Helper()
	testutil.Eventually(t, e2eWait, func() error {
		polls := int64(0)
		for i, s := range nc.ns {
			st := s.Stats()
			if st.Brokers != 4 {
				return fmt.Errorf("ns-%d has %d brokers registered, want 4", i+1, st.Brokers)
			}
			polls += st.SnapshotQueries
		}
		if polls < 8 {
			return fmt.Errorf("%d polls since the restart, want 8", polls)
		}
		return nil
	})
}

// lostOn returns an error naming the acks that addr does not serve.
func (nc *nsCluster) lostOn(addr string, acks []ack) error {
	lost, err := nstest.LostIn(nc.kc, addr, e2eTopic, acks)
	if err == nil && len(lost) > 0 {
		err = fmt.Errorf("%s lacks %d of %d acknowledged messages, e.g. %+v", addr, len(lost), len(acks), lost[0])
	}
	return err
}

// Every name server restarts (empty route tables) while the brokers of two
// groups poll them under acks=all load. A restarted name server answers
// from its empty table until the brokers register again, so brokers get
// views without the topic; a view lacking a topic is not its deletion, so
// every message acknowledged before the restart is still served afterwards,
// by masters and slaves alike.
func TestE2ENameServerRestartKeepsAcknowledged(t *testing.T) {
	nc := newNSCluster(t, nameserver.ModeSync)
	pa, pb := nc.partitions(t, "a"), nc.partitions(t, "b")
	p := nc.startProducer(t, nameserver.FastLatencyTable())
	p.WaitAcked(t, pa, 50)
	p.WaitAcked(t, pb, 50)
	acked := map[string][]ack{"a": p.AckedIn(pa), "b": p.AckedIn(pb)}

	// The restart must actually produce views without the topic, or the
	// test proves nothing; a few rounds make that near certain.
	base := nc.withoutTopic.Load()
	for round := 1; nc.withoutTopic.Load() == base; round++ {
		if round > 3 {
			t.Fatal("after 3 restarts of every name server no broker got a view without the topic")
		}
		nc.stopNameServers(t)
		nc.startNameServers(t)
		nc.awaitRepopulated(t)
		nc.wantLeader(t, pa, 1)
		nc.wantLeader(t, pb, 3)
	}
	t.Logf("%d views without %s during the restarts", nc.withoutTopic.Load()-base, e2eTopic)

	for _, g := range []struct {
		group         string
		master, slave int32
	}{{"a", 1, 2}, {"b", 3, 4}} {
		if err := nc.lostOn(nc.c.Broker(g.master).Addr(), acked[g.group]); err != nil {
			t.Fatalf("group %s master: %v", g.group, err)
		}
		testutil.Eventually(t, e2eWait, func() error {
			return nc.lostOn(nc.c.Broker(g.slave).Addr(), acked[g.group])
		})
	}
	// Writes go on after the restart.
	p.WaitAcked(t, pa, 20)
	p.WaitAcked(t, pb, 20)
}
