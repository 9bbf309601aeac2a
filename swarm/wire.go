package swarm

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/brokerlab/brokerlab/discovery"
	"github.com/brokerlab/brokerlab/history"
)

// The load generator protocol. The runner dials a load generator (a
// `brokerlab loadgen` task) and runs one client per connection. Every
// message is a frame:
//
//	frame    kind uint8 | length uint32 | body (length bytes, at most maxFrame)
//
// Integers are little-endian; times are int64 Unix nanoseconds on the
// sender's clock (noTime for none); strings are length uint16 | bytes.
//
//	runner -> load generator
//	kind 1   clock     (no body): answer with clock
//	kind 2   start     JSON session (client kind, its config, its discovery)
//	kind 3   caught-up (no body): answer with caught-up
//	kind 4   stop      (no body): end the client, send what is left, then done
//	kind 5   reads     (no body): answer with reads
//	kind 6   reaches   partition int32 | offset int64: answer with reaches
//
//	load generator -> runner
//	kind 10  clock     now int64
//	kind 11  send      producer int32 | partition int32 | seq int64 | offset int64 |
//	                   intended int64 | sent int64 | done int64 | outcome uint8 |
//	                   attempts uint16 | err string
//	kind 12  receive   producer int32 | partition int32 | seq int64 | offset int64 |
//	                   intended int64 | received int64 | consumer int32
//	kind 13  route     partition int32 | epoch int32 | at int64 | client string |
//	                   topic string | addr string | previous string
//	kind 14  caught-up ok uint8 | err string
//	kind 15  reads     JSON []analysis.PartitionRead
//	kind 16  reaches   ok uint8 | err string
//	kind 17  done      err string ("" when the client ended well)
//
// Records travel in the order the client produced them; the runner turns
// their times into its own clock with the offset measured by clock.
const (
	frameClock    = 1
	frameStart    = 2
	frameCaught   = 3
	frameStop     = 4
	frameReads    = 5
	frameReaches  = 6
	frameNow      = 10
	frameSend     = 11
	frameReceive  = 12
	frameRoute    = 13
	frameCaughtUp = 14
	frameReadsAns = 15
	frameReachAns = 16
	frameDone     = 17

	maxFrame = 1 << 20
	noTime   = math.MinInt64
)

// errWire marks a malformed frame.
var errWire = errors.New("swarm: malformed load generator frame")

// writeFrame appends one frame to w.
func writeFrame(w *bufio.Writer, kind byte, body []byte) error {
	if len(body) > maxFrame {
		return fmt.Errorf("%w: %d bytes", errWire, len(body))
	}
	var h [5]byte
	h[0] = kind
	binary.LittleEndian.PutUint32(h[1:], uint32(len(body)))
	if _, err := w.Write(h[:]); err != nil {
		return err
	}
	_, err := w.Write(body)
	return err
}

// readFrame reads one frame. The body is a new slice.
func readFrame(r *bufio.Reader) (byte, []byte, error) {
	var h [5]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	n := binary.LittleEndian.Uint32(h[1:])
	if n > maxFrame {
		return 0, nil, fmt.Errorf("%w: length %d", errWire, n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	return h[0], body, nil
}

// enc builds a body.
type enc []byte

func (e enc) i32(v int32) enc { return binary.LittleEndian.AppendUint32(e, uint32(v)) }
func (e enc) i64(v int64) enc { return binary.LittleEndian.AppendUint64(e, uint64(v)) }
func (e enc) u8(v uint8) enc  { return append(e, v) }
func (e enc) u16(v uint16) enc {
	return binary.LittleEndian.AppendUint16(e, v)
}
func (e enc) str(s string) enc {
	if len(s) > math.MaxUint16 {
		s = s[:math.MaxUint16]
	}
	return append(e.u16(uint16(len(s))), s...)
}
func (e enc) time(t time.Time) enc {
	if t.IsZero() {
		return e.i64(noTime)
	}
	return e.i64(t.UnixNano())
}

// dec reads a body; the first short read sets err and every later read
// returns zero.
type dec struct {
	b   []byte
	err error
}

func (d *dec) take(n int) []byte {
	if d.err != nil || len(d.b) < n {
		d.err = errWire
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *dec) i32() int32 {
	if b := d.take(4); b != nil {
		return int32(binary.LittleEndian.Uint32(b))
	}
	return 0
}

func (d *dec) i64() int64 {
	if b := d.take(8); b != nil {
		return int64(binary.LittleEndian.Uint64(b))
	}
	return 0
}

func (d *dec) u8() uint8 {
	if b := d.take(1); b != nil {
		return b[0]
	}
	return 0
}

func (d *dec) u16() uint16 {
	if b := d.take(2); b != nil {
		return binary.LittleEndian.Uint16(b)
	}
	return 0
}

func (d *dec) str() string { return string(d.take(int(d.u16()))) }

// time reads a time shifted by -offset (the sender's clock minus ours).
func (d *dec) time(offset time.Duration) time.Time {
	v := d.i64()
	if v == noTime || d.err != nil {
		return time.Time{}
	}
	return time.Unix(0, v).Add(-offset)
}

// end checks that the body was read exactly.
func (d *dec) end() error {
	if d.err == nil && len(d.b) != 0 {
		d.err = errWire
	}
	return d.err
}

func encodeSend(s history.Send) []byte {
	return enc(make([]byte, 0, 64+len(s.Err))).i32(s.Producer).i32(s.Partition).i64(s.Seq).i64(s.Offset).
		time(s.Intended).time(s.Sent).time(s.Done).u8(uint8(s.Outcome)).u16(uint16(min(max(s.Attempts, 0), math.MaxUint16))).str(s.Err)
}

func decodeSend(b []byte, offset time.Duration) (history.Send, error) {
	d := &dec{b: b}
	s := history.Send{Producer: d.i32(), Partition: d.i32(), Seq: d.i64(), Offset: d.i64()}
	s.Intended, s.Sent, s.Done = d.time(offset), d.time(offset), d.time(offset)
	s.Outcome = history.Outcome(d.u8())
	s.Attempts = int(d.u16())
	s.Err = d.str()
	if err := d.end(); err != nil {
		return history.Send{}, err
	}
	if s.Outcome < history.Acked || s.Outcome > history.Unknown {
		return history.Send{}, fmt.Errorf("%w: outcome %d", errWire, s.Outcome)
	}
	return s, nil
}

func encodeReceive(r history.Receive) []byte {
	return enc(make([]byte, 0, 52)).i32(r.Producer).i32(r.Partition).i64(r.Seq).i64(r.Offset).
		time(r.Intended).time(r.Received).i32(int32(r.Consumer))
}

func decodeReceive(b []byte, offset time.Duration) (history.Receive, error) {
	d := &dec{b: b}
	r := history.Receive{Producer: d.i32(), Partition: d.i32(), Seq: d.i64(), Offset: d.i64()}
	r.Intended, r.Received = d.time(offset), d.time(offset)
	r.Consumer = int(d.i32())
	if err := d.end(); err != nil {
		return history.Receive{}, err
	}
	return r, nil
}

func encodeRoute(c discovery.Change) []byte {
	return enc(nil).i32(c.Partition).i32(c.LeaderEpoch).time(c.At).str(c.Client).str(c.Topic).str(c.Addr).str(c.Previous)
}

func decodeRoute(b []byte, offset time.Duration) (discovery.Change, error) {
	d := &dec{b: b}
	c := discovery.Change{Partition: d.i32(), LeaderEpoch: d.i32(), At: d.time(offset)}
	c.Client, c.Topic, c.Addr, c.Previous = d.str(), d.str(), d.str(), d.str()
	if err := d.end(); err != nil {
		return discovery.Change{}, err
	}
	return c, nil
}

// encodeResult is the body of caught-up, reaches and done.
func encodeResult(ok bool, err error) []byte {
	var v uint8
	if ok {
		v = 1
	}
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	return enc(nil).u8(v).str(msg)
}

func decodeResult(b []byte) (bool, string, error) {
	d := &dec{b: b}
	ok, msg := d.u8(), d.str()
	if err := d.end(); err != nil {
		return false, "", err
	}
	if ok > 1 {
		return false, "", fmt.Errorf("%w: flag %d", errWire, ok)
	}
	return ok == 1, msg, nil
}

func encodeReaches(partition int32, offset int64) []byte { return enc(nil).i32(partition).i64(offset) }

func decodeReaches(b []byte) (int32, int64, error) {
	d := &dec{b: b}
	p, o := d.i32(), d.i64()
	return p, o, d.end()
}

func decodeNow(b []byte) (time.Time, error) {
	d := &dec{b: b}
	v := d.i64()
	if err := d.end(); err != nil {
		return time.Time{}, err
	}
	return time.Unix(0, v), nil
}
