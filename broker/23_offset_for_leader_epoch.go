package broker

// OffsetForLeaderEpoch: v0-3
// * Served by the leader only: for the requested epoch it returns the
//   largest epoch <= it that the log holds and the offset where the next
//   epoch starts (the log end for the current epoch). Followers call it after
//   a leadership change and truncate there, so a divergent tail written under
//   an old leader is removed (KIP-101/KIP-279).
// * CurrentLeaderEpoch (v2+) is checked: older → FENCED_LEADER_EPOCH, newer
//   → UNKNOWN_LEADER_EPOCH.

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (b *Broker) handleOffsetForLeaderEpoch(req *kmsg.OffsetForLeaderEpochRequest) *kmsg.OffsetForLeaderEpochResponse {
	resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	for _, rt := range req.Topics {
		t := kmsg.NewOffsetForLeaderEpochResponseTopic()
		t.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			op := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			op.Partition = rp.Partition
			op.LeaderEpoch, op.EndOffset = -1, -1
			p := b.partition(rt.Topic, rp.Partition)
			switch {
			case p == nil:
				op.ErrorCode = errorCode(ErrUnknownPartition)
			default:
				epoch, end, err := p.epochEndOffset(rp.CurrentLeaderEpoch, rp.LeaderEpoch)
				op.LeaderEpoch, op.EndOffset, op.ErrorCode = epoch, end, errorCode(err)
			}
			t.Partitions = append(t.Partitions, op)
		}
		resp.Topics = append(resp.Topics, t)
	}
	return resp
}

// epochEndOffset answers OffsetForLeaderEpoch on the leader.
func (p *partition) epochEndOffset(current, requested int32) (int32, int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.role != roleLeader {
		return -1, -1, ErrNotLeader
	}
	if current >= 0 && current != p.epoch {
		if current < p.epoch {
			return -1, -1, ErrFenced
		}
		return -1, -1, ErrUnknownLeaderEpoch
	}
	epoch, end := p.log.EpochEndOffset(requested)
	return epoch, end, nil
}
