package history

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// Errors of the file format.
var (
	// ErrFormat: the bytes are not a history file, or a record is invalid.
	ErrFormat = errors.New("history: not a valid history file")
	// ErrTruncated: the file ends inside a record (a run cut short). The
	// table read up to that point is still returned.
	ErrTruncated = errors.New("history: file ends inside a record")
)

// magic opens every history file; its last byte is the format version.
var magic = [8]byte{'B', 'L', 'H', 'I', 'S', 'T', 0, 1}

// Record kinds.
const (
	kindSend       byte = 1
	kindReceive    byte = 2
	kindFinal      byte = 3
	kindFinalBegin byte = 4
	kindFinalDrop  byte = 5
	kindMeta       byte = 6
)

// Body sizes per kind, after the kind byte.
const (
	sendBody    = 50
	receiveBody = 32
	finalBody   = 24
	// MaxMeta bounds a metadata record.
	MaxMeta = 16 << 20
)

// Writer streams a run's history to a file. It is not safe for concurrent
// use; Recorder serialises writers.
type Writer struct {
	f     *os.File
	w     *bufio.Writer
	start time.Time
	buf   [1 + sendBody]byte
	err   error
	n     int64
}

// Create creates path and writes the header.
func Create(path string, start time.Time) (*Writer, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	w := &Writer{f: f, w: bufio.NewWriterSize(f, 1<<20), start: start}
	var hdr [16]byte
	copy(hdr[:8], magic[:])
	binary.LittleEndian.PutUint64(hdr[8:], uint64(start.UnixNano()))
	w.write(hdr[:])
	if w.err != nil {
		_ = f.Close()
		return nil, w.err
	}
	return w, nil
}

func (w *Writer) write(b []byte) {
	if w.err != nil {
		return
	}
	n, err := w.w.Write(b)
	w.n += int64(n)
	if err != nil {
		w.err = fmt.Errorf("history: write: %w", err)
	}
}

// Size is the bytes written so far.
func (w *Writer) Size() int64 { return w.n }

// Err is the first write error; after one, records are dropped.
func (w *Writer) Err() error { return w.err }

func (w *Writer) rel(t time.Time) int64 {
	if t.IsZero() {
		return NoTime
	}
	return int64(t.Sub(w.start))
}

// Send appends a send record.
func (w *Writer) Send(s Send) {
	b := w.buf[:1+sendBody]
	b[0] = kindSend
	le := binary.LittleEndian
	le.PutUint32(b[1:], uint32(s.Producer))
	le.PutUint32(b[5:], uint32(s.Partition))
	le.PutUint64(b[9:], uint64(s.Seq))
	le.PutUint64(b[17:], uint64(s.Offset))
	le.PutUint64(b[25:], uint64(w.rel(s.Intended)))
	le.PutUint64(b[33:], uint64(w.rel(s.Sent)))
	le.PutUint64(b[41:], uint64(w.rel(s.Done)))
	b[49] = byte(s.Outcome)
	b[50] = uint8(min(max(s.Attempts, 0), 255))
	w.write(b)
}

// Receive appends a live delivery.
func (w *Writer) Receive(r Receive) {
	b := w.buf[:1+receiveBody]
	b[0] = kindReceive
	putPosition(b[1:], r)
	binary.LittleEndian.PutUint64(b[25:], uint64(w.rel(r.Received)))
	w.write(b)
}

// Final appends a delivery of the verification read.
func (w *Writer) Final(r Receive) {
	b := w.buf[:1+finalBody]
	b[0] = kindFinal
	putPosition(b[1:], r)
	w.write(b)
}

func putPosition(b []byte, r Receive) {
	le := binary.LittleEndian
	le.PutUint32(b[0:], uint32(r.Producer))
	le.PutUint32(b[4:], uint32(r.Partition))
	le.PutUint64(b[8:], uint64(r.Seq))
	le.PutUint64(b[16:], uint64(r.Offset))
}

// BeginFinal marks the start of the verification read; DropFinal marks that
// it did not finish, so the records of it are to be ignored.
func (w *Writer) BeginFinal() { w.write([]byte{kindFinalBegin}) }

// DropFinal: see BeginFinal.
func (w *Writer) DropFinal() { w.write([]byte{kindFinalDrop}) }

// Meta appends an opaque metadata record (the runner's description of the
// run); the last one in a file wins.
func (w *Writer) Meta(data []byte) error {
	if len(data) > MaxMeta {
		return fmt.Errorf("history: metadata of %d bytes exceeds %d", len(data), MaxMeta)
	}
	var hdr [5]byte
	hdr[0] = kindMeta
	binary.LittleEndian.PutUint32(hdr[1:], uint32(len(data)))
	w.write(hdr[:])
	w.write(data)
	return w.err
}

// Close flushes, syncs and closes the file. It is idempotent.
func (w *Writer) Close() error {
	if w.f == nil {
		return w.err
	}
	if w.err == nil {
		if err := w.w.Flush(); err != nil {
			w.err = fmt.Errorf("history: flush: %w", err)
		}
	}
	if err := w.f.Close(); err != nil && w.err == nil {
		w.err = fmt.Errorf("history: close: %w", err)
	}
	w.f = nil
	return w.err
}

// ReadFile reads a history file into a table. On ErrTruncated the table and
// metadata read so far are returned with the error.
func ReadFile(path string) (*Table, []byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("history: %w", err)
	}
	defer f.Close()
	return Read(bufio.NewReaderSize(f, 1<<20))
}

// Read decodes a history stream into a table (see the package doc for the
// format). It never panics on any input.
func Read(r io.Reader) (*Table, []byte, error) {
	start, err := readHeader(r)
	if err != nil {
		return nil, nil, err
	}
	t := NewTable(start)
	meta, err := readRecords(r, t.apply)
	return t, meta, err
}

// readHeader reads and checks a file's header and returns its start.
func readHeader(r io.Reader) (time.Time, error) {
	var hdr [16]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return time.Time{}, fmt.Errorf("%w: header: %v", ErrFormat, err)
	}
	if [8]byte(hdr[:8]) != magic {
		return time.Time{}, fmt.Errorf("%w: bad magic or version", ErrFormat)
	}
	return time.Unix(0, int64(binary.LittleEndian.Uint64(hdr[8:]))), nil
}

// bodySize is the body length of a record kind with a fixed body (0 for
// begin and drop), -1 for meta and unknown kinds.
func bodySize(kind byte) int {
	switch kind {
	case kindSend:
		return sendBody
	case kindReceive:
		return receiveBody
	case kindFinal:
		return finalBody
	case kindFinalBegin, kindFinalDrop:
		return 0
	}
	return -1
}

// readRecords decodes records until the end of r and hands each one but
// meta to apply as its kind byte followed by its body (valid until apply
// returns). It returns the last meta record's bytes.
func readRecords(r io.Reader, apply func(rec []byte) error) ([]byte, error) {
	var meta []byte
	var buf [1 + sendBody]byte
	for {
		if _, err := io.ReadFull(r, buf[:1]); err != nil {
			if errors.Is(err, io.EOF) {
				return meta, nil
			}
			return meta, fmt.Errorf("%w: %v", ErrTruncated, err)
		}
		n := bodySize(buf[0])
		if buf[0] == kindMeta {
			n = 4
		} else if n < 0 {
			return meta, fmt.Errorf("%w: unknown record kind %d", ErrFormat, buf[0])
		}
		if _, err := io.ReadFull(r, buf[1:1+n]); err != nil {
			return meta, fmt.Errorf("%w (kind %d): %v", ErrTruncated, buf[0], err)
		}
		if buf[0] != kindMeta {
			if err := apply(buf[:1+n]); err != nil {
				return meta, err
			}
			continue
		}
		size := binary.LittleEndian.Uint32(buf[1:])
		if size > MaxMeta {
			return meta, fmt.Errorf("%w: metadata of %d bytes", ErrFormat, size)
		}
		m := make([]byte, size)
		if _, err := io.ReadFull(r, m); err != nil {
			return meta, fmt.Errorf("%w (metadata): %v", ErrTruncated, err)
		}
		meta = m
	}
}

// recordKey returns the message a send, receive or final record is about.
func recordKey(rec []byte) Key {
	le := binary.LittleEndian
	return Key{int32(le.Uint32(rec[1:])), int64(le.Uint64(rec[9:]))}
}

// sendRecord decodes a send record (kind byte and body).
func sendRecord(rec []byte) (SendRecord, error) {
	le := binary.LittleEndian
	b := rec[1:]
	o := Outcome(b[48])
	if o < Acked || o > Unknown {
		return SendRecord{}, fmt.Errorf("%w: send with outcome %d", ErrFormat, o)
	}
	return SendRecord{
		Partition: int32(le.Uint32(b[4:])), Offset: int64(le.Uint64(b[16:])),
		Intended: int64(le.Uint64(b[24:])), Sent: int64(le.Uint64(b[32:])), Done: int64(le.Uint64(b[40:])),
		Outcome: o, Attempts: b[49],
	}, nil
}

// receiveRecord decodes a receive or final record: where the message was
// read and, for a live one, when (NoTime for a final one).
func receiveRecord(rec []byte) (Position, int64) {
	le := binary.LittleEndian
	b := rec[1:]
	at := NoTime
	if rec[0] == kindReceive {
		at = int64(le.Uint64(b[24:]))
	}
	return Position{int32(le.Uint32(b[4:])), int64(le.Uint64(b[16:]))}, at
}

// apply adds one record (kind byte and body, as readRecords yields them)
// to the table.
func (t *Table) apply(rec []byte) error {
	switch rec[0] {
	case kindSend:
		sr, err := sendRecord(rec)
		if err != nil {
			return err
		}
		t.addSend(recordKey(rec), sr)
	case kindReceive, kindFinal:
		p, at := receiveRecord(rec)
		t.addReceive(recordKey(rec), p, at, rec[0] == kindFinal)
	case kindFinalBegin:
		t.BeginFinal()
	case kindFinalDrop:
		t.DropFinal()
	}
	return nil
}
