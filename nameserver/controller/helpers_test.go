package controller

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"testing"
	"time"

	"go.etcd.io/raft/v3"

	"github.com/brokerlab/brokerlab/internal/testutil"
)

// testTimings leave room for a loaded machine.
func testTimings() Timings {
	t := Fast()
	t.BrokerHeartbeat = 100 * time.Millisecond
	t.HeartbeatTimeout = time.Second
	t.Scan = 100 * time.Millisecond
	t.Tick = 50 * time.Millisecond
	return t
}

// startControllers starts n controllers on loopback ports.
func startControllers(t testing.TB, n int, log *slog.Logger) []*Controller {
	t.Helper()
	return startControllersWith(t, n, log, nil)
}

// startControllersWith starts n controllers, each configured by set too
// when set is not nil.
func startControllersWith(t testing.TB, n int, log *slog.Logger, set func(*Config)) []*Controller {
	t.Helper()
	lns, peers := listenPeers(t, n)
	cs := make([]*Controller, n)
	for i := range n {
		cfg := testTimings().Config()
		cfg.ID, cfg.Peers, cfg.Listener = uint64(i+1), peers, lns[i]
		cfg.Storage = raft.NewMemoryStorage()
		cfg.Logger = log.With("node", fmt.Sprintf("controller-%d", i+1))
		if set != nil {
			set(&cfg)
		}
		c, err := New(cfg)
		cs[i] = testutil.Started(t, c, err)
	}
	return cs
}

// leader waits for a leader among the running controllers.
func leader(t testing.TB, cs []*Controller) *Controller {
	t.Helper()
	var l *Controller
	testutil.Eventually(t, 10*time.Second, func() error {
		for _, c := range cs {
			if c != nil && c.IsLeader() {
				l = c
				return nil
			}
		}
		return fmt.Errorf("no controller leader")
	})
	return l
}

func addrs(cs []*Controller) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Addr())
	}
	return out
}

// startClient starts a broker-side client with broker id id.
func startClient(t testing.TB, ctrls []string, group string, id int32, log *slog.Logger) *Client {
	t.Helper()
	cfg := testTimings().ClientConfig()
	cfg.Controllers, cfg.Cluster, cfg.Group, cfg.BrokerID = ctrls, "c1", group, id
	cfg.Logger = log.With("node", fmt.Sprintf("broker-%s-%d", group, id))
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(100+id, fmt.Sprintf("127.0.0.1:%d", 9000+id), nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.WaitState(ctx); err != nil {
		t.Fatal(err)
	}
	return c
}

// wantMaster waits until the client's state names master (NoMaster for
// none) and returns it.
func wantMaster(t testing.TB, c *Client, master int32) GroupState {
	t.Helper()
	var st GroupState
	testutil.Eventually(t, 10*time.Second, func() error {
		var ok bool
		st, ok = c.State()
		if !ok || st.MasterID != master {
			return fmt.Errorf("state %+v, want master %d", st, master)
		}
		return nil
	})
	return st
}

// listenPeers is ListenPeers failing the test on an error.
func listenPeers(t testing.TB, n int) ([]net.Listener, []string) {
	t.Helper()
	lns, peers, err := ListenPeers(context.Background(), n)
	if err != nil {
		t.Fatal(err)
	}
	return lns, peers
}

// startSynced starts brokers 1 and 2 of group a on the controllers cs:
// broker 1 becomes master and puts both in the SyncStateSet.
func startSynced(t testing.TB, cs []*Controller, log *slog.Logger) (b1, b2 *Client) {
	t.Helper()
	b1 = startClient(t, addrs(cs), "a", 1, log)
	b2 = startClient(t, addrs(cs), "a", 2, log)
	wantMaster(t, b1, 1)
	if _, err := b1.AlterSyncStateSet(context.Background(), 1, 1, []int32{1, 2}); err != nil {
		t.Fatal(err)
	}
	return b1, b2
}
