package nameserver

import (
	"time"

	"github.com/brokerlab/brokerlab/nameserver/controller"
)

// Timings are the values a timing profile sets (shared/DESIGN.md, Timing
// profiles). A scenario picks Production or Fast and may override any field.
type Timings struct {
	// Heartbeat: how often a broker registers with every name server.
	Heartbeat time.Duration `yaml:"heartbeat" json:"heartbeat"`
	// Scan and Expiry: how often a name server looks for silent brokers and
	// how long a broker may stay silent.
	Scan   time.Duration `yaml:"scan" json:"scan"`
	Expiry time.Duration `yaml:"expiry" json:"expiry"`
	// RoutePoll: how often clients and brokers pull routes.
	RoutePoll time.Duration `yaml:"route_poll" json:"route_poll"`
	// MasterProbe: how often a slave checks whether its master answers
	// (RocketMQ's HA client retries its master every 5 s).
	MasterProbe time.Duration `yaml:"master_probe" json:"master_probe"`
	// RequestTimeout bounds one request to a name server.
	RequestTimeout time.Duration `yaml:"request_timeout" json:"request_timeout"`
	// Faults is the producers' latency -> isolation table.
	Faults LatencyTable `yaml:"faults" json:"faults"`
	// Controller is controller mode's profile (topology
	// nameserver-controller).
	Controller controller.Timings `yaml:"controller" json:"controller"`
}

// Production returns RocketMQ's defaults: heartbeat 30 s, scan 5 s, expiry
// 120 s, route poll 30 s, master probe 5 s, register timeout 6 s,
// RocketMQ's fault table.
func Production() Timings {
	return Timings{Heartbeat: 30 * time.Second, Scan: 5 * time.Second, Expiry: 120 * time.Second,
		RoutePoll: 30 * time.Second, MasterProbe: 5 * time.Second, RequestTimeout: 6 * time.Second,
		Faults: DefaultLatencyTable(), Controller: controller.Production()}
}

// Fast returns the profile for quick runs: heartbeat 1 s, scan 0.5 s,
// expiry 4 s, route poll 1 s, master probe 1 s, request timeout 2 s,
// FastLatencyTable.
func Fast() Timings {
	return Timings{Heartbeat: time.Second, Scan: 500 * time.Millisecond, Expiry: 4 * time.Second,
		RoutePoll: time.Second, MasterProbe: time.Second, RequestTimeout: 2 * time.Second,
		Faults: FastLatencyTable(), Controller: controller.Fast()}
}

// ServerConfig returns a name server configuration with these timings.
func (t Timings) ServerConfig() Config {
	return Config{
		Listen:         "127.0.0.1:9876",
		ScanInterval:   t.Scan,
		BrokerExpiry:   t.Expiry,
		MaxFrameBytes:  16 << 20,
		RequestTimeout: t.RequestTimeout,
	}
}

// RegistrarConfig returns a broker registrar configuration with these
// timings; NameServers, Cluster and Group are still to be set.
func (t Timings) RegistrarConfig() RegistrarConfig {
	return RegistrarConfig{
		Cluster:             "DefaultCluster",
		HeartbeatInterval:   t.Heartbeat,
		RoutePollInterval:   t.RoutePoll,
		MasterProbeInterval: t.MasterProbe,
		RequestTimeout:      t.RequestTimeout,
		Mode:                ModeSync,
		MaxFrameBytes:       16 << 20,
		ControllerHeartbeat: t.Controller.BrokerHeartbeat,
	}
}

// RouteClientConfig returns a route client configuration with these
// timings; NameServers is still to be set.
func (t Timings) RouteClientConfig() RouteClientConfig {
	return RouteClientConfig{
		PollInterval:   t.RoutePoll,
		RequestTimeout: t.RequestTimeout,
		MaxFrameBytes:  16 << 20,
	}
}
