package broker_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/broker"
	"github.com/brokerlab/brokerlab/broker/brokertest"
	"github.com/brokerlab/brokerlab/broker/standalone"
	"github.com/brokerlab/brokerlab/internal/testutil"
	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"
	"github.com/twmb/franz-go/pkg/kgo"
)

// node is a standalone broker on a loopback port.
type node struct {
	b    *broker.Broker
	addr string
	dir  string
}

func startStandalone(t testing.TB, dir, listen string, mutate ...func(*broker.Config)) *node {
	t.Helper()
	cfg := broker.DefaultConfig()
	cfg.Listen = listen
	cfg.DataDir = dir
	cfg.Logger = testutil.Logger(t, -4+8) // warn
	for _, m := range mutate {
		m(&cfg)
	}
	cp, err := standalone.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	b := brokertest.Start(t, cfg, cp)
	return &node{b: b, addr: b.Addr(), dir: dir}
}

func createTopic(t testing.TB, addr, topic string, partitions int) {
	t.Helper()
	conn, err := kafka.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.CreateTopics(kafka.TopicConfig{Topic: topic, NumPartitions: partitions, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		ps, err := conn.ReadPartitions(topic)
		if err != nil {
			return err
		}
		if len(ps) != partitions {
			return fmt.Errorf("%d of %d partitions", len(ps), partitions)
		}
		return nil
	})
}

// msgSpec is one test message: its partition, key, value and headers are
// all derived from its sequence number, so a reader can check every byte.
type msgSpec struct {
	seq       int
	partition int
	key       []byte
	value     []byte
	headers   [][2]string
}

// mixedMessages returns n messages of 1 B to 100 KiB, most small: 90% up to
// 1 KiB, 9% up to 10 KiB, 1% up to 100 KiB. A third carry keys, a fifth
// headers.
func mixedMessages(n, partitions int, seed uint64) []msgSpec {
	rng := rand.New(rand.NewPCG(seed, 7))
	out := make([]msgSpec, n)
	for i := range out {
		var size int
		switch r := rng.IntN(100); {
		case r < 90:
			size = 1 + rng.IntN(1024)
		case r < 99:
			size = 1 + rng.IntN(10<<10)
		default:
			size = 1 + rng.IntN(100<<10)
		}
		if i == 0 {
			size = 1
		}
		if i == 1 {
			size = 100 << 10
		}
		v := make([]byte, max(size, 8))
		binary.BigEndian.PutUint64(v, uint64(i))
		for j := 8; j < len(v); j++ {
			v[j] = byte(i + j)
		}
		m := msgSpec{seq: i, partition: i % partitions, value: v[:size]}
		if size < 8 {
			m.value = []byte(strconv.Itoa(i % 10))[:1]
		}
		if i%3 == 0 {
			m.key = []byte("key-" + strconv.Itoa(i))
		}
		if i%5 == 0 {
			m.headers = [][2]string{{"h1", "v" + strconv.Itoa(i)}, {"empty", ""}}
		}
		out[i] = m
	}
	return out
}

// perPartition groups messages by partition in production order.
func perPartition(msgs []msgSpec, partitions int) [][]msgSpec {
	out := make([][]msgSpec, partitions)
	for _, m := range msgs {
		out[m.partition] = append(out[m.partition], m)
	}
	return out
}

func checkMessage(t *testing.T, want msgSpec, key, value []byte, headers [][2]string) bool {
	t.Helper()
	if string(key) != string(want.key) || string(value) != string(want.value) || len(headers) != len(want.headers) {
		t.Errorf("seq %d (partition %d): got key %q, %d value bytes, %d headers; want key %q, %d bytes, %d headers",
			want.seq, want.partition, key, len(value), len(headers), want.key, len(want.value), len(want.headers))
		return false
	}
	for i := range headers {
		if headers[i] != want.headers[i] {
			t.Errorf("seq %d: header %d = %v, want %v", want.seq, i, headers[i], want.headers[i])
			return false
		}
	}
	return true
}

var kafkaGoCodecs = map[string]compress.Compression{
	"none": 0, "gzip": kafka.Gzip, "snappy": kafka.Snappy, "lz4": kafka.Lz4, "zstd": kafka.Zstd,
}

var franzCodecs = map[string]kgo.CompressionCodec{
	"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
	"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
}

var codecNames = []string{"none", "gzip", "snappy", "lz4", "zstd"}

// messageCount is the 100,000; -short runs a tenth.
func messageCount() int {
	if testing.Short() {
		return 10_000
	}
	return 100_000
}

// produceKafkaGo writes msgs with a kafka-go Writer (acks=all) and fails the
// test on any error.
func produceKafkaGo(t *testing.T, addr, topic string, msgs []msgSpec, codec compress.Compression) {
	t.Helper()
	w := &kafka.Writer{
		Addr:         kafka.TCP(addr),
		Transport:    &kafka.Transport{}, // the default one caches metadata across writers
		Topic:        topic,
		RequiredAcks: kafka.RequireAll,
		Compression:  codec,
		BatchSize:    1000,
		BatchBytes:   4 << 20,
		BatchTimeout: 5 * time.Millisecond,
		Balancer: kafka.BalancerFunc(func(m kafka.Message, partitions ...int) int {
			return int(binary.BigEndian.Uint32(m.Headers[len(m.Headers)-1].Value))
		}),
	}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const chunk = 5000
	for start := 0; start < len(msgs); start += chunk {
		batch := make([]kafka.Message, 0, chunk)
		for _, m := range msgs[start:min(start+chunk, len(msgs))] {
			km := kafka.Message{Key: m.key, Value: m.value}
			for _, h := range m.headers {
				km.Headers = append(km.Headers, kafka.Header{Key: h[0], Value: []byte(h[1])})
			}
			// The partition rides in a trailing routing header the reader strips.
			km.Headers = append(km.Headers, kafka.Header{Key: "partition", Value: binary.BigEndian.AppendUint32(nil, uint32(m.partition))})
			batch = append(batch, km)
		}
		if err := w.WriteMessages(ctx, batch...); err != nil {
			t.Fatalf("kafka-go write: %v", err)
		}
	}
}

// readKafkaGo reads each partition from the start with a kafka-go Reader and
// checks it holds exactly want, in order.
func readKafkaGo(t *testing.T, addr, topic string, want [][]msgSpec) {
	t.Helper()
	for p, msgs := range want {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{addr}, Topic: topic, Partition: p, MinBytes: 1, MaxBytes: 8 << 20, MaxWait: 100 * time.Millisecond})
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		for i, w := range msgs {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				cancel()
				r.Close()
				t.Fatalf("partition %d: read %d of %d: %v", p, i, len(msgs), err)
			}
			if m.Offset != int64(i) {
				t.Fatalf("partition %d: message %d at offset %d", p, i, m.Offset)
			}
			var hs [][2]string
			for _, h := range m.Headers {
				if h.Key != "partition" {
					hs = append(hs, [2]string{h.Key, string(h.Value)})
				}
			}
			if !checkMessage(t, w, m.Key, m.Value, hs) {
				cancel()
				r.Close()
				t.FailNow()
			}
		}
		cancel()
		r.Close()
		// Nothing beyond what was written.
		conn, err := kafka.DialLeader(context.Background(), "tcp", addr, topic, p)
		if err != nil {
			t.Fatal(err)
		}
		last, err := conn.ReadLastOffset()
		conn.Close()
		if err != nil {
			t.Fatal(err)
		}
		if last != int64(len(msgs)) {
			t.Fatalf("partition %d: end offset %d, want %d", p, last, len(msgs))
		}
	}
}

func produceFranz(t *testing.T, addr, topic string, msgs []msgSpec, codec kgo.CompressionCodec) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic),
		kgo.ProducerBatchCompression(codec), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerBatchMaxBytes(4<<20), kgo.MaxBufferedRecords(20000))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const chunk = 5000
	for start := 0; start < len(msgs); start += chunk {
		var recs []*kgo.Record
		for _, m := range msgs[start:min(start+chunk, len(msgs))] {
			r := &kgo.Record{Key: m.key, Value: m.value, Partition: int32(m.partition)}
			for _, h := range m.headers {
				r.Headers = append(r.Headers, kgo.RecordHeader{Key: h[0], Value: []byte(h[1])})
			}
			recs = append(recs, r)
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatalf("franz-go produce: %v", err)
		}
	}
}

func readFranz(t *testing.T, addr, topic string, want [][]msgSpec) {
	t.Helper()
	parts := map[int32]kgo.Offset{}
	total := 0
	for p, msgs := range want {
		parts[int32(p)] = kgo.NewOffset().AtStart()
		total += len(msgs)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}), kgo.FetchMaxBytes(16<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	next := make([]int, len(want))
	for got := 0; got < total; {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("franz-go consume: %d of %d read: %v", got, total, ctx.Err())
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			p := int(r.Partition)
			if next[p] >= len(want[p]) {
				t.Fatalf("partition %d: extra record at offset %d", p, r.Offset)
			}
			if r.Offset != int64(next[p]) {
				t.Fatalf("partition %d: record %d at offset %d", p, next[p], r.Offset)
			}
			var hs [][2]string
			for _, h := range r.Headers {
				if h.Key != "partition" {
					hs = append(hs, [2]string{h.Key, string(h.Value)})
				}
			}
			if !checkMessage(t, want[p][next[p]], r.Key, r.Value, hs) {
				t.FailNow()
			}
			next[p]++
			got++
		})
	}
}

// TestStockClientsRoundTrip is issue 2's acceptance test: kafka-go and
// franz-go each produce 100,000 mixed messages per compression codec and read
// back exactly those messages, in order per partition.
func TestStockClientsRoundTrip(t *testing.T) {
	const partitions = 4
	n := startStandalone(t, t.TempDir(), "127.0.0.1:0")
	msgs := mixedMessages(messageCount(), partitions, 1)
	want := perPartition(msgs, partitions)
	for _, codec := range codecNames {
		t.Run("kafka-go/"+codec, func(t *testing.T) {
			topic := "kgo-" + codec
			createTopic(t, n.addr, topic, partitions)
			produceKafkaGo(t, n.addr, topic, msgs, kafkaGoCodecs[codec])
			readKafkaGo(t, n.addr, topic, want)
		})
		t.Run("franz-go/"+codec, func(t *testing.T) {
			topic := "franz-" + codec
			createTopic(t, n.addr, topic, partitions)
			produceFranz(t, n.addr, topic, msgs, franzCodecs[codec])
			readFranz(t, n.addr, topic, want)
		})
	}
}

// TestRestartServesAcknowledged restarts the broker on the same data dir,
// after a graceful stop and after a crash, and reads everything back.
func TestRestartServesAcknowledged(t *testing.T) {
	const partitions = 3
	dir := t.TempDir()
	n := startStandalone(t, dir, "127.0.0.1:0")
	createTopic(t, n.addr, "restart", partitions)
	msgs := mixedMessages(6000, partitions, 2)
	produceKafkaGo(t, n.addr, "restart", msgs[:2000], kafka.Snappy)
	if err := n.b.Close(); err != nil {
		t.Fatal(err)
	}
	n = startStandalone(t, dir, n.addr)
	readKafkaGo(t, n.addr, "restart", perPartition(msgs[:2000], partitions))
	produceFranz(t, n.addr, "restart", msgs[2000:4000], kgo.ZstdCompression())
	n.b.Kill()
	n = startStandalone(t, dir, n.addr)
	produceKafkaGo(t, n.addr, "restart", msgs[4000:], 0)
	readFranz(t, n.addr, "restart", perPartition(msgs, partitions))
}

// TestTornTailRecovered appends half a batch to every partition's active
// segment while the broker is down, as a crash mid-write would; the broker
// must drop it, serve all acknowledged messages, and append after them.
func TestTornTailRecovered(t *testing.T) {
	const partitions = 2
	dir := t.TempDir()
	n := startStandalone(t, dir, "127.0.0.1:0")
	createTopic(t, n.addr, "torn", partitions)
	msgs := mixedMessages(3000, partitions, 3)
	produceKafkaGo(t, n.addr, "torn", msgs[:2000], 0)
	if err := n.b.Close(); err != nil {
		t.Fatal(err)
	}
	for p := range partitions {
		segs, _ := filepath.Glob(filepath.Join(dir, "torn-"+strconv.Itoa(p), "*.log"))
		if len(segs) == 0 {
			t.Fatalf("partition %d: no segment files", p)
		}
		last := segs[len(segs)-1]
		data, err := os.ReadFile(last)
		if err != nil {
			t.Fatal(err)
		}
		// A copy of the first batch's first 40 bytes: a torn header.
		f, err := os.OpenFile(last, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(data[:40]); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	n = startStandalone(t, dir, n.addr)
	produceFranz(t, n.addr, "torn", msgs[2000:], kgo.Lz4Compression())
	readKafkaGo(t, n.addr, "torn", perPartition(msgs, partitions))
}

// TestBadFramesCloseOnlyThatConnection sends malformed and oversized frames
// and checks the broker keeps serving others.
func TestBadFramesCloseOnlyThatConnection(t *testing.T) {
	n := startStandalone(t, t.TempDir(), "127.0.0.1:0", func(c *broker.Config) { c.MaxFrameBytes = 1 << 20 })
	frames := map[string][]byte{
		"oversized":       binary.BigEndian.AppendUint32(nil, 2<<20),
		"negative length": binary.BigEndian.AppendUint32(nil, 0xffffffff),
		"short header":    append(binary.BigEndian.AppendUint32(nil, 3), 0, 1, 2),
		"unknown api key": append(binary.BigEndian.AppendUint32(nil, 10), 0x7f, 0x00, 0, 0, 0, 0, 0, 1, 0xff, 0xff),
		"garbage body":    append(binary.BigEndian.AppendUint32(nil, 14), 0, 3, 0, 1, 0, 0, 0, 1, 0xff, 0xff, 9, 9, 9, 9),
	}
	for name, frame := range frames {
		t.Run(name, func(t *testing.T) {
			c, err := net.Dial("tcp", n.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Write(frame); err != nil {
				t.Fatal(err)
			}
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, 1)
			if _, err := c.Read(buf); err == nil {
				t.Fatal("connection still open after a bad frame")
			}
		})
	}
	createTopic(t, n.addr, "still-serving", 1)
}
