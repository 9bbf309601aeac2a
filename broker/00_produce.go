package broker

// Produce: v3-8
// * acks 0 (no response), 1 (leader appended) and -1/all (high watermark
//   passed the batch, ISR >= min.insync.replicas; else NOT_ENOUGH_REPLICAS
//   before the append or NOT_ENOUGH_REPLICAS_AFTER_APPEND after it).
//   TimeoutMillis bounds the acks=all wait (REQUEST_TIMED_OUT).
// * Batches must be v2 (magic 2) with a valid CRC; they are stored as
//   received with only the base offset and partition leader epoch rewritten,
//   so every compression codec passes through untouched.
// * Transactions and idempotent sequence checks are not supported
//   (InitProducerId is not advertised).
// * Partitions of one request are appended one after the other and then
//   waited for together.

import (
	"context"
	"errors"
	"time"

	"github.com/brokerlab/brokerlab/internal/kbatch"
	"github.com/twmb/franz-go/pkg/kmsg"
)

type pendingAck struct {
	resp *kmsg.ProduceResponseTopicPartition
	p    *partition
	w    *ackWaiter
}

func (b *Broker) handleProduce(ctx context.Context, req *kmsg.ProduceRequest) *kmsg.ProduceResponse {
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	var pending []pendingAck
	for _, rt := range req.Topics {
		t := kmsg.NewProduceResponseTopic()
		t.Topic = rt.Topic
		t.Partitions = make([]kmsg.ProduceResponseTopicPartition, len(rt.Partitions))
		resp.Topics = append(resp.Topics, t)
		out := resp.Topics[len(resp.Topics)-1].Partitions
		for i, rp := range rt.Partitions {
			out[i] = kmsg.NewProduceResponseTopicPartition()
			out[i].Partition = rp.Partition
			out[i].LogAppendTime = -1
			p, w, err := b.produceOne(ctx, rt.Topic, rp.Partition, rp.Records, req.Acks)
			if err != nil {
				out[i].ErrorCode = errorCode(err)
				if !errors.Is(err, ErrNotLeader) && !errors.Is(err, ErrUnknownPartition) {
					b.logger.Debug("produce failed", "topic", rt.Topic, "partition", rp.Partition, "error", err)
				}
				continue
			}
			out[i].BaseOffset = w.base
			out[i].LogStartOffset = p.log.StartOffset()
			if w.waiter != nil {
				pending = append(pending, pendingAck{&out[i], p, w.waiter})
			}
		}
	}
	if len(pending) == 0 {
		return resp
	}
	wctx, cancel := requestTimeout(ctx, req.TimeoutMillis)
	defer cancel()
	for _, pa := range pending {
		select {
		case err := <-pa.w.done:
			pa.resp.ErrorCode = errorCode(err)
		case <-wctx.Done():
			pa.p.removeWaiter(pa.w)
			pa.resp.ErrorCode = errorCode(ErrRequestTimedOut)
		}
	}
	return resp
}

type appended struct {
	base   int64
	waiter *ackWaiter
}

func (b *Broker) produceOne(ctx context.Context, topic string, part int32, records []byte, acks int16) (*partition, appended, error) {
	if acks != 0 && acks != 1 && acks != -1 {
		return nil, appended{}, errInvalidAcks
	}
	p := b.partition(topic, part)
	if p == nil {
		if _, ok := b.currentView().Topic(topic); !ok && b.cfg.AutoCreateTopics && validTopicName(topic) == nil {
			b.autoCreate(ctx, []TopicConfig{b.defaultTopic(topic)})
			return nil, appended{}, ErrLeaderNotAvailable
		}
		if _, ok := b.currentView().Topic(topic); ok {
			return nil, appended{}, ErrNotLeader
		}
		return nil, appended{}, ErrUnknownPartition
	}
	if len(records) == 0 {
		return nil, appended{}, kbatch.ErrTruncated
	}
	// The log validates every batch (length, magic 2, CRC) before it
	// writes any of them.
	base, w, err := p.appendLeader(records, acks)
	if err != nil {
		return nil, appended{}, err
	}
	b.stats.produceBytes.Add(int64(len(records)))
	return p, appended{base, w}, nil
}

// autoCreate creates topics in the background: the request that triggered
// it is answered at once with a retriable error, as Kafka does.
func (b *Broker) autoCreate(ctx context.Context, topics []TopicConfig) {
	b.goFunc(func() {
		cctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
		defer cancel()
		for i, err := range b.cp.CreateTopics(cctx, topics) {
			if err != nil && !errors.Is(err, ErrTopicExists) {
				b.logger.Warn("auto-create topic", "topic", topics[i].Name, "error", err)
			}
		}
	})
}

func (b *Broker) defaultTopic(name string) TopicConfig {
	return TopicConfig{
		Name:              name,
		Partitions:        b.cfg.DefaultPartitions,
		ReplicationFactor: b.cfg.DefaultReplication,
		MinInsync:         1,
	}
}
