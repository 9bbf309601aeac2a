package controller

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/brokerlab/brokerlab/internal/testutil"
)

// startDurable starts controller i of peers with its log in dir, listening
// on its peer address (a process started again on the same port).
func startDurable(t *testing.T, peers []string, i int, dir string, ln net.Listener, log *slog.Logger) *Controller {
	t.Helper()
	cfg := testTimings().Config()
	cfg.ID, cfg.Peers, cfg.DataDir, cfg.Listener = uint64(i+1), peers, dir, ln
	// Brokers that stop heartbeating stay active for a minute: no
	// election happens for want of heartbeats across the restart (a
	// closed connection still makes a master inactive at once).
	cfg.HeartbeatTimeout = time.Minute
	cfg.Logger = log.With("node", fmt.Sprintf("controller-%d", i+1))
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// A port just freed may be taken for a moment by nothing we control:
	// retry the listen for a while.
	testutil.Eventually(t, 10*time.Second, func() error { return c.Start(context.Background()) })
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Every controller of the quorum is stopped and started again as a new
// process would be (new objects, same data directories, same addresses):
// the group state is kept, and the group goes on from it.
func TestRestartFromDataDir(t *testing.T) {
	for _, n := range []int{1, 3} {
		t.Run(fmt.Sprintf("%d controllers", n), func(t *testing.T) {
			log := testutil.Logger(t, slog.LevelWarn)
			lns, peers := listenPeers(t, n)
			dirs := make([]string, n)
			for i := range n {
				dirs[i] = t.TempDir()
			}
			cs := make([]*Controller, n)
			for i := range n {
				cs[i] = startDurable(t, peers, i, dirs[i], lns[i], log)
			}
			b1 := startClient(t, peers, "a", 1, log)
			wantMaster(t, b1, 1)
			b2 := startClient(t, peers, "a", 2, log)
			if _, err := b1.AlterSyncStateSet(context.Background(), 1, 1, []int32{1, 2}); err != nil {
				t.Fatal(err)
			}
			_ = b1.Close()
			wantMaster(t, b2, 2) // at master epoch 2, SyncStateSet {2}
			_ = b2.Close()
			for _, c := range cs {
				_ = c.Close()
			}
			// What the group had reached: the newest state any controller
			// applied (b2's closing connection may have made its leader
			// elect once more before it stopped).
			var before GroupState
			for _, c := range cs {
				if g, ok := c.Group("c1", "a"); ok && g.MasterEpoch >= before.MasterEpoch &&
					g.SyncStateSetEpoch >= before.SyncStateSetEpoch {
					before = g
				}
			}
			if before.MasterEpoch < 2 || before.SyncStateSetEpoch < 3 {
				t.Fatalf("state before the restart %+v", before)
			}

			for i := range n {
				cs[i] = startDurable(t, peers, i, dirs[i], nil, log)
			}
			l := leader(t, cs)
			var after GroupState
			testutil.Eventually(t, 10*time.Second, func() error {
				g, ok := l.Group("c1", "a")
				if !ok || g.MasterEpoch < before.MasterEpoch || g.SyncStateSetEpoch < before.SyncStateSetEpoch {
					return fmt.Errorf("group after the restart: %+v (known %v), want at least %+v", g, ok, before)
				}
				after = g
				return nil
			})
			// Broker 1 left the SyncStateSet before the restart: it is
			// neither master nor in sync after it.
			if after.MasterID == 1 || after.InSync(1) || !slices.Equal(after.Brokers, before.Brokers) {
				t.Fatalf("group after the restart %+v, before %+v", after, before)
			}
			// The group goes on from the kept state: its master returns,
			// and the next epoch follows the kept one.
			b2 = startClient(t, peers, "a", 2, log)
			if st := wantMaster(t, b2, 2); st.MasterEpoch < before.MasterEpoch {
				t.Fatalf("master epoch %d after the restart, before %d", st.MasterEpoch, before.MasterEpoch)
			}
		})
	}
}

// A data directory belongs to one controller of one peer set.
func TestDataDirOfAnotherController(t *testing.T) {
	log := testutil.Logger(t, slog.LevelWarn)
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	peers := []string{ln.Addr().String()}
	c := startDurable(t, peers, 0, dir, ln, log)
	leader(t, []*Controller{c})
	_ = c.Close()

	cfg := testTimings().Config()
	cfg.ID, cfg.Peers, cfg.DataDir = 2, []string{"127.0.0.1:1", "127.0.0.1:0"}, dir
	other, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.Start(context.Background()); err == nil {
		t.Fatal("controller 2 started on controller 1's log")
	}
}

// FuzzOpenDiskLog overwrites bytes of a controller's WAL file at an offset
// and opens it again: the open returns the log or an error, never panics.
func FuzzOpenDiskLog(f *testing.F) {
	f.Add([]byte{0xff, 0xff, 0xff, 0xff}, uint16(0))
	f.Add([]byte{0}, uint16(8))
	f.Add([]byte("garbage in the middle"), uint16(40))
	f.Add([]byte{1, 2, 3}, uint16(200))
	f.Add([]byte{}, uint16(0))
	f.Fuzz(func(t *testing.T, data []byte, off uint16) {
		dir := t.TempDir()
		meta := walMeta{ID: 1, Peers: []string{"127.0.0.1:1"}}
		d, err := openDiskLog(dir, meta, raft.NewMemoryStorage())
		if err != nil {
			t.Fatal(err)
		}
		ents := []*raftpb.Entry{
			{Index: proto.Uint64(1), Term: proto.Uint64(1), Data: []byte(`{"op":"register"}`)},
			{Index: proto.Uint64(2), Term: proto.Uint64(1), Data: []byte(`{"op":"elect"}`)},
		}
		if err := d.save(&raftpb.HardState{Term: proto.Uint64(1), Vote: proto.Uint64(1), Commit: proto.Uint64(2)}, ents); err != nil {
			t.Fatal(err)
		}
		_ = d.close()
		names, err := filepath.Glob(filepath.Join(dir, "wal", "*.wal"))
		if err != nil || len(names) != 1 {
			t.Fatalf("wal files %v: %v", names, err)
		}
		file, err := os.OpenFile(names[0], os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		_, err = file.WriteAt(data, int64(off))
		_ = file.Close()
		if err != nil {
			t.Fatal(err)
		}
		mem := raft.NewMemoryStorage()
		if d, err := openDiskLog(dir, meta, mem); err == nil {
			_ = d.close()
		}
	})
}
