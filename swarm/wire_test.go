package swarm

import (
	"bufio"
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/discovery"
	"github.com/brokerlab/brokerlab/history"
)

func TestWireRoundTrip(t *testing.T) {
	at := time.Unix(1700000000, 123456789)
	offset := 1500 * time.Millisecond // the load generator's clock runs ahead
	s := history.Send{Producer: 3, Seq: 77, Partition: 2, Intended: at, Sent: at.Add(time.Millisecond),
		Done: at.Add(3 * time.Millisecond), Outcome: history.Failed, Offset: -1, Err: "not enough replicas", Attempts: 4}
	got, err := decodeSend(encodeSend(s), offset)
	if err != nil {
		t.Fatal(err)
	}
	want := s
	want.Intended, want.Sent, want.Done = s.Intended.Add(-offset), s.Sent.Add(-offset), s.Done.Add(-offset)
	if !got.Intended.Equal(want.Intended) || !got.Done.Equal(want.Done) || got.Err != want.Err || got.Attempts != 4 || got.Outcome != history.Failed || got.Seq != 77 {
		t.Errorf("send: got %+v, want %+v", got, want)
	}
	unsent := history.Send{Producer: 1, Outcome: history.Unknown, Offset: -1}
	if got, err := decodeSend(encodeSend(unsent), offset); err != nil || !got.Sent.IsZero() || !got.Intended.IsZero() {
		t.Errorf("zero times: %+v %v", got, err)
	}
	r := history.Receive{Producer: 1, Seq: 9, Partition: 1, Offset: 42, Intended: at, Received: at.Add(time.Second), Consumer: 1000}
	gr, err := decodeReceive(encodeReceive(r), 0)
	if err != nil || gr.Offset != 42 || gr.Consumer != 1000 || !gr.Received.Equal(r.Received) {
		t.Errorf("receive: %+v %v", gr, err)
	}
	c := discovery.Change{Client: "producer-1", Topic: "bench", Partition: 2, Addr: "b:9092", Previous: "a:9092", LeaderEpoch: 5, At: at}
	gc, err := decodeRoute(encodeRoute(c), 0)
	if err != nil || gc != c {
		t.Errorf("route: %+v %v", gc, err)
	}
	ok, msg, err := decodeResult(encodeResult(false, errors.New("boom")))
	if err != nil || ok || msg != "boom" {
		t.Errorf("result: %v %q %v", ok, msg, err)
	}

	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	if err := writeFrame(w, frameSend, encodeSend(s)); err != nil {
		t.Fatal(err)
	}
	if err := writeFrame(w, frameStop, nil); err != nil {
		t.Fatal(err)
	}
	_ = w.Flush()
	rd := bufio.NewReader(&buf)
	if k, b, err := readFrame(rd); err != nil || k != frameSend || len(b) != len(encodeSend(s)) {
		t.Errorf("frame 1: %d %d %v", k, len(b), err)
	}
	if k, b, err := readFrame(rd); err != nil || k != frameStop || len(b) != 0 {
		t.Errorf("frame 2: %d %d %v", k, len(b), err)
	}
}

func TestWireRejects(t *testing.T) {
	good := encodeSend(history.Send{Outcome: history.Acked})
	for name, b := range map[string][]byte{
		"short":    good[:10],
		"long":     append(append([]byte{}, good...), 0),
		"outcome":  append(append([]byte{}, good[:len(good)-5]...), 9, 0, 0, 0, 0),
		"str past": append(append([]byte{}, good[:len(good)-2]...), 0xff, 0xff),
	} {
		if _, err := decodeSend(b, 0); !errors.Is(err, errWire) {
			t.Errorf("%s: %v, want errWire", name, err)
		}
	}
	huge := []byte{frameSend, 0xff, 0xff, 0xff, 0x7f}
	if _, _, err := readFrame(bufio.NewReader(bytes.NewReader(huge))); !errors.Is(err, errWire) {
		t.Errorf("oversized frame: %v", err)
	}
}

// FuzzWire feeds arbitrary bytes to every decoder of the load generator
// protocol: none may panic, and whatever decodes must encode back to the
// same bytes.
func FuzzWire(f *testing.F) {
	at := time.Unix(1700000000, 5)
	f.Add(encodeSend(history.Send{Producer: 1, Seq: 2, Intended: at, Outcome: history.Acked, Offset: 7, Err: "x"}))
	f.Add(encodeReceive(history.Receive{Producer: 1, Seq: 2, Received: at}))
	f.Add(encodeRoute(discovery.Change{Client: "c", Topic: "t", Addr: "a:1", At: at}))
	f.Add(encodeResult(true, nil))
	f.Add(encodeReaches(1, 2))
	f.Add([]byte{frameSend, 3, 0, 0, 0, 1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		if s, err := decodeSend(b, 0); err == nil && !bytes.Equal(encodeSend(s), b) {
			t.Errorf("send %+v re-encodes differently", s)
		}
		if r, err := decodeReceive(b, 0); err == nil && !bytes.Equal(encodeReceive(r), b) {
			t.Errorf("receive %+v re-encodes differently", r)
		}
		if c, err := decodeRoute(b, 0); err == nil && !bytes.Equal(encodeRoute(c), b) {
			t.Errorf("route %+v re-encodes differently", c)
		}
		_, _, _ = decodeResult(b)
		_, _, _ = decodeReaches(b)
		_, _ = decodeNow(b)
		rd := bufio.NewReader(bytes.NewReader(b))
		for range 4 {
			if _, _, err := readFrame(rd); err != nil {
				break
			}
		}
	})
}
