package jetstream

import (
	"context"
	"runtime/debug"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/internal/testutil"
	"github.com/brokerlab/brokerlab/scenarios/scenario"
)

// TestSyncPolicy: every cluster.fsync setting reaches a running
// nats-server as the matching sync_interval.
func TestSyncPolicy(t *testing.T) {
	for _, tc := range []struct {
		fsync    string
		interval time.Duration
		always   bool
	}{
		{scenario.FsyncAlways, natsDefaultSync, true},
		{scenario.FsyncInterval, 250 * time.Millisecond, false},
		{scenario.FsyncNever, natsDefaultSync, false},
	} {
		t.Run(tc.fsync, func(t *testing.T) {
			pol := syncFor(scenario.Cluster{Fsync: tc.fsync, FsyncInterval: 250 * time.Millisecond})
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			c, err := newCluster(ctx, testutil.Logger(t, 8), t.TempDir(), 1, 1<<20, pol)
			if err != nil {
				t.Fatal(err)
			}
			defer c.close()
			srv := c.nodes[0].server()
			if srv == nil {
				t.Fatal("server not running")
			}
			js := srv.JetStreamConfig()
			if js == nil || js.SyncAlways != tc.always || js.SyncInterval != tc.interval {
				t.Fatalf("fsync %s: nats-server runs with %+v, want sync always %v interval %v (%s)", tc.fsync, js, tc.always, tc.interval, pol)
			}
		})
	}
}

// TestMaxMemoryIgnoresRuntimeLimit: a soft memory limit in the process
// (brokerlab run -memory-limit) does not become nats-server's ceiling for
// memory-backed streams, as it would by default.
func TestMaxMemoryIgnoresRuntimeLimit(t *testing.T) {
	prev := debug.SetMemoryLimit(256 << 20)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := newCluster(ctx, testutil.Logger(t, 8), t.TempDir(), 1, 1<<20, syncFor(scenario.Cluster{}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	srv := c.nodes[0].server()
	if srv == nil {
		t.Fatal("server not running")
	}
	js := srv.JetStreamConfig()
	if want := jetStreamMaxMemory(); js == nil || js.MaxMemory != want || want <= 256<<20 {
		t.Fatalf("nats-server runs with max memory %+v, want %d (3/4 of the machine's memory, not of the runtime's limit)", js, want)
	}
}
