package nameserver

import (
	"context"
	"log/slog"
	"testing"

	"github.com/brokerlab/brokerlab/internal/testutil"
)

// TestClusterInfoBytesCountedApart: cluster-info replies (what monitors
// send, not clients or brokers) are counted apart from other query bytes,
// so a runner can leave its own probes out of the control-plane cost.
func TestClusterInfoBytesCountedApart(t *testing.T) {
	log := testutil.Logger(t, slog.LevelWarn)
	ns := startServer(t, log)
	startRegistrar(t, log, []string{ns.Addr()}, "a", 0, 1)
	c := newClient(t, log, ns.Addr())
	wantMembers(t, c, "a", 1)
	before := ns.Stats()
	for range 5 {
		if _, err := c.ClusterInfo(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	after := ns.Stats()
	gotBytes := after.ClusterInfoBytesOut - before.ClusterInfoBytesOut
	if after.ClusterInfoQueries-before.ClusterInfoQueries != 5 || gotBytes <= 0 {
		t.Fatalf("cluster-info queries %d, bytes %d", after.ClusterInfoQueries-before.ClusterInfoQueries, gotBytes)
	}
	if after.ClusterInfoBytesOut > after.QueryBytesOut {
		t.Fatalf("cluster-info bytes %d exceed all query bytes %d", after.ClusterInfoBytesOut, after.QueryBytesOut)
	}
}
