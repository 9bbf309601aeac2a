package scenario

import "time"

// Timing profile names.
const (
	ProfileProduction = "production" // upstream defaults of Kafka and RocketMQ
	ProfileFast       = "fast"       // scaled down for quick runs
)

// Timings are the control-plane timing values of DESIGN.md's table. YAML keys
// (under cluster.timings) and JSON keys are the tags.
type Timings struct {
	// BrokerLease is the coordinator's broker session timeout (etcd lease
	// TTL, ZooKeeper's zookeeper.session.timeout.ms).
	BrokerLease time.Duration `json:"broker_lease"`
	// ReplicaLagMax drops a follower from the ISR (replica.lag.time.max.ms).
	ReplicaLagMax time.Duration `json:"replica_lag_max"`
	// MetadataMaxAge is how often clients refresh metadata (metadata.max.age.ms).
	MetadataMaxAge time.Duration `json:"metadata_max_age"`
	// Heartbeat is how often a broker registers with every name server.
	Heartbeat time.Duration `json:"heartbeat"`
	// ScanInterval is how often a name server looks for silent brokers.
	ScanInterval time.Duration `json:"scan_interval"`
	// BrokerExpiry is how long a name server keeps a silent broker.
	BrokerExpiry time.Duration `json:"broker_expiry"`
	// RoutePoll is how often nameserver clients pull routes.
	RoutePoll time.Duration `json:"route_poll"`
}

// profiles is DESIGN.md's timing table as data.
var profiles = map[string]Timings{
	ProfileProduction: {
		BrokerLease:    18 * time.Second,
		ReplicaLagMax:  30 * time.Second,
		MetadataMaxAge: 300 * time.Second,
		Heartbeat:      30 * time.Second,
		ScanInterval:   5 * time.Second,
		BrokerExpiry:   120 * time.Second,
		RoutePoll:      30 * time.Second,
	},
	ProfileFast: {
		BrokerLease:    2 * time.Second,
		ReplicaLagMax:  3 * time.Second,
		MetadataMaxAge: 5 * time.Second,
		Heartbeat:      1 * time.Second,
		ScanInterval:   500 * time.Millisecond,
		BrokerExpiry:   4 * time.Second,
		RoutePoll:      1 * time.Second,
	},
}

// Profile returns the values of a named profile.
func Profile(name string) (Timings, bool) {
	t, ok := profiles[name]
	return t, ok
}

// Override returns t with every non-zero value of o applied.
func (t Timings) Override(o Timings) Timings {
	dst := t.fields()
	for i, f := range o.fields() {
		if *f.d != 0 {
			*dst[i].d = *f.d
		}
	}
	return t
}

type timingField struct {
	key string
	d   *time.Duration
}

// fields lists the values with their YAML keys, in table order; the parser,
// the validator and Override share it so a new value is added in one place.
func (t *Timings) fields() []timingField {
	return []timingField{
		{"broker_lease", &t.BrokerLease},
		{"replica_lag_max", &t.ReplicaLagMax},
		{"metadata_max_age", &t.MetadataMaxAge},
		{"heartbeat", &t.Heartbeat},
		{"scan_interval", &t.ScanInterval},
		{"broker_expiry", &t.BrokerExpiry},
		{"route_poll", &t.RoutePoll},
	}
}
