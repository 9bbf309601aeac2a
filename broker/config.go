package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/brokerlab/brokerlab/broker/storage"
)

// Config configures one broker node. DefaultConfig gives Kafka's defaults
// where Kafka has one.
type Config struct {
	// NodeID is the Kafka broker id, unique in the cluster.
	NodeID int32 `yaml:"node_id" json:"node_id"`
	// Listen is the TCP address to listen on ("127.0.0.1:0" picks a port).
	Listen string `yaml:"listen" json:"listen"`
	// Advertise is the host:port given to clients and other brokers; empty
	// means the listener's address.
	Advertise string `yaml:"advertise" json:"advertise"`
	Rack      string `yaml:"rack" json:"rack"`
	// DataDir holds one directory per partition; empty keeps logs in memory.
	DataDir string         `yaml:"data_dir" json:"data_dir"`
	Storage storage.Config `yaml:"storage" json:"storage"`

	// MaxFrameBytes is the largest request accepted (socket.request.max.bytes).
	MaxFrameBytes int32 `yaml:"max_frame_bytes" json:"max_frame_bytes"`
	// MaxConnections caps concurrent client connections; <= 0 is unlimited.
	MaxConnections int `yaml:"max_connections" json:"max_connections"`

	// MaxFetchWait caps the MaxWait a fetch may ask for.
	MaxFetchWait time.Duration `yaml:"max_fetch_wait" json:"max_fetch_wait"`

	// AutoCreateTopics creates unknown topics on Metadata and Produce.
	AutoCreateTopics   bool  `yaml:"auto_create_topics" json:"auto_create_topics"`
	DefaultPartitions  int32 `yaml:"default_partitions" json:"default_partitions"`
	DefaultReplication int16 `yaml:"default_replication" json:"default_replication"`

	// ReplicaLagMax drops a follower from the ISR when it has not caught up
	// to the leader's end offset for this long (replica.lag.time.max.ms).
	ReplicaLagMax time.Duration `yaml:"replica_lag_max" json:"replica_lag_max"`
	// ReplicaFetchWait is the long-poll wait of follower fetches.
	ReplicaFetchWait time.Duration `yaml:"replica_fetch_wait" json:"replica_fetch_wait"`
	// ReplicaFetchMaxBytes bounds one follower fetch response per partition.
	ReplicaFetchMaxBytes int32 `yaml:"replica_fetch_max_bytes" json:"replica_fetch_max_bytes"`
	// ReplicaBackoff is the pause after a failed follower fetch.
	ReplicaBackoff time.Duration `yaml:"replica_backoff" json:"replica_backoff"`

	// HandoffTimeout bounds the controlled shutdown of Close: how long the
	// broker keeps serving while its control plane moves its leaderships
	// away (controlled.shutdown in Kafka, with its retries). Zero means the
	// default, 10 s.
	HandoffTimeout time.Duration `yaml:"handoff_timeout" json:"handoff_timeout"`

	// MetricsListen is the TCP address of the broker's Prometheus endpoint
	// (/metrics); empty serves none. The broker's own registry carries the
	// broker's series and, when the control plane has one
	// (Collector() prometheus.Collector), the control plane's.
	MetricsListen string `yaml:"metrics_listen" json:"metrics_listen"`
	// MetricsProcess adds the Go runtime and process series: set it when
	// the broker has its process to itself.
	MetricsProcess bool `yaml:"-" json:"-"`

	// Dial opens connections to other brokers; nil uses net.Dialer. Tests
	// pass a fault-injecting dialer here.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error) `yaml:"-" json:"-"`
	// Logger receives the broker's logs; nil discards them.
	Logger *slog.Logger `yaml:"-" json:"-"`
}

// DefaultConfig returns a configuration with Kafka's defaults.
func DefaultConfig() Config {
	return Config{
		NodeID:               0,
		Listen:               "127.0.0.1:9092",
		Storage:              DefaultStorageConfig(),
		MaxFrameBytes:        100 << 20,
		MaxConnections:       0,
		MaxFetchWait:         time.Minute,
		DefaultPartitions:    1,
		DefaultReplication:   1,
		ReplicaLagMax:        30 * time.Second,
		ReplicaFetchWait:     500 * time.Millisecond,
		ReplicaFetchMaxBytes: 1 << 20,
		ReplicaBackoff:       200 * time.Millisecond,
		HandoffTimeout:       10 * time.Second,
	}
}

// DefaultStorageConfig returns the partition log defaults.
func DefaultStorageConfig() storage.Config {
	return storage.Config{
		SegmentBytes:       1 << 30,
		IndexIntervalBytes: 4096,
		Fsync:              storage.FsyncNever,
		FsyncInterval:      time.Second,
	}
}

// Validate reports the first invalid setting.
func (c Config) Validate() error {
	switch {
	case c.NodeID < 0:
		return errors.New("broker: node id must be >= 0")
	case c.Listen == "":
		return errors.New("broker: listen address is required")
	case c.MaxFrameBytes < 1024:
		return fmt.Errorf("broker: max frame bytes %d is below 1024", c.MaxFrameBytes)
	case c.ReplicaLagMax <= 0:
		return errors.New("broker: replica lag max must be positive")
	case c.ReplicaFetchWait <= 0 || c.ReplicaFetchWait >= c.ReplicaLagMax:
		return errors.New("broker: replica fetch wait must be positive and below replica lag max")
	case c.ReplicaFetchMaxBytes <= 0:
		return errors.New("broker: replica fetch max bytes must be positive")
	case c.HandoffTimeout < 0:
		return errors.New("broker: handoff timeout must not be negative")
	case c.MaxFetchWait <= 0:
		return errors.New("broker: max fetch wait must be positive")
	case c.DefaultPartitions <= 0 || c.DefaultReplication <= 0:
		return errors.New("broker: default partitions and replication must be positive")
	}
	switch c.Storage.Fsync {
	case storage.FsyncNever, storage.FsyncAlways, "":
	case storage.FsyncInterval:
		if c.Storage.FsyncInterval <= 0 {
			return errors.New("broker: fsync interval must be positive")
		}
	default:
		return fmt.Errorf("broker: unknown fsync policy %q (never, interval, always)", c.Storage.Fsync)
	}
	return nil
}
