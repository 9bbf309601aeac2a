package nameserver

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/broker"
	"github.com/brokerlab/brokerlab/internal/testutil"
)

func TestFrameRoundTrip(t *testing.T) {
	m := message{Type: typeRoute, ID: 42, Body: []byte(`{"topics":["a"]}`)}
	frame, err := encodeFrame(m)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := readFrame(bytes.NewReader(frame), 1024)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeMessage(payload)
	if err != nil || got.Type != m.Type || got.ID != m.ID || !bytes.Equal(got.Body, m.Body) {
		t.Fatalf("got %+v %v", got, err)
	}
	for _, tc := range []struct {
		name string
		data []byte
		want error
	}{
		{"oversized", binary.BigEndian.AppendUint32(nil, 1025), ErrFrameTooLarge},
		{"empty", binary.BigEndian.AppendUint32(nil, 0), ErrFrameTooLarge},
		{"truncated", append(binary.BigEndian.AppendUint32(nil, 10), "{}"...), io.ErrUnexpectedEOF},
		{"short prefix", []byte{0, 0}, io.ErrUnexpectedEOF},
	} {
		if _, err := readFrame(bytes.NewReader(tc.data), 1024); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	for _, bad := range []string{`nope`, `[]`, `{"type":"","id":1}`, `{"type":"route","id":0}`, `{"type":"route","id":-1}`} {
		if _, err := decodeMessage([]byte(bad)); !errors.Is(err, ErrBadFrame) {
			t.Errorf("%s: %v", bad, err)
		}
	}
}

func TestErrorCodesRoundTrip(t *testing.T) {
	for _, e := range errorCodes {
		err := decodeError(encodeError(errors.Join(errors.New("context"), e.err)))
		if !errors.Is(err, e.err) {
			t.Errorf("%s: %v does not match %v", e.code, err, e.err)
		}
	}
	if err := decodeError(&wireError{Code: "from-the-future", Message: "x"}); !errors.Is(err, ErrInternal) {
		t.Errorf("unknown code: %v", err)
	}
}

// rawConn dials a server and writes raw bytes.
func rawConn(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// closedByPeer reports whether the server closed conn (reading hits EOF).
func closedByPeer(conn net.Conn) error {
	_ = conn.SetReadDeadline(time.Now().Add(waitFor))
	_, err := io.ReadAll(conn)
	return err
}

func TestServerClosesConnectionOnBadFrame(t *testing.T) {
	log := testutil.Logger(t, slog.LevelInfo)
	ns := startServer(t, log, func(c *Config) { c.MaxFrameBytes = 4096 })
	for name, data := range map[string][]byte{
		"oversized": binary.BigEndian.AppendUint32(nil, 1<<30),
		"not json":  append(binary.BigEndian.AppendUint32(nil, 5), "hello"...),
		"no type":   append(binary.BigEndian.AppendUint32(nil, 8), `{"id":1}`...),
	} {
		t.Run(name, func(t *testing.T) {
			conn := rawConn(t, ns.Addr())
			if _, err := conn.Write(data); err != nil {
				t.Fatal(err)
			}
			if err := closedByPeer(conn); err != nil {
				t.Fatalf("connection not closed by the server: %v", err)
			}
		})
	}
	// The server is still fine.
	if _, err := newClient(t, log, ns.Addr()).ClusterInfo(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestServerRejectsBadRequests(t *testing.T) {
	log := testutil.Logger(t, slog.LevelInfo)
	ns := startServer(t, log)
	p := dialPeer(t, ns.Addr(), peerConfig{maxFrame: 1 << 20, timeout: time.Second})
	ctx := context.Background()
	for _, tc := range []struct {
		typ  string
		body any
		want error
	}{
		{"teleport", struct{}{}, ErrBadRequest},
		{typeRoute, map[string]any{"topcs": []string{"x"}}, ErrBadRequest},
		{typeRegister, RegisterRequest{Cluster: "c1"}, ErrBadRequest},
		{typeRegister, RegisterRequest{Cluster: "c1", Group: "a", Addr: "x:1", Mode: "sometimes"}, ErrBadRequest},
		{typeRegister, RegisterRequest{Cluster: "c1", Group: "a", Addr: "x:1", Mode: ModeSync,
			Topics: []GroupTopic{{Name: "t", Queues: 4, FirstPartition: 2, Partitions: 4}}}, ErrBadRequest},
		{typeCreateTopic, CreateTopicRequest{Config: broker.TopicConfig{Name: strings.Repeat("x", 300), Partitions: 1}}, broker.ErrInvalidTopic},
		{typeDeleteTopic, deleteTopicRequest{Name: "nope"}, broker.ErrUnknownTopic},
	} {
		if _, err := p.call(ctx, tc.typ, tc.body, nil); !errors.Is(err, tc.want) {
			t.Errorf("%s %+v: %v, want %v", tc.typ, tc.body, err, tc.want)
		}
	}
	// The connection survived every rejection.
	var info ClusterInfo
	if _, err := p.call(ctx, typeClusterInfo, clusterInfoRequest{}, &info); err != nil {
		t.Fatal(err)
	}
	if st := ns.Stats(); st.Brokers != 0 || st.RegisterRequests != 3 {
		t.Fatalf("stats %+v", st)
	}
}

// FuzzDecodeFrame feeds arbitrary bytes to the frame reader and every body
// decoder: nothing may panic, and whatever decodes re-encodes to the same
// message.
func FuzzDecodeFrame(f *testing.F) {
	for _, m := range []message{
		{Type: typeRegister, ID: 1, Body: []byte(`{"cluster":"c","group":"g","broker_id":0,"node_id":1,"addr":"h:1","mode":"sync","topics":[{"name":"t","queues":4,"first_partition":0,"partitions":8}]}`)},
		{Type: typeReply, ID: 2, Err: &wireError{Code: "topic-exists", Message: "x"}},
		{Type: typeRoute, ID: 3, Body: []byte(`{"topics":["a","b"]}`)},
		{Type: typeCreateTopic, ID: 4, Body: []byte(`{"config":{"name":"t","partitions":3},"queues_per_group":2}`)},
		{Type: typeTopicConfig, ID: 5, Body: []byte(`{"topic":{"name":"t","queues":1,"first_partition":0,"partitions":1}}`)},
	} {
		frame, err := encodeFrame(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(frame)
	}
	f.Add([]byte{0, 0, 0, 2, '{', '}'})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		payload, err := readFrame(bytes.NewReader(data), 1<<16)
		if err != nil {
			return
		}
		m, err := decodeMessage(payload)
		if err != nil {
			return
		}
		bodies := []any{&RegisterRequest{}, &unregisterRequest{}, &routeRequest{}, &routeReply{}, &ClusterInfo{},
			&CreateTopicRequest{}, &createTopicReply{}, &deleteTopicRequest{}, &topicConfigPush{}, &topicDeletePush{}}
		for _, b := range bodies {
			if decodeBody(m.Body, b) != nil {
				continue
			}
			switch v := b.(type) {
			case *RegisterRequest:
				_ = v.validate()
			case *topicConfigPush:
				_ = v.Topic.validate()
			case *routeReply:
				for _, r := range v.Routes {
					_, _ = r.ReadQueue(0)
					_ = r.WriteQueues(nil)
				}
			}
		}
		_ = decodeError(m.Err)
		frame, err := encodeFrame(m)
		if err != nil {
			t.Fatal(err)
		}
		payload2, err := readFrame(bytes.NewReader(frame), len(frame))
		if err != nil {
			t.Fatal(err)
		}
		m2, err := decodeMessage(payload2)
		if err != nil || m2.Type != m.Type || m2.ID != m.ID {
			t.Fatalf("re-encoded %+v became %+v (%v)", m, m2, err)
		}
	})
}

// FuzzTopicsFile feeds arbitrary topics.json content to its decoder.
func FuzzTopicsFile(f *testing.F) {
	f.Add([]byte(`{"topics":[{"name":"t","queues":4,"first_partition":4,"partitions":8,"min_insync":2}]}`))
	f.Add([]byte(`{"topics":[]}`))
	f.Add([]byte(`{"topics":[{"name":"t","queues":1,"partitions":1},{"name":"t","queues":1,"partitions":1}]}`))
	f.Add([]byte(`{"topics":[{"name":"t","queues":1,"partitions":1}],"deleted":["u","t"]}`))
	f.Add([]byte(`{"topics":[],"deleted":["..",""]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		doc, err := decodeTopics(data)
		if err != nil {
			return
		}
		held := map[string]bool{}
		for _, tp := range doc.Topics {
			if tp.validate() != nil || tp.FirstPartition+tp.Queues > tp.Partitions {
				t.Fatalf("accepted invalid topic %+v", tp)
			}
			held[tp.Name] = true
		}
		for _, name := range doc.Deleted {
			if validTopicName(name) != nil || held[name] {
				t.Fatalf("accepted deleted topic %q (held %v)", name, held[name])
			}
		}
	})
}
