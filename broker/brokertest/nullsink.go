package brokertest

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// NullSink is a Kafka-protocol endpoint that acknowledges every Produce at
// once and keeps nothing: a client benchmarked against it measures the
// client alone. It serves ApiVersions, Metadata (every topic asked for has
// Partitions partitions, all led by the sink) and Produce (acks=0 gets no
// answer); any other request closes the connection.
type NullSink struct {
	ln         net.Listener
	partitions int32
	wg         sync.WaitGroup
	offset     atomic.Int64 // next base offset handed out (shared by all partitions)
	produced   atomic.Int64 // Produce requests answered
}

// StartNullSink listens on a loopback port until the test ends.
func StartNullSink(t testing.TB, partitions int32) *NullSink {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &NullSink{ln: ln, partitions: partitions}
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(func() {
		_ = ln.Close()
		s.wg.Wait()
	})
	return s
}

// Addr is the sink's host:port.
func (s *NullSink) Addr() string { return s.ln.Addr().String() }

// Produced is the number of Produce requests answered.
func (s *NullSink) Produced() int64 { return s.produced.Load() }

func (s *NullSink) accept() {
	defer s.wg.Done()
	var conns sync.WaitGroup
	var mu sync.Mutex
	open := map[net.Conn]bool{}
	defer func() {
		mu.Lock()
		for c := range open {
			_ = c.Close()
		}
		mu.Unlock()
		conns.Wait()
	}()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		mu.Lock()
		open[c] = true
		mu.Unlock()
		conns.Go(func() {
			s.serve(c)
			mu.Lock()
			delete(open, c)
			mu.Unlock()
		})
	}
}

func (s *NullSink) serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReaderSize(c, 1<<20)
	var size [4]byte
	var frame, out []byte
	for {
		if _, err := io.ReadFull(r, size[:]); err != nil {
			return
		}
		n := binary.BigEndian.Uint32(size[:])
		if n > 100<<20 {
			return
		}
		frame = append(frame[:0], make([]byte, n)...)
		if _, err := io.ReadFull(r, frame); err != nil {
			return
		}
		resp, err := s.handle(frame, out[:0])
		if err != nil {
			return
		}
		if resp == nil {
			continue
		}
		if _, err := c.Write(resp); err != nil {
			return
		}
		out = resp
	}
}

// Versions served: none flexible except ApiVersions v3, whose response
// header stays v0.
var nullVersions = map[int16][2]int16{
	int16(kmsg.ApiVersions): {0, 3},
	int16(kmsg.Metadata):    {0, 8},
	int16(kmsg.Produce):     {3, 8},
}

var errNullSink = errors.New("brokertest: null sink cannot serve this request")

func (s *NullSink) handle(frame, out []byte) ([]byte, error) {
	rd := kbin.Reader{Src: frame}
	key, version, corr := rd.Int16(), rd.Int16(), rd.Int32()
	rd.NullableString() // client id
	req := kmsg.RequestForKey(key)
	vr, ok := nullVersions[key]
	if req == nil || !ok || rd.Complete() != nil {
		return nil, errNullSink
	}
	if key == int16(kmsg.ApiVersions) && version > vr[1] {
		version = 0 // answer v0 with the table; the client picks again
	}
	req.SetVersion(version)
	if req.IsFlexible() {
		for range rd.Uvarint() { // header tags: skipped
			rd.Uvarint()
			rd.Span(int(rd.Uvarint()))
		}
		if rd.Complete() != nil {
			return nil, errNullSink
		}
	}
	if err := req.ReadFrom(rd.Src); err != nil {
		return nil, err
	}
	var resp kmsg.Response
	switch req := req.(type) {
	case *kmsg.ApiVersionsRequest:
		r := req.ResponseKind().(*kmsg.ApiVersionsResponse)
		for k, v := range nullVersions {
			r.ApiKeys = append(r.ApiKeys, kmsg.ApiVersionsResponseApiKey{ApiKey: k, MinVersion: v[0], MaxVersion: v[1]})
		}
		resp = r
	case *kmsg.MetadataRequest:
		resp = s.metadata(req)
	case *kmsg.ProduceRequest:
		s.produced.Add(1)
		if req.Acks == 0 {
			return nil, nil
		}
		r := req.ResponseKind().(*kmsg.ProduceResponse)
		for _, t := range req.Topics {
			rt := kmsg.NewProduceResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewProduceResponseTopicPartition()
				rp.Partition = p.Partition
				rp.BaseOffset = s.offset.Add(1000) - 1000
				rt.Partitions = append(rt.Partitions, rp)
			}
			r.Topics = append(r.Topics, rt)
		}
		resp = r
	}
	resp.SetVersion(version)
	out = append(out, 0, 0, 0, 0)
	out = binary.BigEndian.AppendUint32(out, uint32(corr))
	if resp.IsFlexible() && key != int16(kmsg.ApiVersions) {
		out = append(out, 0)
	}
	out = resp.AppendTo(out)
	binary.BigEndian.PutUint32(out, uint32(len(out)-4))
	return out, nil
}

func (s *NullSink) metadata(req *kmsg.MetadataRequest) *kmsg.MetadataResponse {
	r := req.ResponseKind().(*kmsg.MetadataResponse)
	host, port, _ := net.SplitHostPort(s.Addr())
	p, _ := strconv.Atoi(port)
	b := kmsg.NewMetadataResponseBroker()
	b.NodeID, b.Host, b.Port = 0, host, int32(p)
	r.Brokers = append(r.Brokers, b)
	r.ControllerID = 0
	cluster := "null-sink"
	r.ClusterID = &cluster
	for _, t := range req.Topics {
		mt := kmsg.NewMetadataResponseTopic()
		mt.Topic = t.Topic
		for i := range s.partitions {
			mp := kmsg.NewMetadataResponseTopicPartition()
			mp.Partition, mp.Leader, mp.Replicas, mp.ISR = i, 0, []int32{0}, []int32{0}
			mt.Partitions = append(mt.Partitions, mp)
		}
		r.Topics = append(r.Topics, mt)
	}
	return r
}
