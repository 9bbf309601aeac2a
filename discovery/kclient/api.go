package kclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
	"github.com/segmentio/kafka-go/protocol/createtopics"
	"github.com/segmentio/kafka-go/protocol/fetch"
	"github.com/segmentio/kafka-go/protocol/listoffsets"
	"github.com/segmentio/kafka-go/protocol/metadata"
	"github.com/segmentio/kafka-go/protocol/produce"
)

// Header is one record header.
type Header = protocol.Header

// Record is one message to produce or one message fetched.
type Record struct {
	Offset  int64 // fetched records only
	Time    time.Time
	Key     []byte
	Value   []byte
	Headers []Header
}

// ProduceRequest writes records to one partition.
type ProduceRequest struct {
	Topic     string
	Partition int32
	// Acks is 0 (no response), 1 (leader) or -1 (all in-sync replicas).
	Acks int16
	// Timeout is the broker's wait for acks=all (the request's timeout_ms).
	Timeout time.Duration
	// Compression codec of the batch; 0 is none.
	Compression kafka.Compression
	Records     []Record
}

// Produce writes one record batch and returns the offset of its first
// record; acks=0 returns -1 once the request is written. A broker error is
// returned as a kafka.Error.
func (c *Client) Produce(ctx context.Context, addr string, req ProduceRequest) (int64, error) {
	recs := make([]protocol.Record, len(req.Records))
	for i, r := range req.Records {
		recs[i] = protocol.Record{
			Time:    r.Time,
			Key:     protocol.NewBytes(r.Key),
			Value:   protocol.NewBytes(r.Value),
			Headers: r.Headers,
		}
	}
	msg := &produce.Request{
		Acks:    req.Acks,
		Timeout: int32(req.Timeout.Milliseconds()),
		Topics: []produce.RequestTopic{{
			Topic: req.Topic,
			Partitions: []produce.RequestPartition{{
				Partition: req.Partition,
				RecordSet: protocol.RecordSet{
					Version:    2,
					Attributes: protocol.Attributes(req.Compression) & 7,
					Records:    protocol.NewRecordReader(recs...),
				},
			}},
		}},
	}
	m, err := c.roundTrip(ctx, addr, msg, req.Acks != 0)
	if err != nil {
		return -1, err
	}
	if req.Acks == 0 {
		return -1, nil
	}
	res := m.(*produce.Response)
	if len(res.Topics) != 1 || len(res.Topics[0].Partitions) != 1 {
		return -1, fmt.Errorf("kclient: produce to %s: %w", addr, ErrBadResponse)
	}
	p := res.Topics[0].Partitions[0]
	if p.ErrorCode != 0 {
		return -1, fmt.Errorf("kclient: produce %s/%d at %s: %w", req.Topic, req.Partition, addr, kafka.Error(p.ErrorCode))
	}
	return p.BaseOffset, nil
}

// FetchRequest reads one partition from an offset.
type FetchRequest struct {
	Topic     string
	Partition int32
	Offset    int64
	MaxWait   time.Duration
	MinBytes  int32
	MaxBytes  int32
}

// FetchResponse is one partition's answer. Records start at the requested
// offset (earlier records of the first batch are dropped).
type FetchResponse struct {
	HighWatermark  int64
	LogStartOffset int64
	Records        []Record
}

// Fetch reads records. A broker error is returned as a kafka.Error together
// with the high watermark the broker reported (often -1).
func (c *Client) Fetch(ctx context.Context, addr string, req FetchRequest) (FetchResponse, error) {
	msg := &fetch.Request{
		ReplicaID:    -1,
		MaxWaitTime:  int32(req.MaxWait.Milliseconds()),
		MinBytes:     req.MinBytes,
		MaxBytes:     req.MaxBytes,
		SessionID:    -1,
		SessionEpoch: -1,
		Topics: []fetch.RequestTopic{{
			Topic: req.Topic,
			Partitions: []fetch.RequestPartition{{
				Partition:          req.Partition,
				CurrentLeaderEpoch: -1,
				FetchOffset:        req.Offset,
				LogStartOffset:     -1,
				PartitionMaxBytes:  req.MaxBytes,
			}},
		}},
	}
	m, err := c.roundTrip(ctx, addr, msg, true)
	if err != nil {
		return FetchResponse{HighWatermark: -1}, err
	}
	res := m.(*fetch.Response)
	if res.ErrorCode != 0 {
		return FetchResponse{HighWatermark: -1}, fmt.Errorf("kclient: fetch from %s: %w", addr, kafka.Error(res.ErrorCode))
	}
	if len(res.Topics) != 1 || len(res.Topics[0].Partitions) != 1 {
		return FetchResponse{HighWatermark: -1}, fmt.Errorf("kclient: fetch from %s: %w", addr, ErrBadResponse)
	}
	p := res.Topics[0].Partitions[0]
	out := FetchResponse{HighWatermark: p.HighWatermark, LogStartOffset: p.LogStartOffset}
	if p.ErrorCode != 0 {
		return out, fmt.Errorf("kclient: fetch %s/%d at %s: %w", req.Topic, req.Partition, addr, kafka.Error(p.ErrorCode))
	}
	if p.RecordSet.Records == nil {
		return out, nil
	}
	out.Records, err = readRecords(p.RecordSet.Records, req.Offset)
	if err != nil {
		return out, fmt.Errorf("kclient: fetch %s/%d at %s: %w", req.Topic, req.Partition, addr, err)
	}
	return out, nil
}

// readRecords copies the records at or after from out of rr.
func readRecords(rr protocol.RecordReader, from int64) ([]Record, error) {
	var out []Record
	for {
		r, err := rr.ReadRecord()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		key, err1 := protocol.ReadAll(r.Key)
		val, err2 := protocol.ReadAll(r.Value)
		if err := errors.Join(err1, err2); err != nil {
			return out, err
		}
		if r.Offset < from {
			continue
		}
		hs := make([]Header, len(r.Headers))
		for i, h := range r.Headers {
			hs[i] = Header{Key: h.Key, Value: append([]byte(nil), h.Value...)}
		}
		out = append(out, Record{Offset: r.Offset, Time: r.Time, Key: key, Value: val, Headers: hs})
	}
}

// Special timestamps of ListOffsets.
const (
	Earliest int64 = -2
	Latest   int64 = -1
)

// ListOffsets returns the offset of one partition at timestamp (Earliest,
// Latest, or Unix milliseconds).
func (c *Client) ListOffsets(ctx context.Context, addr, topic string, partition int32, timestamp int64) (int64, error) {
	msg := &listoffsets.Request{
		ReplicaID: -1,
		Topics: []listoffsets.RequestTopic{{
			Topic:      topic,
			Partitions: []listoffsets.RequestPartition{{Partition: partition, CurrentLeaderEpoch: -1, Timestamp: timestamp}},
		}},
	}
	m, err := c.roundTrip(ctx, addr, msg, true)
	if err != nil {
		return -1, err
	}
	res := m.(*listoffsets.Response)
	if len(res.Topics) != 1 || len(res.Topics[0].Partitions) != 1 {
		return -1, fmt.Errorf("kclient: list offsets from %s: %w", addr, ErrBadResponse)
	}
	p := res.Topics[0].Partitions[0]
	if p.ErrorCode != 0 {
		return -1, fmt.Errorf("kclient: list offsets %s/%d at %s: %w", topic, partition, addr, kafka.Error(p.ErrorCode))
	}
	return p.Offset, nil
}

// Metadata is a Metadata response.
type Metadata struct {
	ControllerID int32
	// Brokers maps node ids to host:port.
	Brokers map[int32]string
	Topics  []TopicMetadata
}

// TopicMetadata is one topic of a Metadata response.
type TopicMetadata struct {
	Name       string
	Err        error // a kafka.Error, nil when the code is 0
	Partitions []PartitionMetadata
}

// PartitionMetadata is one partition of a Metadata response.
type PartitionMetadata struct {
	ID          int32
	Err         error // a kafka.Error, nil when the code is 0
	Leader      int32 // -1: none
	LeaderEpoch int32 // -1 before Metadata v7
	Replicas    []int32
	ISR         []int32
	Offline     []int32
}

// Metadata asks addr for the given topics (nil: all topics).
func (c *Client) Metadata(ctx context.Context, addr string, topics []string) (Metadata, error) {
	m, v, err := c.roundTripV(ctx, addr, &metadata.Request{TopicNames: topics}, true)
	if err != nil {
		return Metadata{}, err
	}
	res := m.(*metadata.Response)
	md := Metadata{ControllerID: res.ControllerID, Brokers: make(map[int32]string, len(res.Brokers))}
	for _, b := range res.Brokers {
		md.Brokers[b.NodeID] = net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port)))
	}
	for _, t := range res.Topics {
		tm := TopicMetadata{Name: t.Name, Err: codeErr(t.ErrorCode)}
		for _, p := range t.Partitions {
			epoch := p.LeaderEpoch
			if v < 7 {
				epoch = -1
			}
			tm.Partitions = append(tm.Partitions, PartitionMetadata{
				ID: p.PartitionIndex, Err: codeErr(p.ErrorCode), Leader: p.LeaderID, LeaderEpoch: epoch,
				Replicas: p.ReplicaNodes, ISR: p.IsrNodes, Offline: p.OfflineReplicas,
			})
		}
		md.Topics = append(md.Topics, tm)
	}
	return md, nil
}

// CreateTopic creates a topic through addr; a topic that already exists is
// not an error.
func (c *Client) CreateTopic(ctx context.Context, addr, topic string, partitions int32, replication int16, timeout time.Duration) error {
	msg := &createtopics.Request{
		Topics:    []createtopics.RequestTopic{{Name: topic, NumPartitions: partitions, ReplicationFactor: replication}},
		TimeoutMs: int32(timeout.Milliseconds()),
	}
	m, err := c.roundTrip(ctx, addr, msg, true)
	if err != nil {
		return err
	}
	res := m.(*createtopics.Response)
	if len(res.Topics) != 1 {
		return fmt.Errorf("kclient: create topic at %s: %w", addr, ErrBadResponse)
	}
	switch code := res.Topics[0].ErrorCode; code {
	case 0, int16(kafka.TopicAlreadyExists):
		return nil
	default:
		return fmt.Errorf("kclient: create topic %s at %s: %w", topic, addr, kafka.Error(code))
	}
}

func codeErr(code int16) error {
	if code == 0 {
		return nil
	}
	return kafka.Error(code)
}
