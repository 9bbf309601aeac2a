package controller_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/broker/brokertest"
	"github.com/brokerlab/brokerlab/discovery/kclient"
	"github.com/brokerlab/brokerlab/internal/testutil"
	"github.com/brokerlab/brokerlab/nameserver"
	"github.com/brokerlab/brokerlab/nameserver/controller"
)

// produce sends values to one partition of addr with acks=all.
func (cl *cluster) produce(ctx context.Context, addr string, partition int32, timeout time.Duration, values ...string) (int64, error) {
	recs := make([]kclient.Record, len(values))
	for i, v := range values {
		recs[i] = kclient.Record{Value: []byte(v)}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout+time.Second)
	defer cancel()
	return cl.kc.Produce(ctx, addr, kclient.ProduceRequest{Topic: topic, Partition: partition, Acks: -1,
		Timeout: timeout, Records: recs})
}

// The controller leader dies with the master: a new controller leader is
// elected, gives the brokers a fresh heartbeat timeout, finds the master
// gone and elects the slave; nothing acknowledged is lost.
func TestE2EControllerLeaderKillDuringMasterKill(t *testing.T) {
	cl := newCluster(t, options{controllers: 3})
	pa := cl.partitions(t, "a")
	p := cl.startProducer(t)
	p.WaitAcked(t, pa, 50)
	old := cl.leaderCtrl(t)
	kill := time.Now()
	_ = old.Close()
	cl.c.Kill(1)
	cl.wantLeader(t, pa, 2)
	first := p.WaitAcked(t, pa, 1)
	t.Logf("first ack on the new master %v after the kills", first.Sub(kill).Round(time.Millisecond))
	tm := cl.tm.Controller
	if bound := 2*time.Duration(tm.ElectionTicks)*tm.Tick + tm.HeartbeatTimeout + 5*time.Second; first.Sub(kill) > bound {
		t.Fatalf("switch took %v, want within %v", first.Sub(kill), bound)
	}
	if st := cl.state(t, "a", old); st.MasterID != ctrlID(2) {
		t.Fatalf("state %+v", st)
	}
	p.WaitAcked(t, pa, 20)
	if lost := cl.missing(t, cl.c.Broker(2).Addr(), p.AckedIn(pa)); len(lost) > 0 {
		t.Fatalf("lost %d acknowledged messages, e.g. %+v", len(lost), lost[0])
	}
}

// Two of three controllers gone: no quorum, so a master kill switches
// nothing, while the live masters keep taking acks=all writes.
func TestE2EControllerQuorumLoss(t *testing.T) {
	cl := newCluster(t, options{controllers: 3})
	pa, pb := cl.partitions(t, "a"), cl.partitions(t, "b")
	p := cl.startProducer(t)
	p.WaitAcked(t, pa, 20)
	before := cl.state(t, "a")
	l := cl.leaderCtrl(t)
	var survivor *controller.Controller
	for _, c := range cl.ctrls {
		if c != l && survivor == nil {
			survivor = c
			continue
		}
		_ = c.Close()
	}
	p.WaitAcked(t, pa, 50) // writes to live masters go on
	p.WaitAcked(t, pb, 50)
	cl.c.Kill(1)
	p.WaitAcked(t, pb, 50)
	deadline := time.Now().Add(2 * cl.tm.Controller.HeartbeatTimeout)
	for time.Now().Before(deadline) {
		st, _ := survivor.Group("c1", "a")
		if st.MasterID != before.MasterID || st.MasterEpoch != before.MasterEpoch {
			t.Fatalf("master switched without a quorum: %+v", st)
		}
		if tv, _ := cl.c.Broker(2).View().Topic(topic); tv.Partitions[pa[0]].Leader == 2 {
			t.Fatal("the slave leads without a quorum")
		}
		time.Sleep(100 * time.Millisecond) // sampling, not synchronising
	}
	p.WaitAcked(t, pb, 50)
}

// The master appends a batch the slave never gets (cut off) and dies
// before acknowledging it: the batch was never readable. The slave takes
// over at the next master epoch; the old master comes back as its slave
// and truncates the batch away (OffsetForLeaderEpoch), ending with the new
// master's log.
func TestE2EOldMasterTruncatesDivergentTail(t *testing.T) {
	cl := newCluster(t, options{controllers: 1})
	part := cl.partitions(t, "a")[0]
	ctx := context.Background()
	for i := range 20 {
		if _, err := cl.produce(ctx, cl.c.Broker(1).Addr(), part, 2*time.Second, "ok-"+strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	cl.nw.Cut(brokertest.Name(1), brokertest.Name(2))
	var divergent []string
	for i := range 5 {
		divergent = append(divergent, "divergent-"+strconv.Itoa(i))
	}
	if _, err := cl.produce(ctx, cl.c.Broker(1).Addr(), part, 300*time.Millisecond, divergent...); err == nil {
		t.Fatal("a write the slave cannot have was acknowledged")
	}
	cl.c.Kill(1)
	cl.wantLeader(t, []int32{part}, 2)
	for i := range 10 {
		if _, err := cl.produce(ctx, cl.c.Broker(2).Addr(), part, 2*time.Second, "new-"+strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	// Healed only now: a fetch answer the cut held back reaches a master
	// of a newer epoch, which ignores it.
	cl.nw.Heal(brokertest.Name(1), brokertest.Name(2))
	cl.c.Restart(1)
	rctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	want, err := cl.readAll(rctx, cl.c.Broker(2).Addr(), part)
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, wait, func() error {
		fctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		got, err := cl.readAll(fctx, cl.c.Broker(1).Addr(), part)
		if err != nil {
			return err
		}
		for _, v := range got {
			if slices.Contains(divergent, v) {
				return fmt.Errorf("old master still serves %s", v)
			}
		}
		if len(got) != len(want) {
			return fmt.Errorf("old master has %d records, new master %d", len(got), len(want))
		}
		for o, v := range want {
			if got[o] != v {
				return fmt.Errorf("offset %d: old master %q, new master %q", o, got[o], v)
			}
		}
		return nil
	})
	if len(want) != 30 {
		t.Fatalf("new master has %d records, want 20 + 10", len(want))
	}
}

// Async mode (ASYNC_MASTER): the master acknowledges alone, so what it
// acknowledged but had not replicated is lost when the slave takes over.
func TestE2EAsyncMasterKillLosesAcknowledged(t *testing.T) {
	cl := newCluster(t, options{controllers: 1, mode: nameserver.ModeAsync})
	part := cl.partitions(t, "a")[0]
	ctx := context.Background()
	cl.nw.Cut(brokertest.Name(1), brokertest.Name(2))
	var acked []ack
	for i := range 50 {
		v := "async-" + strconv.Itoa(i)
		off, err := cl.produce(ctx, cl.c.Broker(1).Addr(), part, time.Second, v)
		if err != nil {
			t.Fatal(err)
		}
		acked = append(acked, ack{Partition: part, Offset: off, Value: v})
	}
	cl.c.Kill(1)
	cl.wantLeader(t, []int32{part}, 2)
	lost := cl.missing(t, cl.c.Broker(2).Addr(), acked)
	t.Logf("async mode: %d of %d acknowledged messages lost with the master", len(lost), len(acked))
	if len(lost) != len(acked) {
		t.Fatalf("lost %d, want all %d written after the cut", len(lost), len(acked))
	}
}

// A slave cut off from its master leaves the SyncStateSet (acks=all goes
// on with the master alone) and rejoins once it caught up again.
func TestE2ESyncStateSetShrinkExpand(t *testing.T) {
	cl := newCluster(t, options{controllers: 1})
	pa := cl.partitions(t, "a")
	p := cl.startProducer(t)
	p.WaitAcked(t, pa, 20)
	before := cl.state(t, "a")
	cl.nw.Cut(brokertest.Name(1), brokertest.Name(2))
	st := cl.wantSyncStateSet(t, "a", 1)
	if st.SyncStateSetEpoch <= before.SyncStateSetEpoch || st.MasterEpoch != before.MasterEpoch {
		t.Fatalf("shrink: %+v, before %+v", st, before)
	}
	p.WaitAcked(t, pa, 50)
	cl.nw.Heal(brokertest.Name(1), brokertest.Name(2))
	cl.wantSyncStateSet(t, "a", 1, 2)
	p.WaitAcked(t, pa, 50)
}

// A master cut off from the controller but not from clients is replaced;
// the name servers keep the new master (higher master epoch) and the old
// one cannot acknowledge acks=all writes: its slave follows the new master
// and its SyncStateSet shrink fails at the unreachable controller.
func TestE2EIsolatedMasterFenced(t *testing.T) {
	cl := newCluster(t, options{controllers: 1})
	part := cl.partitions(t, "a")[0]
	ctx := context.Background()
	if _, err := cl.produce(ctx, cl.c.Broker(1).Addr(), part, 2*time.Second, "before"); err != nil {
		t.Fatal(err)
	}
	cl.nw.Cut(brokertest.Name(1), ctrlName(0))
	testutil.Eventually(t, wait, func() error {
		if st := cl.state(t, "a"); st.MasterID != ctrlID(2) {
			return fmt.Errorf("state %+v", st)
		}
		return nil
	})
	cl.wantRouteMaster(t, "a", 2)
	// Past the replica lag limit, so the old master has tried to shrink.
	deadline := time.Now().Add(5 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		if off, err := cl.produce(ctx, cl.c.Broker(1).Addr(), part, time.Second, "isolated-"+strconv.Itoa(i)); err == nil {
			t.Fatalf("isolated old master acknowledged a write at offset %d", off)
		}
	}
	if _, err := cl.produce(ctx, cl.c.Broker(2).Addr(), part, 2*time.Second, "after"); err != nil {
		t.Fatalf("new master: %v", err)
	}
	if st := cl.state(t, "a"); !slices.Equal(st.SyncStateSet, []int32{ctrlID(2)}) {
		t.Fatalf("state %+v", st)
	}
}
