package broker_test

import (
	"context"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/broker"
	"github.com/brokerlab/brokerlab/broker/standalone"
	"github.com/brokerlab/brokerlab/internal/kbatch"
	"github.com/brokerlab/brokerlab/internal/testutil"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// encodeRequest frames req at version with a v1/v2 header, as a client would.
func encodeRequest(req kmsg.Request, version int16, corr int32) []byte {
	req.SetVersion(version)
	out := binary.BigEndian.AppendUint16(nil, uint16(req.Key()))
	out = binary.BigEndian.AppendUint16(out, uint16(version))
	out = binary.BigEndian.AppendUint32(out, uint32(corr))
	out = binary.BigEndian.AppendUint16(out, 4)
	out = append(out, "fuzz"...)
	if req.IsFlexible() {
		out = append(out, 0)
	}
	return req.AppendTo(out)
}

func fuzzBroker(t testing.TB) *broker.Broker {
	cp, err := standalone.New("")
	if err != nil {
		t.Fatal(err)
	}
	cfg := broker.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.MaxFrameBytes = 1 << 20
	cfg.MaxFetchWait = 5 * time.Millisecond // fuzzed fetches may ask for minutes
	b, err := broker.New(cfg, cp)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Kill)
	errs := cp.CreateTopics(context.Background(), []broker.TopicConfig{{Name: "t", Partitions: 2, ReplicationFactor: 1}})
	if errs[0] != nil {
		t.Fatal(errs[0])
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		if len(b.Status()) != 2 {
			return errors.New("partitions not open yet")
		}
		return nil
	})
	return b
}

// seedRequests returns a valid request of every served API at its lowest
// and highest version.
func seedRequests(t testing.TB) [][]byte {
	batch, err := kbatch.Build([]kbatch.Record{{Key: []byte("k"), Value: []byte("v")}}, kbatch.BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	topic := "t"
	produce := kmsg.NewPtrProduceRequest()
	produce.Acks, produce.TimeoutMillis = 1, 100
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic = topic
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Records = batch
	pt.Partitions = append(pt.Partitions, pp)
	produce.Topics = append(produce.Topics, pt)

	fetch := kmsg.NewPtrFetchRequest()
	fetch.ReplicaID, fetch.MaxWaitMillis = -1, 1
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = topic
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.PartitionMaxBytes = 1 << 20
	ft.Partitions = append(ft.Partitions, fp)
	fetch.Topics = append(fetch.Topics, ft)

	lo := kmsg.NewPtrListOffsetsRequest()
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = topic
	lp := kmsg.NewListOffsetsRequestTopicPartition()
	lp.Timestamp = -1
	lt.Partitions = append(lt.Partitions, lp)
	lo.Topics = append(lo.Topics, lt)

	md := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = &topic
	md.Topics = append(md.Topics, mt)

	ct := kmsg.NewPtrCreateTopicsRequest()
	ctt := kmsg.NewCreateTopicsRequestTopic()
	ctt.Topic, ctt.NumPartitions, ctt.ReplicationFactor = "new", 1, 1
	ct.Topics = append(ct.Topics, ctt)
	ct.ValidateOnly = true

	dt := kmsg.NewPtrDeleteTopicsRequest()
	dt.TopicNames = []string{"missing"}

	ofle := kmsg.NewPtrOffsetForLeaderEpochRequest()
	ot := kmsg.NewOffsetForLeaderEpochRequestTopic()
	ot.Topic = topic
	op := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
	ot.Partitions = append(ot.Partitions, op)
	ofle.Topics = append(ofle.Topics, ot)

	var out [][]byte
	for _, req := range []kmsg.Request{produce, fetch, lo, md, kmsg.NewPtrApiVersionsRequest(), ct, dt, ofle} {
		lo, hi := broker.APIRange(req.Key())
		out = append(out, encodeRequest(req, lo, 1), encodeRequest(req, hi, 2))
	}
	return out
}

// FuzzHandle feeds arbitrary frames to request decoding and dispatch: any
// input may be answered or refused, but no handler may panic.
func FuzzHandle(f *testing.F) {
	b := fuzzBroker(f)
	for _, s := range seedRequests(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		_, _ = b.HandleFrame(frame)
		if n := b.Panics(); n > 0 {
			t.Fatalf("%d handler panics (see log)", n)
		}
	})
}

// FuzzReadFrame checks the frame reader against arbitrary streams.
func FuzzReadFrame(f *testing.F) {
	f.Add([]byte{0, 0, 0, 2, 1, 2})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0, 0x10, 0, 0})
	f.Fuzz(func(t *testing.T, stream []byte) {
		r := &sliceReader{b: stream}
		for range 100 {
			frame, err := broker.ReadFrame(r, nil, 1<<16)
			if err != nil {
				return
			}
			if len(frame) > 1<<16 {
				t.Fatalf("frame of %d bytes exceeds the limit", len(frame))
			}
		}
	})
}

type sliceReader struct{ b []byte }

func (r *sliceReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, context.Canceled
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

// TestSeedRequestsAnswered checks every seed decodes and gets a response: the
// fuzz corpus starts from valid requests, not from noise.
func TestSeedRequestsAnswered(t *testing.T) {
	b := fuzzBroker(t)
	for i, s := range seedRequests(t) {
		resp, err := b.HandleFrame(s)
		if err != nil || len(resp) < 8 {
			t.Fatalf("seed %d: response %d bytes, err %v", i, len(resp), err)
		}
	}
}

// TestApiVersionsTooNew: a version above the table gets a v0 body with
// UNSUPPORTED_VERSION and the full table.
func TestApiVersionsTooNew(t *testing.T) {
	b := fuzzBroker(t)
	req := kmsg.NewPtrApiVersionsRequest()
	frame := encodeRequest(req, 3, 9)
	binary.BigEndian.PutUint16(frame[2:], 42) // claim v42
	resp, err := b.HandleFrame(frame)
	if err != nil {
		t.Fatal(err)
	}
	if corr := int32(binary.BigEndian.Uint32(resp[4:])); corr != 9 {
		t.Fatalf("correlation id %d", corr)
	}
	r := kmsg.NewPtrApiVersionsResponse()
	r.SetVersion(0)
	if err := r.ReadFrom(resp[8:]); err != nil {
		t.Fatal(err)
	}
	if r.ErrorCode != 35 || len(r.ApiKeys) != broker.APICount() {
		t.Fatalf("error %d with %d keys, want 35 with %d", r.ErrorCode, len(r.ApiKeys), broker.APICount())
	}
}

// TestFetchEmptyRecordsNotNull: a fetch with nothing to return, or with an
// error, carries an empty record set (size 0) as Kafka's brokers do, not a
// null one (size -1), which librdkafka rejects as a bad message set.
func TestFetchEmptyRecordsNotNull(t *testing.T) {
	b := fuzzBroker(t)
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxWaitMillis = 1
	for _, topic := range []string{"t", "missing"} {
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.PartitionMaxBytes = 1 << 20
		rp.CurrentLeaderEpoch = -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
	}
	resp, err := b.HandleFrame(encodeRequest(req, 11, 5))
	if err != nil {
		t.Fatal(err)
	}
	r := kmsg.NewPtrFetchResponse()
	r.SetVersion(11)
	if err := r.ReadFrom(resp[8:]); err != nil {
		t.Fatal(err)
	}
	if len(r.Topics) != 2 {
		t.Fatalf("%d topics answered, want 2", len(r.Topics))
	}
	for _, rt := range r.Topics {
		for _, p := range rt.Partitions {
			if p.RecordBatches == nil {
				t.Errorf("%s/%d (error %d): null record set, want an empty one", rt.Topic, p.Partition, p.ErrorCode)
			}
		}
	}
}
