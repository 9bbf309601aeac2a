package controller

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/internal/testutil"
)

// The first broker of a group becomes master at epoch 1; a slave the
// master adds to the SyncStateSet takes over when the master's connection
// closes, at the next epoch, with a SyncStateSet of itself.
func TestMasterSwitchOnConnectionClose(t *testing.T) {
	log := testutil.Logger(t, slog.LevelWarn)
	cs := startControllers(t, 3, log)
	leader(t, cs)
	b1 := startClient(t, addrs(cs), "a", 1, log)
	st := wantMaster(t, b1, 1)
	if st.MasterEpoch != 1 || st.SyncStateSetEpoch != 1 {
		t.Fatalf("first state %+v", st)
	}
	b2 := startClient(t, addrs(cs), "a", 2, log)
	ctx := context.Background()
	if _, err := b1.AlterSyncStateSet(ctx, 1, 0, []int32{1, 2}); !errors.Is(err, ErrStaleSyncStateSet) {
		t.Fatalf("alter at a stale set epoch: %v", err)
	}
	if _, err := b2.AlterSyncStateSet(ctx, 1, 1, []int32{1, 2}); !errors.Is(err, ErrFenced) {
		t.Fatalf("alter by a slave: %v", err)
	}
	if st, err := b1.AlterSyncStateSet(ctx, 1, 1, []int32{1, 2}); err != nil || st.SyncStateSetEpoch != 2 {
		t.Fatalf("alter: %+v %v", st, err)
	}
	start := time.Now()
	_ = b1.Close()
	st = wantMaster(t, b2, 2)
	t.Logf("switch after %v", time.Since(start))
	if st.MasterEpoch != 2 || len(st.SyncStateSet) != 1 || st.SyncStateSet[0] != 2 {
		t.Fatalf("after the switch %+v", st)
	}
	// The old master's epoch is fenced.
	if _, err := b2.AlterSyncStateSet(ctx, 1, st.SyncStateSetEpoch, []int32{2}); !errors.Is(err, ErrFenced) {
		t.Fatalf("alter at the old master epoch: %v", err)
	}
}

// A master outside nothing but itself in the SyncStateSet is not replaced
// by an out-of-sync slave (unclean election off); the group has no master
// until the old one returns, and then it is master again.
func TestNoUncleanElection(t *testing.T) {
	log := testutil.Logger(t, slog.LevelWarn)
	cs := startControllers(t, 1, log)
	b1 := startClient(t, addrs(cs), "a", 1, log)
	wantMaster(t, b1, 1)
	b2 := startClient(t, addrs(cs), "a", 2, log)
	_ = b1.Close()
	st := wantMaster(t, b2, NoMaster)
	if st.MasterEpoch != 2 {
		t.Fatalf("cleared master at epoch %d, want 2", st.MasterEpoch)
	}
	b1 = startClient(t, addrs(cs), "a", 1, log)
	if st := wantMaster(t, b1, 1); st.MasterEpoch != 3 {
		t.Fatalf("returning master at epoch %d, want 3", st.MasterEpoch)
	}
}

// Killing the controller leader: another takes over, brokers follow it,
// and a master kill right after is still handled.
func TestControllerLeaderKill(t *testing.T) {
	log := testutil.Logger(t, slog.LevelWarn)
	cs := startControllers(t, 3, log)
	b1, b2 := startSynced(t, cs, log)
	old := leader(t, cs)
	_ = old.Close()
	_ = b1.Close()
	var rest []*Controller
	for _, c := range cs {
		if c != old {
			rest = append(rest, c)
		}
	}
	leader(t, rest)
	st := wantMaster(t, b2, 2)
	if st.MasterEpoch != 2 {
		t.Fatalf("after the switch %+v", st)
	}
}

// With two of three controllers gone there is no quorum: no master
// switch happens.
func TestQuorumLossNoSwitch(t *testing.T) {
	log := testutil.Logger(t, slog.LevelWarn)
	cs := startControllers(t, 3, log)
	b1 := startClient(t, addrs(cs), "a", 1, log)
	startClient(t, addrs(cs), "a", 2, log) // alive and in sync: it would be elected
	wantMaster(t, b1, 1)
	if _, err := b1.AlterSyncStateSet(context.Background(), 1, 1, []int32{1, 2}); err != nil {
		t.Fatal(err)
	}
	l := leader(t, cs)
	testutil.Eventually(t, 10*time.Second, func() error {
		for _, c := range cs {
			if st, _ := c.Group("c1", "a"); st.SyncStateSetEpoch != 2 {
				return errors.New("the alter is not applied everywhere yet")
			}
		}
		return nil
	})
	var survivor *Controller
	for _, c := range cs {
		if c != l && survivor == nil {
			survivor = c
		} else {
			_ = c.Close()
		}
	}
	_ = b1.Close()
	// Well past heartbeat timeout plus several Raft elections.
	deadline := time.Now().Add(3 * testTimings().HeartbeatTimeout)
	for time.Now().Before(deadline) {
		if st, _ := survivor.Group("c1", "a"); st.MasterID != 1 || st.MasterEpoch != 1 {
			t.Fatalf("a switch without quorum: %+v", st)
		}
		time.Sleep(50 * time.Millisecond) // sampling the state, not synchronising
	}
	if survivor.IsLeader() {
		t.Fatal("a lone controller of three leads")
	}
}

// A controller killed and restarted over its kept log rebuilds the state
// and rejoins; the quorum then survives the loss of another member.
func TestControllerRestartKeepsLog(t *testing.T) {
	log := testutil.Logger(t, slog.LevelWarn)
	cs := startControllers(t, 3, log)
	b1, b2 := startSynced(t, cs, log)
	l := leader(t, cs)
	i := 0
	for cs[i] == l {
		i++
	}
	cfg := cs[i].cfg
	_ = cs[i].Close()
	cfg.Listener = nil
	c, err := New(cfg)
	cs[i] = testutil.Started(t, c, err)
	testutil.Eventually(t, 10*time.Second, func() error {
		if st, _ := c.Group("c1", "a"); st.SyncStateSetEpoch != 2 {
			return errors.New("restarted controller has not rebuilt the state")
		}
		return nil
	})
	_ = l.Close()
	_ = b1.Close()
	if st := wantMaster(t, b2, 2); st.MasterEpoch != 2 {
		t.Fatalf("after the switch %+v", st)
	}
}
