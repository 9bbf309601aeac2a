package gossip

import (
	"sync/atomic"

	"github.com/hashicorp/memberlist"
	"github.com/prometheus/client_golang/prometheus"
)

// kindCount sizes per-kind arrays: message kinds are 1..kindState.
const kindCount = int(kindState) + 1

var kindNames = [kindCount]string{kindUpdate: "update", kindRequest: "request", kindResponse: "response", kindState: "state"}

// msgCounts count one kind of received plane message.
type msgCounts struct{ n, bytes atomic.Int64 }

// countReceived counts one decoded message of size bytes.
func (p *Plane) countReceived(m decoded, size int) {
	k := kindState
	switch {
	case m.update != nil:
		k = kindUpdate
	case m.request != nil:
		k = kindRequest
	case m.response != nil:
		k = kindResponse
	}
	p.received[k].n.Add(1)
	p.received[k].bytes.Add(int64(size))
}

// Collector returns the plane's Prometheus collector. broker.Broker
// serves it next to its own series; it reads the plane's counters and
// memberlist's member list when scraped.
func (p *Plane) Collector() prometheus.Collector { return planeCollector{p} }

type planeCollector struct{ p *Plane }

var (
	descPackets = prometheus.NewDesc("brokerlab_gossip_memberlist_packets_total",
		"UDP packets memberlist sent and received (probes, acks, gossip, small plane messages), by direction.", []string{"direction"}, nil)
	descPacketBytes = prometheus.NewDesc("brokerlab_gossip_memberlist_packet_bytes_total",
		"Bytes of those UDP packets, by direction.", []string{"direction"}, nil)
	descStreams = prometheus.NewDesc("brokerlab_gossip_memberlist_streams_total",
		"TCP streams memberlist opened (sent) and accepted (received): push-pull state, reliable plane messages, fallback probes.", []string{"direction"}, nil)
	descStreamBytes = prometheus.NewDesc("brokerlab_gossip_memberlist_stream_bytes_total",
		"Bytes of those TCP streams, by direction.", []string{"direction"}, nil)
	descMembers = prometheus.NewDesc("brokerlab_gossip_members",
		"Members by state as memberlist holds them here: alive, suspect, and dead (known but no longer listed: failed or left).", []string{"state"}, nil)
	descFailed = prometheus.NewDesc("brokerlab_gossip_failed_nodes",
		"Nodes this member holds FAIL now.", nil, nil)
	descEpoch = prometheus.NewDesc("brokerlab_gossip_config_epoch",
		"Highest configuration epoch seen (Redis currentEpoch).", nil, nil)
	descSentMsgs = prometheus.NewDesc("brokerlab_gossip_messages_sent_total",
		"Plane messages sent, by kind: update (state gossip) and request (votes, ISR acknowledgements).", []string{"kind"}, nil)
	descSentBytes = prometheus.NewDesc("brokerlab_gossip_sent_bytes_total",
		"Bytes of plane messages and push-pull state sent (memberlist's own probes excluded).", nil, nil)
	descRecvMsgs = prometheus.NewDesc("brokerlab_gossip_messages_received_total",
		"Plane messages received and decoded, by kind: update, request, response, state (push-pull).", []string{"kind"}, nil)
	descRecvBytes = prometheus.NewDesc("brokerlab_gossip_received_bytes_total",
		"Bytes of those messages, by kind.", []string{"kind"}, nil)
	descStateChanges = prometheus.NewDesc("brokerlab_gossip_state_updates_total",
		"Updates and push-pull states that changed this member's cluster state.", nil, nil)
	descElections = prometheus.NewDesc("brokerlab_gossip_elections_total",
		"Failover elections this member ran as candidate, by result.", []string{"result"}, nil)
	descFailovers = prometheus.NewDesc("brokerlab_gossip_failovers_total",
		"Won elections whose takeover (slots, or a ring partition) this member applied.", nil, nil)
)

func (c planeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descPackets, descPacketBytes, descStreams, descStreamBytes, descMembers,
		descFailed, descEpoch, descSentMsgs, descSentBytes, descRecvMsgs, descRecvBytes, descStateChanges,
		descElections, descFailovers} {
		ch <- d
	}
}

func (c planeCollector) Collect(ch chan<- prometheus.Metric) {
	p := c.p
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v int, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
	}
	w := &p.wire
	counter(descPackets, w.packetsOut.Load(), "sent")
	counter(descPackets, w.packetsIn.Load(), "received")
	counter(descPacketBytes, w.packetBytesOut.Load(), "sent")
	counter(descPacketBytes, w.packetBytesIn.Load(), "received")
	counter(descStreams, w.streamsOut.Load(), "sent")
	counter(descStreams, w.streamsIn.Load(), "received")
	counter(descStreamBytes, w.streamBytesOut.Load(), "sent")
	counter(descStreamBytes, w.streamBytesIn.Load(), "received")
	counter(descSentMsgs, p.updatesSent.Load(), "update")
	counter(descSentMsgs, p.requestsSent.Load(), "request")
	counter(descSentBytes, p.bytesSent.Load())
	for k := byte(1); int(k) < kindCount; k++ {
		counter(descRecvMsgs, p.received[k].n.Load(), kindNames[k])
		counter(descRecvBytes, p.received[k].bytes.Load(), kindNames[k])
	}
	counter(descStateChanges, p.stateChanges.Load())
	counter(descElections, p.electionsWon.Load(), "won")
	counter(descElections, p.electionsLost.Load(), "lost")
	counter(descFailovers, p.failovers.Load())

	alive, suspect, dead, failed, epoch := p.membership()
	gauge(descMembers, alive, "alive")
	gauge(descMembers, suspect, "suspect")
	gauge(descMembers, dead, "dead")
	gauge(descFailed, failed)
	ch <- prometheus.MustNewConstMetric(descEpoch, prometheus.GaugeValue, float64(epoch))
}

// membership counts members by memberlist's state; members this node has
// known (self included) that memberlist no longer lists count as dead.
func (p *Plane) membership() (alive, suspect, dead, failed int, epoch uint64) {
	p.mu.Lock()
	ml := p.ml
	known := len(p.infos)
	failed, epoch = len(p.failed), p.st.epoch
	p.mu.Unlock()
	if ml == nil {
		return 0, 0, 0, failed, epoch
	}
	for _, n := range ml.Members() {
		switch n.State {
		case memberlist.StateAlive:
			alive++
		case memberlist.StateSuspect:
			suspect++
		}
	}
	return alive, suspect, max(known-alive-suspect, 0), failed, epoch
}
