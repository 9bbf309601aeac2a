package controller

import "github.com/prometheus/client_golang/prometheus"

// requestTypes are the broker request types counted apart, in the order
// of Controller.byType; anything else counts as "unknown".
var requestTypes = [...]string{typeHeartbeat, typeAlterSSS, typeGetState, typeLeader}

func typeIndex(t string) int {
	for i, rt := range requestTypes {
		if rt == t {
			return i
		}
	}
	return len(requestTypes)
}

// Collector returns the controller's Prometheus collector. Register it in
// the node's own registry (see internal/metrics): a standalone controller
// serves it on MetricsListen, a name server with an embedded controller
// next to its own. It reads the controller's counters when scraped.
func (c *Controller) Collector() prometheus.Collector { return ctrlCollector{c} }

type ctrlCollector struct{ c *Controller }

var (
	descTerm = prometheus.NewDesc("brokerlab_controller_raft_term",
		"Current Raft term of this controller.", nil, nil)
	descLeader = prometheus.NewDesc("brokerlab_controller_raft_leader",
		"Raft id of the controller leader this controller knows (0: none).", nil, nil)
	descIsLeader = prometheus.NewDesc("brokerlab_controller_is_leader",
		"1 while this controller is the Raft leader.", nil, nil)
	descLeaderChanges = prometheus.NewDesc("brokerlab_controller_raft_leader_changes_total",
		"Changes of the Raft leader seen by this controller.", nil, nil)
	descProposals = prometheus.NewDesc("brokerlab_controller_raft_proposals_total",
		"Commands this controller proposed as leader.", nil, nil)
	descRaftBytes = prometheus.NewDesc("brokerlab_controller_raft_bytes_total",
		"Bytes of Raft frames to and from the other controllers, by direction.", []string{"direction"}, nil)
	descElections = prometheus.NewDesc("brokerlab_controller_master_elections_total",
		"Master elections this controller ran as leader and saw committed.", nil, nil)
	descSwitches = prometheus.NewDesc("brokerlab_controller_master_switches_total",
		"Master changes applied to the replicated state (a new master, or none).", nil, nil)
	descSSS = prometheus.NewDesc("brokerlab_controller_sync_state_set_changes_total",
		"New SyncStateSet epochs applied to the replicated state.", nil, nil)
	descHeartbeats = prometheus.NewDesc("brokerlab_controller_heartbeats_total",
		"Broker heartbeats received as leader.", nil, nil)
	descActive = prometheus.NewDesc("brokerlab_controller_brokers_active",
		"Brokers the leader holds alive now (0 on a follower).", nil, nil)
	descConns = prometheus.NewDesc("brokerlab_controller_broker_connections",
		"Broker connections open now.", nil, nil)
	descCtrlRequests = prometheus.NewDesc("brokerlab_controller_requests_total",
		"Broker requests served, by type.", []string{"type"}, nil)
	descBrokerBytes = prometheus.NewDesc("brokerlab_controller_broker_bytes_total",
		"Bytes of broker connections' frames, by direction.", []string{"direction"}, nil)
)

func (cc ctrlCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descTerm, descLeader, descIsLeader, descLeaderChanges, descProposals,
		descRaftBytes, descElections, descSwitches, descSSS, descHeartbeats, descActive, descConns,
		descCtrlRequests, descBrokerBytes} {
		ch <- d
	}
}

func (cc ctrlCollector) Collect(ch chan<- prometheus.Metric) {
	st := cc.c.Stats()
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	isLeader := 0.0
	if st.Leader {
		isLeader = 1
	}
	gauge(descTerm, float64(st.Term))
	gauge(descLeader, float64(st.RaftLeader))
	gauge(descIsLeader, isLeader)
	gauge(descActive, float64(st.ActiveBrokers))
	gauge(descConns, float64(st.Brokers))
	counter(descLeaderChanges, st.LeaderChanges)
	counter(descProposals, st.Proposals)
	counter(descRaftBytes, st.RaftBytesIn, "received")
	counter(descRaftBytes, st.RaftBytesOut, "sent")
	counter(descElections, st.Elections)
	counter(descSwitches, st.MasterSwitches)
	counter(descSSS, st.SyncStateSetChanges)
	counter(descHeartbeats, st.Heartbeats)
	for i := range cc.c.byType {
		t := "unknown"
		if i < len(requestTypes) {
			t = requestTypes[i]
		}
		counter(descCtrlRequests, cc.c.byType[i].Load(), t)
	}
	counter(descBrokerBytes, st.BrokerBytesIn, "received")
	counter(descBrokerBytes, st.BrokerBytesOut, "sent")
}
