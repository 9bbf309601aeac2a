package docker

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/scenarios/analysis"
	"github.com/brokerlab/brokerlab/scenarios/scenario"
)

// TestEtcdMemberLoss: a 3-member etcd cluster in containers loses the
// member that leads its Raft group, under produce load, and gets it back.
// Nothing is visible to clients: every send is acknowledged, no broker
// loses its session, and the runner's own etcd reads keep working.
func TestEtcdMemberLoss(t *testing.T) {
	spec := testSpec(t, "coordinator")
	dep, b := deploy(t, spec)
	d := dep.(*coordinatorDeployment)
	leader := d.etcdLeader(t)
	var reads, readErrs int
	readLoop := func(at time.Time, _ string) {
		// Linearizable reads through the kill, until shortly before the
		// restart is due.
		end := at.Add(4*time.Second - 300*time.Millisecond)
		for time.Now().Before(end) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			_, err := d.etcdCli.Get(ctx, etcdPrefix+"/cluster-id")
			cancel()
			reads++
			if err != nil {
				readErrs++
				t.Logf("etcd read after the kill: %v", err)
			}
			time.Sleep(100 * time.Millisecond) // a paced reader
		}
	}
	out := runLoad(t, dep, spec, loadRate, 10*time.Second, []fault{
		{at: 3 * time.Second, action: scenario.ActionKill, target: "etcd " + strconv.Itoa(leader), after: readLoop},
		{at: 7 * time.Second, action: scenario.ActionRestart},
	})
	c := out.check
	if c.Failed != 0 || c.Unknown != 0 || c.Lost != 0 {
		t.Errorf("clients saw the member loss: %d failed, %d unknown, %d lost of %d sent", c.Failed, c.Unknown, c.Lost, c.Sent)
	}
	if gap := out.longestAckGap(-1, out.faultAt[0], out.faultAt[1]); gap > time.Second {
		t.Errorf("writes stalled for %v while etcd %d was down", gap, leader)
	}
	for _, n := range b.brokers {
		if at := dep.Detected(n.Name, out.start); !at.IsZero() {
			t.Errorf("%s lost its session at %s", n.Name, since(at, out.start))
		}
	}
	if readErrs > 0 {
		t.Errorf("%d of %d etcd reads failed while a member was down", readErrs, reads)
	}
	t.Logf("killed etcd %d (the Raft leader) at t=%v, restarted at t=%v: %d sends all acked, %d etcd reads without error",
		leader, out.faultAt[0].Sub(out.start).Round(time.Millisecond), out.faultAt[1].Sub(out.start).Round(time.Millisecond), c.Acked, reads)

	// The restarted member serves again, and the counters cover the run.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := poll(ctx, 100*time.Millisecond, func() error {
		_, err := d.etcdCli.Status(ctx, d.etcd[leader].addr())
		return err
	}); err != nil {
		t.Errorf("etcd %d did not come back: %v", leader, err)
	}
	kinds := map[string]analysis.CPSample{}
	for _, s := range dep.ControlPlane() {
		kinds[s.Kind] = s
	}
	if kinds["etcd/LeaseKeepAlive"].Requests == 0 || kinds[etcdBytesKind].Bytes == 0 {
		t.Errorf("control-plane samples lack keep-alives or bytes: %+v", kinds)
	}
	t.Logf("etcd counters: %d keep-alives, %d txns, %d range, %d bytes",
		kinds["etcd/LeaseKeepAlive"].Requests, kinds["etcd/Txn"].Requests, kinds["etcd/Range"].Requests, kinds[etcdBytesKind].Bytes)
}

// etcdLeader returns the index of the member leading etcd's Raft group.
func (d *coordinatorDeployment) etcdLeader(t *testing.T) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i, n := range d.etcd {
		st, err := d.etcdCli.Status(ctx, n.addr())
		if err != nil {
			t.Fatalf("etcd %d status: %v", i, err)
		}
		if st.Leader == st.Header.MemberId {
			return i
		}
	}
	t.Fatal("no etcd member leads")
	return -1
}
