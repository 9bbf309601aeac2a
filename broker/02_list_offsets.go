package broker

// ListOffsets: v1-5
// * Timestamp -1 (latest) is the high watermark (= last stable offset: no
//   transactions), -2 (earliest) the log start offset; any other value finds the first batch whose
//   max timestamp is at or after it (Timestamp in the answer is -1 then, as
//   batch-level search cannot name the record's own time).
// * Served by the leader, or by a follower that allows follower reads.
// * CurrentLeaderEpoch (v4+) is checked like Fetch does.

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (b *Broker) handleListOffsets(req *kmsg.ListOffsetsRequest) *kmsg.ListOffsetsResponse {
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	for _, rt := range req.Topics {
		t := kmsg.NewListOffsetsResponseTopic()
		t.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			lp := kmsg.NewListOffsetsResponseTopicPartition()
			lp.Partition = rp.Partition
			lp.Timestamp = -1
			lp.LeaderEpoch = -1
			off, epoch, err := b.listOffset(rt.Topic, rp)
			if err != nil {
				lp.ErrorCode = errorCode(err)
				lp.Offset = -1
			} else {
				lp.Offset, lp.LeaderEpoch = off, epoch
			}
			t.Partitions = append(t.Partitions, lp)
		}
		resp.Topics = append(resp.Topics, t)
	}
	return resp
}

func (b *Broker) listOffset(topic string, rp kmsg.ListOffsetsRequestTopicPartition) (int64, int32, error) {
	p := b.partition(topic, rp.Partition)
	if p == nil {
		if _, ok := b.currentView().Topic(topic); ok {
			return 0, 0, ErrNotLeader
		}
		return 0, 0, ErrUnknownPartition
	}
	_, hw, err := p.fetchBounds(-1, rp.CurrentLeaderEpoch)
	if err != nil {
		return 0, 0, err
	}
	epoch := p.status().LeaderEpoch
	switch rp.Timestamp {
	case -1:
		return hw, epoch, nil
	case -2:
		return p.log.StartOffset(), epoch, nil
	}
	off, err := p.log.OffsetForTime(rp.Timestamp)
	if err != nil {
		return 0, 0, err
	}
	return min(off, hw), epoch, nil
}
