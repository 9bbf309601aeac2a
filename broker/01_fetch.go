package broker

// Fetch: v4-11
// * Consumers (ReplicaID -1) read up to the high watermark from the leader,
//   or from a follower when the partition allows follower reads (a follower
//   of a leaderless partition serves its whole log: a RocketMQ slave).
// * Followers (ReplicaID >= 0) read up to the log end; their fetch offset is
//   their log end offset, which moves the leader's high watermark and ISR.
//   A follower fetch with PartitionMaxBytes 0 only reports progress (chain
//   replication sends these to the leader).
// * MaxWaitMillis (capped by Config.MaxFetchWait) and MinBytes are honoured; a waiting fetch wakes on new
//   data or a high-watermark move. MaxBytes and PartitionMaxBytes bound the
//   response, but the first non-empty partition always gets one whole batch.
// * LastStableOffset = high watermark (no transactions), so read_committed
//   readers see everything; PreferredReadReplica = -1; every requested
//   partition is answered; fetch sessions are not supported (session id 0).
// * CurrentLeaderEpoch is checked: older → FENCED_LEADER_EPOCH, newer →
//   UNKNOWN_LEADER_EPOCH.

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func (b *Broker) handleFetch(ctx context.Context, req *kmsg.FetchRequest) *kmsg.FetchResponse {
	maxWait := time.Duration(req.MaxWaitMillis) * time.Millisecond
	deadline := time.Now().Add(min(max(maxWait, 0), b.cfg.MaxFetchWait))
	replica := req.ReplicaID
	if replica >= 0 {
		b.stats.replicaFetches.Add(1)
		now := time.Now()
		for _, rt := range req.Topics {
			for _, rp := range rt.Partitions {
				if p := b.partition(rt.Topic, rp.Partition); p != nil {
					if isr := p.followerFetched(replica, rp.FetchOffset, now); isr != nil {
						b.proposeISR(p, isr)
					}
				}
			}
		}
	}
	wake := make(chan struct{}, 1)
	for {
		resp, size, asLeader, hasErr := b.fetchOnce(req, replica)
		if size >= int(max(req.MinBytes, 1)) || hasErr || !time.Now().Before(deadline) {
			if replica >= 0 {
				b.stats.replicaBytesOut.Add(int64(asLeader))
				b.stats.chainBytesOut.Add(int64(size - asLeader))
			}
			return resp
		}
		for _, rt := range req.Topics {
			for _, rp := range rt.Partitions {
				if p := b.partition(rt.Topic, rp.Partition); p != nil {
					p.watch(wake)
				}
			}
		}
		timer := time.NewTimer(time.Until(deadline))
		select {
		case <-wake:
		case <-timer.C:
		case <-ctx.Done():
		}
		timer.Stop()
		for _, rt := range req.Topics {
			for _, rp := range rt.Partitions {
				if p := b.partition(rt.Topic, rp.Partition); p != nil {
					p.unwatch(wake)
				}
			}
		}
		if ctx.Err() != nil {
			deadline = time.Now()
		}
	}
}

// fetchOnce reads every requested partition once. It returns the response,
// the record bytes in it, how many of those came from partitions this broker
// leads, and whether any partition carries an error.
func (b *Broker) fetchOnce(req *kmsg.FetchRequest, replica int32) (*kmsg.FetchResponse, int, int, bool) {
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	budget := int(req.MaxBytes)
	if budget <= 0 {
		budget = 50 << 20
	}
	total, asLeader, hasErr := 0, 0, false
	for _, rt := range req.Topics {
		t := kmsg.NewFetchResponseTopic()
		t.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			fp := kmsg.NewFetchResponseTopicPartition()
			fp.Partition = rp.Partition
			fp.PreferredReadReplica = -1
			fp.HighWatermark, fp.LastStableOffset, fp.LogStartOffset = -1, -1, -1
			// No data is an empty record set, never a null one: Kafka
			// sends size 0, and librdkafka rejects size -1 as a bad
			// message set (kcat then never reads past the end).
			fp.RecordBatches = []byte{}
			n, leader, err := b.fetchPartition(&fp, rt.Topic, rp, replica, min(int(rp.PartitionMaxBytes), budget), total == 0)
			if err != nil {
				fp.ErrorCode = errorCode(err)
				hasErr = true
			}
			total += n
			if leader {
				asLeader += n
			}
			budget -= n
			t.Partitions = append(t.Partitions, fp)
		}
		resp.Topics = append(resp.Topics, t)
	}
	return resp, total, asLeader, hasErr
}

// fetchPartition fills one partition of a fetch response. It returns the
// record bytes and whether this broker leads the partition.
func (b *Broker) fetchPartition(fp *kmsg.FetchResponseTopicPartition, topic string, rp kmsg.FetchRequestTopicPartition, replica int32, maxBytes int, first bool) (int, bool, error) {
	p := b.partition(topic, rp.Partition)
	if p == nil {
		if _, ok := b.currentView().Topic(topic); ok {
			return 0, false, ErrNotLeader
		}
		return 0, false, ErrUnknownPartition
	}
	maxOffset, hw, err := p.fetchBounds(replica, rp.CurrentLeaderEpoch)
	if err != nil {
		return 0, false, err
	}
	fp.HighWatermark, fp.LastStableOffset = hw, hw
	fp.LogStartOffset = p.log.StartOffset()
	if rp.PartitionMaxBytes <= 0 || (maxBytes <= 0 && !first) {
		return 0, false, nil
	}
	data, err := p.log.Read(rp.FetchOffset, maxOffset, max(maxBytes, 1))
	if err != nil {
		return 0, false, err
	}
	if len(data) > 0 {
		fp.RecordBatches = data
	}
	return len(data), p.status().Role == roleLeader.String(), nil
}
