package jetstream

import (
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/brokerlab/brokerlab/scenarios/scenario"
)

// syncPolicy is the JetStream file store's flush policy that matches the
// scenario's broker fsync policy, so the reference is measured like for
// like:
//
//	cluster.fsync  | nats-server
//	always         | sync_interval: always (SyncAlways: fsync after every write)
//	interval (d)   | sync_interval: d
//	never          | sync_interval: 2m, nats-server's default; it has no "never",
//	               | and two minutes is longer than any catalogue run
//
// With fsync never both sides leave writes in the page cache for the
// length of a run; JetStream's Raft replication, like the brokers' ISR, is
// what keeps acknowledged data while a majority of nodes keeps power.
type syncPolicy struct {
	always   bool
	interval time.Duration
}

// natsDefaultSync is nats-server's default sync_interval.
const natsDefaultSync = 2 * time.Minute

// syncFor maps a cluster's fsync setting to nats-server's.
func syncFor(c scenario.Cluster) syncPolicy {
	switch c.Fsync {
	case scenario.FsyncAlways:
		return syncPolicy{always: true, interval: natsDefaultSync}
	case scenario.FsyncInterval:
		if c.FsyncInterval > 0 {
			return syncPolicy{interval: c.FsyncInterval}
		}
	}
	return syncPolicy{interval: natsDefaultSync}
}

// apply sets the policy on a server's options.
func (s syncPolicy) apply(o *server.Options) {
	o.SyncAlways = s.always
	o.SyncInterval = s.interval
}

// String is the policy in nats-server's configuration syntax.
func (s syncPolicy) String() string {
	if s.always {
		return "sync_interval: always"
	}
	return "sync_interval: " + s.interval.String()
}
